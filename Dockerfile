# Multi-stage build: compile in the Rust image, run on a slim Debian with libpq.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock build.rs diesel.toml ./
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
COPY examples ./examples
RUN cargo build --release --locked --bin incident-desk

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 incident-desk
COPY --from=build /src/target/release/incident-desk /usr/local/bin/incident-desk
USER incident-desk
ENV BIND_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["incident-desk"]
CMD ["serve"]
