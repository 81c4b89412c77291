#!/bin/sh
# scripts/test-lanes.sh: `make test`'s two lanes, run at once (the top-level Makefile calls it
# after `make setup`; see docs/ARCHITECTURE.md, "make test").
#
#   test-lanes.sh ARM_TARGET_DIR ARM_LOG "ARM GOALS" "HOST GOALS"
#
# The ARM lane (cross builds and runs under QEMU) runs in the background in a target directory
# of its own: cargo locks a target directory for the length of a build, so the two lanes could
# not compile at once in one. Its output goes to ARM_LOG and is shown when both lanes are done.
# The host lane runs in the foreground, its output as it comes; EN_ARMV7_TARGET_DIR points the
# host tests' armv7 library build (tests/c/support.rs) at the ARM lane's directory, so that
# library is compiled once. Each lane runs its goals in order and stops at its first failure;
# either lane failing fails the whole, naming the lane and the goal. Ctrl-C stops both.
#
# Why: on 2 cores, one lane's test runs, QEMU boots and single-threaded links leave a core idle
# that the other lane's compilation takes.
# Env: MAKE (default make).
set -u
make=${MAKE:-make}
t0=${TEST_LANES_T0:-$(date +%s)}

# lane NAME GOALS...: each goal in order with its timing; the first failure ends the lane.
lane() {
    name=$1
    shift
    for goal in "$@"; do
        start=$(date +%s)
        echo "make test: $name lane: $goal (at +$((start - t0)) s)"
        # shellcheck disable=SC2086
        if ! $make --no-print-directory ${LANE_MAKE_ARGS:-} "$goal"; then
            echo "make test: $name lane: $goal FAILED after $(($(date +%s) - start)) s"
            return 1
        fi
        echo "make test: $name lane: $goal passed in $(($(date +%s) - start)) s"
    done
}

# The background lane: this script again, in a process group of its own.
if [ "${1:-}" = --lane ]; then
    shift
    lane "$@"
    exit
fi

[ $# = 4 ] || { echo "usage: $0 ARM_TARGET_DIR ARM_LOG 'ARM GOALS' 'HOST GOALS'" >&2; exit 2; }
arm_dir=$1
arm_log=$2
arm_goals=$3
host_goals=$4

mkdir -p "$(dirname "$arm_log")"
echo "make test: ARM lane ($arm_goals) in the background, target directory $arm_dir;" \
    "its output is in $arm_log and follows the host lane's"
# setsid: the ARM lane gets a process group of its own, which an interrupt stops as a whole.
# Its target directory as a make variable on the command line (exported to cargo), so that it
# wins over a CARGO_TARGET_DIR given to the top-level make.
# shellcheck disable=SC2086
LANE_MAKE_ARGS="CARGO_TARGET_DIR=$arm_dir" TEST_LANES_T0=$t0 MAKE=$make \
    setsid -w sh "$0" --lane ARM $arm_goals </dev/null >"$arm_log" 2>&1 &
arm_pid=$!
trap 'kill -TERM -$arm_pid 2>/dev/null || kill -TERM $arm_pid 2>/dev/null; exit 130' INT TERM HUP

host=0
# shellcheck disable=SC2086
EN_ARMV7_TARGET_DIR=$arm_dir lane host $host_goals || host=1
host_s=$(($(date +%s) - t0))
[ $host = 0 ] || echo "make test: the host lane failed; waiting for the ARM lane to finish"
arm=0
wait $arm_pid || arm=1
arm_s=$(($(date +%s) - t0))
trap - INT TERM HUP

echo "==================== make test: ARM lane output ($arm_log) ===================="
cat "$arm_log"
echo "==================== end of the ARM lane output ===================="
summary() { # name status seconds goals
    if [ "$2" = 0 ]; then
        echo "make test: $1 lane ($4): passed, ended at +$3 s"
    else
        echo "make test: $1 lane ($4): FAILED (see the lane's output above), ended at +$3 s"
    fi
}
summary host $host $host_s "$host_goals"
summary ARM $arm $arm_s "$arm_goals"
[ $host = 0 ] && [ $arm = 0 ]
