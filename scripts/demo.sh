#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs only what the demo needs (the CNCF registry
# and node_modules), builds, then `npm run demo` starts a registry on a free loopback port, makes a
# three-platform image without pulling anything, pushes it and copies it (all platforms, one platform).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
if ! command -v docker-registry >/dev/null 2>&1; then
  $SUDO apt-get update -q
  # policy-rc.d: install the registry binary without starting Debian's default registry service.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends docker-registry || { $SUDO rm -f /usr/sbin/policy-rc.d; exit 1; }
  $SUDO rm -f /usr/sbin/policy-rc.d
fi
[ -d node_modules/undici ] || npm ci --no-audit --no-fund
npm run demo
