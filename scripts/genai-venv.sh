#!/usr/bin/env bash
# Create (or reuse) a Python virtualenv with the official google-genai SDK,
# used by tests/sdk/genai_client.py.
#
#   scripts/genai-venv.sh [VENV_DIR]     (default: target/genai-venv)
#
# VENV_DIR is relative to the repo root. Idempotent: does nothing when the
# venv already imports google.genai at the pinned version.
set -euo pipefail

GENAI_VERSION="3.6.1"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${1:-target/genai-venv}"

installed_version() {
    "$VENV/bin/python" -c 'import google.genai as g; print(g.__version__)' 2>/dev/null || true
}

if [[ -x "$VENV/bin/python" && "$(installed_version)" == "$GENAI_VERSION" ]]; then
    echo "genai-venv: $VENV already has google-genai $GENAI_VERSION"
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

"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "google-genai==$GENAI_VERSION"

if [[ "$(installed_version)" != "$GENAI_VERSION" ]]; then
    echo "genai-venv: google-genai $GENAI_VERSION did not install in $VENV" >&2
    exit 1
fi
echo "genai-venv: installed google-genai $GENAI_VERSION into $VENV"
