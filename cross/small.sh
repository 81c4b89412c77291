#!/bin/sh
# cross/small.sh TRIPLE [tls|notls]: the flash-size build of event-notify for TRIPLE.
#
# The release profile already optimises for size (opt-level z, LTO, panic=abort, strip). This
# goes one step further, as firmware builds for small flash do: the standard library is rebuilt
# with the same settings (nightly cargo's -Z build-std) and panics abort on the spot
# (-C panic=immediate-abort: no unwinding tables, no panic message formatting; with it,
# -Z location-detail=none drops the source locations no message would show, and std is built
# with its optimize_for_size feature, which picks its smaller algorithms). Behaviour is the
# same; a panic (there is none on any input, by design) would end the process without a message.
# On armv7 the code is Thumb-2 (-C target-feature=+thumb-mode; every ARMv7-A core runs it, and
# Debian's armhf glibc is Thumb-2 too): ~200 KB smaller than the default ARM (A32) code.
# Features: a handset's firmware build (docs/FIRMWARE.md, "What each build contains"): the
# daemon and the admin server, without the PC-side tools (`import`, `listen`); with `tls`, HTTPS.
#
# Needs the nightly toolchain with its rust-src component (installed here if missing). Made for
# the primary target, armv7-unknown-linux-gnueabihf (static glibc); a musl target would need the
# nightly's own rust-std for that target (its self-contained crt objects), which this machine's
# rustup cannot fetch.
# Output: target/small/<tls|notls>/TRIPLE/release/event-notify; prints "SIZE PATH".
set -eu
triple=${1:?usage: small.sh TRIPLE [tls|notls]}
tls=${2:-notls}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
rustup toolchain list | grep -q '^nightly' || { echo "small.sh: no nightly toolchain" >&2; exit 1; }
rustup component list --toolchain nightly --installed | grep -q '^rust-src' ||
    rustup component add rust-src --toolchain nightly >&2
features=--no-default-features
[ "$tls" = tls ] && features="--no-default-features --features tls"
flags="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none"
case $triple in
armv7-unknown-linux-gnueabihf) flags="$flags -C target-feature=+crt-static,+thumb-mode" ;;
esac
dir=${CARGO_TARGET_DIR:-$here/target}/small/$tls
# shellcheck disable=SC2086
RUSTFLAGS="$flags" CARGO_TARGET_DIR=$dir cargo +nightly build --quiet --release --bin event-notify \
    $features --target "$triple" -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size >&2
bin=$dir/$triple/release/event-notify
echo "$(stat -c %s "$bin") $bin"
