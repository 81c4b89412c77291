#!/bin/sh
# cross/runner.sh QEMU BINARY [ARGS...]: cargo's target runner for the ARM targets
# (.cargo/config.toml), so `cargo test --target armv7-unknown-linux-gnueabihf` runs under qemu-user.
#
# Running the test binary under QEMU (qemu-arm / qemu-aarch64) is the easy part. The integration
# tests also start the event-notify binary itself (the daemon, emit, listen): that exec happens
# inside the emulated process and goes to the host kernel, which cannot run an ARM ELF unless
# binfmt_misc sends it to QEMU. So:
#   - if the host already has a binfmt_misc entry for this ARM ELF type, just run QEMU;
#   - else, where the kernel allows it (Linux 6.7+: binfmt_misc per user namespace), run in a new
#     user and mount namespace with a private binfmt_misc that registers only this QEMU. Nothing
#     outside that namespace sees it: the machine's binfmt_misc is never touched;
#   - else run QEMU anyway and warn: tests that start the binary will fail to exec it.
# Inside the namespace the caller's uid is mapped to root (no more rights on the host than before).
set -eu
[ $# -ge 2 ] || { echo "usage: $0 QEMU BINARY [ARGS...]" >&2; exit 2; }
qemu=$1
shift

case $qemu in
qemu-arm)
    name=en-qemu-arm
    magic='\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00'
    ;;
qemu-aarch64)
    name=en-qemu-aarch64
    magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    ;;
*) echo "runner.sh: unknown QEMU $qemu (qemu-arm or qemu-aarch64)" >&2; exit 2 ;;
esac
mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
binfmt=/proc/sys/fs/binfmt_misc
path=$(command -v "$qemu") || { echo "runner.sh: $qemu not found (cross/setup.sh installs qemu-user)" >&2; exit 127; }

# A test binary (cargo test runs target/<triple>/<profile>/deps/NAME-HASH) gets
# EN_QEMU_TEST_TIMEOUT seconds (default 300; the longest, tests/it, takes ~55-70 s) and one more
# try if it hangs. qemu-user can deadlock a child forked from a multi-threaded guest before the child
# reaches exec (an emulator bug); tests/it/common/process.rs restarts such a child when `spawn`
# returns, but when `spawn` itself waits for the exec, the test would wait for ever. Only a hang
# (timeout's 124, or 137 after its KILL) is tried again, never a failure. Anything else that runs
# here (`cargo run --target ...`) runs without a limit.
run() {
    case $1 in
    */deps/*) ;;
    *) exec "$path" "$@" ;;
    esac
    limit=${EN_QEMU_TEST_TIMEOUT:-300}
    for try in 1 2; do
        rc=0
        timeout --kill-after=10 "$limit" "$path" "$@" || rc=$?
        case $rc in
        124 | 137) echo "runner.sh: $(basename "$1") hung for $limit s under $qemu (try $try of 2): killed" >&2 ;;
        *) exit "$rc" ;;
        esac
    done
    exit 124
}

host_handles() { # an enabled host entry for this ELF type (Debian's qemu-user-binfmt names)
    for e in "$binfmt/qemu-${qemu#qemu-}" "$binfmt/$name"; do
        [ -f "$e" ] && head -n1 "$e" | grep -qx enabled && return 0
    done
    return 1
}

if [ "${1:-}" = --in-namespace ]; then
    shift
    if mount -t binfmt_misc binfmt_misc $binfmt 2>/dev/null &&
        printf ':%s:M::%s:%s:%s:F\n' "$name" "$magic" "$mask" "$path" >$binfmt/register 2>/dev/null; then
        run "$@"
    fi
    echo "runner.sh: warning: no private binfmt_misc here (Linux < 6.7?): tests that start an ARM binary will fail" >&2
    run "$@"
fi

if [ -n "${EN_RUNNER_NAMESPACE:-}" ] || host_handles; then
    run "$@"
fi
if command -v unshare >/dev/null 2>&1 && unshare --user --map-root-user --mount true 2>/dev/null; then
    export EN_RUNNER_NAMESPACE=1
    exec unshare --user --map-root-user --mount sh "$0" "$qemu" --in-namespace "$@"
fi
echo "runner.sh: warning: no user namespaces and no binfmt_misc entry for $qemu: tests that start an ARM binary will fail" >&2
run "$@"
