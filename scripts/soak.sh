#!/usr/bin/env bash
# Soak run: DURATION (default 600 s; `DURATION=60`, `90s` or `10m` also do)
# of mixed traffic against the release hajimi in front of the static
# upstream (examples/static_upstream), from CLIENTS (default 16) python
# client threads (standard library only):
#   chat        non-stream chat; the answer must be JSON with the fixture's
#               text in choices[0].message.content
#   stream      real stream (FAKE_STREAMING=false); every `data:` line JSON,
#               the deltas add up to the fixture's text, last `data: [DONE]`
#   error       `[EXPRESS] …` models, routed to a tiny python upstream on
#               ERROR_PORT that answers Google's recorded 500 INTERNAL
#               (gemini-2.5-flash: hajimi retries, cools the key 2 s, then
#               5xx, or 429 while every Express key cools) or 400
#               INVALID_ARGUMENT (gemini-2.5-pro); stream and non-stream in
#               turn; the answer must be an error status with a JSON `error`
#               object. (No bare 429s: a storm of them backs the whole
#               Express pool off, and almost every error request would then
#               be refused locally without reaching the upstream.)
#   disconnect  a raw socket asks for a stream, reads up to the first
#               `data:` and closes (every other one with a reset); every
#               fourth one instead abandons a retrying 500 request after 0.5 s
# hajimi's RSS (and open fds) is sampled every second and printed every
# 30 s. After the warm-up (the first 60 s, or the first 20% of DURATION
# if shorter) it fails if RSS at the end is more than 10% over the value at
# the end of the warm-up, or if any answer was malformed, or if hajimi is
# no longer alive (process and /health). Last line: `N passed, N failed`.
#
# Loopback only; every loop is bounded by DURATION (each request by a 60 s
# timeout). Binaries come from ${CARGO_TARGET_DIR:-target}/release.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-600}
CLIENTS=${CLIENTS:-16}
UPSTREAM_PORT=${UPSTREAM_PORT:-9120}
ERROR_PORT=${ERROR_PORT:-9121}
PROXY_PORT=${PROXY_PORT:-9220}
STREAM_EVENT_GAP_MS=${STREAM_EVENT_GAP_MS:-5} # so a disconnect lands mid-stream
bin="${CARGO_TARGET_DIR:-target}/release"
# HAJIMI_BIN soaks another build of hajimi (e.g. the one before a change).
hajimi_bin="${HAJIMI_BIN:-$bin/hajimi}"

case $DURATION in
  *m) seconds=$(( ${DURATION%m} * 60 )) ;;
  *s) seconds=${DURATION%s} ;;
  *) seconds=$DURATION ;;
esac
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 5 ]] || { echo "DURATION must be at least 5 seconds: $DURATION"; exit 2; }

cargo build --release --locked --bin hajimi --example static_upstream 2>&1 | tail -1

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_for() { for _ in $(seq 1 1000); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.005; done; echo "timeout: $1"; return 1; }
keys() { # n valid-looking keys (39 characters: a 9-character prefix)
  python3 -c "import sys; print(','.join(sys.argv[2] + '%030d' % i for i in range(int(sys.argv[1]))))" "$1" "$2"
}

# Upstream errors: Google's recorded error bodies, chosen by model name.
cat >"$work/error_upstream.py" <<'PY'
import http.server, os, sys
fixtures = sys.argv[2]
def load(name):
    with open(os.path.join(fixtures, name), "rb") as file:
        return file.read()
answers = {  # model in the path -> (status, body); most specific first
    "gemini-2.5-pro:": (400, load("error-400-client-invalid-argument.json")),
    "": (500, load("error-500-internal.json")),
}
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def answer(self, status, body):
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.answer(*next(answer for model, answer in answers.items() if model in self.path))
    def do_GET(self):
        self.answer(200, b'{"models":[]}')
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
PY

cat >"$work/soak.py" <<'PY'
import http.client, json, os, socket, struct, sys, threading, time

port, pid, duration, clients = (int(os.environ[name]) for name in ("PROXY_PORT", "HAJIMI_PID", "SOAK_SECONDS", "CLIENTS"))
warmup = min(60.0, duration * 0.2)
EXPECTED = "Hello! How can I help you today?"
HEADERS = {"Authorization": "Bearer soak", "Content-Type": "application/json"}
ERROR_MODELS = ["[EXPRESS] gemini-2.5-flash", "[EXPRESS] gemini-2.5-pro"]

lock = threading.Lock()
counts = {}        # kind -> answers
statuses = {}      # (kind, status) -> answers
malformed = []     # (kind, reason)
transport = {}     # kind -> exceptions (client side: timeouts, resets)
started = time.monotonic()
deadline = started + duration
serial = [0]

def count(kind, status):
    with lock:
        counts[kind] = counts.get(kind, 0) + 1
        statuses[(kind, status)] = statuses.get((kind, status), 0) + 1

def bad(kind, reason):
    with lock:
        malformed.append((kind, reason[:300]))

def body(model, stream):
    with lock:
        serial[0] += 1
        n = serial[0]
    return json.dumps({"model": model, "stream": stream, "messages": [
        {"role": "system", "content": "You are terse."}, {"role": "user", "content": f"Hello {n}"}]})

def check_error(kind, status, raw):
    try:
        error = json.loads(raw)["error"]
        assert isinstance(error, dict) and isinstance(error.get("message"), str), "no error.message"
    except Exception as e:
        bad(kind, f"status {status}, error body not JSON with error.message ({e}): {raw[:200]!r}")

# chat and stream must succeed: an error answer to them counts as malformed.
def check_chat(kind, status, raw):
    if status != 200:
        return bad(kind, f"status {status}: {raw[:200]!r}")
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
        assert content == EXPECTED, f"content {content!r}"
    except Exception as e:
        bad(kind, f"non-stream answer ({e!r}): {raw[:200]!r}")

def check_stream(kind, status, raw):
    if status != 200:
        return bad(kind, f"status {status}: {raw[:200]!r}")
    text = raw.decode("utf-8", "replace")
    data = [line[5:].strip() for line in text.split("\n") if line.startswith("data:")]
    try:
        assert data and data[-1] == "[DONE]", "does not end with data: [DONE]"
        pieces = []
        for payload in data[:-1]:
            chunk = json.loads(payload)
            for choice in chunk.get("choices", []):
                pieces.append((choice.get("delta") or {}).get("content") or "")
        assert "".join(pieces) == EXPECTED, f"deltas add up to {''.join(pieces)!r}"
    except Exception as e:
        bad(kind, f"stream ({e!r}): {text[:200]!r}")

def post(connection, payload):
    connection.request("POST", "/v1/chat/completions", payload, HEADERS)
    response = connection.getresponse()
    return response.status, response.read()

def client(kind, index):
    connection = None
    turn = index
    while time.monotonic() < deadline:
        turn += 1
        try:
            if kind == "disconnect":
                disconnect(turn)
                continue
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            if kind == "chat":
                status, raw = post(connection, body("gemini-2.5-flash", False))
                count(kind, status); check_chat(kind, status, raw)
            elif kind == "stream":
                status, raw = post(connection, body("gemini-2.5-flash", True))
                count(kind, status); check_stream(kind, status, raw)
            else:  # error
                model, stream = ERROR_MODELS[turn % 2], (turn // 2) % 2 == 1
                status, raw = post(connection, body(model, stream))
                count(kind, status)
                if status < 400:
                    bad(kind, f"{model} stream={stream}: status {status}, wanted an error: {raw[:200]!r}")
                else:
                    check_error(kind, status, raw)
        except Exception as e:
            with lock:
                transport[kind] = transport.get(kind, 0) + 1
            if kind != "disconnect":
                bad(kind, f"transport: {e!r}")
            if connection is not None:
                connection.close()
            connection = None
            time.sleep(0.05)

def disconnect(turn):
    abandon = turn % 4 == 0
    payload = body("[EXPRESS] gemini-2.5-flash" if abandon else "gemini-2.5-flash", not abandon).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer soak\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(payload)) + payload
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        if abandon:  # hajimi is retrying a 500: the client goes away meanwhile
            time.sleep(0.5)
            count("abandoned", 0)
        else:
            seen = b""
            while b"data:" not in seen and len(seen) < 65536:
                piece = sock.recv(4096)
                if not piece:
                    break
                seen += piece
            count("disconnect", 200 if seen.startswith(b"HTTP/1.1 200") else 0)
            if not seen.startswith(b"HTTP/1.1 200") or b"data:" not in seen:
                bad("disconnect", f"first bytes of a stream: {seen[:200]!r}")
        if turn % 2:  # half of them reset instead of closing
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

def sample():
    try:
        with open(f"/proc/{pid}/status") as file:
            rss = next(int(line.split()[1]) for line in file if line.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None, None

# Any prefix is a fair mix; 16 clients: 6 chat, 5 stream, 3 disconnect, 2 error.
pattern = ["chat", "stream", "disconnect", "chat", "stream", "error", "chat", "stream",
           "disconnect", "chat", "stream", "error", "chat", "stream", "disconnect", "chat"]
threads = [threading.Thread(target=client, args=(pattern[i % 16], i), daemon=True) for i in range(clients)]
for thread in threads:
    thread.start()

warm_rss = warm_fds = None
rss_max = end_rss = end_fds = 0
next_print = 30.0
while True:
    now = time.monotonic()
    elapsed = now - started
    rss, fds = sample()
    if rss is None:
        print(f"t={elapsed:5.0f}s hajimi is gone", flush=True)
        break
    end_rss, end_fds, rss_max = rss, fds, max(rss_max, rss)
    if warm_rss is None and elapsed >= warmup:
        warm_rss, warm_fds = rss, fds
        print(f"t={elapsed:5.0f}s warm-up over: RSS {rss} kB, {fds} fds", flush=True)
    if elapsed >= next_print or now >= deadline:
        with lock:
            done = " ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            bad_now = len(malformed)
        print(f"t={elapsed:5.0f}s RSS {rss} kB, {fds} fds; answers: {done}; malformed {bad_now}", flush=True)
        next_print += 30.0
    if now >= deadline:
        break
    time.sleep(1.0)

for thread in threads:
    thread.join(timeout=max(0.0, deadline + 65 - time.monotonic()))
stuck = sum(thread.is_alive() for thread in threads)

alive = False
try:
    os.kill(pid, 0)
    with open(f"/proc/{pid}/stat") as file:
        state = file.read().rsplit(")", 1)[1].split()[0]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/health")
    alive = state not in ("Z", "X") and connection.getresponse().status == 200
except Exception as e:
    print(f"hajimi liveness: {e!r}")
time.sleep(2)
idle_rss, idle_fds = sample()

with open(os.environ["HAJIMI_LOG"], errors="replace") as file:
    log = file.read().splitlines()
others = [line for line in log if "upstream failure" not in line]
print(f"hajimi log: {len(log)} lines, {len(log) - len(others)} of them upstream failures; other lines (last 5):")
for line in others[-5:]:
    print(f"  {line[:200]}")
print(f"--- soak summary: {duration} s, warm-up {warmup:.0f} s, {len(threads)} clients ---")
for kind in ("chat", "stream", "error", "disconnect", "abandoned"):
    by_status = ", ".join(f"{status}: {n}" for (k, status), n in sorted(statuses.items()) if k == kind)
    print(f"{kind:<11} {counts.get(kind, 0):>8} answers ({by_status or '-'}); client-side transport errors {transport.get(kind, 0)}")
total = sum(counts.get(kind, 0) for kind in ("chat", "stream", "error"))
print(f"validated answers {total} ({total / duration:.0f}/s); malformed {len(malformed)}; threads still stuck {stuck}")
for kind, reason in malformed[:5]:
    print(f"  malformed {kind}: {reason}")
growth = (end_rss - warm_rss) / warm_rss * 100 if warm_rss else 0.0
print(f"RSS: warm-up {warm_rss} kB, end {end_rss} kB ({growth:+.1f}%), max {rss_max} kB, "
      f"idle after traffic {idle_rss} kB; fds: warm-up {warm_fds}, end {end_fds}, idle after {idle_fds}")
checks = [
    ("no malformed or unexpected answers", not malformed and stuck == 0),
    (f"RSS growth within 10% after warm-up ({growth:+.1f}%)", warm_rss is not None and growth <= 10.0),
    ("hajimi still alive (process and /health)", alive),
]
for name, ok in checks:
    print(f"{'ok  ' if ok else 'FAIL'} {name}")
passed = sum(ok for _, ok in checks)
print(f"{passed} passed, {len(checks) - passed} failed", flush=True)
sys.exit(0 if passed == len(checks) else 1)
PY

export MAX_REQUESTS_PER_MINUTE=0 MAX_REQUESTS_PER_DAY_PER_IP=0 API_KEY_DAILY_LIMIT=0

PORT=$UPSTREAM_PORT WORKERS=1 STREAM_EVENT_GAP_MS=$STREAM_EVENT_GAP_MS "$bin"/examples/static_upstream \
  >"$work/upstream.log" 2>&1 & pids+=($!)
python3 "$work/error_upstream.py" "$ERROR_PORT" tests/it/fixtures/gemini >"$work/error-upstream.log" 2>&1 & pids+=($!)
wait_for "http://127.0.0.1:$UPSTREAM_PORT/v1beta/models"
wait_for "http://127.0.0.1:$ERROR_PORT/v1beta/models"

# Storage on (in the temp dir), as deployed; MAX_RETRY_NUM=3 keeps a failing
# request to a few seconds (the default 15 would take ~25 s).
GEMINI_API_KEYS=$(keys 20 AIzaSoak0) PASSWORD=soak VALIDATE_KEYS_ON_STARTUP=false \
  GEMINI_BASE_URL="http://127.0.0.1:$UPSTREAM_PORT" \
  ENABLE_VERTEX_EXPRESS=true VERTEX_EXPRESS_API_KEY=$(keys 8 AIzaExpr0) VERTEX_BASE_URL="http://127.0.0.1:$ERROR_PORT" \
  MAX_RETRY_NUM=${MAX_RETRY_NUM:-3} PORT=$PROXY_PORT HOST=127.0.0.1 FAKE_STREAMING=false RANDOM_STRING=false \
  ENABLE_STORAGE=true STORAGE_DIR="$work/data" WORKERS=1 RUST_LOG=warn \
  "$hajimi_bin" >"$work/hajimi.log" 2>&1 & proxy=$!; pids+=($proxy)
wait_for "http://127.0.0.1:$PROXY_PORT/health"
answer=$(curl -sS -m 10 "http://127.0.0.1:$PROXY_PORT/v1/chat/completions" -H 'Authorization: Bearer soak' \
  -H 'Content-Type: application/json' -d '{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"Hello"}]}')
[[ $answer == *'"choices"'* ]] || { echo "hajimi does not answer a chat: $answer"; echo "0 passed, 1 failed"; exit 1; }
echo "hajimi pid $proxy on :$PROXY_PORT; static upstream :$UPSTREAM_PORT (event gap ${STREAM_EVENT_GAP_MS} ms); error upstream :$ERROR_PORT"

PROXY_PORT=$PROXY_PORT HAJIMI_PID=$proxy HAJIMI_LOG="$work/hajimi.log" SOAK_SECONDS=$seconds CLIENTS=$CLIENTS \
  python3 "$work/soak.py"
