#!/usr/bin/env bash
# CPU instructions per request (SPEC §14), counted by valgrind's callgrind:
# unlike requests/s, the count does not drift with whatever else the
# machine is doing (the same build, inputs and environment give the same
# figure within a fraction of a percent), so a small change to the hot path
# shows even on a shared, noisy machine.
#
# It counts user-space instructions only: the kernel's TCP work (about 40%
# of a request's time in a perf profile) is not in it, and a `rep stos`/
# `rep movs` counts once per iteration, so the actix-web server's 3 KB
# header-index reset counts as ~3,000. Read it as "how much work does the
# process do per request", next to bench.sh's requests/s, not instead.
#
#   scripts/instructions.sh            hajimi and the bare actix-web + awc hop
#   scripts/instructions.sh A B        two builds of hajimi, and B/A per door
#
# Each subject runs under callgrind twice, serving N requests (REQUESTS,
# 2000 by default, 4 at a time over kept-alive connections) and serving
# none; the difference over N is the figure, so start-up and shutdown drop
# out. Doors: chat non-stream and stream, the Messages and Responses
# streams (hajimi, bench.sh's bodies: scripts/bench-common.sh) and the native Gemini
# generateContent and streamGenerateContent through the bare hop (what the
# HTTP stack costs when it only forwards). Loopback only; valgrind from
# Debian is installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh # wait_for, keys, write_bench_bodies

REQUESTS=${REQUESTS:-2000}
UPSTREAM_PORT=${UPSTREAM_PORT:-9100}
PROXY_PORT=${PROXY_PORT:-9200}
bin="${CARGO_TARGET_DIR:-target}/release"

if ! command -v valgrind >/dev/null; then
  echo "installing valgrind (Debian package)"; apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi
cargo build --release --locked --bin hajimi --example static_upstream --example bare_proxy 2>&1 | tail -1
builds=("${1:-$bin/hajimi}")
[[ -n ${2:-} ]] && builds+=("$2")

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

PORT=$UPSTREAM_PORT WORKERS=1 "$bin"/examples/static_upstream >/dev/null 2>&1 & pids+=($!)
wait_for "http://127.0.0.1:$UPSTREAM_PORT/v1beta/models"

write_bench_bodies "$work" # the bodies bench.sh sends
gemini_keys=$(keys 20)
gemini="/v1beta/models/gemini-2.5-flash"

# N requests, 4 at a time: one curl, whose parallel transfers keep their
# connections alive (a curl per request would count connection set-up).
send() { # url body n -> prints how many answers were 200
  local n=$3
  ((n == 0)) && { echo 0; return; }
  for _ in $(seq "$n"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$1"; done >"$work/urls.cfg"
  curl -sS --no-progress-meter --parallel --parallel-max 4 -K "$work/urls.cfg" -H 'Content-Type: application/json' \
    -H 'Authorization: Bearer bench' -H "x-goog-api-key: $client_key" \
    --data-binary @"$2" -w '%{http_code}\n' | grep -c '^200$' || true
}

# Instructions of one run of a subject serving n requests.
counted() { # n url body command...
  local n=$1 url=$2 body=$3 pid answered
  shift 3
  valgrind --tool=callgrind --callgrind-out-file="$work/out" "$@" >"$work/subject.log" 2>&1 & pid=$!
  wait_for "http://127.0.0.1:$PROXY_PORT$ready"
  answered=$(send "$url" "$body" "$n")
  if ((answered != n)); then
    echo "only $answered of $n answers were 200 ($url); the subject's log:" >&2; tail -5 "$work/subject.log" >&2
    kill "$pid"; kill -TERM $$; exit 1
  fi
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  awk '/I *refs:/ { gsub(",", "", $NF); print $NF }' "$work/subject.log"
}

# Instructions per request: (with n requests - with none) / n.
per_request() { # url body command...
  local with without
  with=$(counted "$REQUESTS" "$@")
  without=$(counted 0 "$@")
  awk -v a="$with" -v b="$without" -v n="$REQUESTS" 'BEGIN { printf "%.0f", (a - b) / n }'
}

# hajimi's settings as bench.sh sets them (no limits, no sharing of
# identical requests, the access log on); the bare hop reads only PORT,
# STACK and UPSTREAM.
export MAX_REQUESTS_PER_MINUTE=0 MAX_REQUESTS_PER_DAY_PER_IP=0 API_KEY_DAILY_LIMIT=0 PUBLIC_MODE=true \
  GEMINI_API_KEYS="$gemini_keys" PASSWORD=bench VALIDATE_KEYS_ON_STARTUP=false GEMINI_BASE_URL="http://127.0.0.1:$UPSTREAM_PORT" \
  PORT=$PROXY_PORT HOST=127.0.0.1 FAKE_STREAMING=false RANDOM_STRING=false ENABLE_STORAGE=false WORKERS=1 RUST_LOG=info \
  STACK=actix UPSTREAM="http://127.0.0.1:$UPSTREAM_PORT"
ready=/health # a path that answers 200 without a key
client_key=bench # hajimi's PASSWORD; the bare hop forwards a Gemini key

base="http://127.0.0.1:$PROXY_PORT"
doors=(
  "chat non-stream|$base/v1/chat/completions|openai.json"
  "chat stream|$base/v1/chat/completions|openai-stream.json"
  "Messages stream|$base/v1/messages|messages-stream.json"
  "Responses stream|$base/v1/responses|responses-stream.json"
)
declare -A count=()
echo "instructions per request (callgrind, $REQUESTS requests, 4 at a time, WORKERS=1, RUST_LOG=info)"
for index in "${!builds[@]}"; do
  echo "build $((index + 1)) = ${builds[index]}"
  for door in "${doors[@]}"; do
    IFS='|' read -r label url body <<<"$door"
    count["$index $label"]=$(per_request "$url" "$work/$body" "${builds[index]}")
    printf '  %-18s %9s\n' "$label" "${count["$index $label"]}"
  done
done
if ((${#builds[@]} == 2)); then
  echo "--- build 2 / build 1 (instructions; below 1 is less work) ---"
  for door in "${doors[@]}"; do
    IFS='|' read -r label _ _ <<<"$door"
    printf '  %-18s %s\n' "$label" "$(awk -v a="${count["1 $label"]}" -v b="${count["0 $label"]}" 'BEGIN { printf "%.3f", a / b }')"
  done
  exit 0
fi
# The bare hop forwards every path; the upstream answers the model list.
ready=/v1beta/models client_key=AIzaBench000000000000000000000000000000
hop_plain=$(per_request "$base$gemini:generateContent" "$work/gemini.json" "$bin"/examples/bare_proxy)
hop_stream=$(per_request "$base$gemini:streamGenerateContent?alt=sse" "$work/gemini.json" "$bin"/examples/bare_proxy)
echo "bare actix-web + awc hop (native Gemini body, forwarded)"
printf '  %-18s %9s\n' "non-stream" "$hop_plain" "stream" "$hop_stream"
echo "--- hajimi / bare hop (instructions) ---"
printf '  chat non-stream    %s\n' "$(awk -v a="${count["0 chat non-stream"]}" -v b="$hop_plain" 'BEGIN { printf "%.2f", a / b }')"
printf '  chat stream        %s\n' "$(awk -v a="${count["0 chat stream"]}" -v b="$hop_stream" 'BEGIN { printf "%.2f", a / b }')"
