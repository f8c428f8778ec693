#!/usr/bin/env bash
# A profile-guided release build of hajimi (PGO): builds an instrumented
# binary, trains it on a mix of requests against the recorded static
# upstream (examples/pgo_workload.rs: every door, streams and answers,
# long histories, tools, an image, a few refusals), and builds the release
# binary again with what the training counted. Measured on the bench's
# requests (perf task-clock per request, builds taking turns): see
# docs/en/reference.md.
#
#   scripts/pgo-build.sh                 # this machine's target
#   TARGET=x86_64-unknown-linux-musl scripts/pgo-build.sh   # the static one
#
# Needs llvm-profdata of the compiler's LLVM: `rustup component add
# llvm-tools` (or LLVM_PROFDATA=/path/to/llvm-profdata). The training runs
# the instrumented binary here, so TARGET must run on this machine. Builds
# go to their own directories under cargo's target directory (pgo-generate,
# pgo), so the usual builds are not rebuilt; the binary's path is printed
# last. Loopback only, ports 19251-19252, a few seconds of training.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
target_dir=$(bash scripts/target-dir.sh)
target=${TARGET:-}
target_args=()
binary_dir=release
if [[ -n $target ]]; then
    target_args=(--target "$target")
    binary_dir="$target/release"
fi

host=$(rustc -vV | awk '/^host:/ {print $2}')
profdata=${LLVM_PROFDATA:-$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata}
if [[ ! -x $profdata ]]; then
    echo "pgo-build.sh: no llvm-profdata at $profdata: run 'rustup component add llvm-tools' (or set LLVM_PROFDATA)" >&2
    exit 1
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf -- "$work"
}
trap cleanup EXIT

wait_for() { # url
    for _ in $(seq 300); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "pgo-build.sh: $1 did not answer" >&2
    exit 1
}

echo "== the training's helpers (upstream and client, not instrumented)"
cargo build --locked --example static_upstream --example pgo_workload
helpers="$target_dir/debug/examples"

echo "== instrumented build"
# A fixed default path, so that cargo keeps this build between runs; the
# training names its own files (LLVM_PROFILE_FILE).
CARGO_TARGET_DIR="$target_dir/pgo-generate" RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$target_dir/pgo-generate/profiles" \
    cargo build --release --locked "${target_args[@]}" --bin hajimi

echo "== training"
upstream_port=19251 port=19252
PORT=$upstream_port WORKERS=1 "$helpers/static_upstream" >"$work/upstream.log" 2>&1 & pids+=($!)
wait_for "http://127.0.0.1:$upstream_port/v1beta/models"
# A server as deployed (storage on, in a throwaway directory), with the
# request limits off so that the training is not refused.
keys=$(python3 -c "print(','.join('AIzaPgoTrain%027d' % i for i in range(20)))")
LLVM_PROFILE_FILE="$work/raw/hajimi-%p.profraw" GEMINI_API_KEYS=$keys PASSWORD=bench \
    VALIDATE_KEYS_ON_STARTUP=false GEMINI_BASE_URL="http://127.0.0.1:$upstream_port" PORT=$port HOST=127.0.0.1 \
    MAX_REQUESTS_PER_MINUTE=0 MAX_REQUESTS_PER_DAY_PER_IP=0 API_KEY_DAILY_LIMIT=0 FAKE_STREAMING=false \
    STORAGE_DIR="$work/data" WORKERS=1 RUST_LOG=info \
    "$target_dir/pgo-generate/$binary_dir/hajimi" >"$work/hajimi.log" 2>&1 &
hajimi=$!
pids+=("$hajimi")
wait_for "http://127.0.0.1:$port/health"
URL="http://127.0.0.1:$port" KEY=bench "$helpers/pgo_workload"
# The counts are written when the process exits.
kill -TERM "$hajimi"
wait "$hajimi" || true
"$profdata" merge -o "$work/hajimi.profdata" "$work"/raw/*.profraw

echo "== optimized build"
CARGO_TARGET_DIR="$target_dir/pgo" RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$work/hajimi.profdata" \
    cargo build --release --locked "${target_args[@]}" --bin hajimi
ls -l "$target_dir/pgo/$binary_dir/hajimi"
echo "$target_dir/pgo/$binary_dir/hajimi"
