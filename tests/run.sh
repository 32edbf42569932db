#!/usr/bin/env bash
# Runs every check and test of strata, as CI does. Installs what the tests
# need when it is missing: skopeo, umoci, docker-registry, apache2-utils,
# docker.io, podman, buildah, rclone, gnupg, a JDK and busybox-static (Debian packages) and Microsoft's SARIF
# validator (npm package
# @microsoft/sarif-multitool, into target/).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v umoci >/dev/null 2>&1 || missing+=(umoci)
# Registry tests (tests/it/registry.rs): a real registry, and htpasswd for its basic auth.
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
# The HTTPS registry test makes its own CA.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# Engine sources (tests/it/engines.rs): a private dockerd, podman and buildah with
# private vfs storage, and a static busybox for an offline base image.
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
# Compressed files inside layers (tests/it/leak_vectors.rs): lzip is one strata does not read.
command -v lzip >/dev/null 2>&1 || missing+=(lzip)
# rclone.conf as rclone writes it, passwords obscured (tests/it/credential_files.rs).
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
# A gpg-agent key file written by gpg, a class file compiled by javac
# (tests/it/credential_files_2.rs).
command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
# Layers compressed as Docker's loader also takes them (tests/it/real_tools.rs).
command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
command -v bzip2 >/dev/null 2>&1 || missing+=(bzip2)
# Layer framing (tests/it/framing.rs), SQLite carving, zip members (leak_vectors.rs).
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
command -v zip >/dev/null 2>&1 || missing+=(zip)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
# Package archives left in layers (tests/it/hostile_files.rs): .deb, .rpm, initramfs cpio.
command -v dpkg-deb >/dev/null 2>&1 || missing+=(dpkg)
command -v rpmbuild >/dev/null 2>&1 || missing+=(rpm)
command -v cpio >/dev/null 2>&1 || missing+=(cpio)
command -v lz4 >/dev/null 2>&1 || missing+=(lz4)
if ! command -v busybox >/dev/null 2>&1 || ldd "$(command -v busybox)" >/dev/null 2>&1; then
  missing+=(busybox-static)
fi
# Report tests (tests/it/incident_reports.rs): the HTML report in a real browser, JUnit XSD.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v xmllint >/dev/null 2>&1 || missing+=(libxml2-utils)
if ((${#missing[@]})); then
  echo "tests/run.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

tools=target/test-tools
validator="$tools/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"
if [ ! -x "$validator" ]; then
  echo "tests/run.sh: installing @microsoft/sarif-multitool"
  mkdir -p "$tools"
  (cd "$tools" && npm install --no-audit --no-fund --loglevel=error @microsoft/sarif-multitool@5.7.0 >/dev/null)
  chmod u+x "$validator"
fi
export STRATA_SARIF_VALIDATOR="$PWD/$validator"

cargo fmt --check
cargo clippy --release --locked --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
cargo test --release --locked
