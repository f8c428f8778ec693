# Common tasks. `make run` and `make test` are the two commands README.md promises;
# `make e2e` adds the browser tests (README.md, under `make test`).

CARGO ?= cargo

.PHONY: build release run test sdk-venv e2e lint fmt bench static clean

build:
	$(CARGO) build --locked

release:
	$(CARGO) build --release --locked

run:
	$(CARGO) run --release --locked --bin hajimi

# Unit and integration tests: no browser, no network. The google-genai SDK
# test runs when `make sdk-venv` has made target/genai-venv (CI does).
test:
	$(CARGO) test --locked --lib --test it

# A Python virtualenv with Google's google-genai SDK (from PyPI), for the
# SDK test in `make test`.
sdk-venv:
	bash scripts/genai-venv.sh

# Browser tests (tests/e2e): headless Chromium driven over WebDriver through
# the dashboard; installs Debian's chromium and chromium-driver when missing.
# Screenshots of every page land in target/e2e-screenshots/.
e2e:
	command -v chromedriver >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver)
	$(CARGO) test --locked --test e2e -- --nocapture

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

bench:
	bash scripts/bench.sh

# Fully static binary (no libc, no OpenSSL, no CA files needed).
static:
	rustup target add x86_64-unknown-linux-musl
	$(CARGO) build --release --locked --target x86_64-unknown-linux-musl

clean:
	$(CARGO) clean
