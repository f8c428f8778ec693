#!/usr/bin/env bash
# Proxy overhead benchmark (SPEC §14): a static local upstream, the release
# binary in front of it, and wrk as the client. Prints requests/s and p50
# latency for the upstream directly, through an nginx proxy hop (the
# baseline for "what does any proxy cost") and through hajimi, non-stream
# and stream, at 1 and 32 connections (streams also at the Messages and
# Responses doors). Two more hops do nothing but forward
# (examples/bare_proxy.rs): one on hajimi's own stack (actix-web + awc)
# and one on hyper's; they show what the HTTP layer alone costs, apart
# from hajimi's own work. Then a summary (hajimi's throughput as a ratio
# of nginx's, the bare stack's and the upstream's, each new door's stream
# as a ratio of chat's, added p50), memory and startup time. The c=32
# rows run in ROUNDS rounds (2 by default; every other one in reverse
# order) and the summary reads their means, naming the rows whose rounds
# differ by more than 10%. nginx is
# Debian's, installed when missing, run as the current user with its own
# config in a temp dir.
#
#   scripts/bench.sh --compare BIN_A BIN_B
# instead runs two builds (e.g. glibc and static musl) in one run, taking
# turns in mirrored order (A B, then B A; COMPARE_ROUNDS rounds, 2 by
# default), and prints B's throughput as a ratio of A's (chat non-stream and
# stream, Messages and Responses streams), each round's ratio, and their
# memory (at RUST_LOG=info, the default, so the access log is part of the
# cost).
#
#   scripts/bench.sh --replicas
# instead measures shared state (REDIS_URL, redis-server from Debian on a
# loopback port): one replica alone, then one of two replicas sharing Redis
# (the other idle), then both loaded at once; non-stream chat, 32
# connections in all, and each figure as a ratio of the single node's.
# Per-address and daily key limits are on (as by default) but set too high
# to be reached, so each request pays what the defaults make it pay.
# Loopback only; every run is bounded in time. Binaries are taken from
# ${CARGO_TARGET_DIR:-target}/release (hajimi from HAJIMI_BIN when set).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh # wait_for, keys, write_bench_bodies

DURATION=${DURATION:-10s}
UPSTREAM_PORT=${UPSTREAM_PORT:-9100}
PROXY_PORT=${PROXY_PORT:-9200}
NGINX_PORT=${NGINX_PORT:-9150}
WORKERS=1 # hajimi's, the upstream's and nginx's worker count
bin="${CARGO_TARGET_DIR:-target}/release"
# HAJIMI_BIN runs another build of hajimi (e.g. a before/after pair for --replicas).
hajimi_bin="${HAJIMI_BIN:-$bin/hajimi}"

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)"; apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
COMPARE=()
REPLICAS=false
if [[ ${1:-} == --replicas ]]; then
  REPLICAS=true
  if ! command -v redis-server >/dev/null; then
    echo "installing redis-server (Debian package)"; apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  fi
elif [[ ${1:-} == --compare ]]; then
  COMPARE=("${2:?--compare BIN_A BIN_B}" "${3:?--compare BIN_A BIN_B}")
elif ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
  echo "installing nginx (Debian package)"; apt-get update -qq
  apt-get install -y -qq nginx-light >/dev/null 2>&1 || apt-get install -y -qq nginx >/dev/null
fi
cargo build --release --locked --bin hajimi --example static_upstream --example stream_latency --example bare_proxy 2>&1 | tail -1

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT


# Milliseconds from spawning hajimi (env and args as given) to its first
# 200 on /health, polled with a raw socket (curl's own start-up would
# dominate); median of 5 launches.
startup_ms() {
  python3 - "$PROXY_PORT" "$@" <<'PY'
import os, socket, subprocess, sys, time
port, args = int(sys.argv[1]), sys.argv[2:]
times = []
for _ in range(5):
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if b" 200 " in conn.recv(64):
                    break
        except OSError:
            time.sleep(0.0005)
    times.append((time.perf_counter() - started) * 1000)
    process.terminate(); process.wait()
print(f"{sorted(times)[2]:.1f}")
PY
}
# Measure the proxy path itself: no per-IP or daily limits, no sharing of
# identical in-flight requests (wrk sends the same body every time).
export MAX_REQUESTS_PER_MINUTE=0 MAX_REQUESTS_PER_DAY_PER_IP=0 API_KEY_DAILY_LIMIT=0 PUBLIC_MODE=true

PORT=$UPSTREAM_PORT WORKERS=$WORKERS "$bin"/examples/static_upstream & pids+=($!)
wait_for "http://127.0.0.1:$UPSTREAM_PORT/v1beta/models"
ACTIX_HOP_PORT=$((NGINX_PORT + 1)) HYPER_HOP_PORT=$((NGINX_PORT + 2))

# An nginx proxy hop in front of the same upstream: what a plain reverse
# proxy costs, to set hajimi's overhead against. Keep-alive to the upstream
# (HTTP/1.1, no Connection header), streams unbuffered.
start_nginx() {
  local nginx user_line=""
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  mkdir -p "$work/nginx-temp"
  # As root nginx would hand its worker to `nobody`; keep the current user.
  [[ $(id -u) == 0 ]] && user_line="user $(id -un) $(id -gn);"
  cat >"$work/nginx.conf" <<NGINX
$user_line
worker_processes $WORKERS;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx-temp/body;
  proxy_temp_path $work/nginx-temp/proxy;
  fastcgi_temp_path $work/nginx-temp/fastcgi;
  uwsgi_temp_path $work/nginx-temp/uwsgi;
  scgi_temp_path $work/nginx-temp/scgi;
  upstream gemini {
    server 127.0.0.1:$UPSTREAM_PORT;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://gemini;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location ~ :streamGenerateContent {
      proxy_pass http://gemini;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
  "$nginx" -e "$work/nginx-error.log" -c "$work/nginx.conf" -p "$work" & pids+=($!)
  wait_for "http://127.0.0.1:$NGINX_PORT/v1beta/models"
}

write_bench_bodies "$work"
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
local file = io.open(os.getenv("BODY_FILE"), "r")
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
wrk.headers["x-goog-api-key"] = os.getenv("CLIENT_KEY")
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.3f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
LUA

# "label conns" -> every req/s seen (the default mode runs each c=32 row
# once per round; RPS, their mean, is derived after the runs) and the last
# p50 in ms (read only for the c=1 rows, which run once).
declare -A SEEN=() RPS=() P50=()
run() { # url body label connections client-key
  local line
  line=$(BODY_FILE="$2" CLIENT_KEY="$5" wrk -t1 -c"$4" -d"$DURATION" -s "$work/post.lua" "$1" | grep '^RESULT')
  read -r _ rps p50 p99 errors <<<"$line"
  SEEN["$3 $4"]+="$rps " P50["$3 $4"]=$p50
  printf '%-34s %4s conn  %8s req/s  p50 %7s ms  p99 %7s ms  errors %s\n' "$3" "$4" "$rps" "$p50" "$p99" "$errors"
}

# The req/s of one of run's lines (when run is called in a subshell).
rps_of() { awk '{for (i = 1; i <= NF; i++) if ($i == "req/s") print $(i-1)}' <<<"$1"; }

proxy_url="http://127.0.0.1:$PROXY_PORT/v1/chat/completions"
messages_url="http://127.0.0.1:$PROXY_PORT/v1/messages"
responses_url="http://127.0.0.1:$PROXY_PORT/v1/responses"

# Two builds in one run, taking turns in mirrored order (A B, B A, A B,
# ...: COMPARE_ROUNDS rounds, 2 by default) so drift on a shared machine
# and the advantage of running first or second hit both alike; B's
# throughput as a ratio of A's.
compare_builds() { # bin_a bin_b
  local bins=("$1" "$2") names=("A" "B") rounds=${COMPARE_ROUNDS:-2} round index order label line
  declare -A seen=() # "A label" -> each round's req/s
  echo "A = $1 ($(file -b "$1" | cut -d, -f1-2 2>/dev/null || true))"
  echo "B = $2 ($(file -b "$2" | cut -d, -f1-2 2>/dev/null || true))"
  for round in $(seq "$rounds"); do
    order="0 1"
    if (( round % 2 == 0 )); then order="1 0"; fi
    for index in $order; do
      GEMINI_API_KEYS=$(keys 20) PASSWORD=bench VALIDATE_KEYS_ON_STARTUP=false GEMINI_BASE_URL="http://127.0.0.1:$UPSTREAM_PORT" \
        PORT=$PROXY_PORT HOST=127.0.0.1 FAKE_STREAMING=false RANDOM_STRING=false ENABLE_STORAGE=false WORKERS=$WORKERS \
        RUST_LOG=info "${bins[$index]}" >"$work/compare.log" 2>&1 & local pid=$!
      wait_for "http://127.0.0.1:$PROXY_PORT/health"
      sleep 0.5
      echo "${names[$index]} round $round: idle RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
      for label in non-stream stream messages-stream responses-stream; do
        local body="$work/openai.json" url="$proxy_url"
        case $label in
          stream) body="$work/openai-stream.json" ;;
          messages-stream) body="$work/messages-stream.json" url="$messages_url" ;;
          responses-stream) body="$work/responses-stream.json" url="$responses_url" ;;
        esac
        line=$(run "$url" "$body" "${names[$index]} proxy $label" 32 bench)
        echo "$line"
        seen["${names[$index]} $label"]+="$(rps_of "$line") "
      done
      echo "${names[$index]} round $round: RSS after load $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
      kill "$pid"; wait "$pid" 2>/dev/null || true
    done
  done
  # The means' ratio, then each round's: when rounds disagree (one above
  # 1, one below, or far apart), the machine drifted during the run and the
  # mean says less.
  for label in non-stream stream messages-stream responses-stream; do
    awk -v label="$label" -v a="${seen["A $label"]}" -v b="${seen["B $label"]}" 'BEGIN {
      n = split(a, x, " "); split(b, y, " ")
      for (i = 1; i <= n; i++) { sa += x[i]; sb += y[i]; rounds = rounds (i > 1 ? ", " : "") sprintf("%.2f", y[i] / x[i]) }
      printf "%-16s 32 conn: A %d req/s, B %d req/s, B/A = %.2f (by round: %s)\n", label, sa / n, sb / n, sb / sa, rounds }'
  done
}

if [[ ${#COMPARE[@]} == 2 ]]; then
  compare_builds "${COMPARE[@]}"
  exit 0
fi

# One replica alone, one of two sharing Redis, both at once (see the top).
# The single node and the shared replica take turns (twice each) so drift
# on a shared machine hits both alike.
bench_replicas() {
  local redis_port=$((PROXY_PORT + 50)) single_port=$((PROXY_PORT + 2)) second_port=$((PROXY_PORT + 1))
  local single=0 shared=0 both_a both_b line round other
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 200); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.01; done
  start_replica() { # port [redis url]
    # Per-address and daily key limits on, as by default, but never
    # reached: every request takes the paths the defaults take.
    MAX_REQUESTS_PER_MINUTE=1000000000 MAX_REQUESTS_PER_DAY_PER_IP=1000000000 API_KEY_DAILY_LIMIT=1000000000 \
    GEMINI_API_KEYS=$(keys 20) PASSWORD=bench VALIDATE_KEYS_ON_STARTUP=false GEMINI_BASE_URL="http://127.0.0.1:$UPSTREAM_PORT" \
      PORT=$1 HOST=127.0.0.1 FAKE_STREAMING=false RANDOM_STRING=false ENABLE_STORAGE=false WORKERS=$WORKERS \
      REDIS_URL=${2:-} RUST_LOG=warn "$hajimi_bin" >>"$work/replica-$1.log" 2>&1 & pids+=($!)
    wait_for "http://127.0.0.1:$1/health"
  }
  start_replica "$single_port"
  start_replica "$PROXY_PORT" "redis://127.0.0.1:$redis_port/0"
  start_replica "$second_port" "redis://127.0.0.1:$redis_port/0"
  sleep 1.5
  for round in 1 2; do
    line=$(run "http://127.0.0.1:$single_port/v1/chat/completions" "$work/openai.json" "single node (no Redis)" 32 bench)
    echo "$line"; single=$(awk -v a="$single" -v b="$(rps_of "$line")" 'BEGIN { print a + b }')
    line=$(run "$proxy_url" "$work/openai.json" "replica 1 of 2, sharing Redis" 32 bench)
    echo "$line"; shared=$(awk -v a="$shared" -v b="$(rps_of "$line")" 'BEGIN { print a + b }')
  done
  # Both at once, 16 connections each (the machine's cores are shared).
  run "http://127.0.0.1:$second_port/v1/chat/completions" "$work/openai.json" "both: replica 2" 16 bench >"$work/both-b.txt" &
  other=$!
  line=$(run "$proxy_url" "$work/openai.json" "both: replica 1" 16 bench)
  wait "$other"
  echo "$line"; cat "$work/both-b.txt"
  both_a=$(rps_of "$line"); both_b=$(rps_of "$(cat "$work/both-b.txt")")
  echo "--- replicas (non-stream chat, WORKERS=$WORKERS each, $DURATION per run, two rounds) ---"
  echo "replica sharing Redis / single node: $(awk -v a="$shared" -v b="$single" 'BEGIN { printf "%.2f", a / b }')"
  echo "two replicas together / single node: $(awk -v a="$both_a" -v c="$both_b" -v b="$single" 'BEGIN { printf "%.2f", 2 * (a + c) / b }')"
  echo "keys in Redis after the run: $(redis-cli -p "$redis_port" dbsize)"
}
if [[ $REPLICAS == true ]]; then
  bench_replicas
  exit 0
fi

echo "startup to first /health 200 with 20 keys: $(GEMINI_API_KEYS=$(keys 20) PASSWORD=bench VALIDATE_KEYS_ON_STARTUP=false \
  PORT=$PROXY_PORT HOST=127.0.0.1 ENABLE_STORAGE=false GEMINI_BASE_URL="http://127.0.0.1:$UPSTREAM_PORT" \
  startup_ms "$hajimi_bin") ms (median of 5)"
GEMINI_API_KEYS=$(keys 20) PASSWORD=bench VALIDATE_KEYS_ON_STARTUP=false GEMINI_BASE_URL="http://127.0.0.1:$UPSTREAM_PORT" \
  PORT=$PROXY_PORT HOST=127.0.0.1 FAKE_STREAMING=false RANDOM_STRING=false ENABLE_STORAGE=false WORKERS=$WORKERS \
  RUST_LOG=info "$hajimi_bin" >"$work/proxy.log" 2>&1 & proxy=$!; pids+=($proxy)
wait_for "http://127.0.0.1:$PROXY_PORT/health"
sleep 1
idle_rss=$(awk '/VmRSS/ {print $2, $3}' /proc/$proxy/status)
echo "idle RSS with 20 keys: $idle_rss"
start_nginx
# The bare hops (one thread each, like WORKERS=1).
for stack in actix hyper; do
  port=$ACTIX_HOP_PORT; [[ $stack == hyper ]] && port=$HYPER_HOP_PORT
  STACK=$stack PORT=$port UPSTREAM="http://127.0.0.1:$UPSTREAM_PORT" "$bin"/examples/bare_proxy & pids+=($!)
  wait_for "http://127.0.0.1:$port/v1beta/models"
done

gemini_path="/v1beta/models/gemini-2.5-flash"
direct="http://127.0.0.1:$UPSTREAM_PORT$gemini_path:generateContent"
direct_stream="http://127.0.0.1:$UPSTREAM_PORT$gemini_path:streamGenerateContent?alt=sse"
hop="http://127.0.0.1:$NGINX_PORT$gemini_path:generateContent"
hop_stream="http://127.0.0.1:$NGINX_PORT$gemini_path:streamGenerateContent?alt=sse"
actix_hop="http://127.0.0.1:$ACTIX_HOP_PORT$gemini_path:generateContent"
actix_hop_stream="http://127.0.0.1:$ACTIX_HOP_PORT$gemini_path:streamGenerateContent?alt=sse"
hyper_hop="http://127.0.0.1:$HYPER_HOP_PORT$gemini_path:generateContent"
hyper_hop_stream="http://127.0.0.1:$HYPER_HOP_PORT$gemini_path:streamGenerateContent?alt=sse"
key=AIzaBench000000000000000000000000000000
# url|body|label|client key, in order.
rows=(
  "$direct|gemini.json|direct non-stream|$key"
  "$hop|gemini.json|nginx hop non-stream|$key"
  "$actix_hop|gemini.json|bare actix-web+awc hop non-stream|$key"
  "$hyper_hop|gemini.json|bare hyper hop non-stream|$key"
  "$proxy_url|openai.json|proxy non-stream|bench"
  "$direct_stream|gemini.json|direct stream|$key"
  "$hop_stream|gemini.json|nginx hop stream|$key"
  "$actix_hop_stream|gemini.json|bare actix-web+awc hop stream|$key"
  "$hyper_hop_stream|gemini.json|bare hyper hop stream|$key"
  "$proxy_url|openai-stream.json|proxy stream (real)|bench"
  "$messages_url|messages-stream.json|proxy Messages stream|bench"
  "$responses_url|responses-stream.json|proxy Responses stream|bench"
)
run_row() { # row connections
  local url body label client
  IFS='|' read -r url body label client <<<"$1"
  run "$url" "$work/$body" "$label" "$2" "$client"
}
# c=1 once (its p50s are what is read), then c=32 in ROUNDS rounds (2 by
# default), every other one in reverse order: the machine drifts over a
# run, and a ratio of two rows taken minutes apart would carry that drift
# (it moved the direct and nginx rows by 40% between two runs on a shared
# machine). The summary reads each row's mean.
for row in "${rows[@]}"; do run_row "$row" 1; done
for round in $(seq "${ROUNDS:-2}"); do
  order=("${rows[@]}")
  if ((round % 2 == 0)); then
    order=()
    for ((i = ${#rows[@]} - 1; i >= 0; i--)); do order+=("${rows[i]}"); done
  fi
  for row in "${order[@]}"; do run_row "$row" 32; done
done
for row in "${!SEEN[@]}"; do
  RPS[$row]=$(awk -v seen="${SEEN[$row]}" 'BEGIN { n = split(seen, x, " "); for (i = 1; i <= n; i++) s += x[i]; printf "%.0f", s / n }')
done
load_rss=$(awk '/VmRSS/ {print $2, $3}' /proc/$proxy/status)
echo "RSS after load: $load_rss"
kill $proxy; wait $proxy 2>/dev/null || true

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
own_us() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.1f", 1e6 / a - 1e6 / b; else print "n/a" }'; }
added_us() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (a - b) * 1000 }'; }
echo "--- summary (proxy = hajimi, WORKERS=$WORKERS, $DURATION per run, c=32 rows: the mean of ${ROUNDS:-2} rounds) ---"
echo "hajimi / nginx hop (non-stream, c=32): $(ratio "${RPS[proxy non-stream 32]}" "${RPS[nginx hop non-stream 32]}")"
echo "hajimi / direct (non-stream, c=32): $(ratio "${RPS[proxy non-stream 32]}" "${RPS[direct non-stream 32]}")"
echo "hajimi / nginx hop (stream, c=32): $(ratio "${RPS[proxy stream (real) 32]}" "${RPS[nginx hop stream 32]}")"
echo "hajimi / direct (stream, c=32): $(ratio "${RPS[proxy stream (real) 32]}" "${RPS[direct stream 32]}")"
echo "bare actix-web+awc hop / nginx hop (c=32): non-stream $(ratio "${RPS[bare actix-web+awc hop non-stream 32]}" "${RPS[nginx hop non-stream 32]}")," \
  "stream $(ratio "${RPS[bare actix-web+awc hop stream 32]}" "${RPS[nginx hop stream 32]}")" \
  "(hyper: $(ratio "${RPS[bare hyper hop non-stream 32]}" "${RPS[nginx hop non-stream 32]}"), $(ratio "${RPS[bare hyper hop stream 32]}" "${RPS[nginx hop stream 32]}"))"
echo "hajimi / bare actix-web+awc hop (c=32): non-stream $(ratio "${RPS[proxy non-stream 32]}" "${RPS[bare actix-web+awc hop non-stream 32]}")," \
  "stream $(ratio "${RPS[proxy stream (real) 32]}" "${RPS[bare actix-web+awc hop stream 32]}")"
echo "hajimi's own work per request (c=32, 1/hajimi - 1/bare actix-web+awc hop): non-stream" \
  "$(own_us "${RPS[proxy non-stream 32]}" "${RPS[bare actix-web+awc hop non-stream 32]}") µs," \
  "stream $(own_us "${RPS[proxy stream (real) 32]}" "${RPS[bare actix-web+awc hop stream 32]}") µs"
echo "Messages stream / chat stream (c=32): $(ratio "${RPS[proxy Messages stream 32]}" "${RPS[proxy stream (real) 32]}")"
echo "Responses stream / chat stream (c=32): $(ratio "${RPS[proxy Responses stream 32]}" "${RPS[proxy stream (real) 32]}")"
# The target is under 100 µs (SPEC §14); the hops' own figures say how
# much of it the machine and the HTTP stack take before hajimi's work.
echo "added p50 at c=1: hajimi - direct = $(added_us "${P50[proxy non-stream 1]}" "${P50[direct non-stream 1]}") µs" \
  "(nginx hop: $(added_us "${P50[nginx hop non-stream 1]}" "${P50[direct non-stream 1]}") µs," \
  "bare actix-web+awc hop: $(added_us "${P50[bare actix-web+awc hop non-stream 1]}" "${P50[direct non-stream 1]}") µs)"
echo "added p50 at c=1 (stream): hajimi - direct = $(added_us "${P50[proxy stream (real) 1]}" "${P50[direct stream 1]}") µs" \
  "(nginx hop: $(added_us "${P50[nginx hop stream 1]}" "${P50[direct stream 1]}") µs," \
  "bare actix-web+awc hop: $(added_us "${P50[bare actix-web+awc hop stream 1]}" "${P50[direct stream 1]}") µs)"
echo "hajimi RSS: idle $idle_rss, after load $load_rss"
# Rows whose rounds differ by more than 10%: their ratios are less sure.
drift=""
for row in "${rows[@]}"; do
  IFS='|' read -r _ _ label _ <<<"$row"
  spread=$(awk -v seen="${SEEN[$label 32]}" 'BEGIN { n = split(seen, x, " "); lo = hi = x[1]
    for (i = 2; i <= n; i++) { if (x[i] < lo) lo = x[i]; if (x[i] > hi) hi = x[i] }
    if (hi > lo * 1.1) print lo "-" hi }')
  [[ -z $spread ]] || drift+="${drift:+; }$label $spread"
done
echo "rounds differing by more than 10% (req/s): ${drift:-none}"
echo "---"

# Per-event stream latency: an upstream writing 50 time-stamped events
# 20 ms apart; the delay from each write to its arrival at the client.
STAMP_PORT=$((UPSTREAM_PORT + 1))
PORT=$STAMP_PORT STAMPED_EVENTS=50 STREAM_EVENT_GAP_MS=20 "$bin"/examples/static_upstream >/dev/null 2>&1 & pids+=($!)
wait_for "http://127.0.0.1:$STAMP_PORT/v1beta/models"
GEMINI_API_KEYS=$(keys 20) PASSWORD=bench VALIDATE_KEYS_ON_STARTUP=false GEMINI_BASE_URL="http://127.0.0.1:$STAMP_PORT" \
  PORT=$PROXY_PORT HOST=127.0.0.1 FAKE_STREAMING=false RANDOM_STRING=false ENABLE_STORAGE=false WORKERS=$WORKERS \
  RUST_LOG=warn "$hajimi_bin" >"$work/proxy-stamp.log" 2>&1 & proxy=$!; pids+=($proxy)
wait_for "http://127.0.0.1:$PROXY_PORT/health"
DIRECT_URL="http://127.0.0.1:$STAMP_PORT/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse" \
  URL="$proxy_url" STREAMS=10 "$bin"/examples/stream_latency
kill $proxy; wait $proxy 2>/dev/null || true

# 100,000 keys do not fit in one environment variable (Linux caps one at
# 128 KiB): they go in a config file, as an operator would do.
printf 'gemini_api_keys = "%s"\n' "$(keys 100000)" >"$work/keys.toml"
echo "startup to first /health 200 with 100,000 keys: $(PASSWORD=bench VALIDATE_KEYS_ON_STARTUP=false \
  PORT=$PROXY_PORT HOST=127.0.0.1 ENABLE_STORAGE=false GEMINI_BASE_URL="http://127.0.0.1:$UPSTREAM_PORT" RUST_LOG=warn \
  startup_ms "$hajimi_bin" --config "$work/keys.toml") ms (median of 5)"
PASSWORD=bench GEMINI_BASE_URL="http://127.0.0.1:$UPSTREAM_PORT" VALIDATE_KEYS_ON_STARTUP=false \
  PORT=$PROXY_PORT HOST=127.0.0.1 ENABLE_STORAGE=false WORKERS=1 RUST_LOG=warn \
  "$hajimi_bin" --config "$work/keys.toml" >"$work/proxy2.log" 2>&1 & proxy=$!; pids+=($proxy)
wait_for "http://127.0.0.1:$PROXY_PORT/health"
sleep 1
echo "idle RSS with 100,000 keys: $(awk '/VmRSS/ {print $2, $3}' /proc/$proxy/status)"
