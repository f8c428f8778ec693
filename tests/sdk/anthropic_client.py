"""Drive a hajimi gateway with Anthropic's official `anthropic` Python SDK.

Env: HAJIMI_BASE_URL (e.g. http://127.0.0.1:8080, no /v1), HAJIMI_PASSWORD,
and optionally HAJIMI_MODEL (default claude-sonnet-4-5, mapped by the
gateway's MODEL_ALIASES), HAJIMI_EXPECT_TEXT (a substring the text
answers must contain) and HAJIMI_MIN_STREAM_PIECES (text deltas a
stream must bring at least; default 1). The gateway's upstream must answer a request that
offers the `get_weather` tool, without a tool result yet, with a call to
it. Prints `ok NAME` or `FAIL NAME: reason` per check; exits 1 if any
check failed.
"""

import os
import sys

import anthropic

BASE_URL = os.environ["HAJIMI_BASE_URL"]
PASSWORD = os.environ["HAJIMI_PASSWORD"]
MODEL = os.environ.get("HAJIMI_MODEL", "claude-sonnet-4-5")
EXPECT_TEXT = os.environ.get("HAJIMI_EXPECT_TEXT")
# A real stream brings the text in pieces; a fake one (FAKE_STREAMING) whole.
MIN_STREAM_PIECES = int(os.environ.get("HAJIMI_MIN_STREAM_PIECES", "1"))

client = anthropic.Anthropic(base_url=BASE_URL, api_key=PASSWORD, max_retries=0, timeout=30)
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
}


def check(cond, reason):
    if not cond:
        raise AssertionError(reason)


def text_of(message):
    return "".join(block.text for block in message.content if block.type == "text")


def messages_create():
    m = client.messages.create(
        model=MODEL,
        max_tokens=256,
        system=[{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Hello"}],
        metadata={"user_id": "sdk-test"},
    )
    check(m.type == "message" and m.role == "assistant", f"not a message: {m!r}")
    check(m.model == MODEL, f"model {m.model!r}, want the one sent ({MODEL!r})")
    check(m.id.startswith("msg_"), f"id {m.id!r}")
    check(m.stop_reason == "end_turn", f"stop_reason {m.stop_reason!r}")
    check(m.usage.input_tokens > 0 and m.usage.output_tokens > 0, f"usage {m.usage!r}")
    if EXPECT_TEXT:
        check(EXPECT_TEXT in text_of(m), f"{text_of(m)!r} lacks {EXPECT_TEXT!r}")


def messages_stream():
    pieces = []
    with client.messages.stream(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        for text in stream.text_stream:
            pieces.append(text)
        final = stream.get_final_message()
    check(len(pieces) >= MIN_STREAM_PIECES, f"{len(pieces)} text piece(s), want >= {MIN_STREAM_PIECES}")
    check("".join(pieces) == text_of(final), "streamed text differs from the final message")
    check(final.stop_reason == "end_turn", f"stop_reason {final.stop_reason!r}")
    check(final.usage.output_tokens > 0, f"usage {final.usage!r}")
    if EXPECT_TEXT:
        check(EXPECT_TEXT in text_of(final), f"{text_of(final)!r} lacks {EXPECT_TEXT!r}")


def tool_use_round_trip():
    question = {"role": "user", "content": "What's the weather in Paris?"}
    first = client.messages.create(model=MODEL, max_tokens=256, tools=[WEATHER_TOOL], messages=[question])
    check(first.stop_reason == "tool_use", f"stop_reason {first.stop_reason!r}")
    calls = [block for block in first.content if block.type == "tool_use"]
    check(calls and calls[0].name == "get_weather", f"no get_weather call in {first.content!r}")
    check(calls[0].id.startswith("toolu_"), f"id {calls[0].id!r}")
    check(calls[0].input.get("city") == "Paris", f"input {calls[0].input!r}")
    results = [
        {"type": "tool_result", "tool_use_id": call.id, "content": '{"temp": 21}'} for call in calls
    ]
    second = client.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": results}],
    )
    check(second.stop_reason == "end_turn", f"stop_reason {second.stop_reason!r}")
    check(text_of(second), "no text after the tool result")


def count_tokens():
    r = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hello"}])
    check(r.input_tokens > 0, f"input_tokens {r.input_tokens!r}")


def models_list():
    ids = [m.id for m in client.models.list()]  # the pager follows has_more
    check(any(i.startswith("gemini") for i in ids), f"no gemini* in {ids}")
    check(len(ids) == len(set(ids)), "a model listed twice")


def wrong_key():
    bad = anthropic.Anthropic(base_url=BASE_URL, api_key=PASSWORD + "-wrong", max_retries=0, timeout=30)
    try:
        bad.messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "Hello"}])
    except anthropic.AuthenticationError as e:
        check(e.status_code == 401, f"status {e.status_code}")
        check(e.body["error"]["type"] == "authentication_error", f"body {e.body!r}")
        return
    raise AssertionError("no AuthenticationError")


CHECKS = [
    ("messages_create", messages_create),
    ("messages_stream", messages_stream),
    ("tool_use_round_trip", tool_use_round_trip),
    ("count_tokens", count_tokens),
    ("models_list", models_list),
    ("wrong_key_401", wrong_key),
]


def main():
    failed = 0
    for name, fn in CHECKS:
        try:
            fn()
            print(f"ok {name}", flush=True)
        except Exception as e:  # report every check, whatever went wrong
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
