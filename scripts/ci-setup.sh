#!/usr/bin/env bash
# Prepares a Debian 12 machine (root, no stdin, registries only — no internet) for the whole test
# suite: apt packages, busybox-static .debs for the three test platforms, Docker Engine, qemu
# binfmt handlers, the Go-built peers (crane, regctl, buildkit, buildx) and node_modules.
# Idempotent and quick when everything is already in place. Usage: scripts/ci-setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
TOOLS_DIR=${SLIPWAY_TOOLS:-/opt/slipway-tools}
DEB_DIR="$TOOLS_DIR/debs"
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
step() { echo "== ci-setup: $*"; }
start=$(date +%s)

PACKAGES=(docker-registry docker.io containerd buildah skopeo umoci qemu-user-static binfmt-support apache2-utils
  busybox-static openssl runc jq ca-certificates curl procps squid)
FOREIGN_ARCHES=(arm64 armhf)
DEB_ARCHES=(amd64 arm64 armhf)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then missing+=("$p"); fi
done
need_update=0
for a in "${FOREIGN_ARCHES[@]}"; do
  if ! dpkg --print-foreign-architectures | grep -qx "$a"; then
    step "dpkg --add-architecture $a"
    $SUDO dpkg --add-architecture "$a"; need_update=1
  fi
done
need_debs=0
for a in "${DEB_ARCHES[@]}"; do
  ls "$DEB_DIR"/busybox-static_*_"$a".deb >/dev/null 2>&1 || need_debs=1
done
if [ ${#missing[@]} -gt 0 ] || [ $need_debs -eq 1 ]; then need_update=1; fi

apt_retry() { # apt over a flaky mirror: retry a few times
  local n
  for n in 1 2 3; do
    [ "$n" -eq 1 ] || sleep $(( (n - 1) * 5 ))
    # DPkg::Lock::Timeout: a fresh VM may be running apt-daily/unattended-upgrades at boot.
    if $SUDO apt-get -o Acquire::Retries=3 -o DPkg::Lock::Timeout=600 "$@"; then return 0; fi
    echo "ci-setup: apt-get $1 failed (attempt $n)" >&2
  done
  return 1
}
if [ $need_update -eq 1 ]; then
  step "apt-get update"
  # A partial failure (one mirror index mid-sync, e.g. bookworm-security armhf) is not fatal: the
  # install and download steps below fail loudly if something we need is really missing.
  apt_retry update -q || echo "ci-setup: WARNING: apt-get update reported errors; continuing with the indexes it fetched" >&2
fi
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  # Keep apt from starting services (docker.io would start a default-configured daemon with a
  # bridge and iptables, which these VMs cannot run); start-dockerd.sh starts the one we want.
  policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d; policy_added=1
  fi
  rc=0
  apt_retry install -y -q "${missing[@]}" || rc=$?
  if [ $policy_added -eq 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
  [ $rc -eq 0 ] || { echo "ci-setup: apt-get install failed" >&2; exit $rc; }
fi

if [ $need_debs -eq 1 ]; then
  # Base images cannot be pulled; test fixtures assemble busybox images from these .debs.
  step "downloading busybox-static for ${DEB_ARCHES[*]} into $DEB_DIR"
  $SUDO mkdir -p "$DEB_DIR"
  tmp=$(mktemp -d); chmod 777 "$tmp"   # apt-get download drops privileges to _apt when it can
  ( cd "$tmp" && apt_retry download $(printf 'busybox-static:%s ' "${DEB_ARCHES[@]}") )
  $SUDO mv "$tmp"/busybox-static_*.deb "$DEB_DIR"/
  rm -rf "$tmp"
fi
ls -l "$DEB_DIR"

step "Docker Engine"
"$REPO/scripts/start-dockerd.sh"

step "binfmt_misc + qemu (arm64/arm RUN steps)"
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || echo "ci-setup: WARNING: cannot mount binfmt_misc; cross-platform RUN tests will skip" >&2
fi
for q in qemu-aarch64 qemu-arm; do
  entry=/proc/sys/fs/binfmt_misc/$q
  if ! grep -qx enabled "$entry" 2>/dev/null; then
    $SUDO update-binfmts --enable "$q" || echo "ci-setup: WARNING: update-binfmts --enable $q failed" >&2
  fi
  # Fallbacks: a registered-but-disabled entry, or binfmt-support's database out of step with the
  # kernel (the package was installed while binfmt_misc was not mounted): register from the
  # systemd-binfmt file the qemu-user-static package ships.
  if [ -e "$entry" ] && ! grep -qx enabled "$entry"; then echo 1 | $SUDO tee "$entry" >/dev/null || true; fi
  if [ ! -e "$entry" ] && [ -f "/usr/lib/binfmt.d/$q.conf" ]; then
    $SUDO tee /proc/sys/fs/binfmt_misc/register < "/usr/lib/binfmt.d/$q.conf" >/dev/null || echo "ci-setup: WARNING: could not register $q" >&2
  fi
  echo "  $q: $(head -1 "/proc/sys/fs/binfmt_misc/$q" 2>/dev/null || echo missing)"
done

step "Go-built tools (${SLIPWAY_GO_TOOLS:-crane regctl buildkit buildx distribution ggcr-registry}) into $TOOLS_DIR/bin"
# A tool that fails to build is recorded in $TOOLS_DIR/status; the tests needing it skip loudly.
# shellcheck disable=SC2086
"$REPO/scripts/install-go-tools.sh" ${SLIPWAY_GO_TOOLS:-crane regctl buildkit buildx distribution ggcr-registry} \
  || echo "ci-setup: WARNING: some Go tools failed to build (see $TOOLS_DIR/status); their tests will skip" >&2
cat "$TOOLS_DIR/status" 2>/dev/null || true

step "node_modules"
# Skip `npm ci` (it deletes node_modules first) when every package the lock file pins is already
# installed at that version, per the hidden lockfile npm keeps in node_modules.
if [ -f node_modules/.package-lock.json ] && node -e '
  const fs = require("fs");
  const want = JSON.parse(fs.readFileSync("package-lock.json", "utf8")).packages;
  const have = JSON.parse(fs.readFileSync("node_modules/.package-lock.json", "utf8")).packages;
  for (const [k, v] of Object.entries(want)) {
    if (!k.startsWith("node_modules/")) continue;
    const h = have[k];
    if (h === undefined ? !v.optional : h.version !== v.version || (h.link ?? false) !== (v.link ?? false)) process.exit(1);
  }' 2>/dev/null; then
  echo "  node_modules matches package-lock.json"
else
  npm ci --no-audit --no-fund
fi

step "done in $(( $(date +%s) - start )) s"
