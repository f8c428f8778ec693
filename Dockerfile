# hajimi image: one static binary on an empty base, running as a non-root
# user, data in /data. Also answers to `uvicorn app.main:app --host … --port …`
# so the Hugging Face Space Dockerfile of the original works unchanged.
# Multi-arch (linux/amd64, linux/arm64) through buildx: the builder stage runs
# natively per platform (under QEMU for the foreign one), so the Alpine
# toolchain always builds for its own musl target.
# CI (scripts/image-check.sh, from .ci/run) builds the final stage below,
# verbatim, on the static binary of `make static` instead of the builder
# stage, with buildah, and runs it with podman: user, volume, health check,
# the uvicorn command. So the final stage takes only /out from the builder:
# bin/hajimi, bin/uvicorn (a link to it) and an empty data/.

FROM rust:1-alpine AS builder
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
# The arm64 half of a two-platform build compiles under QEMU and already
# takes 1-3 hours: the release profile's fat LTO (one long single-threaded
# step) could push it past the workflow's 180 minutes, so it keeps thin LTO
# over 4 units there (11-14% more CPU per request than fat).
ARG TARGETARCH
RUN if [ "$TARGETARCH" = arm64 ]; then \
      export CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=4; \
    fi \
 && cargo build --release --locked --bin hajimi \
 && mkdir -p /out/bin /out/data \
 && cp target/release/hajimi /out/bin/hajimi \
 && ln -s hajimi /out/bin/uvicorn

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
