#!/usr/bin/env bash
# Builds the Go-based peers and builders from the Go module proxy, once per machine.
# Results are cached in $SLIPWAY_TOOLS/bin (default /opt/slipway-tools/bin); a tool that
# fails to build is recorded in $SLIPWAY_TOOLS/status so tests can skip it loudly.
# Usage: install-go-tools.sh [tool...]   tools: crane regctl buildkit buildx distribution ggcr-registry pulumi
set -uo pipefail
TOOLS_DIR=${SLIPWAY_TOOLS:-/opt/slipway-tools}
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$TOOLS_DIR/bin" "$TOOLS_DIR/logs"
export GOBIN="$TOOLS_DIR/bin" GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
export PATH="/usr/local/go/bin:$PATH"

CRANE_VERSION=v0.22.1
REGCLIENT_VERSION=v0.11.7
BUILDKIT_VERSION=v0.34.2
BUILDX_VERSION=v0.38.2
DISTRIBUTION_VERSION=v3.0.0
PULUMI_VERSION=v3.259.0
# the commit of tag pkg/v3.259.0 as a pseudo-version: the module proxy serves it only under this name
PULUMI_NODEJS_VERSION=v3.0.0-20260820084410-a05d88f24d05

status() { # tool ok|failed
  grep -v "^$1 " "$TOOLS_DIR/status" 2>/dev/null > "$TOOLS_DIR/status.tmp" || true
  echo "$1 $2" >> "$TOOLS_DIR/status.tmp"; mv "$TOOLS_DIR/status.tmp" "$TOOLS_DIR/status"
}

build_failed() { # name [scratch-dir] : report a build that failed, record it, clean up
  echo "install-go-tools: $1 failed to build, see $TOOLS_DIR/logs/$1.log" >&2
  tail -5 "$TOOLS_DIR/logs/$1.log" >&2
  status "$1" failed
  if [ -n "${2:-}" ]; then rm -rf "$2"; fi
  return 1
}

build() { # name marker-binary go-install-args...
  local name=$1 marker=$2; shift 2
  if [ -x "$TOOLS_DIR/bin/$marker" ]; then status "$name" ok; return 0; fi
  if ! command -v go >/dev/null; then echo "install-go-tools: go not found, skipping $name" >&2; status "$name" failed; return 1; fi
  echo "install-go-tools: building $name" >&2
  if nice go install -trimpath -ldflags '-s -w' "$@" > "$TOOLS_DIR/logs/$name.log" 2>&1; then
    status "$name" ok
  else
    build_failed "$name"; return 1
  fi
}

build_as() { # name output-binary package@version : `go install` under another binary name
  local name=$1 out=$2 pkg=$3
  if [ -x "$TOOLS_DIR/bin/$out" ]; then status "$name" ok; return 0; fi
  if ! command -v go >/dev/null; then echo "install-go-tools: go not found, skipping $name" >&2; status "$name" failed; return 1; fi
  local g; g=$(mktemp -d)
  echo "install-go-tools: building $name" >&2
  if GOBIN="$g" nice go install -trimpath -ldflags '-s -w' "$pkg" > "$TOOLS_DIR/logs/$name.log" 2>&1 &&
     mv "$g/$(basename "${pkg%@*}")" "$TOOLS_DIR/bin/$out"; then
    status "$name" ok
  else
    build_failed "$name" "$g"; return 1
  fi
  rm -rf "$g"
}

build_wrapped() { # name marker module@version package... : for modules whose go.mod has replace/exclude
  local name=$1 marker=$2 modver=$3; shift 3
  if [ -x "$TOOLS_DIR/bin/$marker" ]; then status "$name" ok; return 0; fi
  # `go install pkg@version` refuses modules whose go.mod carries replace or exclude directives
  # (buildkit, buildx); a throwaway main module that requires them builds the same packages.
  local w; w=$(mktemp -d)
  printf 'module slipway.local/wrap%s\n\ngo 1.25\n' "$name" > "$w/go.mod"
  echo "install-go-tools: building $name (wrapper module)" >&2
  if ( cd "$w" && go get "$modver" && for pkg in "$@"; do nice go build -trimpath -ldflags '-s -w' -o "$TOOLS_DIR/bin/$(basename "$pkg")" "$pkg" || exit 1; done ) > "$TOOLS_DIR/logs/$name.log" 2>&1; then
    status "$name" ok
  else
    build_failed "$name" "$w"; return 1
  fi
  rm -rf "$w"
}

build_local() { # name dir-under-scripts module@version : a main package of this repository, built against module@version
  local name=$1 src=$2 modver=$3
  # Rebuilt when its source or the module version changes (the sources live in this repository).
  local stamp; stamp="$(cat "$REPO/scripts/$src/"*.go | sha256sum | cut -c1-64) $modver"
  if [ -x "$TOOLS_DIR/bin/$name" ] && [ "$(cat "$TOOLS_DIR/bin/$name.stamp" 2>/dev/null)" = "$stamp" ]; then status "$name" ok; return 0; fi
  if ! command -v go >/dev/null; then echo "install-go-tools: go not found, skipping $name" >&2; status "$name" failed; return 1; fi
  local w; w=$(mktemp -d)
  cp "$REPO/scripts/$src/"*.go "$w/"
  printf 'module slipway.local/%s\n\ngo 1.25\n' "$name" > "$w/go.mod"
  echo "install-go-tools: building $name" >&2
  if ( cd "$w" && go get "$modver" && nice go build -trimpath -ldflags '-s -w' -o "$TOOLS_DIR/bin/$name" . ) > "$TOOLS_DIR/logs/$name.log" 2>&1; then
    echo "$stamp" > "$TOOLS_DIR/bin/$name.stamp"
    status "$name" ok
  else
    build_failed "$name" "$w"; return 1
  fi
  rm -rf "$w"
}

build_pulumi() {
  # pulumi's pkg go.mod carries replace directives, so `go install pkg@version` refuses it;
  # a throwaway wrapper module reproduces the one non-local replace upstream builds with.
  # The CLI and the nodejs language host are built and recorded separately: the host is its own
  # module, which the module proxy reachable here refuses (403) at every version tried; see the fallback below.
  local w; w=$(mktemp -d)
  cat > "$w/go.mod" <<MOD
module slipway.local/pulumiwrapper

go 1.25

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
  local flags=(-trimpath -tags osusergo,grpcnotrace -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION")
  if [ -x "$TOOLS_DIR/bin/pulumi" ]; then status pulumi ok
  elif ( cd "$w" && go get github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION &&
         nice go build "${flags[@]}" -o "$TOOLS_DIR/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi ) > "$TOOLS_DIR/logs/pulumi.log" 2>&1; then
    status pulumi ok
  else
    echo "install-go-tools: pulumi failed, see $TOOLS_DIR/logs/pulumi.log" >&2; status pulumi failed
  fi
  # Fallback for the host: up to sdk/v3 v3.60.0 the nodejs language host was a package of the sdk module
  # itself, which the proxy serves. Verified: CLI v3.259.0 + this host + @pulumi/pulumi 3.259.0 on Node 20
  # run `pulumi up` of a JavaScript program offline with a file:// backend.
  local legacy_host_sdk=v3.60.0 h; h=$(mktemp -d)
  printf 'module slipway.local/pulumihost\n\ngo 1.25\n' > "$h/go.mod"
  if [ -x "$TOOLS_DIR/bin/pulumi-language-nodejs" ]; then status pulumi-language-nodejs ok
  elif ( cd "$w" && go get github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@$PULUMI_NODEJS_VERSION &&
         nice go build "${flags[@]}" -o "$TOOLS_DIR/bin/pulumi-language-nodejs" github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 ) > "$TOOLS_DIR/logs/pulumi-language-nodejs.log" 2>&1; then
    status pulumi-language-nodejs ok
  elif ( cd "$h" && go get github.com/pulumi/pulumi/sdk/v3@$legacy_host_sdk &&
         nice go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$legacy_host_sdk" \
           -o "$TOOLS_DIR/bin/pulumi-language-nodejs" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs ) >> "$TOOLS_DIR/logs/pulumi-language-nodejs.log" 2>&1; then
    echo "install-go-tools: pulumi-language-nodejs built from sdk/v3@$legacy_host_sdk (the matching host module is not served)" >&2
    status pulumi-language-nodejs ok
  else
    echo "install-go-tools: pulumi-language-nodejs failed, see $TOOLS_DIR/logs/pulumi-language-nodejs.log" >&2
    tail -2 "$TOOLS_DIR/logs/pulumi-language-nodejs.log" >&2; status pulumi-language-nodejs failed
  fi
  rm -rf "$w" "$h"
  [ -x "$TOOLS_DIR/bin/pulumi" ] && [ -x "$TOOLS_DIR/bin/pulumi-language-nodejs" ]
}

want=("$@"); [ ${#want[@]} -gt 0 ] || want=(crane regctl buildkit buildx distribution ggcr-registry)
rc=0
for t in "${want[@]}"; do
  case $t in
    crane) build crane crane github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION || rc=1 ;;
    regctl) build regctl regctl github.com/regclient/regclient/cmd/regctl@$REGCLIENT_VERSION || rc=1 ;;
    buildkit) build_wrapped buildkit buildkitd github.com/moby/buildkit@$BUILDKIT_VERSION github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl || rc=1 ;;
    buildx) build_wrapped buildx buildx github.com/docker/buildx@$BUILDX_VERSION github.com/docker/buildx/cmd/buildx || rc=1 ;;
    # The CNCF registry's current release, a second implementation beside Debian's 2.8 (it pages tag
    # lists with Link headers, and its Go has SHA-NI): named so it cannot shadow docker-registry.
    distribution) build_as distribution distribution-registry github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION || rc=1 ;;
    # go-containerregistry's registry with the referrers API on (scripts/ggcr-registry/main.go).
    ggcr-registry) build_local ggcr-registry ggcr-registry github.com/google/go-containerregistry@$CRANE_VERSION || rc=1 ;;
    pulumi) build_pulumi || rc=1 ;;
    *) echo "unknown tool $t" >&2; rc=2 ;;
  esac
done
exit $rc
