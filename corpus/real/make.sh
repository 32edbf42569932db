#!/usr/bin/env bash
# Rebuild the "real tool" fixture images for strata from scratch.
#
# Every image here is produced by umoci (layers, config, history) and skopeo
# (docker-archive / oci-archive / zstd / uncompressed transcoding). No base
# image is pulled and nothing touches the network: each image starts from
# `umoci new` (an empty manifest).
#
# ALL CREDENTIALS IN THIS FILE ARE FAKE. They were generated once with
# python `secrets` (format-valid: GitHub/npm tokens carry a correct CRC32
# base62 checksum) and frozen here so that every rebuild plants the same
# bytes. The RSA key is a throwaway generated with
#   ssh-keygen -t rsa -b 2048 -N '' -m PEM -C throwaway-fixture-key@strata-test
# and is not used anywhere.
#
# Usage: bash corpus/real/make.sh     (needs: umoci, skopeo, jq, python3, sha256sum)
#        apt-get install -y umoci skopeo jq    if missing.
#
# Determinism: file mtimes are forced to @0, umask 022, every history entry
# and config gets a fixed `created` timestamp, so the OCI layout dirs and the
# docker-archive tars are byte-identical across rebuilds with the same tool
# versions. The oci-archive tars are NOT: skopeo's oci-archive writer stamps
# the current time on the tar members (no option to override), but the blobs
# inside them are identical.
#
# Findings about how the tools lay things out (umoci 0.4.7, skopeo 1.9.3):
#  * `umoci repack` diffs the bundle with go-mtree. Deleting a whole directory
#    emits ONE whiteout for the directory (`srv/.wh.creds`), never per-file
#    whiteouts and never an opaque marker.
#  * Deleting a directory and re-creating it with other contents in the same
#    layer does NOT produce an opaque whiteout either: umoci emits per-file
#    whiteouts for children that vanished (`srv/conf/.wh.old.env`) plus the
#    new/changed files.
#  * Replacing a directory by a symlink emits the symlink entry AND a
#    whiteout *under the symlink path* for each child of the old directory
#    (`srv/data -> /var/lib/data` followed by `srv/data/.wh.db.env`). No
#    `.wh.data` is written for the directory itself. A naive extractor that
#    follows symlinks would apply that whiteout inside /var/lib/data.
#  * Hardlinks: the first path of a link group (in umoci's walk order) is a
#    regular file, the others are tar hardlink ('h', typeflag '1') entries.
#    Changing the link count of a file from an earlier layer (adding or
#    removing a link) makes umoci re-emit the surviving file in full.
#  * Opaque whiteouts (`.wh..wh..opq`) are only written by
#    `umoci insert --opaque`; used for the whiteouts fixture, layer 4.
#  * `umoci config` appends a history entry with "empty_layer": true (the
#    created_by is whatever --history.created_by says); repack/insert append
#    a normal entry. Image config "created" is only changed by --created.
#  * Directory entries (including "./") are only emitted when the directory's
#    metadata changed. Mtimes are pinned to @0 here, so that happens only when
#    a directory's link count changes (a subdirectory added/removed); e.g.
#    leaky-app layer 1 holds app/.env and app/config.yaml with NO app/ entry.
#  * `umoci insert` (0.4.7) never closes its tar writer (umoci issue #436,
#    fixed upstream by PR #534): its layers lack the 1024-byte end-of-archive
#    marker and even the final 512-byte padding. whiteouts layer 4 is 1541
#    bytes uncompressed (GNU tar lists all 3 entries then exits 2 with
#    "Unexpected EOF"; Python tarfile raises; Rust tar 0.4 yields all three
#    entries, then Err "unexpected EOF during skip"); layer 5 is a single
#    512-byte header and no end marker (GNU tar, Python and Rust tar accept it).
#    skopeo passes these bytes through unchanged (also into docker-archive).
#  * The opaque marker is written BEFORE the directory's own entry
#    (srv/cache/.wh..wh..opq, then srv/cache/, then srv/cache/state).
#  * umoci layers are gzip (application/vnd.oci.image.layer.v1.tar+gzip).
#  * skopeo docker-archive writes UNCOMPRESSED layers named <diffid>.tar at the
#    top level, plus legacy v1 dirs (<id>/layer.tar symlinks -> ../<diffid>.tar,
#    <id>/json, <id>/VERSION), manifest.json and repositories.
#  * `skopeo copy --dest-compress-format zstd` to oci/oci-archive works on
#    1.9.3 (media type ...tar+zstd). An uncompressed OCI image needs two hops:
#    `--dest-decompress` into a dir: layout, then
#    `--dest-oci-accept-uncompressed-layers` into oci-archive (media type
#    application/vnd.oci.image.layer.v1.tar).
#  * skopeo normalises the docker-archive RepoTags: "strata-fixtures/x:latest"
#    is stored as "docker.io/strata-fixtures/x:latest".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
umask 022
export LC_ALL=C TZ=UTC

for t in umoci skopeo jq python3 sha256sum; do
  command -v "$t" >/dev/null || { echo "make.sh: missing $t (apt-get install -y umoci skopeo jq)" >&2; exit 1; }
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- secrets (FAKE)
# leaky-app
LEAKY_AWS_KEY_ID='AKIAYJK4RSVGBCMQOCPJ'
LEAKY_AWS_SECRET='PhgEGEOf7Q56FA2rdhYko+omY6HSmixu4osjiqBb'
LEAKY_GHP='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'
LEAKY_PG_PASSWORD='W1agF5NcUMzHWuPM'
LEAKY_STRIPE='sk_live_gelDKHe0iEvaXdgCHTw5w0zw'
LEAKY_NPMRC_TOKEN='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'
LEAKY_BUILDARG_NPM='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'
LEAKY_SLACK='xoxb-583882619970-3303485699136-TlidQicuA2xlVzaP18LNHQsd'
# whiteouts
WH_GHP='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'
WH_AWS_KEY_ID='AKIADFTXLFKMRYGEF5BQ'
WH_AWS_SECRET='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'
WH_STRIPE='sk_live_JDOmoNahbn6gB3QWacTgf3lp'
WH_PG_PASSWORD='nPUzQ20WfEK7VZiR'
WH_NPM='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'
WH_GIT_GHP='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'
WH_SLACK='xoxb-270485537827-2593036050463-eX2n64U3hvSZAv31Rrj7YA0N'
# multiarch
MA_AMD64_AWS_KEY_ID='AKIAYANTGFPNASJKVG2R'
MA_AMD64_AWS_SECRET='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'
MA_ARM64_GHP='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'

# Sanity: the GitHub/npm token checksums really are valid.
python3 - "$LEAKY_GHP" "$LEAKY_NPMRC_TOKEN" "$LEAKY_BUILDARG_NPM" "$WH_GHP" "$WH_NPM" "$WH_GIT_GHP" "$MA_ARM64_GHP" <<'PY'
import sys, zlib
A = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
def b62(n):
    s = ''
    while n:
        s = A[n % 62] + s
        n //= 62
    return s.rjust(6, '0')
for t in sys.argv[1:]:
    body, crc = t[4:34], t[34:]
    assert len(t) == 40 and b62(zlib.crc32(body.encode())) == crc, t
PY

write_rsa_key() { # throwaway key, PEM "BEGIN RSA PRIVATE KEY" format
cat > "$1" <<'KEY'
-----BEGIN RSA PRIVATE KEY-----
MIIEpQIBAAKCAQEAwJoQ11WFV/oHrKG1Guf8zX3bc9eZ2ibtg5ttgLTjA0RwkcId
9NCzGsjLOGiqKt4Ciz1I8Wan+V3KygbhiLTKeZafyLdXf0SuwamCLoXmbnT8iHb4
w2vOwuzjcQSchwlQf6jBzIsVQ9ke4R+xNifE1aSoVeSxmOj0E10WFlfh0svNNx29
uLyJbt5x9sd8uTIO3jvc8WIyK9Nzdl05Ssk4Ubd9gpFZOLDGc0SAO8dP7+ATcAWY
O9qgwE87PJa716hF+OYUGH1VvtCNoT8Dn1qpLxAoe9zGXWmjnZR49SBgeCK2yUQn
smWm9tVu2d9iyxgoV9m7O9s+WlPfsv+Jjvc46QIDAQABAoIBABjfbKBab4N6iyYs
pfZJElk5US9nHvvQviiaWGxgL9b6rizsrDCzCQZC+xeYUK2DiUGREwv1zWiDR86K
T/L3IhTMsmrZ3odVh9oDuYenjCgknH5FGwAluohqzj6IsWww9D/gO9Ld/UuLTRUW
oiyTuzQ59PFOvO652tdrVJBjHgs6RC0XCwJD52bhjL3w1/uzUcHkEcmJURTajUyW
Ie6foQ+Akny6BkqPv5s31uzdP1+pTyxC1/rkHS7Wx4x2eXwOHAeEgjscFupFgMS0
tqWW7/Pl8luGoHjHFHLbmpGWaJfkHbYMeIrQif3t2BGoRuI5xi8m+OoSsRo/KXJE
3RQc1tcCgYEA5i9Nw25EOPNhnE76dSW4w06dRI8yqiEHubMXAZ43SJ69iE4Oqil9
+RuMzgXCnHra3LPofmBvd0GJXtgOuszZZVpvIgE5Wle22Ia7GbFOn65AYOR0wuEO
cttyvpS2NQt+2c8S5AervMfjG7TwYdFFZksreTE2s22uc/FDE9Yh7V8CgYEA1jO9
hhIPm4SUF1p4cdWV9Lqm4K/jcK+Yb7KQiPyiKJc8QsAxd/nbjEvctvvkeu1eqSi7
aMfr1TY9jcWj6LUJ08pKyrharpvDi88zEQu/X5uVcIZVAMvvl9gDpipc8iv+qcdD
5OCrlVMsR3QcdvDw22Yxi54JJ+F2Mtz+tOErtrcCgYEAuvHsLC6fxckUm4ghLYdn
WWe9nnLWaQnOZmkm5C+FIruZntwWWOi94NUZNDHFbqTwn5KV3h2gKbDWSmsa+2dn
oEMkQu/PjqnyXESALEuuWU2CB69DjQqPW4US2emZWdduPKNK6lu4hOeqcVQwbqEx
xfSC6Dip/muz5YIqQjAE+e0CgYEAmvf35+VtMUBru7GSbhjuUo4vaWMXE1GW4Ui4
1MKhtugjis9terVjp07DMgdvN5g/4fY8EASDlE+XnNgeS5+eqoEyNxPFV4oNoTqY
YX60R8FSDoTBPsBMaPi5OyBu+i3mIoKtlgsNWA1Cfbd9WHfcaX633aDKUvYFA6tr
AwXdEGUCgYEAwgecpJ2DJikkxs1+LDitE9mr7Q7sv8cMu0y4R8TiXEUw8vJ1PfrT
2dFYHnLuYGZNJORKeLZjSh36zceMIRu6pHuuevFNPl0JnmHGpLu3earxRdzjgLhF
WRqLUm5EUL/Cks775YJPp1I4Xu+KltKzPD8EwxssPFSteVBDeZD0EDc=
-----END RSA PRIVATE KEY-----
KEY
}

# ---------------------------------------------------------------- helpers
TS_N=0
TS=''
next_ts() { # sets $TS to the next fixed timestamp: 2024-03-01T12:00:00Z, +1 min per call
  TS="$(printf '2024-03-01T12:%02d:00Z' "$TS_N")"; TS_N=$((TS_N + 1))
}

IMG=''    # current umoci image reference, e.g. $WORK/leaky:latest
BUNDLE="$WORK/bundle"
R=''      # rootfs of the current bundle

new_image() { # LAYOUT TAG
  TS_N=0
  umoci init --layout "$1"
  IMG="$1:$2"
  umoci new --image "$IMG"
  next_ts
  umoci config --image "$IMG" --no-history --created "$TS"
}
begin_layer() {
  rm -rf "$BUNDLE"
  umoci unpack --rootless --image "$IMG" "$BUNDLE" >/dev/null
  R="$BUNDLE/rootfs"
}
end_layer() { # CREATED_BY
  find "$R" -exec touch -h -d @0 {} +
  next_ts
  umoci repack --history.created "$TS" --history.created_by "$1" --image "$IMG" "$BUNDLE"
  rm -rf "$BUNDLE"
}
config_step() { # CREATED_BY [umoci config args...]  -> empty_layer history entry
  local by="$1"; shift
  next_ts
  umoci config --image "$IMG" --history.created "$TS" --history.created_by "$by" "$@"
}
fix_tree() { find "$1" -exec touch -h -d @0 {} +; }
export_archives() { # LAYOUT TAG NAME(ref for docker-archive) OUTBASE
  skopeo copy -q "oci:$1:$2" "docker-archive:$4.docker.tar:$3"
  skopeo copy -q "oci:$1:$2" "oci-archive:$4.oci.tar:$2"
}

rm -rf leaky-app-oci whiteouts-oci multiarch-oci
rm -f leaky-app.docker.tar leaky-app.oci.tar leaky-app.zstd.oci.tar leaky-app.zstd-chunked.oci.tar \
      leaky-app.uncompressed.oci.tar \
      whiteouts.docker.tar whiteouts.oci.tar multiarch.oci.tar

# ================================================================ leaky-app
L="$WORK/leaky"
new_image "$L" latest

# layer 0: small app tree
begin_layer
mkdir -p "$R/app" "$R/etc"
cat > "$R/etc/os-release" <<'EOF'
NAME="Strata Fixture Linux"
ID=strata-fixture
VERSION_ID=1.0
PRETTY_NAME="Strata Fixture Linux 1.0 (test image, fake secrets)"
EOF
cat > "$R/app/main.py" <<'EOF'
import os

def main():
    print("leaky-app listening on", os.environ.get("PORT", "8080"))

if __name__ == "__main__":
    main()
EOF
cat > "$R/app/requirements.txt" <<'EOF'
flask==3.0.2
psycopg2-binary==2.9.9
stripe==8.5.0
EOF
end_layer 'ADD rootfs.tar /'

# layer 1: .env + config.yaml with credentials
begin_layer
cat > "$R/app/.env" <<EOF
# leaky-app environment -- FAKE credentials (strata test fixture)
APP_ENV=production
AWS_ACCESS_KEY_ID=$LEAKY_AWS_KEY_ID
AWS_SECRET_ACCESS_KEY=$LEAKY_AWS_SECRET
GITHUB_TOKEN=$LEAKY_GHP
DATABASE_URL=postgresql://appuser:$LEAKY_PG_PASSWORD@db.internal:5432/app
EOF
cat > "$R/app/config.yaml" <<EOF
app:
  name: leaky-app
  port: 8080
payments:
  provider: stripe
  api_key: $LEAKY_STRIPE
EOF
end_layer 'COPY .env config.yaml /app/'

# layer 2: ssh key + .npmrc
begin_layer
mkdir -p "$R/root/.ssh"
chmod 700 "$R/root/.ssh"
write_rsa_key "$R/root/.ssh/id_rsa"
chmod 600 "$R/root/.ssh/id_rsa"
cat > "$R/root/.npmrc" <<EOF
registry=https://registry.npmjs.org/
//registry.npmjs.org/:_authToken=$LEAKY_NPMRC_TOKEN
EOF
chmod 600 "$R/root/.npmrc"
end_layer 'COPY dotfiles/ /root/'

# empty-layer history entries carrying a build-arg secret
config_step 'ARG NPM_TOKEN'
config_step "RUN |1 NPM_TOKEN=$LEAKY_BUILDARG_NPM /bin/sh -c npm ci"

# layer 3: delete .env and the ssh key (whiteouts)
begin_layer
rm -f "$R/app/.env" "$R/root/.ssh/id_rsa"
end_layer '/bin/sh -c rm -f /app/.env /root/.ssh/id_rsa'

# layer 4: overwrite config.yaml with a clean version
begin_layer
cat > "$R/app/config.yaml" <<'EOF'
app:
  name: leaky-app
  port: 8080
payments:
  provider: stripe
  api_key: ${STRIPE_API_KEY}
EOF
end_layer 'COPY config.yaml /app/config.yaml'

config_step "ENV SLACK_BOT_TOKEN=$LEAKY_SLACK" \
  --config.env 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --config.env "SLACK_BOT_TOKEN=$LEAKY_SLACK"
config_step 'WORKDIR /app' --config.workingdir /app
config_step 'LABEL org.opencontainers.image.title=leaky-app org.opencontainers.image.description=strata-fixture-fake-secrets' \
  --config.label org.opencontainers.image.title=leaky-app \
  --config.label org.opencontainers.image.description=strata-fixture-fake-secrets
config_step 'ENTRYPOINT ["python3"]' --config.entrypoint python3
config_step 'CMD ["/app/main.py"]' --config.cmd /app/main.py
next_ts
umoci config --image "$IMG" --no-history --created "$TS"
umoci gc --layout "$L"

skopeo copy -q "oci:$L:latest" oci:leaky-app-oci:latest   # same blobs, fresh layout
export_archives leaky-app-oci latest strata-fixtures/leaky-app:latest leaky-app
# zstd-compressed layers (application/vnd.oci.image.layer.v1.tar+zstd)
skopeo copy -q --dest-compress-format zstd oci:leaky-app-oci:latest oci-archive:leaky-app.zstd.oci.tar:latest
# zstd:chunked (what podman/buildah push for partial pulls): zstd frames per file, then skippable
# frames holding the table of contents, tar-split data and a footer, and layer annotations
# io.containers.zstd-chunked.manifest-{checksum,position}
skopeo copy -q --dest-compress-format zstd:chunked oci:leaky-app-oci:latest oci-archive:leaky-app.zstd-chunked.oci.tar:latest
# uncompressed layers (application/vnd.oci.image.layer.v1.tar): decompress into dir:, then re-export
skopeo copy -q --dest-decompress oci:leaky-app-oci:latest "dir:$WORK/leaky-dir"
skopeo copy -q --dest-oci-accept-uncompressed-layers "dir:$WORK/leaky-dir" oci-archive:leaky-app.uncompressed.oci.tar:latest

# ================================================================ whiteouts
W="$WORK/wh"
new_image "$W" latest

# layer 0: base tree
begin_layer
mkdir -p "$R/etc" "$R/srv/keys" "$R/srv/creds" "$R/srv/conf" "$R/srv/data" "$R/srv/cache" "$R/var/lib/data"
cat > "$R/etc/os-release" <<'EOF'
NAME="Strata Fixture Linux"
ID=strata-fixture
VERSION_ID=1.0
EOF
cat > "$R/srv/keys/deploy.env" <<EOF
# deploy key -- FAKE (strata fixture)
GITHUB_TOKEN=$WH_GHP
EOF
cat > "$R/srv/creds/aws_credentials" <<EOF
[default]
aws_access_key_id = $WH_AWS_KEY_ID
aws_secret_access_key = $WH_AWS_SECRET
EOF
echo 'rotate these every 90 days' > "$R/srv/creds/notes.txt"
cat > "$R/srv/conf/app.env" <<EOF
STRIPE_API_KEY=$WH_STRIPE
EOF
echo 'LOG_LEVEL=debug' > "$R/srv/conf/old.env"
cat > "$R/srv/data/db.env" <<EOF
DATABASE_URL=postgresql://appuser:$WH_PG_PASSWORD@db.internal:5432/app
EOF
cat > "$R/srv/cache/token.txt" <<EOF
SLACK_BOT_TOKEN=$WH_SLACK
EOF
echo 'placeholder' > "$R/var/lib/data/README"
end_layer 'ADD rootfs.tar /'

# layer 1: hardlink to a secret, symlink to a secret, git credentials
begin_layer
mkdir -p "$R/srv/tokens" "$R/root"
cat > "$R/srv/tokens/npm.txt" <<EOF
//registry.npmjs.org/:_authToken=$WH_NPM
EOF
ln "$R/srv/tokens/npm.txt" "$R/srv/tokens/npm-link.txt"
ln -s keys/deploy.env "$R/srv/current.env"
printf 'https://ci-bot:%s@github.com\n' "$WH_GIT_GHP" > "$R/root/.git-credentials"
chmod 600 "$R/root/.git-credentials"
end_layer 'COPY setup/ /'

# layer 2: the deletions
begin_layer
rm "$R/srv/keys/deploy.env"                        # single file
rm -rf "$R/srv/creds"                              # whole directory
rm -rf "$R/srv/conf"; mkdir "$R/srv/conf"          # delete + re-create with other contents
echo 'STRIPE_API_KEY=${STRIPE_API_KEY}' > "$R/srv/conf/app.env"
echo 'workers=4' > "$R/srv/conf/settings.ini"
rm -rf "$R/srv/data"; ln -s /var/lib/data "$R/srv/data"   # directory -> symlink
rm "$R/srv/tokens/npm.txt"                         # one name of a hardlink pair
rm "$R/root/.git-credentials"
end_layer '/bin/sh -c rm /srv/keys/deploy.env && rm -rf /srv/creds /srv/conf /srv/data && mkdir /srv/conf && cp /tmp/conf/* /srv/conf/ && ln -s /var/lib/data /srv/data && rm /srv/tokens/npm.txt /root/.git-credentials'

# layer 3: re-add the git credentials with identical bytes
begin_layer
printf 'https://ci-bot:%s@github.com\n' "$WH_GIT_GHP" > "$R/root/.git-credentials"
chmod 600 "$R/root/.git-credentials"
end_layer 'COPY .git-credentials /root/.git-credentials'

# layer 4: opaque directory replacement (umoci insert --opaque => .wh..wh..opq)
mkdir -p "$WORK/cache-src"
echo 'warm' > "$WORK/cache-src/state"
fix_tree "$WORK/cache-src"
next_ts
umoci insert --rootless --image "$IMG" --history.created "$TS" \
  --history.created_by '/bin/sh -c rm -rf /srv/cache && mkdir /srv/cache && echo warm > /srv/cache/state' \
  --opaque "$WORK/cache-src" /srv/cache

# layer 5: single whiteout written by umoci insert --whiteout
next_ts
umoci insert --rootless --image "$IMG" --history.created "$TS" \
  --history.created_by '/bin/sh -c rm /srv/current.env' \
  --whiteout /srv/current.env

config_step 'CMD ["/bin/sh"]' --config.cmd /bin/sh
next_ts
umoci config --image "$IMG" --no-history --created "$TS"
umoci gc --layout "$W"
skopeo copy -q "oci:$W:latest" oci:whiteouts-oci:latest
export_archives whiteouts-oci latest strata-fixtures/whiteouts:latest whiteouts

# ================================================================ multiarch
# Two single-platform images are built with umoci in one scratch layout
# (tags amd64 / arm64, platform set with `umoci config --os/--architecture`).
# An image index blob listing both manifests with their platform is then
# written with jq, index.json is pointed at it (tag "latest"), and
# `skopeo copy --all --preserve-digests` copies that into the final layout,
# i.e. multiarch-oci/index.json -> image index blob -> 2 manifests
# (the nested shape `skopeo copy --all` produces for multi-arch images).
M="$WORK/ma"
umoci init --layout "$M"
for arch in amd64 arm64; do
  TS_N=0
  IMG="$M:$arch"
  umoci new --image "$IMG"
  next_ts
  umoci config --image "$IMG" --no-history --created "$TS" --os linux --architecture "$arch"
  begin_layer
  mkdir -p "$R/etc" "$R/opt/deploy"
  printf 'NAME="Strata Fixture Linux"\nID=strata-fixture\nVERSION_ID=1.0\n' > "$R/etc/os-release"
  if [ "$arch" = amd64 ]; then
    cat > "$R/opt/deploy/credentials" <<EOF
[default]
aws_access_key_id = $MA_AMD64_AWS_KEY_ID
aws_secret_access_key = $MA_AMD64_AWS_SECRET
EOF
    end_layer 'COPY credentials /opt/deploy/credentials'
  else
    cat > "$R/opt/deploy/github_token" <<EOF
GITHUB_TOKEN=$MA_ARM64_GHP
EOF
    end_layer 'COPY github_token /opt/deploy/github_token'
  fi
  config_step 'CMD ["/bin/sh"]' --config.cmd /bin/sh
  next_ts
  umoci config --image "$IMG" --no-history --created "$TS"
done
umoci gc --layout "$M"

desc() { # TAG -> manifest descriptor (without annotations) from index.json
  jq -c --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | del(.annotations)' "$M/index.json"
}
IDX="$WORK/index-blob.json"
jq -cn --argjson a "$(desc amd64)" --argjson b "$(desc arm64)" '{
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [
    ($a + {platform: {architecture: "amd64", os: "linux"}}),
    ($b + {platform: {architecture: "arm64", os: "linux", variant: "v8"}})
  ]}' | tr -d '\n' > "$IDX"
IDX_SHA="$(sha256sum "$IDX" | cut -d' ' -f1)"
IDX_SIZE="$(stat -c %s "$IDX")"
cp "$IDX" "$M/blobs/sha256/$IDX_SHA"
jq -cn --arg d "sha256:$IDX_SHA" --argjson s "$IDX_SIZE" '{
  schemaVersion: 2,
  manifests: [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
               annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' > "$M/index.json"
skopeo copy -q --all --preserve-digests "oci:$M:latest" oci:multiarch-oci:latest
skopeo copy -q --all --preserve-digests oci:multiarch-oci:latest oci-archive:multiarch.oci.tar:latest

echo "fixtures rebuilt in $HERE:"
ls -l "$HERE"
