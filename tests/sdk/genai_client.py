"""Drive a hajimi gateway with Google's official `google-genai` Python SDK.

Env: HAJIMI_BASE_URL (e.g. http://127.0.0.1:8080), HAJIMI_PASSWORD, and
optionally HAJIMI_EXPECT_TEXT / HAJIMI_EXPECT_STREAM_TEXT (substrings the
generate / stream answers must contain). Prints `ok NAME` or
`FAIL NAME: reason` per check; exits 1 if any check failed.
"""

import os
import sys

from google import genai
from google.genai import errors, types

BASE_URL = os.environ["HAJIMI_BASE_URL"]
PASSWORD = os.environ["HAJIMI_PASSWORD"]
EXPECT_TEXT = os.environ.get("HAJIMI_EXPECT_TEXT")
EXPECT_STREAM_TEXT = os.environ.get("HAJIMI_EXPECT_STREAM_TEXT")
# "v1beta", or "default": the SDK's own default (v1 when a base URL is given,
# as in README's example).
API_VERSION = os.environ.get("HAJIMI_API_VERSION", "v1beta")
MODEL = "gemini-2.5-flash"
EMBED_MODEL = "gemini-embedding-001"


def make_client(api_key):
    options = {"base_url": BASE_URL, "timeout": 30_000}
    if API_VERSION != "default":
        options["api_version"] = API_VERSION
    return genai.Client(
        vertexai=False,  # ignore GOOGLE_GENAI_USE_VERTEXAI from the environment
        api_key=api_key,
        http_options=types.HttpOptions(**options),
    )


client = make_client(PASSWORD)
CONFIG = types.GenerateContentConfig(system_instruction="Be terse.", temperature=0.5)


def check(cond, reason):
    if not cond:
        raise AssertionError(reason)


def expect_client_error(call, codes):
    try:
        call()
    except errors.ClientError as e:
        check(e.code in codes, f"ClientError code {e.code}, want one of {codes}")
        return
    raise AssertionError(f"no ClientError, want code in {codes}")


def models_list():
    names = [m.name for m in client.models.list()]  # the pager fetches every page
    check(any(n.startswith("models/gemini") for n in names), f"no models/gemini* in {names}")


def models_get():
    m = client.models.get(model=MODEL)
    check(m.name == f"models/{MODEL}", f"name {m.name!r}")


def generate_content():
    r = client.models.generate_content(model=MODEL, contents="Hello", config=CONFIG)
    check(r.text, f"empty text: {r!r}")
    if EXPECT_TEXT:
        check(EXPECT_TEXT in r.text, f"{r.text!r} lacks {EXPECT_TEXT!r}")


def generate_content_stream():
    chunks = [
        c.text or ""
        for c in client.models.generate_content_stream(model=MODEL, contents="Hello", config=CONFIG)
    ]
    text = "".join(chunks)
    check(len(chunks) >= 2, f"{len(chunks)} chunk(s), want >= 2")
    check(text, "empty joined text")
    if EXPECT_STREAM_TEXT:
        check(EXPECT_STREAM_TEXT in text, f"{text!r} lacks {EXPECT_STREAM_TEXT!r}")


def count_tokens():
    r = client.models.count_tokens(model=MODEL, contents="Hello")
    check((r.total_tokens or 0) > 0, f"total_tokens {r.total_tokens!r}")


def embed_content():
    # For the Gemini API (not Vertex) the SDK always posts to :batchEmbedContents.
    r = client.models.embed_content(model=EMBED_MODEL, contents=["a", "b"])
    embs = r.embeddings or []
    check(len(embs) == 2, f"{len(embs)} embedding(s), want 2")
    check(all(e.values for e in embs), "an embedding has empty values")


def wrong_key():
    bad = make_client(PASSWORD + "-wrong")
    expect_client_error(
        lambda: bad.models.generate_content(model=MODEL, contents="Hello"), (401, 403)
    )


def unknown_model():
    expect_client_error(
        lambda: client.models.generate_content(model="gemini-does-not-exist", contents="Hello"),
        (404,),
    )


CHECKS = [
    ("models_list", models_list),
    ("models_get", models_get),
    ("generate_content", generate_content),
    ("generate_content_stream", generate_content_stream),
    ("count_tokens", count_tokens),
    ("embed_content", embed_content),
    ("wrong_key_401", wrong_key),
    ("unknown_model_404", unknown_model),
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
