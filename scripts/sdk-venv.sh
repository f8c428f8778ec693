#!/usr/bin/env bash
# Create (or reuse) a Python virtualenv with the official SDKs pinned in
# tests/sdk/requirements.txt (google-genai, anthropic, openai), used by the
# SDK tests (tests/it/sdk.rs drives tests/sdk/*.py).
#
#   scripts/sdk-venv.sh [VENV_DIR]     (default: target/sdk-venv)
#
# VENV_DIR is relative to the repo root. Idempotent: does nothing when the
# venv was made from the same requirements file.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${1:-target/sdk-venv}"
REQUIREMENTS="tests/sdk/requirements.txt"
STAMP="$VENV/.requirements"

if [[ -x "$VENV/bin/python" && -f "$STAMP" ]] && cmp -s "$REQUIREMENTS" "$STAMP"; then
    echo "sdk-venv: $VENV already has $(grep -cv '^#' "$REQUIREMENTS") pinned SDKs"
    exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi

make_venv() {
    python3 -m venv "$VENV" >/dev/null 2>&1
}

if ! make_venv; then
    # Debian/Ubuntu ship venv/ensurepip separately; a failed attempt leaves a
    # half-made venv behind, so remove it before retrying.
    rm -rf "$VENV"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    make_venv
fi

"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
"$VENV/bin/python" -c 'import google.genai, anthropic, openai' || {
    echo "sdk-venv: the SDKs did not install in $VENV" >&2
    exit 1
}
cp "$REQUIREMENTS" "$STAMP"
echo "sdk-venv: installed $REQUIREMENTS into $VENV"
