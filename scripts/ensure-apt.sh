#!/bin/sh
# ensure-apt.sh PKG...: installs the Debian packages that are missing, and nothing else.
# Waits for another apt/dpkg that holds the lock (up to APT_LOCK_WAIT seconds, default 1800).
set -eu
missing=
for p in "$@"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "ensure-apt: installing$missing"
sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
wait=${APT_LOCK_WAIT:-1800}
$sudo apt-get -o DPkg::Lock::Timeout="$wait" update -q
$sudo apt-get -o DPkg::Lock::Timeout="$wait" install -y -q --no-install-recommends $missing
