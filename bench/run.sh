#!/bin/sh
# bench/run.sh: run the event-notify bench (docs/PERFORMANCE.md).
#
#   bench/run.sh [BENCH OPTIONS]        full bench: release build, ~30 minutes; table on stdout
#                                       and in target/bench.txt, JSON in target/bench.json
#   bench/run.sh --smoke                every measuring path once with tiny counts (make test):
#                                       fails only if a path is broken, never on a figure
#
# First makes sure the peers' tools are there (curl; busybox for wget; libcurl's headers for the
# libcurl C peer, which the bench compiles with gcc; nginx-light as the reference receiver of the
# full bench), with apt-get only for what is missing.
# Env: CARGO (default cargo), BENCH_RUNS (runs to take the median of), BENCH_BIN (an
# event-notify binary to measure instead of the one cargo builds, e.g. an unstripped copy).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cargo=${CARGO:-cargo}
smoke=0
for a in "$@"; do
    [ "$a" = --smoke ] && smoke=1
done

# tool:package pairs; nginx only for the full bench (without it that row is n/a).
need="curl:curl busybox:busybox"
[ $smoke = 1 ] || need="$need nginx:nginx-light"
missing=
for tp in $need; do
    tool=${tp%%:*}
    PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null 2>&1 || missing="$missing ${tp#*:}"
done
# The libcurl peer (bench/curl_peer.c): checked by its header, not by a command.
if ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libcurl; } &&
    ! ls /usr/include/curl/curl.h /usr/include/*/curl/curl.h >/dev/null 2>&1; then
    missing="$missing libcurl4-openssl-dev"
fi
command -v gcc >/dev/null 2>&1 || missing="$missing gcc"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bench: installing:$missing" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt="apt-get -o DPkg::Lock::Timeout=600 -y -q"
        # shellcheck disable=SC2086
        $apt install --no-install-recommends $missing >&2 ||
            { $apt update >&2 && $apt install --no-install-recommends $missing >&2; } ||
            echo "bench: could not install$missing; those peers are reported n/a" >&2
    else
        echo "bench: missing$missing (not root: not installing); those peers are reported n/a" >&2
    fi
fi

cd "$root"
export PATH="$PATH:/usr/sbin:/sbin"
if [ $smoke = 1 ]; then
    # The test profile: reuses what `cargo test` built; figures are meaningless, paths are not.
    exec "$cargo" test --bench bench -- "$@"
fi
# The musl handset build of the memory rows (benches/bench/sizes.rs, HANDSETS) needs its target.
if command -v rustup >/dev/null 2>&1 &&
    ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
    rustup target add x86_64-unknown-linux-musl >&2 ||
        echo "bench: no x86_64-unknown-linux-musl target: the musl memory rows are n/a" >&2
fi
# The flash-size handset build (HANDSETS' musl_small, as cross/small.sh) needs nightly with
# rust-src and the musl target; without them its rows are n/a.
if command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^nightly'; then
    rustup component list --toolchain nightly --installed | grep -q '^rust-src' ||
        rustup component add rust-src --toolchain nightly >&2 || true
    rustup target list --toolchain nightly --installed | grep -qx x86_64-unknown-linux-musl ||
        rustup target add x86_64-unknown-linux-musl --toolchain nightly >&2 || true
fi
tdir=${CARGO_TARGET_DIR:-target}
mkdir -p "$tdir"
# The table goes to stdout and target/bench.txt; keep the bench's exit status.
status=0
rm -f "$tdir/bench.status"
{ "$cargo" bench --bench bench -- "$@" || echo $? >"$tdir/bench.status"; } | tee "$tdir/bench.txt"
if [ -f "$tdir/bench.status" ]; then
    status=$(cat "$tdir/bench.status")
    rm -f "$tdir/bench.status"
fi
exit "$status"
