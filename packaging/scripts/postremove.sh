#!/bin/sh
# On purge (dpkg) or erase (rpm): removes wsgate's logs, state, cache,
# runtime directory and its system user and group. A plain `dpkg --remove`
# keeps them, and the configuration, as Debian does.
# Called by dpkg (postrm remove|purge|upgrade|...) and rpm (%postun 0|1).
set -e

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload || true
fi

case "$1" in
    purge|0) ;;
    *) exit 0 ;;
esac

rm -rf /var/log/wsgate /var/lib/wsgate /var/cache/wsgate /run/wsgate
rmdir /etc/wsgate 2>/dev/null || true
if getent passwd wsgate >/dev/null 2>&1; then
    userdel wsgate || true
fi
if getent group wsgate >/dev/null 2>&1; then
    groupdel wsgate || true
fi
exit 0
