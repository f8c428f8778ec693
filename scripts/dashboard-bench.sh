#!/usr/bin/env bash
# Dashboard at scale (issue: usable at 100,000 keys): starts the release
# binary with 100,000 keys (config file) and storage in a temp dir, logs in,
# times every page (median of 20 requests, loopback, so time to first byte
# is server time), times a bulk add of another 100,000 keys through the form
# while chat requests keep being answered, and reports RSS. Loopback only;
# bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

UPSTREAM_PORT=${UPSTREAM_PORT:-9120}
PROXY_PORT=${PROXY_PORT:-9220}
KEYS=${KEYS:-100000}

cargo build --release --locked --bin hajimi --example static_upstream 2>&1 | tail -1
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 2000); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.01; done; echo "timeout: $1"; return 1; }

PORT=$UPSTREAM_PORT WORKERS=1 target/release/examples/static_upstream >/dev/null 2>&1 & pids+=($!)
wait_for "http://127.0.0.1:$UPSTREAM_PORT/v1beta/models"
python3 -c "import sys; print('gemini_api_keys = \"' + ','.join('AIzaBench%030d' % i for i in range(int(sys.argv[1]))) + '\"')" "$KEYS" >"$work/keys.toml"
PASSWORD=bench-api-key WEB_PASSWORD=bench-dashboard VALIDATE_KEYS_ON_STARTUP=false STORAGE_DIR="$work/data" \
  GEMINI_BASE_URL="http://127.0.0.1:$UPSTREAM_PORT" PORT=$PROXY_PORT HOST=127.0.0.1 RANDOM_STRING=false \
  MAX_REQUESTS_PER_MINUTE=0 MAX_REQUESTS_PER_DAY_PER_IP=0 RUST_LOG=warn \
  target/release/hajimi --config "$work/keys.toml" >"$work/hajimi.log" 2>&1 & proxy=$!; pids+=($proxy)
wait_for "http://127.0.0.1:$PROXY_PORT/ready"
echo "RSS with $KEYS keys, before the dashboard is used: $(awk '/VmRSS/ {print $2, $3}' /proc/$proxy/status)"

python3 - "$PROXY_PORT" "$proxy" "$KEYS" <<'PY'
import http.client, re, statistics, sys, threading, time, urllib.parse
port, pid, keys = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def request(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request(method, path, body=body, headers=headers or {})
    started = time.perf_counter()
    response = conn.getresponse()
    first_byte = time.perf_counter() - started
    data = response.read()
    conn.close()
    return response, data, first_byte
response, page, _ = request("GET", "/login")
login_cookie = re.search(r"hajimi_login=([0-9a-f]+)", response.getheader("set-cookie")).group(1)
csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', page).group(1).decode()
form = urllib.parse.urlencode({"csrf": csrf, "password": "bench-dashboard"})
response, _, _ = request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"hajimi_login={login_cookie}"})
session = re.search(r"hajimi_session=([0-9a-f]+)", response.getheader("set-cookie")).group(1)
cookie = {"Cookie": f"hajimi_session={session}"}
_, page, _ = request("GET", "/keys", headers=cookie)
csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', page).group(1).decode()
for path in ["/", "/keys", f"/keys?page={keys // 50}", "/keys?q=9999", "/keys?state=invalid", "/settings", "/vertex", "/log"]:
    times = []
    for _ in range(20):
        response, _, first_byte = request("GET", path, headers=cookie)
        assert response.status == 200, (path, response.status)
        times.append(first_byte * 1000)
    print(f"GET {path:<28} median {statistics.median(times):6.1f} ms  max {max(times):6.1f} ms")
# Bulk add of as many keys again, while chat requests keep being answered.
pasted = "\n".join("AIzaMore%031d" % i for i in range(keys))
chat_times, stop = [], threading.Event()
def chat():
    body = '{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"Hello"}]}'
    while not stop.is_set():
        response, _, first_byte = request("POST", "/v1/chat/completions", body, {"Authorization": "Bearer bench-api-key", "Content-Type": "application/json"})
        chat_times.append((first_byte * 1000, response.status))
chatter = threading.Thread(target=chat); chatter.start()
started = time.perf_counter()
response, _, _ = request("POST", "/keys/add", urllib.parse.urlencode({"csrf": csrf, "keys": pasted}), {**cookie, "Content-Type": "application/x-www-form-urlencoded"})
elapsed = time.perf_counter() - started
time.sleep(0.5); stop.set(); chatter.join()
worst = max(t for t, _ in chat_times) if chat_times else 0
statuses = sorted({s for _, s in chat_times})
print(f"bulk add of {keys} keys: HTTP {response.status} in {elapsed:.2f} s; meanwhile {len(chat_times)} chat requests, statuses {statuses}, slowest {worst:.1f} ms")
with open(f"/proc/{pid}/status") as status:
    print("RSS after the dashboard was used:", next(line.split(None, 1)[1].strip() for line in status if line.startswith("VmRSS")))
PY
