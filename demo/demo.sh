#!/bin/sh
# make demo: the daemon, a receiver (`event-notify listen`) and a sample call on loopback.
# Prints what the phone sends, as the receiving server sees it; then the admin server (the
# JSON API, the CTI request and the page) with a fresh random password, kept up while you try
# it when the demo runs at a terminal.
set -eu
BIN=${1:-target/release/event-notify}
DIR=$(mktemp -d /tmp/event-notify-demo.XXXXXX)
SOCK=$DIR/s.sock
LISTEN_PID= DAEMON_PID=
cleanup() {
    [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null || true
    [ -n "$LISTEN_PID" ] && kill "$LISTEN_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

"$BIN" listen --bind 127.0.0.1:8090 >"$DIR/requests.txt" 2>"$DIR/listen.log" &
LISTEN_PID=$!
# The admin server writes its config: use a copy. No default password: make one.
cp demo/config.json "$DIR/config.json"
ADMIN=127.0.0.1:8091
PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$PASSWORD" | "$BIN" passwd --file "$DIR/admin.cred" >/dev/null
EVENT_NOTIFY_LOG=warn "$BIN" run --config "$DIR/config.json" --board demo/board.json --socket "$SOCK" \
    --admin "$ADMIN" --admin-credentials "$DIR/admin.cred" 2>"$DIR/daemon.log" &
DAEMON_PID=$!
i=0; while [ ! -S "$SOCK" ]; do i=$((i+1)); [ $i -gt 100 ] && { cat "$DIR/daemon.log"; exit 1; }; sleep 0.05; done

emit() { printf '  $ event-notify emit %s\n' "$*"; "$BIN" emit --socket "$SOCK" "$@" >/dev/null; }
echo "== the firmware reports (event-notify emit ...):"
emit boot
emit register state=ok active_user=sip:1001@pbx.example active_host=pbx.example
emit call state=incoming call_id=a84b4c76e66710 "remote=\"Bob\" <sip:1002@pbx.example>" "display_remote=Bob & Alice #2" local=1001
emit call state=confirmed call_id=a84b4c76e66710
sleep 1
emit media state=held call_id=a84b4c76e66710
emit media state=active call_id=a84b4c76e66710
sleep 1
emit call state=ended call_id=a84b4c76e66710
emit call state=incoming call_id=77f1 remote=sip:+4930123456@pbx.example "display_remote=Jürgen Müller"
emit call state=ended call_id=77f1
emit dnd state=on
emit dnd state=off

# Wait until everything was delivered.
i=0; while :; do
    pending=$("$BIN" status --socket "$SOCK" | awk '$1=="pending"{print $2}')
    [ "$pending" = 0 ] && break
    i=$((i+1)); [ $i -gt 100 ] && break; sleep 0.05
done
sleep 0.2
echo
echo "== what the server received (event-notify listen --bind 127.0.0.1:8090):"
cat "$DIR/requests.txt"
echo
echo "== event-notify status (counters):"
"$BIN" status --socket "$SOCK" | grep -E '^(messages|events|queued|delivered|retried|failed|dropped|pending) '

echo
echo "== the admin server (docs/ADMIN.md): http://$ADMIN/  user admin  password $PASSWORD"
echo "   (this password was made for the demo by: event-notify passwd --file $DIR/admin.cred)"
if command -v curl >/dev/null; then
    echo "   \$ curl --digest -u admin:**** http://$ADMIN/api/v1/events/incoming_call"
    curl -s --digest -u "admin:$PASSWORD" "http://$ADMIN/api/v1/events/incoming_call"; echo
    echo "   \$ curl --anyauth -u admin:**** 'http://$ADMIN/dummy.htm?settings=save&action_dnd_on_url=127.0.0.1%3A8090%2Fdnd&store_settings=save'"
    curl -s --anyauth -u "admin:$PASSWORD" "http://$ADMIN/dummy.htm?settings=save&action_dnd_on_url=127.0.0.1%3A8090%2Fdnd&store_settings=save"
fi
if [ -t 0 ]; then
    printf '\nThe daemon and its admin server stay up: press Enter to stop. '
    read -r _ || true
fi
