#!/usr/bin/env bash
# Hostile request bodies against the release binary (issue: bounded memory
# and connections). Sends BODIES concurrent large chat bodies (default 8 × BODY_MB=60)
# and reports each status and hajimi's peak RSS; then trickles a body one
# byte every 200 ms and reports when the connection is answered. Loopback
# only; every step is bounded in time. HAJIMI_BIN runs another build.
# KIND picks the body: text (a chat message of BODY_MB, the default),
# image (a chat data-URL image), messages (an Anthropic base64 image) or
# responses (a Responses input_image data URL, `store: false`) or
# responses-stored (the same, stored as by default). TRICKLE=0 skips the
# trickled body.
set -euo pipefail
cd "$(dirname "$0")/.."

UPSTREAM_PORT=${UPSTREAM_PORT:-9110}
PROXY_PORT=${PROXY_PORT:-9210}
BODIES=${BODIES:-8}
BODY_MB=${BODY_MB:-60}
KIND=${KIND:-text}
TRICKLE=${TRICKLE:-1}

cargo build --release --locked --bin hajimi --example static_upstream 2>&1 | tail -1
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 1000); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.005; done; echo "timeout: $1"; return 1; }

PORT=$UPSTREAM_PORT WORKERS=1 target/release/examples/static_upstream >/dev/null 2>&1 & pids+=($!)
wait_for "http://127.0.0.1:$UPSTREAM_PORT/v1beta/models"
GEMINI_API_KEYS=AIzaBench000000000000000000000000000000 PASSWORD=bench VALIDATE_KEYS_ON_STARTUP=false \
  GEMINI_BASE_URL="http://127.0.0.1:$UPSTREAM_PORT" PORT=$PROXY_PORT HOST=127.0.0.1 ENABLE_STORAGE=false \
  MAX_REQUESTS_PER_MINUTE=0 MAX_REQUESTS_PER_DAY_PER_IP=0 PUBLIC_MODE=true RANDOM_STRING=false \
  REQUEST_BODY_TIMEOUT="${REQUEST_BODY_TIMEOUT:-10}" RUST_LOG=warn "${HAJIMI_BIN:-target/release/hajimi}" >/dev/null 2>&1 & proxy=$!; pids+=($proxy)
wait_for "http://127.0.0.1:$PROXY_PORT/health"
echo "idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$proxy/status)"

python3 - "$PROXY_PORT" "$proxy" "$BODIES" "$BODY_MB" "$KIND" "$TRICKLE" <<'PY'
import base64, json, os, socket, sys, threading, time
port, pid, bodies, body_mb, kind = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
peak = [0]
stop = threading.Event()
def sample():
    while not stop.is_set():
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS"):
                    peak[0] = max(peak[0], int(line.split()[1]))
        time.sleep(0.01)
sampler = threading.Thread(target=sample); sampler.start()
size = body_mb * 1024 * 1024
filler = "x" * size if kind == "text" else base64.b64encode(os.urandom(size // 4 * 3)).decode()
path = {"messages": "/v1/messages", "responses": "/v1/responses", "responses-stored": "/v1/responses"}.get(
    kind, "/v1/chat/completions")
def body(n):
    if kind == "messages":
        return json.dumps({"model": "gemini-2.5-flash", "max_tokens": 100, "system": f"client {n}", "messages": [
            {"role": "user", "content": [{"type": "image", "source": {
                "type": "base64", "media_type": "image/png", "data": filler}}]}]}).encode()
    if kind in ("responses", "responses-stored"):
        store = kind == "responses-stored"
        return json.dumps({"model": "gemini-2.5-flash", "store": store, "instructions": f"client {n}", "input": [
            {"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64," + filler}]}]}).encode()
    content = filler if kind == "text" else [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + filler}}]
    return json.dumps({"model": "gemini-2.5-flash", "messages": [
        {"role": "system", "content": f"client {n}"}, {"role": "user", "content": content}]}).encode()
statuses = [None] * bodies
def send(n):
    payload = body(n)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bench\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode())
            try:
                conn.sendall(payload)
            except OSError:
                pass  # refused early: the answer is already waiting
            statuses[n] = conn.recv(64).split(b" ")[1].decode()
    except OSError as error:
        statuses[n] = f"error {error}"
threads = [threading.Thread(target=send, args=(n,)) for n in range(bodies)]
started = time.time()
for thread in threads: thread.start()
for thread in threads: thread.join()
time.sleep(0.5)
stop.set(); sampler.join()
with open(f"/proc/{pid}/status") as status:
    high_water = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
print(f"{bodies} concurrent {body_mb} MB {kind} bodies: statuses {sorted(statuses)} in {time.time() - started:.1f} s; "
      f"peak RSS {peak[0] / 1024:.0f} MB sampled, {high_water / 1024:.0f} MB high-water mark")

# A body trickled one byte every 200 ms (TRICKLE=0 leaves it out).
if sys.argv[6] == "0":
    sys.exit(0)
with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
    conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bench\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    started = time.time()
    conn.settimeout(0.2)
    answer = b""
    while time.time() - started < 120 and not answer:
        try:
            conn.sendall(b" ")
        except OSError:
            pass
        try:
            answer = conn.recv(64)
        except socket.timeout:
            pass
    print(f"trickled body answered {answer.split(b' ')[1].decode() if answer else 'never'} after {time.time() - started:.1f} s")
PY
echo "RSS afterwards: $(awk '/VmRSS/ {print $2, $3}' /proc/$proxy/status)"
