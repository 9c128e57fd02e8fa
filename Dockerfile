# ews-presence in a container: built with the Rust toolchain, run from a small Debian
# image as an unprivileged user. Mount the configuration (and the secrets it names)
# at /etc/ews-presence; the API listens where the configuration says (use 0.0.0.0:8080
# inside a container).
#   docker build -t ews-presence .
#   docker run -v /srv/ews-presence:/etc/ews-presence:ro -p 8080:8080 ews-presence

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY certs ./certs
RUN cargo build --release --locked --bin ews-presence

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311* curl=7.88.* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin ews-presence
COPY --from=build /src/target/release/ews-presence /usr/local/bin/ews-presence
COPY --from=build /src/certs /usr/local/share/ews-presence/certs
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/livez"]
ENTRYPOINT ["/usr/local/bin/ews-presence", "run", "--config", "/etc/ews-presence/ews-presence.toml", "--log-format", "json"]
