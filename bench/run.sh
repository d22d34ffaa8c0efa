#!/usr/bin/env bash
# Runs wsgate's benchmark harness and regenerates docs/benchmarks.md and
# docs/benchmarks.png. Flags go to the runner: --smoke, --rounds N,
# --targets direct,nginx,haproxy,wsgate, --tls (also wss), --storm (reconnect
# storm), --paced (latency at a paced rate), --two-cores (unpinned, two
# workers), --h2 and --h3 (WebSockets over HTTP/2 and HTTP/3), --syscalls
# (strace counts per operation), --profiles (CPU profiles of wsgate), --all,
# --modes LIST, --duration D, --out PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/cmd/runner "$@"
