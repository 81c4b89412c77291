#!/bin/sh
# cross/qemu/run.sh ARCH IMAGE [--shell]
#
# Boots the qemu-virt image IMAGE (from mkimage.sh) for ARCH (armhf: -M virt -cpu cortex-a15,
# arm64: -M virt -cpu cortex-a53) with the Debian kernel from cross/cache/ARCH, headless, with no
# network device at all (-nic none), the serial console on stdout, and -no-reboot so that the
# guest's poweroff (or a kernel panic: panic=-1) ends QEMU.
#
# Test mode (default): the serial output is shown and kept in IMAGE.serial.log; the result is
# the marker `EN-QEMU-TEST <nonce> PASS` the guest prints, where the nonce is random per run and
# passed on the kernel command line. Exit 0 only if that marker came and QEMU then powered off by
# itself within QEMU_TEST_TIMEOUT seconds (default 180); a hang is killed and is a failure. QEMU
# never outlives this script: it runs under timeout(1) and is killed on any exit.
# --shell: interactive boot of an image built with mkimage.sh --shell (quit: Ctrl-A x).
set -eu
[ $# -ge 2 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
arch=$1 image=$2
shell=0
[ "${3:-}" = --shell ] && shell=1
limit=${QEMU_TEST_TIMEOUT:-180}

here=$(cd "$(dirname "$0")" && pwd)
cache=${CROSS_CACHE:-$here/../cache}
case $arch in
armhf) qemu=qemu-system-arm cpu=cortex-a15 ;;
arm64) qemu=qemu-system-aarch64 cpu=cortex-a53 ;;
*) echo "run.sh: ARCH is armhf or arm64" >&2; exit 2 ;;
esac
kernel=$cache/$arch/vmlinuz
[ -s "$kernel" ] || { echo "run.sh: no kernel $kernel: run cross/setup.sh" >&2; exit 1; }
[ -s "$image" ] || { echo "run.sh: no image $image" >&2; exit 1; }

nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
set -- $qemu -M virt -cpu $cpu -smp 1 -m 256 -nographic -nic none -no-reboot \
    -kernel "$kernel" -initrd "$image" -append "console=ttyAMA0 panic=-1 quiet en_test=$nonce"

if [ $shell = 1 ]; then
    exec "$@"
fi

log=$image.serial.log
work=$(mktemp -d)
pidfile=$work/qemu.pid
pipeline=
cleanup() {
    # timeout(1) passes a TERM on to QEMU; QEMU's own pid is the fallback.
    for f in "$work/timeout.pid" "$pidfile"; do
        [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        sleep 1
        kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    fi
    [ -z "$pipeline" ] || wait "$pipeline" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

start=$(date +%s)
# stdin from /dev/null: nothing reaches the guest's console; -monitor none: no monitor either.
# The pipeline runs in the background and the script waits for it, so that a signal to this
# script runs the cleanup at once (a foreground pipeline would defer the trap until it ended).
{
    timeout -k 5 "$limit" "$@" -monitor none -pidfile "$pidfile" </dev/null 2>&1 &
    echo $! >"$work/timeout.pid"
    rc=0
    wait $! || rc=$?
    echo $rc >"$work/rc"
} | tee "$log" &
pipeline=$!
wait $pipeline
pipeline=
rc=$(cat "$work/rc")
secs=$(($(date +%s) - start))

if grep -q "EN-QEMU-TEST $nonce PASS" "$log"; then
    marker=PASS
elif grep -q "EN-QEMU-TEST $nonce FAIL" "$log"; then
    marker=FAIL
else
    marker=none
fi
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "qemu-test $arch: FAIL: no power-off within ${limit}s (marker: $marker); QEMU was killed"
    exit 1
elif [ "$rc" != 0 ]; then
    echo "qemu-test $arch: FAIL: QEMU exited with $rc (marker: $marker)"
    exit 1
elif [ $marker = PASS ]; then
    echo "qemu-test $arch: PASS in ${secs}s"
    exit 0
else
    echo "qemu-test $arch: FAIL (marker: $marker) after ${secs}s; serial log in $log"
    exit 1
fi
