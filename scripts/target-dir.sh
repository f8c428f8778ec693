#!/usr/bin/env bash
# Prints cargo's target directory for this package, absolute, as cargo itself
# resolves it: CARGO_TARGET_DIR, CARGO_BUILD_TARGET_DIR or build.target-dir in
# a .cargo/config.toml, else ./target. The Makefile (make static,
# static-check) and .ci/run find the static binary through it.
#
#   scripts/target-dir.sh        e.g. /work/main/target
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
"${CARGO:-cargo}" metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
