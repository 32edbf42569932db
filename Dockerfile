# strata's own image, following the advice strata enforces: a multi-stage
# build, a static binary, a scratch runtime, a non-root user, and no secret
# in any layer (nothing is copied in but the binary and CA certificates).

FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The layer crates (strata-core, strata-image, strata-rules, …) and the generator, all members.
COPY crates ./crates
COPY signatures ./signatures
COPY corpus/gen ./corpus/gen
COPY tests ./tests
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin strata \
    && cp target/x86_64-unknown-linux-musl/release/strata /strata

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /strata /strata
USER 65532:65532
ENTRYPOINT ["/strata"]
CMD ["--help"]
