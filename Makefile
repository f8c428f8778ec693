# Common tasks. `make run` and `make test` are the two commands README.md promises;
# `make e2e` adds the browser tests (README.md, under `make test`).

CARGO ?= cargo

.PHONY: build release release-pgo run test sdk-venv e2e lint fmt bench static static-check image-check clean

build:
	$(CARGO) build --locked

release:
	$(CARGO) build --release --locked

run:
	$(CARGO) run --release --locked --bin hajimi

# A profile-guided release build (scripts/pgo-build.sh): trained on a mix of
# requests against the recorded upstream, then rebuilt; prints the path.
# Needs `rustup component add llvm-tools`. TARGET=... for another target.
release-pgo:
	bash scripts/pgo-build.sh

# Unit and integration tests: no browser, no network. The google-genai SDK
# test runs when `make sdk-venv` has made target/sdk-venv (CI does).
# The multi-replica tests start their own redis-server (Debian's) on
# loopback ports; installed here when missing (as root, like make e2e).
test:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else echo "make test needs Debian's redis-server: sudo apt-get install redis-server" >&2; exit 1; fi; }
	$(CARGO) test --locked --lib --test it

# A Python virtualenv with Google's google-genai SDK (from PyPI), for the
# SDK test in `make test`.
sdk-venv:
	bash scripts/sdk-venv.sh

# Browser tests (tests/e2e): headless Chromium driven over WebDriver through
# the dashboard; installs Debian's chromium and chromium-driver when missing.
# The framed test (tests/e2e/framed.rs) also needs Debian's nginx (started by
# the test on loopback ports with its own config, as HTTPS in front) and the
# openssl CLI (its self-signed certificate): installed when missing too.
# Screenshots of every page land in target/e2e-screenshots/.
e2e:
	command -v chromedriver >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver)
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nginx)
	command -v openssl >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y openssl)
	# A CJK font, so the Chinese pages' screenshots show characters, not boxes.
	fc-list 2>/dev/null | grep -qi -e wqy -e cjk || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y fonts-wqy-zenhei)
	$(CARGO) test --locked --test e2e -- --nocapture

lint:
	python3 scripts/check-layers.py
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

bench:
	bash scripts/bench.sh

# Fully static binary (musl; no libc, no OpenSSL, no CA files needed), with
# mimalloc as its allocator. Needs Debian's musl-tools (ring's C code):
# installed here when missing and run as root, else say so.
# The binary lands in cargo's target directory, wherever cargo puts it
# (CARGO_TARGET_DIR, build.target-dir, else ./target): asked of cargo
# metadata, once, on first use.
STATIC_TARGET := x86_64-unknown-linux-musl
TARGET_DIR = $(eval TARGET_DIR := $(shell CARGO='$(CARGO)' bash scripts/target-dir.sh))$(TARGET_DIR)
STATIC_BIN = $(TARGET_DIR)/$(STATIC_TARGET)/release/hajimi

static:
	@command -v x86_64-linux-musl-gcc >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools; \
	  else echo "make static needs Debian's musl-tools: sudo apt-get install musl-tools" >&2; exit 1; fi; }
	rustup target list --installed | grep -qx $(STATIC_TARGET) || rustup target add $(STATIC_TARGET)
	$(CARGO) build --release --locked --target $(STATIC_TARGET) --bin hajimi
	@test -n "$(TARGET_DIR)" || { echo "make static: cargo metadata gave no target directory" >&2; exit 1; }
	@ls -l $(STATIC_BIN)

# The static binary is static, and resolves names and serves from an empty
# root holding only /etc/hosts and /etc/resolv.conf (as root: chroot).
static-check: static
	bash scripts/static-check.sh $(STATIC_BIN)

# The image from that binary (the Dockerfile's final stage, with Debian's
# buildah), run with podman: what a Hugging Face Space and a VPS need. As
# root; installs podman, buildah and runc when missing.
image-check: static
	bash scripts/image-check.sh $(STATIC_BIN)

clean:
	$(CARGO) clean
