#!/usr/bin/env bash
# Checks a static hajimi binary: `file`/`ldd` say it is static, and in a
# throwaway root that holds nothing but the binary, /etc/hosts and
# /etc/resolv.conf it starts, resolves an upstream host name from that
# /etc/hosts, serves a chat request through it, and answers its own
# healthcheck. Needs root (chroot); prints `N passed, N failed` last.
#
#   scripts/static-check.sh target/x86_64-unknown-linux-musl/release/hajimi
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${1:?usage: static-check.sh PATH_TO_STATIC_BINARY}
source scripts/checks.sh
command -v file >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq file; } >/dev/null

description=$(file -L "$BIN")
echo "$description"
check "file: statically linked" grep -Eq 'statically linked|static-pie linked' <<<"$description"
linked=$(ldd "$BIN" 2>&1 || true)
echo "ldd: $linked"
check "ldd: no shared library" grep -Eq 'not a dynamic executable|statically linked' <<<"$linked"
size=$(stat -c %s "$BIN")
echo "size: $size bytes ($(( (size + 524288) / 1048576 )) MiB)"

if [[ $(id -u) != 0 ]]; then
    echo "not root: the chroot test is skipped"
    summary
    exit
fi

root=$(mktemp -d)
upstream_log=$(mktemp)
cleanup() {
    [[ -n ${hajimi_pid:-} ]] && kill "$hajimi_pid" 2>/dev/null || true
    [[ -n ${upstream_pid:-} ]] && kill "$upstream_pid" 2>/dev/null || true
    rm -rf "$root" "$upstream_log"
}
trap cleanup EXIT
mkdir -p "$root/etc" "$root/data"
cp "$BIN" "$root/hajimi"
printf '127.0.0.1 localhost\n127.0.0.1 upstream.hajimi.test\n' >"$root/etc/hosts"
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$root/etc/resolv.conf"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
upstream_port=$(free_port)
hajimi_port=$(free_port)
# A fake Gemini upstream on the host's loopback: any POST gets a recorded answer.
python3 - "$upstream_port" "tests/it/fixtures/gemini/response-text.json" >"$upstream_log" 2>&1 <<'PY' &
import http.server, sys
port, answer = int(sys.argv[1]), open(sys.argv[2], "rb").read()
class Upstream(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer))); self.end_headers(); self.wfile.write(answer)
    def do_GET(self):
        self.send_response(404); self.end_headers()
http.server.HTTPServer(("127.0.0.1", port), Upstream).serve_forever()
PY
upstream_pid=$!

env -i PASSWORD=static-check GEMINI_API_KEYS="AIzaStaticCheckKey000000000000000000000" \
    GEMINI_BASE_URL="http://upstream.hajimi.test:$upstream_port" HOST=127.0.0.1 PORT="$hajimi_port" \
    STORAGE_DIR=/data FAKE_STREAMING=false RUST_LOG=${STATIC_CHECK_LOG:-warn} \
    "$(command -v chroot)" "$root" /hajimi &
hajimi_pid=$!
for _ in $(seq 50); do
    chroot "$root" /hajimi healthcheck --port "$hajimi_port" 2>/dev/null && break
    sleep 0.2
done
check "healthcheck inside the empty root" chroot "$root" /hajimi healthcheck --port "$hajimi_port"
answer=$(python3 - "$hajimi_port" <<'PY'
import json, sys, urllib.error, urllib.request
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/chat/completions",
    data=json.dumps({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hi"}]}).encode(),
    headers={"authorization": "Bearer static-check", "content-type": "application/json"})
try:
    print(json.load(urllib.request.urlopen(request, timeout=20))["choices"][0]["message"]["content"])
except urllib.error.HTTPError as error:
    print(f"request failed: {error}: {error.read().decode(errors='replace')}")
except Exception as error:
    print(f"request failed: {error}")
PY
)
echo "answer: $answer"
check "a chat answer through upstream.hajimi.test (resolved from the root's /etc/hosts)" grep -q "How can I help" <<<"$answer"
check "the root's /data holds the store" test -e "$root/data/hajimi.db"
summary
