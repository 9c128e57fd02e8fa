# ews-presence in a container: built with the Rust toolchain, run from a small Debian
# image as an unprivileged user. Mount the configuration (and the secrets and certs/
# it names) read-only at /etc/ews-presence, and a volume for the state (the users'
# calendar-presence choices) at /var/lib/ews-presence. The API listens on 0.0.0.0:8080
# inside the container (EWS_PRESENCE_API_LISTEN), so -p 8080:8080 reaches it.
#   docker build -t ews-presence .
#   docker run -v /srv/ews-presence:/etc/ews-presence:ro -v ews-presence-state:/var/lib/ews-presence \
#     -p 8080:8080 ews-presence

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when Cargo.toml or
# Cargo.lock change, not at every change of the source.
COPY Cargo.toml Cargo.lock ./
COPY crates/common/Cargo.toml crates/common/
COPY crates/ews/Cargo.toml crates/ews/
COPY crates/ews-sim/Cargo.toml crates/ews-sim/
RUN mkdir -p src benches crates/common/src crates/ews/src crates/ews-sim/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs crates/common/src/lib.rs crates/ews/src/lib.rs crates/ews-sim/src/lib.rs \
    && for bench in decode sim_capacity presence chaos memory; do echo 'fn main() {}' > "benches/$bench.rs"; done \
    && cargo build --release --locked --bin ews-presence \
    && rm -rf src benches crates/common/src crates/ews/src crates/ews-sim/src
COPY src ./src
COPY crates ./crates
COPY benches ./benches
# The placeholders' build is older than the real sources: make sure cargo sees them.
RUN touch src/main.rs src/lib.rs crates/*/src/lib.rs \
    && cargo build --release --locked --bin ews-presence

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311* curl=7.88.* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin ews-presence \
    && mkdir -p /var/lib/ews-presence \
    && chown 10001 /var/lib/ews-presence
COPY --from=build /src/target/release/ews-presence /usr/local/bin/ews-presence
ENV EWS_PRESENCE_API_LISTEN=0.0.0.0:8080 \
    EWS_PRESENCE_STATE_DIR=/var/lib/ews-presence
VOLUME ["/var/lib/ews-presence"]
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/livez"]
ENTRYPOINT ["/usr/local/bin/ews-presence", "run", "--config", "/etc/ews-presence/ews-presence.toml", "--log-format", "json"]
