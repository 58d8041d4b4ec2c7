#!/usr/bin/env bash
# Every test on a fresh Debian 12 machine: install and start what the tests need (scripts/ci-setup.sh:
# Debian packages, Docker Engine, qemu binfmt, Go-built crane/regctl/buildkit/buildx, node_modules),
# then `npm test` (build, lint with the import-arrow check, unit and end-to-end tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ci-setup.sh </dev/null
npm test </dev/null
