#!/usr/bin/env bash
# Screenshots of every dashboard page (overview, keys, settings, vertex,
# log, password, login) at 390 px and 1280 px: runs the browser tests
# (`make e2e`, which installs Debian's chromium and chromium-driver when
# missing) and lists the PNGs they left in target/e2e-screenshots/. The
# pages reached before a failure are still shot; the exit status is the
# tests'.
set -uo pipefail
cd "$(dirname "$0")/.."

rm -rf target/e2e-screenshots
make e2e
status=$?
echo "== screenshots"
ls -1 target/e2e-screenshots/*.png 2>/dev/null || echo "(none)"
exit "$status"
