#!/bin/sh
# Gives wsgate its directories and registers the unit. The service is
# enabled on a first install but not started: point the configuration at
# your backends first, then `systemctl start wsgate`. An upgrade restarts a
# running service. Without systemd as PID 1 (containers, chroots) only the
# directories are set up.
# Called by dpkg (postinst configure [old-version]) and rpm (%post 1|2).
set -e

for d in /var/log/wsgate /var/lib/wsgate /var/cache/wsgate; do
    mkdir -p "$d"
    chown wsgate:wsgate "$d"
    chmod 0750 "$d"
done

case "$1" in
    configure) [ -z "$2" ] && first=1 || first=0 ;;
    1) first=1 ;;
    *) first=0 ;;
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload || true
    if [ "$first" = 1 ]; then
        systemctl enable wsgate.service || true
    else
        systemctl try-restart wsgate.service || true
    fi
fi
exit 0
