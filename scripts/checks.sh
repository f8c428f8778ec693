# The check scripts' reporting, sourced by scripts/static-check.sh,
# scripts/image-check.sh, scripts/dockerfile-context-check.sh and
# tests/install/test.sh: one line per check (`ok   …` or `FAIL …`, a
# failure's details indented under it), then `summary` prints
# "N passed, N failed", the line .ci/run adds up, and fails when a check
# did.

passed=0
failed=0

pass() { # DESCRIPTION
    passed=$((passed + 1))
    printf 'ok   %s\n' "$1"
}

fail() { # DESCRIPTION [DETAILS]
    failed=$((failed + 1))
    printf 'FAIL %s\n' "$1"
    if (($# > 1)) && [[ -n $2 ]]; then printf '%s\n' "$2" | sed 's/^/     | /'; fi
}

# The command's status decides. It runs as an `if` condition, so `set -e`
# does not stop it midway: a function checked this way returns its own
# failures.
check() { # DESCRIPTION COMMAND...
    local description=$1
    shift
    if "$@"; then pass "$description"; else fail "$description"; fi
}

summary() {
    echo "$passed passed, $failed failed"
    ((failed == 0))
}
