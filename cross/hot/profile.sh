#!/bin/sh
# cross/hot/profile.sh: makes cross/hot/functions.txt, the functions the handset builds place
# first (cross/hot/link-gcc). Run it when the code has changed a lot (`make hot-profile`); the
# builds stay correct with any list, an old list only leaves more code resident.
#
# Builds the daemon (the handset's features, symbols kept) four times: for x86_64, musl as the
# flash-size build (nightly, std rebuilt) and as the release build (stable), because the two
# spell generic functions' names differently (v0 and legacy symbol mangling), and glibc linked
# static (stable), for the C library's own functions and std's glibc paths; and the armv7
# release build itself, for what differs there (inlining, glibc's ARM code, the EABI helpers).
# Runs each through cross/hot/scenario.py (start-up and idle; plain HTTP events, retries, the
# spool, status, a reload; HTTPS; the admin server; the shutdown), the x86_64 builds under
# valgrind's callgrind, the armv7 one under qemu-arm (EN_HOT_QEMU), and lists every function
# that ran, phase by phase: a function goes in the first phase that ran it; in a phase, in the
# order of the ordinary build's layout. Names are demangled without crate hashes, as link-gcc
# matches them. The C library's functions are listed too: link-gcc places the archive members
# that define them (phases 1 and 2). What no profile sees ends the list, by hand.
# Needs (installed here if missing, as root): valgrind, openssl, python3, binutils, qemu-user,
# the ARM cross gcc and binutils; the nightly toolchain with rust-src, the
# x86_64-unknown-linux-musl and armv7-unknown-linux-gnueabihf targets.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
sh scripts/ensure-apt.sh valgrind openssl python3 binutils qemu-user gcc-arm-linux-gnueabihf \
    binutils-arm-linux-gnueabihf
triple=x86_64-unknown-linux-musl
for tc in stable nightly; do
    rustup target list --toolchain $tc --installed | grep -qx $triple ||
        rustup target add --toolchain $tc $triple
done
rustup target list --toolchain stable --installed | grep -qx armv7-unknown-linux-gnueabihf ||
    rustup target add --toolchain stable armv7-unknown-linux-gnueabihf
rustup component list --toolchain nightly --installed | grep -q '^rust-src' ||
    rustup component add rust-src --toolchain nightly
dir=${CARGO_TARGET_DIR:-$here/target}/hot-profile
mkdir -p "$dir"

# profile NAME TOOLCHAIN TRIPLE RUSTFLAGS [cargo args]: builds into $dir/NAME, runs the scenario,
# writes $dir/NAME.order: "phase<SPACE>name" for each function that ran, in placement order.
profile() {
    name=$1 toolchain=$2 triple=$3 flags=$4
    shift 4
    echo "profile: $name: building for $triple, symbols kept ($dir/$name)" >&2
    RUSTFLAGS="$flags -Crelocation-model=static" CARGO_PROFILE_RELEASE_STRIP=none \
        CARGO_TARGET_DIR=$dir/$name CC_x86_64_unknown_linux_musl=gcc \
        cargo "$toolchain" build --quiet --release --bin event-notify --no-default-features \
        --features tls --target $triple "$@"
    bin=$dir/$name/$triple/release/event-notify
    out=$dir/$name.callgrind
    case $triple in
    armv7-*)
        # under qemu-user, which logs the code it runs; Thumb functions' symbols have bit 0 set
        echo "profile: $name: the scenario under qemu-arm (half a minute)" >&2
        EN_HOT_QEMU=qemu-arm python3 cross/hot/scenario.py "$bin" "$out"
        nm=arm-linux-gnueabihf-nm
        ;;
    *)
        echo "profile: $name: the scenario under callgrind (about a minute)" >&2
        python3 cross/hot/scenario.py "$bin" "$out"
        nm=nm
        ;;
    esac
    $nm --defined-only -S "$bin" | awk 'NF == 4 && $3 ~ /^[tTwWiI]$/ { print $1, $2, $4 }' |
        python3 -c 'import sys
for l in sys.stdin:
    a, s, n = l.split()
    print("%x" % (int(a, 16) & ~1 if sys.argv[1] == "arm" else int(a, 16)), s, n)' \
            "${triple%%v7-*}" > "$dir/$name.syms"
    python3 cross/hot/ranked.py "$dir/$name.syms" "$out.phases" > "$dir/$name.ranked"
    cut -d' ' -f1 "$dir/$name.ranked" > "$dir/$name.phases"
    cut -d' ' -f2 "$dir/$name.ranked" | c++filt | sed -E 's/\[[0-9a-f]+\]//g; s/::h[0-9a-f]{16}$//' |
        paste -d' ' "$dir/$name.phases" - > "$dir/$name.order"
}

profile small +nightly $triple "-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none" \
    -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size
profile release +stable $triple ""
# glibc, linked static as on armv7: its own start-up and idle (the C library's functions, which
# link-gcc places by archive member, and the Rust code that differs: std's glibc paths)
profile static +stable x86_64-unknown-linux-gnu "-Ctarget-feature=+crt-static -Clink-arg=-fuse-ld=bfd"
# the armv7 release build itself (glibc static, A32 code calling glibc's Thumb-2): what its
# compiler inlines differently, its C library's functions, its helpers
profile armv7 +stable armv7-unknown-linux-gnueabihf "-Ctarget-feature=+crt-static"

list=cross/hot/functions.txt
{
    echo "# cross/hot/functions.txt: made by cross/hot/profile.sh ($(git rev-parse --short HEAD), $(date -u +%Y-%m-%d));"
    echo "# read by cross/hot/link-gcc. One function per line, demangled without crate hashes, in"
    echo "# placement order: phase 1 start-up and idle, 2 plain HTTP events, retries, status and a"
    echo "# reload, 3 HTTPS, 4 the admin server, 5 the shutdown. In each phase: the names of the"
    echo "# nightly build (v0 mangling), then those of the stable musl and glibc builds (legacy mangling)."
    # A stable sort by phase keeps each build's layout order within a phase.
    cat "$dir/small.order" "$dir/release.order" "$dir/static.order" "$dir/armv7.order" |
        sort -s -n -k1,1 |
        awk '{ p = $1; sub(/^[0-9]+ /, ""); if (seen[$0]++) next; if (p != last) { print "# phase " p; last = p }; print }'
    # By hand, what no x86_64 profile under valgrind can see. glibc's start-up sets the vDSO up
    # (valgrind gives the program none), looking its symbols up with strcmp. ARM's run-time
    # helpers: the division and 64-bit helpers (compiler-builtins, libgcc) the armv7 code calls
    # everywhere, the EABI's memory functions, and glibc's ARM variants of memcpy and memchr (one
    # listed brings the others).
    echo "# phase 1"
    echo "# (by hand: glibc's vDSO set-up; ARM's helpers and variants)"
    for f in _dl_new_object _dl_add_to_namespace_list _dl_setup_hash strcmp __strcmp_sse2 \
        __aeabi_uldivmod __aeabi_uidivmod __aeabi_uidiv __udivsi3 __aeabi_idivmod \
        __aeabi_idiv __divsi3 __udivmoddi4 __aeabi_ul2d __aeabi_ul2f __aeabi_llsr __aeabi_llsl \
        __ctzdi2 __aeabi_memcpy __aeabi_memcpy4 __aeabi_memcpy8 __aeabi_memmove \
        __aeabi_memmove4 __aeabi_memmove8 __aeabi_memset __aeabi_memset4 __aeabi_memset8 \
        __aeabi_memclr __aeabi_memclr4 __aeabi_memclr8 __aeabi_read_tp __memcpy_neon \
        __memchr_neon; do
        echo "$f"
    done
} > "$list"
echo "profile: $(grep -vc '^#' "$list") functions in $list" >&2
