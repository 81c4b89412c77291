#!/bin/sh
# cross/check-boards.sh BINARY [BOARDS]: every BOARDS/<model>/ (default: the repo's board/) is
# complete and consistent.
#   - board.json and the sample config.json pass `check --board` (as `run --board` reads the
#     board file: known fields, a valid interface name), and board.json's product and
#     hardware_version are what $product and $hardware_version expand to;
#   - the init files name the paths board.json names (socket, config, board file).
# BINARY is a host build of event-notify. Exit 1 with one line per problem.
set -eu
bin=${1:?usage: $0 BINARY [BOARDS]}
repo=$(cd "$(dirname "$0")/.." && pwd)
boards=${2:-$repo/board}
bad=0
problem() {
    echo "check-boards: $*"
    bad=1
}
field() { # board.json's string field
    sed -n "s/^ *\"$2\": *\"\\([^\"]*\\)\".*/\\1/p" "$1"
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo '{"events": {"dnd_on": "127.0.0.1:9/?p=$product&h=$hardware_version"}}' >"$tmp/probe.json"

n=0
for dir in "$boards"/*/; do
    model=$(basename "$dir")
    b=$dir/board.json
    for f in board.json config.json; do
        [ -f "$dir/$f" ] || problem "$model: no $f"
    done
    [ -f "$b" ] || continue
    n=$((n + 1))
    [ "$(field "$b" model)" = "$model" ] || problem "$model: board.json model is not \"$model\""
    # One check of both files; its problem lines name the file (its "ok" and warning lines are
    # left out).
    if "$bin" check --config "$dir/config.json" --board "$b" >"$tmp/check.out" 2>&1; then
        want="GET http://127.0.0.1:9/?p=$(field "$b" product)&h=$(field "$b" hardware_version)"
        if got=$("$bin" expand --board "$b" --config "$tmp/probe.json" dnd_on 2>&1); then
            got=$(echo "$got" | head -n1)
            [ "$got" = "$want" ] || problem "$model: \$product/\$hardware_version expand to \"$got\", not \"$want\""
        else
            problem "$model: expand with board.json failed: $got"
        fi
    else
        problem "$model: $(grep -v -e ': ok: ' -e ': warning: ' "$tmp/check.out" | sed "s|$dir/||")"
    fi
    socket=$(field "$b" socket)
    if [ -f "$dir/event-notify.rc" ]; then # Android init
        rc=$dir/event-notify.rc
        grep -q -- "--socket $socket" "$rc" || problem "$model: event-notify.rc does not use the socket $socket"
        grep -q "mkdir $(dirname "$socket") " "$rc" || problem "$model: event-notify.rc does not create $(dirname "$socket")"
        grep -q "mkdir $(dirname "$(field "$b" config)") " "$rc" || problem "$model: event-notify.rc does not create the config's folder"
        grep -q -- "--board /system/etc/event-notify/board.json" "$rc" || problem "$model: event-notify.rc does not pass --board"
    elif [ -f "$dir/S50event-notify" ]; then # busybox init
        s=$dir/S50event-notify
        grep -qx "SOCKET=$socket" "$s" || problem "$model: S50event-notify does not use the socket $socket"
        grep -qx "CONFIG=$(field "$b" config)" "$s" || problem "$model: S50event-notify does not use the config $(field "$b" config)"
    else
        problem "$model: no init script (event-notify.rc or S50event-notify)"
    fi
done
[ $n -gt 0 ] || problem "no boards"
[ $bad = 0 ] && echo "check-boards: $n boards ok"
exit $bad
