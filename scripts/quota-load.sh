#!/usr/bin/env bash
# Load run for the key pool: a fake upstream that allows each of K keys R
# calls per minute (answering Google's per-minute 429 beyond), and a client
# sending close to K×R requests per minute through hajimi. The client
# should see no 429. Loopback only; bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-20}
RPM=${RPM:-10}
SECONDS_TO_RUN=${SECONDS_TO_RUN:-120}
LOAD_FACTOR=${LOAD_FACTOR:-0.95}
UPSTREAM_PORT=${UPSTREAM_PORT:-9101}
PROXY_PORT=${PROXY_PORT:-9201}

cargo build --release --locked --bin hajimi --example static_upstream --example steady_client 2>&1 | tail -1
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.02; done; return 1; }

PORT=$UPSTREAM_PORT PER_KEY_RPM=$RPM target/release/examples/static_upstream >"$work/upstream.log" 2>&1 & upstream=$!; pids+=($upstream)
wait_for "http://127.0.0.1:$UPSTREAM_PORT/v1beta/models"
keys=$(python3 -c "print(','.join('AIzaQuota%030d' % i for i in range(int($KEYS))))")
GEMINI_API_KEYS=$keys PASSWORD=bench GEMINI_BASE_URL="http://127.0.0.1:$UPSTREAM_PORT" PORT=$PROXY_PORT HOST=127.0.0.1 \
  ENABLE_STORAGE=false RANDOM_STRING=false MAX_REQUESTS_PER_MINUTE=0 MAX_REQUESTS_PER_DAY_PER_IP=0 \
  API_KEY_DAILY_LIMIT=0 VALIDATE_KEYS_ON_STARTUP=false RUST_LOG=warn \
  target/release/hajimi >"$work/proxy.log" 2>&1 & proxy=$!; pids+=($proxy)
wait_for "http://127.0.0.1:$PROXY_PORT/health"

rate=$(python3 -c "print($KEYS * $RPM * $LOAD_FACTOR)")
echo "K=$KEYS keys × R=$RPM/min = $((KEYS * RPM))/min capacity; sending $rate/min for ${SECONDS_TO_RUN}s"
URL="http://127.0.0.1:$PROXY_PORT/v1/chat/completions" KEY=bench RATE_PER_MINUTE=$rate SECONDS=$SECONDS_TO_RUN \
  target/release/examples/steady_client
kill $upstream; wait $upstream 2>/dev/null || true
cat "$work/upstream.log"
echo "proxy warnings: $(grep -c WARN "$work/proxy.log" || true)"
