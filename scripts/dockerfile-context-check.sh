#!/usr/bin/env bash
# The Dockerfile's amd64 builder stage has what its build reads. That stage
# (Debian, profile-guided: scripts/pgo-build.sh) cannot run in CI (no
# container engine pulls its base image here, and the build takes three
# release builds), and a file missing from its COPY lines would only show
# on GitHub when the image is published. So this copies exactly what the
# stage's COPY lines name into an empty directory and builds there what
# the training compiles first (the static upstream, whose recorded answers
# are included at compile time, and the workload), with cargo's metadata
# and the locked dependencies; then checks that the stage runs the script
# it copied and that the builder is chosen per platform: the Dockerfile's
# ARG and FROM lines, each builder holding only a file naming its
# platform, built with buildah (when present, as root: CI installs it for
# image-check.sh) with TARGETARCH given and without it.
#
#   scripts/dockerfile-context-check.sh
#
# Dependencies come from cargo's usual target directory (already built by
# the tests), so this compiles only the crate and the two examples.
# Prints one line per check and "N passed, N failed".
set -euo pipefail
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
target_dir=$(bash scripts/target-dir.sh)
context=$(mktemp -d)
trap 'rm -rf -- "$context"' EXIT

source scripts/checks.sh

# The amd64 stage, continuation lines joined.
stage=$(python3 - <<'PY'
import sys
text = open("Dockerfile").read().replace("\\\n", " ")
start = text.index("AS builder-amd64")
end = text.index("\nFROM ", start)
print(text[start:end])
PY
)

copy_context() {
    local line sources destination
    while read -r line; do
        # COPY src... dest (no flags in this stage)
        read -r -a sources <<<"${line#COPY }"
        destination=${sources[-1]}
        unset 'sources[-1]'
        if [[ $destination == */ || ${#sources[@]} -gt 1 ]]; then
            # Into that directory.
            mkdir -p "$context/$destination" && cp -R "${sources[@]}" "$context/$destination/" || return 1
        else
            # As that name.
            mkdir -p "$(dirname "$context/$destination")" && cp -R "${sources[0]}" "$context/$destination" || return 1
        fi
    done < <(grep -E '^\s*COPY ' <<<"$stage" | sed -E 's/^\s+//')
}
check "the amd64 builder's COPY lines name files that exist" copy_context

build_helpers() {
    (cd "$context" && CARGO_TARGET_DIR="$target_dir" cargo build --locked --quiet \
        --example static_upstream --example pgo_workload)
}
check "the training's helpers build from the copied files alone" build_helpers

runs_script() {
    grep -q 'bash scripts/pgo-build.sh' <<<"$stage" && [[ -f $context/scripts/pgo-build.sh ]] &&
        [[ -f $context/scripts/target-dir.sh ]]
}
check "the amd64 builder runs scripts/pgo-build.sh, copied with what it calls" runs_script

picks_builder() {
    grep -qE '^FROM builder-\$\{TARGETARCH:-amd64\} AS builder$' Dockerfile &&
        grep -qE '^FROM rust:1-alpine AS builder-arm64$' Dockerfile &&
        grep -qE '^ARG TARGETARCH$' <(sed -n '1,/^FROM /p' Dockerfile)
}
check "the builder is chosen by TARGETARCH, declared before the first FROM" picks_builder

# The Dockerfile's global lines and FROM lines as they are, each builder
# stage holding only a file naming its platform, built with buildah (as
# image-check.sh does; none of the base images is pulled): the right
# builder must be chosen with TARGETARCH given, and amd64's without it.
selection_image() {
    python3 - "$context/selection" <<'PY'
import os, re, sys
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
lines = open("Dockerfile").read().replace("\\\n", " ").splitlines()
first = next(i for i, line in enumerate(lines) if line.startswith("FROM "))
file = [line for line in lines[:first] if line.startswith("ARG ")]
for line in lines[first:]:
    stage = re.match(r"^FROM \S+ AS builder-(\w+)$", line)
    if stage:
        open(os.path.join(out, stage.group(1)), "w").write(stage.group(1) + "\n")
        file += [f"FROM scratch AS builder-{stage.group(1)}", f"COPY {stage.group(1)} /out/platform"]
    elif re.match(r"^FROM \S+ AS builder$", line):
        file.append(line)
file += ["FROM scratch", "COPY --from=builder /out/platform /platform"]
open(os.path.join(out, "Containerfile"), "w").write("\n".join(file) + "\n")
PY
}
chosen_builder() { # build args...
    local store=$context/store image container mount
    local buildah=(buildah --storage-driver vfs --root "$store/root" --runroot "$store/run")
    image=$("${buildah[@]}" bud -q "$@" "$context/selection" 2>/dev/null | tail -1) || return 1
    container=$("${buildah[@]}" from "$image") && mount=$("${buildah[@]}" mount "$container") &&
        cat "$mount/platform" && "${buildah[@]}" rm "$container" >/dev/null
}
picks_per_platform() {
    selection_image &&
        [[ $(chosen_builder --build-arg TARGETARCH=amd64) == amd64 ]] &&
        [[ $(chosen_builder --build-arg TARGETARCH=arm64) == arm64 ]] &&
        [[ $(chosen_builder) == amd64 ]]
}
if command -v buildah >/dev/null && [[ $(id -u) == 0 ]]; then
    check "buildah picks amd64's builder or arm64's by TARGETARCH, amd64's without it" picks_per_platform
else
    echo "skip buildah's choice of builder (needs buildah, as root)"
fi

summary
