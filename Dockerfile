# hajimi image: one static binary on an empty base, running as a non-root
# user, data in /data. Also answers to `uvicorn app.main:app --host … --port …`
# so the Hugging Face Space Dockerfile of the original works unchanged.
# Multi-arch (linux/amd64, linux/arm64) through buildx: each platform has
# its builder stage, which runs natively on it (under QEMU for the foreign
# one): amd64's is profile-guided, arm64's a plain build.
# CI (scripts/image-check.sh, from .ci/run) builds the final stage below,
# verbatim, on the static binary of `make static` instead of the builder
# stage, with buildah, and runs it with podman: user, volume, health check,
# the uvicorn command. So the final stage takes only /out from the builder:
# bin/hajimi, bin/uvicorn (a link to it) and an empty data/.

# The platform being built: it picks the builder stage below. BuildKit
# (docker build, buildx) sets it; a builder that does not (Debian 12's
# buildah 1.28, for one) gets amd64's, so pass --build-arg TARGETARCH=arm64
# to those on arm64.
ARG TARGETARCH

# amd64: a profile-guided build (scripts/pgo-build.sh, as `make
# release-pgo`): an instrumented static binary answers a mix of every
# door's requests from the recorded upstream on loopback, then is built
# again with those counts: 1.17-1.23 times the plain static build's
# requests per second here (bench.sh --compare, chat and Messages and
# Responses streams, non-stream chat).
# On Debian because llvm-profdata (rustup's llvm-tools) is not built for
# a musl host; the binary is musl and static all the same, built as CI's
# `make static` builds the one its image check runs. About twice as long
# as a plain build; `--build-arg PGO=0` builds it plain.
FROM rust:1-slim AS builder-amd64
# musl-tools + make: the C parts (ring, bundled SQLite, mimalloc) for
# musl; curl and python3: the training script.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools make curl python3 \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl \
 && rustup component add llvm-tools
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY templates ./templates
COPY assets ./assets
# The training: its client and upstream (examples/) and the recorded
# answers the upstream serves.
COPY examples ./examples
COPY scripts/pgo-build.sh scripts/target-dir.sh ./scripts/
COPY tests/it/fixtures/gemini/response-text.json tests/it/fixtures/gemini/stream-text.sse \
     tests/it/fixtures/gemini/models-page-2.json ./tests/it/fixtures/gemini/
ARG PGO=1
RUN if [ "$PGO" = 1 ]; then \
      TARGET=x86_64-unknown-linux-musl bash scripts/pgo-build.sh \
      && built=target/pgo/x86_64-unknown-linux-musl/release/hajimi; \
    else \
      cargo build --release --locked --target x86_64-unknown-linux-musl --bin hajimi \
      && built=target/x86_64-unknown-linux-musl/release/hajimi; \
    fi \
 && mkdir -p /out/bin /out/data \
 && cp "$built" /out/bin/hajimi \
 && ln -s hajimi /out/bin/uvicorn

# arm64: compiles under QEMU (1-3 hours) on Alpine, whose toolchain builds
# for its own musl target. The training cannot run there in reasonable
# time, and the release profile's fat LTO (one long single-threaded step)
# could push the build past the workflow's 180 minutes, so it is a plain
# build with thin LTO over 4 units (11-14% more CPU per request than fat).
FROM rust:1-alpine AS builder-arm64
# musl-dev + gcc + make: the C parts of the build (ring, bundled SQLite, and
# mimalloc, the allocator of musl builds) compile and link statically.
RUN apk add --no-cache musl-dev gcc make
WORKDIR /src
# Only what `cargo build --release --bin hajimi` reads: the manifest has no
# build.rs and no explicit [[example]]/[[bench]]/[[test]] entries, so
# examples/ and tests/ (auto-discovered, only used by tests) may be absent.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY templates ./templates
COPY assets ./assets
RUN CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=4 \
      cargo build --release --locked --bin hajimi \
 && mkdir -p /out/bin /out/data \
 && cp target/release/hajimi /out/bin/hajimi \
 && ln -s hajimi /out/bin/uvicorn

# The builder of the platform being built; another platform has none.
FROM builder-${TARGETARCH:-amd64} AS builder

FROM scratch
COPY --from=builder /out/bin/ /usr/local/bin/
COPY --from=builder --chown=1000:1000 /out/data /data
ENV PATH=/usr/local/bin \
    HOST=0.0.0.0 \
    PORT=7860 \
    STORAGE_DIR=/data \
    RUST_LOG=info
USER 1000:1000
EXPOSE 7860
VOLUME ["/data"]
# `hajimi healthcheck` GETs http://127.0.0.1:$PORT/health itself (3 s
# timeout; exit 0 on 200, else 1): no shell or curl in a scratch image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/hajimi", "healthcheck"]
ENTRYPOINT []
CMD ["hajimi"]
