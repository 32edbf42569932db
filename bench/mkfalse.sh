#!/usr/bin/env bash
# Builds the false-alarm image of docs/detection.md ("False alarms on a real image, against
# peers"): a Debian bookworm rootfs with real third-party content and no secret but three
# known plants, as a docker-save archive. Run as root (chroot); needs debootstrap, apt's
# Debian mirror, PyPI (pip) and the npm registry (npm), and strata's generator (`corpus wrap`).
#
#   bash bench/mkfalse.sh WORK_DIR
#
# Writes WORK_DIR/fp.docker.tar (two layers: the rootfs, then the plants),
# WORK_DIR/nodb.docker.tar (the rootfs alone without dpkg's *.md5sums: files no package
# database lists, as in images that install runtimes from tarballs) and WORK_DIR/plants.tsv.
set -euo pipefail
W=$(realpath -m "${1:?usage: mkfalse.sh WORK_DIR}")
R=$W/rootfs
mkdir -p "$W"
log() { printf '[mkfalse %s] %s\n' "$(date +%T)" "$*" >&2; }
TAR=(tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu)

if [ ! -f "$R/.complete" ]; then
  rm -rf "$R"
  log "debootstrap --variant=minbase bookworm"
  debootstrap --variant=minbase bookworm "$R" http://deb.debian.org/debian >"$W/debootstrap.log" 2>&1
  cp /etc/resolv.conf "$R/etc/resolv.conf"
  printf '%s\n' 'deb http://deb.debian.org/debian bookworm main' \
    'deb http://deb.debian.org/debian bookworm-updates main' \
    'deb http://deb.debian.org/debian-security bookworm-security main' >"$R/etc/apt/sources.list"
  log "apt-get install: runtimes, clients, Java/Ruby/PHP/Go libraries"
  chroot "$R" bash -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update &&
    apt-get install -y --no-install-recommends python3 python3-venv python3-pip nodejs npm \
      openjdk-17-jre-headless ruby ruby-dev git ca-certificates openssl libssl-dev golang-go \
      php-cli composer postgresql-client default-mysql-client libpq5 curl openssh-client gnupg \
      libbcprov-java libbcpkix-java libjackson2-databind-java libcommons-codec-java \
      libhttpclient-java libspring-core-java libjetty9-java libtomcat10-java ruby-net-ssh \
      ruby-jwt ruby-oauth2 ruby-faraday ruby-aws-sdk-core ruby-rails php-phpseclib \
      php-guzzlehttp-guzzle php-symfony golang-golang-x-crypto-dev \
      golang-github-golang-jwt-jwt-dev golang-github-aws-aws-sdk-go-dev \
      golang-github-go-sql-driver-mysql-dev golang-github-lib-pq-dev &&
    apt-get clean && rm -rf /var/lib/apt/lists/*' >"$W/apt.log" 2>&1
  # PyPI into a venv at /opt/venv: wheels fetched by the host's pip (its proxy and CA
  # settings), installed offline by the rootfs's own pip.
  PY=(boto3 django flask requests cryptography paramiko oauthlib requests-oauthlib google-auth
    google-cloud-storage azure-storage-blob azure-identity twilio stripe slack_sdk pyjwt
    python-jose msal kubernetes sqlalchemy psycopg2-binary pymysql redis openai anthropic
    sentry-sdk ansible httpx authlib passlib ldap3 pyopenssl tornado celery fastapi hvac docker
    fabric)
  mkdir -p "$R/tmp/wheels"
  log "pip download (${#PY[@]} packages and their dependencies)"
  pip3 download -q --python-version 3.11 --only-binary=:all: --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform any \
    -d "$R/tmp/wheels" "${PY[@]}" 'async-timeout>=4.0.3'
  chroot "$R" bash -c "python3 -m venv /opt/venv &&
    /opt/venv/bin/pip install -q --no-cache-dir --no-index --find-links /tmp/wheels ${PY[*]}"
  rm -rf "$R/tmp/wheels"
  log "npm install into /srv/app"
  mkdir -p "$R/srv/app"
  (cd "$R/srv/app" && npm init -y >/dev/null && npm install --no-audit --no-fund express aws-sdk \
    @aws-sdk/client-s3 jsonwebtoken stripe twilio @slack/web-api firebase-admin axios passport \
    passport-oauth2 mongoose pg mysql2 redis nodemailer openai @sendgrid/mail ssh2 node-forge \
    jose typescript webpack eslint dotenv @octokit/rest googleapis >"$W/npm.log" 2>&1)
  touch "$R/.complete"
fi

# Three known plants, in their own layer: a GitHub token (valid checksum) in the GitHub CLI's
# hosts.yml, an AWS key pair in an app's .env, a throwaway RSA key. All fake.
P=$W/plants
rm -rf "$P"; mkdir -p "$P/srv/app" "$P/root/.config/gh" "$P/etc/ssl/private"
GH=$(python3 -c '
import zlib
b = "Fp3noiseBENCHtok9QzLmX7vR4tKw2"; n = zlib.crc32(b.encode()); s = ""
a = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
for _ in range(6): s = a[n % 62] + s; n //= 62
print("ghp_" + b + s)')
AWS_ID=AKIAQ3FP3BENCHW7XK2M
AWS_SECRET=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
printf 'github.com:\n    user: fp3-bench\n    oauth_token: %s\n    git_protocol: https\n' "$GH" \
  >"$P/root/.config/gh/hosts.yml"
printf 'NODE_ENV=production\nAWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "$AWS_ID" "$AWS_SECRET" \
  >"$P/srv/app/.env"
openssl genrsa -traditional -out "$P/etc/ssl/private/fp3-bench.key" 2048 2>/dev/null
printf 'gh\t/root/.config/gh/hosts.yml\t%s\naws-id\t/srv/app/.env\t%s\naws-secret\t/srv/app/.env\t%s\nkey\t/etc/ssl/private/fp3-bench.key\tBEGIN\n' \
  "$GH" "$AWS_ID" "$AWS_SECRET" >"$W/plants.tsv"

CORPUS=${CORPUS:-}
if [ ! -x "$CORPUS" ]; then
  root=$(cd "$(dirname "$0")/.." && pwd)
  (cd "$root" && cargo build --release --quiet --example corpus)
  CORPUS=${CARGO_TARGET_DIR:-$root/target}/release/examples/corpus
fi
log "layers and images"
"${TAR[@]}" -C "$R" --exclude=./.complete --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' \
  -cf "$W/layer0.tar" .
"${TAR[@]}" -C "$P" -cf "$W/layer1.tar" .
"$CORPUS" wrap docker "$W/layer0.tar" "$W/layer1.tar" fp3/real:latest "$W/fp.docker.tar" >/dev/null
"${TAR[@]}" -C "$R" --exclude=./.complete --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' \
  --exclude='./var/lib/dpkg/info/*.md5sums' -cf "$W/layer0n.tar" .
"$CORPUS" wrap docker "$W/layer0n.tar" fp3/nodb:latest "$W/nodb.docker.tar" >/dev/null
rm -f "$W/layer0.tar" "$W/layer1.tar" "$W/layer0n.tar"
log "done: $W/fp.docker.tar $W/nodb.docker.tar"
