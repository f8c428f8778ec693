# hajimi image: one static binary on an empty base, running as a non-root
# user, data in /data. Also answers to `uvicorn app.main:app --host … --port …`
# so the Hugging Face Space Dockerfile of the original works unchanged.

FROM rust:1-alpine AS builder
RUN apk add --no-cache musl-dev make
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY templates ./templates
COPY assets ./assets
RUN cargo build --release --locked --bin hajimi \
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
ENTRYPOINT []
CMD ["hajimi"]
