#!/bin/sh
# Creates the wsgate system user and group the service runs as.
# Called by dpkg (preinst install|upgrade) and rpm (%pre 1|2).
set -e

if ! getent group wsgate >/dev/null 2>&1; then
    groupadd --system wsgate
fi
if ! getent passwd wsgate >/dev/null 2>&1; then
    nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/sbin/nologin
    useradd --system --gid wsgate --home-dir /var/lib/wsgate --no-create-home \
        --shell "$nologin" --comment "wsgate WebSocket proxy" wsgate
fi
exit 0
