# Common tasks. `make run` and `make test` are the two commands README.md promises.

CARGO ?= cargo

.PHONY: build release run test lint fmt bench static clean

build:
	$(CARGO) build --locked

release:
	$(CARGO) build --release --locked

run:
	$(CARGO) run --release --locked --bin hajimi

test:
	$(CARGO) test --locked --lib --tests

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
