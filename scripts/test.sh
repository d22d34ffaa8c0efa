#!/usr/bin/env bash
# The project's test command (README.md): vet, then every test with -race.
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed: $unformatted" >&2
  exit 1
fi
go vet ./...
go test -race -count=1 -timeout 20m ./...
(cd bench/evloop && go vet ./... && go test -count=1 -timeout 10m ./...)
