#!/bin/sh
# Stops wsgate before its files go: through systemd when it is PID 1,
# otherwise through the pid file (QUIT: WebSockets get close 1001).
# Called by dpkg (prerm remove|upgrade|...) and rpm (%preun 0|1).
set -e

case "$1" in
    remove|0) ;;
    *) exit 0 ;;
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now wsgate.socket wsgate.service || true
elif [ -s /run/wsgate/wsgate.pid ]; then
    pid=$(cat /run/wsgate/wsgate.pid)
    if kill -QUIT "$pid" 2>/dev/null; then
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -TERM "$pid" 2>/dev/null || true
    fi
fi
exit 0
