#!/usr/bin/env bash
# Application image built by a real Docker Engine, for false-positive measurement (issue 12 item 5):
# an Express app with its node_modules tree, boto3/django/requests installed with
# `pip install --target` into /app/pylibs, and FAKE secrets planted in the app's own files
# (one set deleted again in a later layer). Dependencies are fetched on the host (`npm install`,
# `pip install --target`) and COPYed in, since `docker build --network none` has no network.
#
# Starts a private dockerd (vfs storage, no iptables/bridge) in a temp dir and stops it on exit.
# Output: OUT_DIR/app.docker.tar (docker save) and OUT_DIR/planted.json (the planted secrets' rule ids
# and paths, for bench/realimages/measure.py).
#
# usage: bash bench/realimages/app-image.sh OUT_DIR    (root; needs docker.io, busybox-static, npm, pip)
set -euo pipefail
out=$(realpath -m "${1:?usage: app-image.sh OUT_DIR}")
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
work=$(mktemp -d /tmp/strata-appimg.XXXXXX)
sock="$work/docker.sock"
cleanup() {
    if [ -f "$work/dockerd.pid" ]; then kill "$(cat "$work/dockerd.pid")" 2>/dev/null || true; sleep 2; fi
    rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

# --- build context: app sources, vendored dependencies, planted secrets --------------------------
ctx="$work/ctx"
mkdir -p "$ctx/app"
(cd "$ctx/app" && npm init -y >/dev/null && npm install --no-audit --no-fund express@4 >/dev/null)
pip install --quiet --no-compile --target "$ctx/app/pylibs" boto3 django requests
python3 "$here/plant.py" "$ctx" "$out/planted.json"

cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM strata-bench-base:1
WORKDIR /app
COPY app/package.json app/package-lock.json /app/
COPY app/node_modules /app/node_modules
COPY app/pylibs /app/pylibs
COPY app/src /app/src
COPY app/config /app/config
COPY app/.env app/.npmrc /app/
COPY app/deploy /app/deploy
RUN rm -rf /app/deploy /app/.npmrc
ENV PYTHONPATH=/app/pylibs NODE_ENV=production
CMD ["node", "/app/src/server.js"]
DOCKERFILE

# --- private Docker Engine ---------------------------------------------------------------------------
dockerd --storage-driver vfs --iptables=false --ip6tables=false --bridge=none \
    --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
    -H "unix://$sock" >"$work/dockerd.log" 2>&1 &
export DOCKER_HOST="unix://$sock"
for _ in $(seq 60); do docker version >/dev/null 2>&1 && break; sleep 1; done
docker version >/dev/null || { cat "$work/dockerd.log" >&2; exit 2; }

# Base image: busybox (static) as a tiny rootfs, imported.
base="$work/base"
mkdir -p "$base/bin" "$base/tmp" "$base/etc"
cp /bin/busybox "$base/bin/busybox"
for a in sh rm ls cat mkdir; do ln -s busybox "$base/bin/$a"; done
tar -C "$base" -c . | docker import - strata-bench-base:1 >/dev/null

docker build --network none -t strata-bench-app:1 "$ctx"
docker save strata-bench-app:1 -o "$out/app.docker.tar"
ls -la "$out/app.docker.tar"
