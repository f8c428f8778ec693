# Sourced by scripts/bench.sh and scripts/instructions.sh: what both
# measurements must share so that their figures describe the same requests.

# Waits until URL answers 2xx (at most 30 s); fails with a message.
wait_for() { # url
  for _ in $(seq 1 3000); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.01; done
  echo "timeout: $1"; return 1
}

# N valid-looking Gemini keys, comma-separated.
keys() { # n
  python3 -c "import sys; print(','.join('AIzaBench%030d' % i for i in range(int(sys.argv[1]))))" "$1"
}

# The benchmark's request bodies, written into DIR: one chat request (a
# system prompt and "Hello") as non-stream and stream chat, and the same
# request at the two other generating doors (Anthropic Messages, OpenAI
# Responses without storing: what each door's conversion costs), plus its
# native Gemini form for the direct upstream and the forwarding hops.
write_bench_bodies() { # dir
  cat >"$1/openai.json" <<'JSON'
{"model":"gemini-2.5-flash","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Hello"}]}
JSON
  cat >"$1/openai-stream.json" <<'JSON'
{"model":"gemini-2.5-flash","stream":true,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Hello"}]}
JSON
  cat >"$1/messages-stream.json" <<'JSON'
{"model":"gemini-2.5-flash","max_tokens":256,"stream":true,"system":"You are terse.","messages":[{"role":"user","content":"Hello"}]}
JSON
  cat >"$1/responses-stream.json" <<'JSON'
{"model":"gemini-2.5-flash","stream":true,"store":false,"instructions":"You are terse.","input":"Hello"}
JSON
  cat >"$1/gemini.json" <<'JSON'
{"contents":[{"role":"user","parts":[{"text":"Hello"}]}],"systemInstruction":{"parts":[{"text":"You are terse."}]}}
JSON
}
