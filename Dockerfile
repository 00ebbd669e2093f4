# syntax=docker/dockerfile:1.7
#
# Partida's container images, built from this one file:
#
#   docker build --target command-api   -t partida/command-api   .
#   docker build --target query-api     -t partida/query-api     .
#   docker build --target projector     -t partida/projector     .
#   docker build --target web           -t partida/web           .
#   docker build --target partida-audit -t partida/partida-audit .
#
# One image per service (a target each), not one image with every binary: each image carries
# only its own program, and its own ENTRYPOINT, EXPOSE and HEALTHCHECK, so compose and Kubernetes
# need no per-service command or probe wiring, and a vulnerability in one binary's dependencies
# is not shipped in the others. The targets share every layer but the last (the runtime base and
# one build of the whole workspace), so five images cost one build and a few MB each.
# `command-api migrate` (the migrations) runs from the command-api image; `projector rebuild ...`
# from the projector image.
#
# What is built is exactly what `cargo xtask` builds: the release binaries of command-api,
# query-api, projector, web and partida-audit in one cargo invocation (as xtask/src/up.rs
# `build`), and the console's site as xtask/src/web.rs `build_site` lays it out:
#   <site>/pkg/web.js, <site>/pkg/web_bg.wasm   cargo build -p web --lib --target wasm32-unknown-unknown
#                                                 --no-default-features --features hydrate --release,
#                                               then wasm-bindgen --target web --out-name web --no-typescript
#   <site>/pkg/web.css                          web/style/main.css
#   <site>/favicon.svg, ...                     web/public/*
# wasm-opt is not run, as in xtask (docs/adr/0005): Debian's binaryen produces wasm that fails to
# hydrate; npm's binaryen@132.0.0 works and can be added here later.
#
# Dependencies are cached with cargo-chef: the `cook` layers depend only on the recipe (the
# manifests and Cargo.lock), so a source change rebuilds only the workspace's own crates.
# It cannot be built on the machine this was written on (no Docker engine): every path and flag
# below was checked against the repository by reading it. Requires BuildKit (the default builder).
#
# Consecutive RUNs are deliberate: each is its own cache layer (a tool, the host dependencies, the
# wasm dependencies, each build), so that one changing does not redo the others.
# hadolint global ignore=DL3059

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm
# Must equal the wasm-bindgen crate's version in Cargo.lock (checked in the builder stage).
ARG WASM_BINDGEN_VERSION=0.2.130
ARG CARGO_CHEF_VERSION=0.1.77

# ---------------------------------------------------------------------------------------------
# Build tools: the toolchain, the wasm target, cargo-chef and the wasm-bindgen CLI.
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS chef
ARG WASM_BINDGEN_VERSION
ARG CARGO_CHEF_VERSION
RUN rustup target add wasm32-unknown-unknown
RUN cargo install --locked cargo-chef --version "${CARGO_CHEF_VERSION}"
# Without --locked, as .ci/run does: wasm-bindgen-cli's own lock file pins a webpki-roots version
# that some registry mirrors lack. The CLI's version is what must match, and it is pinned.
RUN cargo install wasm-bindgen-cli --version "${WASM_BINDGEN_VERSION}"
WORKDIR /src

# ---------------------------------------------------------------------------------------------
# The recipe: the workspace's manifests and lock file, stripped of the sources.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---------------------------------------------------------------------------------------------
FROM chef AS builder
ARG WASM_BINDGEN_VERSION
COPY --from=planner /src/recipe.json recipe.json
# The dependencies, for the same package set and features as the real builds below: cargo
# unifies features across the packages of one invocation, so a different set would compile
# different dependency artifacts and miss this cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo chef cook --release --locked --recipe-path recipe.json \
        -p command-api -p query-api -p projector -p web -p partida-audit
# The console's browser half. (cook has no --lib; web's binary requires the `ssr` feature, so
# without it only the library is built, as with `--lib`.)
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo chef cook --release --locked --recipe-path recipe.json \
        --target wasm32-unknown-unknown -p web --no-default-features --features hydrate

COPY . .
RUN locked="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)" \
 && if [ "$locked" != "${WASM_BINDGEN_VERSION}" ]; then \
        echo "Cargo.lock has wasm-bindgen $locked; build with --build-arg WASM_BINDGEN_VERSION=$locked" >&2; \
        exit 1; \
    fi
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo build --release --locked \
        -p command-api -p query-api -p projector -p web -p partida-audit
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo build --release --locked -p web --lib --target wasm32-unknown-unknown \
        --no-default-features --features hydrate
RUN mkdir -p /out/bin /out/site/pkg \
 && for binary in command-api query-api projector web partida-audit; do \
        cp "target/release/$binary" /out/bin/; \
    done \
 && wasm-bindgen --target web --out-name web --no-typescript --out-dir /out/site/pkg \
        target/wasm32-unknown-unknown/release/web.wasm \
 && cp web/style/main.css /out/site/pkg/web.css \
 && cp -R web/public/. /out/site/ \
 && ls -l /out/bin /out/site /out/site/pkg

# ---------------------------------------------------------------------------------------------
# What every service image starts from. debian:bookworm-slim rather than distroless/cc: the
# same glibc as the builder (bookworm), and bash for the HEALTHCHECK (deploy/healthcheck.sh),
# which distroless lacks. Nothing is installed: the binaries link only glibc and libgcc_s, and
# need no CA certificates (the services speak plain HTTP and PostgreSQL without TLS: sqlx and
# reqwest are built without a TLS backend).
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN groupadd --system --gid 10001 partida \
 && useradd --system --uid 10001 --gid partida --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin partida \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/partida /var/lib/partida/checkpoints
COPY --chmod=0755 deploy/healthcheck.sh /usr/local/bin/partida-healthcheck
# JSON logs in containers; RUST_LOG filters (default info).
ENV LOG_JSON=true
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/partida

# ---------------------------------------------------------------------------------------------
FROM runtime AS command-api
COPY --from=builder /out/bin/command-api /usr/local/bin/command-api
ENV COMMAND_API_ADDR=0.0.0.0:8081
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["partida-healthcheck", "COMMAND_API_ADDR", "/readyz"]
ENTRYPOINT ["command-api"]

FROM runtime AS query-api
COPY --from=builder /out/bin/query-api /usr/local/bin/query-api
ENV QUERY_API_ADDR=0.0.0.0:8082
EXPOSE 8082
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["partida-healthcheck", "QUERY_API_ADDR", "/readyz"]
ENTRYPOINT ["query-api"]

FROM runtime AS projector
COPY --from=builder /out/bin/projector /usr/local/bin/projector
ENV PROJECTOR_ADDR=0.0.0.0:8083
EXPOSE 8083
# /readyz answers 200 as leader and as standby (it reports which).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["partida-healthcheck", "PROJECTOR_ADDR", "/readyz"]
ENTRYPOINT ["projector"]

FROM runtime AS web
COPY --from=builder /out/bin/web /usr/local/bin/web
COPY --from=builder /out/site /usr/share/partida/site
ENV WEB_ADDR=0.0.0.0:3000 \
    WEB_SITE_ROOT=/usr/share/partida/site
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["partida-healthcheck", "WEB_ADDR", "/healthz"]
ENTRYPOINT ["web"]

# Last, so that a `docker build .` without --target builds the harmless CLI, not a service.
FROM runtime AS partida-audit
COPY --from=builder /out/bin/partida-audit /usr/local/bin/partida-audit
HEALTHCHECK NONE
ENTRYPOINT ["partida-audit"]
CMD ["--help"]
