#!/usr/bin/env bash
# Tests scripts/checks.sh, the reporting every check script sources (its
# "N passed, N failed" line is what .ci/run adds up, and its status is what
# fails the run): each case is a small script run in its own bash, its
# output and exit status compared with what they must be.
#
#   bash tests/checks/test.sh
#
# The last line is "N passed, N failed"; exit 1 if any case failed.
set -uo pipefail
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
source "$repo/scripts/checks.sh"

# Runs BODY after sourcing checks.sh under `set -euo pipefail`, as the
# check scripts do; sets `out` and `status`.
case_run() { # BODY
    out=$(bash -c "set -euo pipefail; source '$repo/scripts/checks.sh'; $1" 2>&1)
    status=$?
}

case_run 'check one true; check two true; summary'
check "all passing: the summary line, status 0" \
    test "$status" -eq 0 -a "$out" = $'ok   one\nok   two\n2 passed, 0 failed'

case_run 'check one true; check two false; summary'
check "one failing: counted, status not 0" \
    test "$status" -ne 0 -a "$out" = $'ok   one\nFAIL two\n1 passed, 1 failed'

# A function checked by `check` runs as an if condition, where errexit is
# off: its own failure must still be the check's (the last command decides).
case_run 'f() { false || return 1; true; }; check function f; summary'
check "a function that returns its failure fails its check" \
    test "$status" -ne 0 -a "$out" = $'FAIL function\n0 passed, 1 failed'

case_run 'fail broken "first line
second line"; summary'
check "a failure's details are indented under it" \
    test "$status" -ne 0 -a "$out" = $'FAIL broken\n     | first line\n     | second line\n0 passed, 1 failed'

case_run 'pass fine; fail empty ""; summary'
check "pass and fail without details count too" \
    test "$status" -ne 0 -a "$out" = $'ok   fine\nFAIL empty\n1 passed, 1 failed'

# The line .ci/run's totals read.
case_run 'check one true; check two false; summary || true'
check "the summary matches .ci/run's pattern" \
    grep -qE '^[0-9]+ passed, [0-9]+ failed$' <<<"$out"

echo
summary
# The status is decided here too, not only by the summary under test: a
# summary that no longer fails must not pass its own test.
((failed == 0))
