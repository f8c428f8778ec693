"""Drive a hajimi gateway's Responses door with OpenAI's official `openai`
Python SDK.

Env: HAJIMI_BASE_URL (e.g. http://127.0.0.1:8080), HAJIMI_PASSWORD, and
optionally HAJIMI_EXPECT_TEXT (a substring the answers must contain).
Prints `ok NAME` or `FAIL NAME: reason` per check; exits 1 if any check
failed.
"""

import json
import os
import sys

import openai

BASE_URL = os.environ["HAJIMI_BASE_URL"].rstrip("/") + "/v1"
PASSWORD = os.environ["HAJIMI_PASSWORD"]
EXPECT_TEXT = os.environ.get("HAJIMI_EXPECT_TEXT")
MODEL = "gemini-2.5-flash"
TOOL_MODEL = "gemini-3-pro-preview"
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
    {
        "type": "function",
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
]

client = openai.OpenAI(base_url=BASE_URL, api_key=PASSWORD, timeout=30, max_retries=0)


def check(cond, reason):
    if not cond:
        raise AssertionError(reason)


def check_text(text):
    check(text, "empty text")
    if EXPECT_TEXT:
        check(EXPECT_TEXT in text, f"{text!r} lacks {EXPECT_TEXT!r}")


def create():
    r = client.responses.create(model=MODEL, instructions="Be terse.", input="Hello")
    check(r.id.startswith("resp_"), f"id {r.id!r}")
    check(r.status == "completed", f"status {r.status!r}")
    check(r.model == MODEL, f"model {r.model!r}")
    check_text(r.output_text)
    check(r.usage and r.usage.total_tokens > 0, f"usage {r.usage!r}")


def create_stream():
    kinds = []
    numbers = []
    text = ""
    final = None
    for event in client.responses.create(model=MODEL, input="Hello", stream=True):
        kinds.append(event.type)
        numbers.append(event.sequence_number)
        if event.type == "response.output_text.delta":
            text += event.delta
        if event.type == "response.completed":
            final = event.response
    check(kinds[:2] == ["response.created", "response.in_progress"], f"opening {kinds[:2]}")
    check(kinds[-1] == "response.completed", f"last event {kinds[-1]!r}")
    check(numbers == list(range(len(numbers))), f"sequence numbers {numbers}")
    check_text(text)
    check(final.output_text == text, f"{final.output_text!r} != {text!r}")


def stream_helper():
    # The SDK's accumulating helper rebuilds the response from the events:
    # every event must have the shape it expects.
    with client.responses.stream(model=MODEL, input="Hello") as stream:
        deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    check_text(final.output_text)
    check(final.output_text == deltas, f"{final.output_text!r} != {deltas!r}")


def tool_round_trip():
    first = client.responses.create(model=TOOL_MODEL, input="Weather and time in Paris?", tools=TOOLS)
    calls = [item for item in first.output if item.type == "function_call"]
    check(len(calls) == 2, f"{len(calls)} function calls: {first.output!r}")
    check(calls[0].name == "get_weather", f"name {calls[0].name!r}")
    check(json.loads(calls[0].arguments)["city"] == "Paris", f"arguments {calls[0].arguments!r}")
    reasoning = [item for item in first.output if item.type == "reasoning"]
    check(reasoning and reasoning[0].encrypted_content, "no reasoning item carrying the signature")
    outputs = [
        {"type": "function_call_output", "call_id": call.call_id, "output": json.dumps({"ok": call.name})}
        for call in calls
    ]
    second = client.responses.create(
        model=TOOL_MODEL, previous_response_id=first.id, input=outputs, tools=TOOLS
    )
    check(second.previous_response_id == first.id, f"previous_response_id {second.previous_response_id!r}")
    check_text(second.output_text)


def retrieve_and_delete():
    created = client.responses.create(model=MODEL, input="Hello")
    got = client.responses.retrieve(created.id)
    check(got.id == created.id and got.output_text == created.output_text, f"retrieved {got!r}")
    items = client.responses.input_items.list(created.id)
    check(len(items.data) == 1, f"input items {items!r}")
    client.responses.delete(created.id)
    try:
        client.responses.retrieve(created.id)
    except openai.NotFoundError:
        return
    raise AssertionError("a deleted response is still found")


def wrong_key():
    bad = openai.OpenAI(base_url=BASE_URL, api_key=PASSWORD + "-wrong", timeout=30, max_retries=0)
    try:
        bad.responses.create(model=MODEL, input="Hello")
    except openai.AuthenticationError:
        return
    raise AssertionError("no AuthenticationError")


CHECKS = [
    ("responses_create", create),
    ("responses_create_stream", create_stream),
    ("responses_stream_helper", stream_helper),
    ("responses_tool_round_trip", tool_round_trip),
    ("responses_retrieve_and_delete", retrieve_and_delete),
    ("responses_wrong_key_401", wrong_key),
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
