#!/usr/bin/env bash
# CI step for the packages (run as root on Debian): builds the .deb and
# .rpm (scripts/package.sh), inspects the rpm, installs the deb, tests the
# installed configuration, runs the installed binary as the systemd unit
# would (user wsgate, only CAP_NET_BIND_SERVICE, no new privileges) in
# front of a WebSocket echo backend on 127.0.0.1:9000, does a WebSocket
# round trip, a reload and a log reopen, stops it, purges the package and
# checks that nothing is left. Then it builds the container image's static
# binary as packaging/Dockerfile does.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

step() { echo "== $*" >&2; }
fail() {
  echo "ci-package: FAIL: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root: it installs and purges the package"
missing=""
for tool in rpm:rpm dpkg:dpkg setpriv:util-linux curl:curl logrotate:logrotate; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=" ${tool#*:}"
done
if [ -n "$missing" ]; then
  step "apt-get install$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
if dpkg -s wsgate >/dev/null 2>&1; then
  step "purging a wsgate package left by an earlier run"
  dpkg --purge wsgate >/dev/null
fi

pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT

step "building the packages"
rm -f dist/*.deb dist/*.rpm
bash scripts/package.sh >/dev/null
deb=$(ls dist/wsgate_*.deb)
rpm=$(ls dist/wsgate-*.rpm)
ldd dist/build/wsgate >/dev/null 2>&1 && fail "the packaged binary is not static"

step "inspecting $rpm"
rpm -qip "$rpm"
files=$(rpm -qlp "$rpm")
for f in /usr/sbin/wsgate /etc/wsgate/wsgate.conf /usr/lib/systemd/system/wsgate.service \
  /usr/lib/systemd/system/wsgate.socket \
  /etc/logrotate.d/wsgate /usr/share/man/man8/wsgate.8.gz \
  /usr/share/bash-completion/completions/wsgate /usr/share/licenses/wsgate/LICENSE \
  /usr/share/doc/wsgate/CHANGELOG.md /var/log/wsgate; do
  grep -qx "$f" <<<"$files" || fail "$rpm lacks $f"
done
rpm -qcp "$rpm" | grep -qx /etc/wsgate/wsgate.conf || fail "wsgate.conf is not a config file in the rpm"
rpm -qp --scripts "$rpm" | grep -q "useradd --system" || fail "the rpm does not create the wsgate user"

step "installing $deb"
dpkg -i "$deb" >/dev/null
getent passwd wsgate >/dev/null || fail "no wsgate user after install"
[ "$(stat -c '%U:%G %a' /var/log/wsgate)" = "wsgate:wsgate 750" ] || fail "/var/log/wsgate: $(stat -c '%U:%G %a' /var/log/wsgate)"
dpkg-query -W -f='${Conffiles}\n' wsgate | grep -q /etc/wsgate/wsgate.conf || fail "wsgate.conf is not a conffile"
zcat /usr/share/man/man8/wsgate.8.gz | grep -q '^\.TH WSGATE 8' || fail "man page"
zcat /usr/share/man/man8/wsgate.8.gz | grep -q 'proxy' || fail "the man page lacks the proxy command"
bash -c 'source /usr/share/bash-completion/completions/wsgate && complete -p wsgate' >/dev/null || fail "bash completion"
if command -v systemd-analyze >/dev/null 2>&1; then
  systemd-analyze verify --man=no /usr/lib/systemd/system/wsgate.service /usr/lib/systemd/system/wsgate.socket ||
    fail "systemd-analyze verify"
fi
step "reinstalling over itself (an upgrade): the user and a local edit stay"
echo "# local edit" >>/etc/wsgate/wsgate.conf
dpkg -i "$deb" >/dev/null
getent passwd wsgate >/dev/null || fail "no wsgate user after an upgrade"
tail -n1 /etc/wsgate/wsgate.conf | grep -qx "# local edit" || fail "an upgrade replaced the edited configuration"
/usr/sbin/wsgate -V

step "testing the installed configuration"
/usr/sbin/wsgate -t -c /etc/wsgate/wsgate.conf
[ -z "$(ls -A /var/log/wsgate)" ] || fail "-t as root left files in /var/log/wsgate: $(ls -A /var/log/wsgate)"
runuser -u wsgate -- /usr/sbin/wsgate -t -q -c /etc/wsgate/wsgate.conf

step "starting a WebSocket echo backend on 127.0.0.1:9000"
go build -o dist/build/wscheck ./packaging/wscheck
dist/build/wscheck echo 127.0.0.1:9000 &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/9000) 2>/dev/null && break
  sleep 0.1
done

step "running the installed wsgate as the unit does"
# What systemd's RuntimeDirectory= would create.
install -d -o wsgate -g wsgate -m 0755 /run/wsgate
setpriv --reuid=wsgate --regid=wsgate --init-groups --no-new-privs \
  --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service \
  /usr/sbin/wsgate -c /etc/wsgate/wsgate.conf &
gate=$!
pids+=($gate)
for _ in $(seq 150); do
  [ "$(cat /run/wsgate/wsgate.pid 2>/dev/null)" = "$gate" ] && break
  kill -0 "$gate" 2>/dev/null || fail "wsgate exited: $(cat /var/log/wsgate/error.log 2>/dev/null)"
  sleep 0.1
done
[ "$(cat /run/wsgate/wsgate.pid 2>/dev/null)" = "$gate" ] || fail "no pid file after 15s"
uid=$(awk '/^Uid:/ {print $3}' "/proc/$gate/status")
[ "$uid" = "$(id -u wsgate)" ] || fail "wsgate runs as uid $uid"

dist/build/wscheck roundtrip ws://127.0.0.1:80/chat "hello through the package"
[ "$(curl -s http://127.0.0.1/health)" = "healthy" ] || fail "/health"
for _ in $(seq 100); do
  grep -q 'GET /chat' /var/log/wsgate/access.log 2>/dev/null && break
  sleep 0.1
done
grep -q 'GET /chat' /var/log/wsgate/access.log || fail "no access log line"
[ "$(stat -c %U /var/log/wsgate/access.log)" = wsgate ] || fail "the access log is not owned by wsgate"

step "reload (ExecReload) and log rotation (logrotate, wsgate -s reopen)"
runuser -u wsgate -- /usr/sbin/wsgate -s reload -c /etc/wsgate/wsgate.conf
for _ in $(seq 100); do
  grep -q 'reconfiguring done' /var/log/wsgate/error.log && break
  sleep 0.1
done
grep -q 'reconfiguring done' /var/log/wsgate/error.log || fail "reload: $(cat /var/log/wsgate/error.log)"
logrotate -f -s dist/build/logrotate.state /etc/logrotate.d/wsgate
[ -e /var/log/wsgate/access.log.1 ] || fail "logrotate did not rotate: $(ls /var/log/wsgate)"
for _ in $(seq 100); do
  [ -e /var/log/wsgate/access.log ] && break
  sleep 0.1
done
dist/build/wscheck roundtrip ws://127.0.0.1:80/after-reopen "after reload and reopen"
for _ in $(seq 100); do
  grep -q 'GET /after-reopen' /var/log/wsgate/access.log 2>/dev/null && break
  sleep 0.1
done
grep -q 'GET /after-reopen' /var/log/wsgate/access.log || fail "no line in the reopened access log"

step "stopping wsgate (QUIT)"
kill -QUIT "$gate"
for _ in $(seq 100); do
  kill -0 "$gate" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$gate" 2>/dev/null && fail "wsgate still running 10s after QUIT"
[ -e /run/wsgate/wsgate.pid ] && fail "the pid file is left after a stop"

step "purging the package while wsgate runs (prerm stops it through the pid file)"
setpriv --reuid=wsgate --regid=wsgate --init-groups --no-new-privs \
  --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service \
  /usr/sbin/wsgate -c /etc/wsgate/wsgate.conf &
gate=$!
pids+=($gate)
for _ in $(seq 150); do
  [ "$(cat /run/wsgate/wsgate.pid 2>/dev/null)" = "$gate" ] && break
  sleep 0.1
done
[ "$(cat /run/wsgate/wsgate.pid 2>/dev/null)" = "$gate" ] || fail "second start: no pid file"
dpkg --purge wsgate >/dev/null
wait "$gate" || true
kill -0 "$gate" 2>/dev/null && fail "wsgate still runs after the purge"
getent passwd wsgate >/dev/null && fail "the wsgate user is left"
getent group wsgate >/dev/null && fail "the wsgate group is left"
for p in /usr/sbin/wsgate /etc/wsgate /var/log/wsgate /var/lib/wsgate /var/cache/wsgate /run/wsgate \
  /usr/lib/systemd/system/wsgate.service /usr/lib/systemd/system/wsgate.socket /etc/logrotate.d/wsgate \
  /usr/share/man/man8/wsgate.8.gz /usr/share/bash-completion/completions/wsgate /usr/share/doc/wsgate; do
  [ -e "$p" ] && fail "$p is left after purge"
done

step "the container image's static build (packaging/Dockerfile)"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o dist/build/wsgate-static ./cmd/wsgate
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o dist/build/wscheck-static ./packaging/wscheck
ldd dist/build/wsgate-static >/dev/null 2>&1 && fail "the container binary is not static"
ldd dist/build/wscheck-static >/dev/null 2>&1 && fail "the echo backend binary is not static"
dist/build/wsgate-static -t -q -c packaging/container.conf
sed 's/server backend:9000;/server 127.0.0.1:9000;/' packaging/compose.wsgate.conf >dist/build/compose.wsgate.conf
dist/build/wsgate-static -t -q -c dist/build/compose.wsgate.conf

echo "ci-package: ok in $(($(date +%s) - started))s" >&2
