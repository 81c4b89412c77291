#!/bin/sh
# cross/sizes.sh --show ARCH=BINARY...   print the size of each binary
# cross/sizes.sh --build                 build both ARM targets with and without TLS (release
#                                        profile) and print the size table of docs/FIRMWARE.md (markdown)
# Env: CARGO (cargo), CROSS_TARGET_DIR (target); the no-TLS builds go to CROSS_TARGET_DIR/notls so
# they do not replace the default binaries.
set -eu
cargo=${CARGO:-cargo}
dir=${CROSS_TARGET_DIR:-${CARGO_TARGET_DIR:-target}}

size() { # bytes and KiB
    b=$(wc -c <"$1")
    echo "$b bytes ($(((b + 512) / 1024)) KiB)"
}
triple() {
    case $1 in armhf) echo armv7-unknown-linux-gnueabihf ;; arm64) echo aarch64-unknown-linux-musl ;; esac
}

case ${1:-} in
--show)
    shift
    for a in "$@"; do
        echo "cross: $(triple "${a%%=*}"): ${a#*=}: $(size "${a#*=}")"
    done
    ;;
--build)
    for a in armhf arm64; do
        t=$(triple $a)
        "$cargo" build --quiet --release --target "$t"
        CARGO_TARGET_DIR=$dir/notls "$cargo" build --quiet --release --target "$t" --no-default-features --features import,listen
    done
    echo "| target | with TLS (default features) | without TLS (\`--no-default-features --features import,listen\`) |"
    echo "|---|---|---|"
    for a in armhf arm64; do
        t=$(triple $a)
        echo "| \`$t\` | $(size "$dir/$t/release/event-notify") | $(size "$dir/notls/$t/release/event-notify") |"
    done
    echo
    echo "($(rustc --version), $(git describe --always --dirty 2>/dev/null || echo unknown))"
    ;;
*)
    sed -n '2,6p' "$0" >&2
    exit 2
    ;;
esac
