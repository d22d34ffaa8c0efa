#!/usr/bin/env bash
# Builds wsgate's Linux packages: dist/wsgate_<version>-1_<arch>.deb and
# dist/wsgate-<version>-1.<arch>.rpm, from packaging/nfpm.yaml. The binary
# is static (CGO_ENABLED=0) and carries its commit for `wsgate -V`; the man
# page and bash completion are rendered by the binary itself from its
# option tables. nfpm runs through the Go module proxy at a pinned version;
# it is not a dependency of the module.
#
# Environment: GOARCH (default: the host's), NFPM_VERSION.
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM_VERSION=${NFPM_VERSION:-v2.48.0}
export GOARCH=${GOARCH:-$(go env GOARCH)}
WSGATE_BUILD=dist/build  # packaging/nfpm.yaml names this folder
rm -rf "$WSGATE_BUILD"
mkdir -p "$WSGATE_BUILD"

# The toolchain stamps the commit itself in a clone; the -X values cover
# trees it cannot stamp (a git worktree) and are ignored otherwise.
ldflags="-s -w"
if rev=$(git rev-parse HEAD 2>/dev/null); then
  ldflags+=" -X main.buildCommit=$rev -X main.buildTime=$(git show -s --format=%cI HEAD)"
  if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
    ldflags+=" -X main.buildModified=true"
  fi
fi
echo "building wsgate for linux/$GOARCH" >&2
build() {
  CGO_ENABLED=0 GOOS=linux go build -trimpath "$1" -ldflags "$ldflags" -o "$WSGATE_BUILD/wsgate" ./cmd/wsgate
}
# A git the toolchain cannot query (e.g. a checkout owned by another user)
# fails the stamp, not the package: the -X values still carry the commit.
build -buildvcs=auto || build -buildvcs=false

# The generators run on the build host: build a native copy when cross-compiling.
gen="$WSGATE_BUILD/wsgate"
if [ "$GOARCH" != "$(go env GOHOSTARCH)" ]; then
  gen="$WSGATE_BUILD/wsgate-host"
  CGO_ENABLED=0 GOARCH=$(go env GOHOSTARCH) go build -o "$gen" ./cmd/wsgate
fi
"$gen" --man | gzip -9n > "$WSGATE_BUILD/wsgate.8.gz"
"$gen" --completion bash > "$WSGATE_BUILD/wsgate.bash"
export WSGATE_VERSION=$("$gen" --version | sed -n 's|^wsgate version: wsgate/||p')
[ -n "$WSGATE_VERSION" ] || { echo "could not read the version" >&2; exit 1; }

nfpm() { go run "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION" "$@"; }
for p in deb rpm; do
  nfpm package --config packaging/nfpm.yaml --packager "$p" --target dist/ >&2
done
ls -1 dist/*.deb dist/*.rpm
