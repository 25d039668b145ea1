# syntax=docker/dockerfile:1
# frontdoor: a release build on Debian bookworm, run as an unprivileged user.
#
#   docker build -t frontdoor .
#   docker volume create frontdoor-data
#   docker run -d --name frontdoor -p 8080:8080 -p 9090:9090 \
#     -v frontdoor-data:/var/lib/frontdoor \
#     -v "$PWD/my-frontdoor.yaml:/etc/frontdoor/frontdoor.yaml:ro" frontdoor
#   echo 'a-good-password' | docker exec -i frontdoor frontdoor users add \
#     --email ann@example.com --name Ann --password-stdin
#
# The image's own configuration is config/docker.yaml (listens on 0.0.0.0:8080 and
# 0.0.0.0:9090, data_dir /var/lib/frontdoor). FRONTDOOR_CONFIG points every command
# (serve, users, apps) at /etc/frontdoor/frontdoor.yaml.

FROM rust:1-bookworm AS build
# cmake: pingora's compression dependency builds zlib-ng with it. webauthn-rs links OpenSSL
# (libssl-dev is in the rust image; libssl3 in the runtime one).
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts (BuildKit) keep the crate registry and the target directory between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin frontdoor \
 && install -m 0755 target/release/frontdoor /usr/local/bin/frontdoor

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 frontdoor \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/frontdoor \
      --no-create-home --shell /usr/sbin/nologin frontdoor \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/frontdoor \
 && install -d -m 0755 /etc/frontdoor
COPY --from=build /usr/local/bin/frontdoor /usr/local/bin/frontdoor
COPY config/docker.yaml /etc/frontdoor/frontdoor.yaml
ENV FRONTDOOR_CONFIG=/etc/frontdoor/frontdoor.yaml
# SQLite file (frontdoor.db), generated keys (keys/, mode 0600), pid file.
VOLUME ["/var/lib/frontdoor"]
WORKDIR /var/lib/frontdoor
USER 10001:10001
# 8080: proxy and provider endpoints; 9090: /metrics, /healthz, /readyz.
EXPOSE 8080 9090
ENTRYPOINT ["frontdoor"]
CMD ["serve", "--config", "/etc/frontdoor/frontdoor.yaml"]
