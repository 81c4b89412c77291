#!/bin/sh
# cross/setup.sh: prepare a Debian 12 machine (or a CI runner) to build event-notify for ARM,
# run its tests under qemu-user and boot the QEMU ARM images.
#
# Idempotent: every step checks first and only installs or fetches what is missing, so running
# it again is quick and changes nothing.
#
#   1. host packages: cross linkers, qemu-user, qemu-system-arm, cpio   (apt-get, needs root)
#   2. rustup targets armv7-unknown-linux-gnueabihf, aarch64-unknown-linux-musl
#   3. guest parts, as Debian packages for armhf and arm64, into cross/cache/<arch>/:
#      the kernel (through the meta-package linux-image-armmp / linux-image-cloud-arm64, because
#      the versioned package names change with every kernel update) and busybox-static.
#      They come from a private apt state (cross/cache/apt) that knows the foreign architectures,
#      so the machine's dpkg is never told about armhf/arm64 (no `dpkg --add-architecture`).
#
# Options:  --no-install   skip step 1 (report what is missing instead)
#           --refresh      fetch the guest packages again even if cross/cache has them
# Env:      CROSS_CACHE    where the guest parts go (default: cross/cache next to this script)
#           APT_LOCK_WAIT  seconds to wait for another apt/dpkg holding the lock (default 1800)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cache=${CROSS_CACHE:-$here/cache}
lock_wait=${APT_LOCK_WAIT:-1800}
install=1
refresh=0
for arg in "$@"; do
    case $arg in
    --no-install) install=0 ;;
    --refresh) refresh=1 ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

say() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

# --- 1. host packages -------------------------------------------------------------------------
# Each cross compiler with its C library headers: ring's C code is compiled for the target, and
# without the headers it fails deep inside its build script (bits/libc-header-start.h).
host_pkgs="gcc-arm-linux-gnueabihf libc6-dev-armhf-cross gcc-aarch64-linux-gnu libc6-dev-arm64-cross
qemu-user qemu-system-arm cpio"

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=
for p in $host_pkgs; do
    installed "$p" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    say "host packages present"
elif [ $install = 0 ]; then
    die "missing host packages:$missing (run without --no-install, as root)"
else
    [ "$(id -u)" = 0 ] || die "missing host packages:$missing; run as root to install them"
    say "installing:$missing"
    # DPkg::Lock::Timeout makes apt wait for another apt/dpkg instead of failing at once.
    export DEBIAN_FRONTEND=noninteractive
    apt_host="apt-get -o DPkg::Lock::Timeout=$lock_wait"
    # The lists may be absent (fresh container) or stale; refresh them once, then install.
    # DPkg::Lock::Timeout covers dpkg's lock, not the lists lock of update: wait for that here.
    waited=0
    until out=$($apt_host update -qq 2>&1); do
        case $out in
        *"Could not get lock"* | *"Unable to lock"*)
            [ $waited -lt "$lock_wait" ] || die "apt is still locked after ${lock_wait}s"
            [ $waited = 0 ] && say "waiting for another apt to finish"
            sleep 5
            waited=$((waited + 5))
            ;;
        *)
            echo "$out" >&2
            say "warning: apt-get update failed; installing from the lists there are"
            break
            ;;
        esac
    done
    # shellcheck disable=SC2086
    $apt_host install -y -q --no-install-recommends $missing
fi

# --- 1b. each cross compiler finds its C library --------------------------------------------
# A missing sysroot shows up in seconds here, naming the package, instead of minutes later inside
# a crate's build script. Runs also with --no-install (make cross-ready), so every ARM target
# that builds checks it first.
# compiler  the package that holds its C library headers
cross_ccs() {
    echo "arm-linux-gnueabihf-gcc libc6-dev-armhf-cross"
    echo "aarch64-linux-gnu-gcc libc6-dev-arm64-cross"
}
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stdint.h>\n#include <stdio.h>\nint main(void) { uint8_t x = 0; return x; }\n' >"$probe/probe.c"
cross_ccs | while read -r cc pkg; do
    command -v "$cc" >/dev/null 2>&1 || die "$cc not found: install $(echo "$cc" | sed 's/^/gcc-/; s/-gcc$//') (cross/setup.sh as root)"
    if ! "$cc" -c "$probe/probe.c" -o "$probe/probe.o" 2>"$probe/err"; then
        sed 's/^/    /' "$probe/err" >&2
        die "$cc cannot compile '#include <stdint.h>': its C library headers are missing; install $pkg"
    fi
done
say "cross compilers find their C headers"

# --- 2. rust targets --------------------------------------------------------------------------
targets="armv7-unknown-linux-gnueabihf aarch64-unknown-linux-musl"
if command -v rustup >/dev/null 2>&1; then
    have=$(rustup target list --installed)
    for t in $targets; do
        if echo "$have" | grep -qx "$t"; then
            :
        else
            say "rustup target add $t"
            rustup target add "$t"
        fi
    done
    say "rust targets present"
else
    for t in $targets; do
        [ -d "$(rustc --print sysroot)/lib/rustlib/$t" ] || die "no rustup and no std for $t"
    done
fi

# --- 3. guest kernel and busybox --------------------------------------------------------------
# arch  kernel meta-package         busybox
guest_parts() {
    echo "armhf linux-image-armmp"
    echo "arm64 linux-image-cloud-arm64"
}

complete() { # arch: the extracted parts we need are there
    [ -s "$cache/$1/vmlinuz" ] && [ -x "$cache/$1/root/bin/busybox" ] && [ -s "$cache/$1/VERSIONS" ]
}

need=
for a in armhf arm64; do
    if [ $refresh = 1 ] || ! complete $a; then need="$need $a"; fi
done
if [ -z "$need" ]; then
    say "guest kernels and busybox present in $cache ($(cat "$cache/armhf/VERSIONS" "$cache/arm64/VERSIONS" | tr '\n' ' '))"
    exit 0
fi

# The private apt state: its own lists, cache and (empty) dpkg status, the machine's sources.
state=$cache/apt
mkdir -p "$state/lists/partial" "$state/archives/partial"
: >"$state/status"
apt_priv() {
    apt-get -q \
        -o Dir::State="$state" -o Dir::State::Lists="$state/lists" \
        -o Dir::State::status="$state/status" -o Dir::Cache="$state" \
        -o Dir::Cache::archives="$state/archives" \
        -o APT::Architecture=armhf -o APT::Architectures=armhf,arm64 \
        -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false -o Acquire::Languages=none "$@"
}
apt_cache_priv() {
    apt-cache \
        -o Dir::State="$state" -o Dir::State::Lists="$state/lists" \
        -o Dir::State::status="$state/status" -o Dir::Cache="$state" \
        -o APT::Architecture=armhf -o APT::Architectures=armhf,arm64 "$@"
}
say "apt-get update (private state $state, architectures armhf arm64)"
# A mirror in the middle of a sync fails an index now and then: try again, then go on with what
# was fetched (resolving the packages below fails clearly if that is not enough).
tries=0
until apt_priv update >"$state/update.log" 2>&1; do
    tries=$((tries + 1))
    if [ $tries -ge 3 ]; then
        grep '^[EW]:' "$state/update.log" >&2 || true
        say "warning: apt-get update incomplete, continuing with the indexes it fetched"
        break
    fi
    sleep $((tries * 5))
done

# First Depends alternative's package name of a meta-package: `linux-image-6.1.0-37-armmp (= 6.1.140-1)`.
resolve_meta() { # pkg:arch -> the versioned package it depends on
    dep=$(apt_cache_priv show --no-all-versions "$1" 2>/dev/null | sed -n 's/^Depends: //p' | head -n1)
    [ -n "$dep" ] || die "cannot resolve $1 (no such package in the configured sources?)"
    echo "$dep" | sed 's/[,|].*//; s/ *(.*//; s/ //g'
}

for a in $need; do
    meta=$(guest_parts | awk -v a=$a '$1 == a { print $2 }')
    kpkg=$(resolve_meta "$meta:$a")
    say "$a: $meta -> $kpkg"
    dl=$cache/$a/deb
    rm -rf "$cache/$a"
    mkdir -p "$dl"
    (cd "$dl" && apt_priv download "$kpkg:$a" "busybox-static:$a") >"$cache/$a.download.log" 2>&1 ||
        { cat "$cache/$a.download.log" >&2; die "apt-get download failed for $a"; }
    for deb in "$dl"/*.deb; do
        dpkg-deb -x "$deb" "$cache/$a/root"
    done
    # Link the kernel to a fixed name; the image script and run script only know vmlinuz.
    kernel=$(ls "$cache/$a/root/boot/"vmlinuz-* | head -n1)
    [ -s "$kernel" ] || die "$a: no kernel in $kpkg"
    ln -sf "root/boot/$(basename "$kernel")" "$cache/$a/vmlinuz"
    [ -x "$cache/$a/root/bin/busybox" ] || die "$a: no busybox in busybox-static"
    for deb in "$dl"/*.deb; do
        dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb"
    done >"$cache/$a/VERSIONS"
    # The guest boots from an initramfs with a serial console: no modules, no device trees (QEMU
    # -M virt makes its own), no docs.
    rm -rf "$cache/$a/root/lib" "$cache/$a/root/usr"
    rm -rf "$dl" "$cache/$a.download.log"
    say "$a: $(tr '\n' ' ' <"$cache/$a/VERSIONS")"
done
say "done"
