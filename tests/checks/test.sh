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

# One case: BODY's status must be 0 (`passes`) or not (`fails`), and its
# output exactly OUTPUT.
expect() { # NAME BODY passes|fails OUTPUT
    case_run "$2"
    local outcome=fails # not `passed`: that is checks.sh's count
    ((status == 0)) && outcome=passes
    check "$1" test "$outcome" = "$3" -a "$out" = "$4"
}

expect "all passing: the summary line, status 0" \
    'check one true; check two true; summary' \
    passes $'ok   one\nok   two\n2 passed, 0 failed'
expect "one failing: counted, status not 0" \
    'check one true; check two false; summary' \
    fails $'ok   one\nFAIL two\n1 passed, 1 failed'
# A function checked by `check` runs as an if condition, where errexit is
# off: its own failure must still be the check's (the last command decides).
expect "a function that returns its failure fails its check" \
    'f() { false || return 1; true; }; check function f; summary' \
    fails $'FAIL function\n0 passed, 1 failed'
expect "a failure's details are indented under it" \
    'fail broken "first line
second line"; summary' \
    fails $'FAIL broken\n     | first line\n     | second line\n0 passed, 1 failed'
expect "pass and fail without details count too" \
    'pass fine; fail empty ""; summary' \
    fails $'ok   fine\nFAIL empty\n1 passed, 1 failed'

# The line .ci/run's totals read.
case_run 'check one true; check two false; summary || true'
check "the summary matches .ci/run's pattern" \
    grep -qE '^[0-9]+ passed, [0-9]+ failed$' <<<"$out"

echo
summary
# The status is decided here too, not only by the summary under test: a
# summary that no longer fails must not pass its own test.
((failed == 0))
