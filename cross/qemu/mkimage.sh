#!/bin/sh
# cross/qemu/mkimage.sh ARCH BINARY OUTPUT [--shell]
#
# Builds the initramfs (cpio newc, gzip) of the qemu-virt board for ARCH (armhf or arm64):
# busybox-static from cross/cache/ARCH (cross/setup.sh fetches it), the static event-notify
# BINARY, board/qemu-virt (init, inittab, rcS, rcK, S50event-notify, board.json, config.json,
# build.prop) and the end-to-end test (cross/qemu: S10listen, guest-test, expected.txt).
# With --shell the image has no test: it boots to a root shell on the console instead.
# Needs no root: the files are archived as owned by root (cpio -R 0:0) and /dev/console is
# created at boot (devtmpfs).
set -eu
[ $# -ge 3 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
arch=$1 bin=$2 out=$3
shell=0
[ "${4:-}" = --shell ] && shell=1

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${CROSS_CACHE:-$repo/cross/cache}
board=$repo/board/qemu-virt
busybox=$cache/$arch/root/bin/busybox
[ -x "$busybox" ] || { echo "mkimage: no $busybox: run cross/setup.sh" >&2; exit 1; }
[ -x "$bin" ] || { echo "mkimage: no binary $bin" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc/init.d" \
    "$root/etc/event-notify" "$root/system" "$root/dev" "$root/proc" "$root/sys" "$root/run" \
    "$root/tmp" "$root/var/log" "$root/root"
install -m 0755 "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh" # for /init's #!; init installs the other applets
install -m 0755 "$bin" "$root/usr/bin/event-notify"
install -m 0755 "$board/init" "$root/init"
install -m 0755 "$board/rcS" "$board/rcK" "$board/S50event-notify" "$root/etc/init.d/"
install -m 0644 "$board/board.json" "$board/config.json" "$root/etc/event-notify/"
install -m 0644 "$board/build.prop" "$root/system/build.prop"
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
if [ $shell = 1 ]; then
    install -m 0644 "$board/inittab" "$root/etc/inittab"
else
    mkdir -p "$root/usr/lib/event-notify-test"
    install -m 0755 "$here/S10listen" "$root/etc/init.d/"
    install -m 0755 "$here/guest-test" "$root/usr/lib/event-notify-test/run"
    install -m 0644 "$here/expected.txt" "$root/usr/lib/event-notify-test/"
    # The test takes the console's place: no shell waiting for Enter.
    { grep -v askfirst "$board/inittab"; echo "::once:/usr/lib/event-notify-test/run"; } >"$root/etc/inittab"
fi

mkdir -p "$(dirname "$out")"
# Sorted names and a fixed time: the same inputs give the same image.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n >"$out.tmp"
mv "$out.tmp" "$out"
echo "mkimage: $out ($arch, $(wc -c <"$out") bytes)"
