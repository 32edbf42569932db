#!/usr/bin/env bash
# Builds the real-content benchmark images from real trees (tarred by GNU tar, wrapped into
# images by strata's generator, `corpus wrap`), and plants fake secrets in them. See bench/README.md.
#
#   bash bench/mkreal.sh BENCH_DIR [--quick]
#
# Writes into BENCH_DIR/images (each image once; delete one to rebuild it):
#   r1.oci.tar     the real tree as ONE gzip layer (OCI archive)
#   r4.oci.tar     the same files over 4 uneven gzip layers (45/30/15/10 % of the bytes)
#   rd.docker.tar  the same 4 layers uncompressed, docker-save layout (manifest.json)
#   rz.oci.tar     the real tree as ONE zstd layer
#   rs.oci.tar     >= 300,000 small files in node_modules-like trees, ONE gzip layer
#   ru.oci.tar     rs's tree with every file made unique (a numbered line appended), ONE gzip
#                  layer: rs repeats its seed files (~98% of them are copies), which strata's
#                  content memo scans once; ru measures the same shape with no byte repeated
# and BENCH_DIR/images/planted-r.tsv / planted-rs.tsv: id, image path, secret of every
# planted secret (all fake, made for this benchmark).
#
# The real tree: `debootstrap --variant=minbase bookworm` (BENCH_DIR/rootfs, through apt's
# Debian mirror) with this machine's /usr trees added on top (binaries, .so/.a libraries,
# Python packages, docs, .gz man pages) up to REAL_MB (default 700, --quick 120) MiB.
# The same machine gives the same bytes: files are taken in sorted order, tar sorts names and
# forces owner 0 and mtime 0.
set -euo pipefail

BENCH_DIR=$(realpath -m "${1:?usage: mkreal.sh BENCH_DIR [--quick]}")
QUICK=0
[ "${2:-}" = --quick ] && QUICK=1
if [ "$QUICK" = 1 ]; then REAL_MB=${REAL_MB:-120}; SMALL_FILES=${SMALL_FILES:-30000}
else REAL_MB=${REAL_MB:-700}; SMALL_FILES=${SMALL_FILES:-300000}; fi
ROOTFS=${ROOTFS:-$BENCH_DIR/rootfs}
IMG=$BENCH_DIR/images
WORK=$BENCH_DIR/work/real
mkdir -p "$IMG" "$WORK"
log() { printf '[mkreal %s] %s\n' "$(date +%T)" "$*" >&2; }
TAR=(tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu)

# ---------------------------------------------------------------- fake secrets
# All fake: FAKE/TEST in every one where the format allows. The GitHub and npm tokens carry
# a correct CRC32 checksum so checksum validators accept them.
checksummed() { # PREFIX BODY30 -> PREFIX BODY30 base62(crc32(BODY30)) padded to 6
  python3 -c '
import sys, zlib
p, b = sys.argv[1], sys.argv[2]
n = zlib.crc32(b.encode()); a = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"; s = ""
for _ in range(6): s = a[n % 62] + s; n //= 62
print(p + b + s)' "$1" "$2"
}
AWS_ID=AKIAFAKEBENCHTEST234
AWS_SECRET=Fake0nlyBenchTestSecretKey/9xQ2mK7vR4tLp
GH_TOKEN=$(checksummed ghp_ FAKEbenchTESTtoken0123456789ab)
NPM_TOKEN=$(checksummed npm_ FAKEbenchNpmTESTtoken000000000)
# Slack's numeric parts carry no counting runs (a run of 8+ is hand-typed filler to the filters) and
# GitLab's body is exactly the 20 characters of its format: both are reported by strata's real rules.
SLACK=xoxb-5829104736251-7391046285173-FAKEbenchSlackTESTtok9Qz
GITLAB=glpat-FAKEbenchTESTq7Xk2Wm
STRIPE=sk_live_FAKEbenchTESTstripeKey00000

plant_real() { # STAGE -> plants; writes $IMG/planted-r.tsv
  local s=$1
  mkdir -p "$s/app" "$s/root/.config/gh" "$s/etc/default" "$s/etc/ssl/private" \
    "$s/var/log" "$s/usr/share/doc/fake-test-pkg"
  printf 'NODE_ENV=production\nAWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' \
    "$AWS_ID" "$AWS_SECRET" >"$s/app/.env"
  printf 'github.com:\n    user: fake-test\n    oauth_token: %s\n    git_protocol: https\n' \
    "$GH_TOKEN" >"$s/root/.config/gh/hosts.yml"
  printf '# fake test service\nSLACK_BOT_TOKEN=%s\n' "$SLACK" >"$s/etc/default/fake-test-app"
  # A throwaway key made for this benchmark; the same bytes every build.
  if [ ! -s "$WORK/fake-test-server.key" ]; then
    openssl genrsa -traditional -out "$WORK/fake-test-server.key" 2048 2>/dev/null \
      || openssl genrsa -out "$WORK/fake-test-server.key" 2048 2>/dev/null
  fi
  cp "$WORK/fake-test-server.key" "$s/etc/ssl/private/fake-test-server.key"
  # A 24 MiB log of real text (man pages) with a GitLab token in the middle: a big file.
  {
    local n=0
    while IFS= read -r f; do
      zcat -f "$f" 2>/dev/null || true
      n=$((n + 1))
      [ "$n" = 600 ] && printf 'deploy: using GITLAB_TOKEN=%s for the release job\n' "$GITLAB"
    done < <(find /usr/share/man/man1 /usr/share/man/man3 -name '*.gz' | sort)
  } | head -c $((24 << 20)) >"$s/var/log/fake-test-big.log" || true
  grep -q "$GITLAB" "$s/var/log/fake-test-big.log" || {
    printf 'deploy: using GITLAB_TOKEN=%s for the release job\n' "$GITLAB" >>"$s/var/log/fake-test-big.log"
  }
  # A secret only inside a compressed file (as .gz man pages and changelogs are).
  printf 'release notes\n//registry.npmjs.org/:_authToken=%s\n' "$NPM_TOKEN" \
    | gzip -n >"$s/usr/share/doc/fake-test-pkg/NOTES.gz"
  # Inside a Python package, as a library default someone forgot.
  local py
  py=$(find "$s/usr/lib" -maxdepth 3 -type d -path '*python3*/*' -name 'json' | sort | sed -n 1p)
  py=${py:-$s/usr/lib/python3/dist-packages/json}
  mkdir -p "$py"
  printf 'STRIPE_API_KEY = "%s"  # fake test key\n' "$STRIPE" >"$py/fake_test_settings.py"
  {
    printf 'aws-access-key\t/app/.env\t%s\n' "$AWS_ID"
    printf 'aws-secret-key\t/app/.env\t%s\n' "$AWS_SECRET"
    printf 'github-pat\t/root/.config/gh/hosts.yml\t%s\n' "$GH_TOKEN"
    printf 'slack-bot\t/etc/default/fake-test-app\t%s\n' "$SLACK"
    printf 'private-key\t/etc/ssl/private/fake-test-server.key\t-----BEGIN RSA PRIVATE KEY-----\n'
    printf 'gitlab-in-24MiB-file\t/var/log/fake-test-big.log\t%s\n' "$GITLAB"
    printf 'npm-in-gz\t/usr/share/doc/fake-test-pkg/NOTES.gz\t%s\n' "$NPM_TOKEN"
    printf 'stripe-in-py\t/%s/fake_test_settings.py\t%s\n' "${py#"$s"/}" "$STRIPE"
  } >"$IMG/planted-r.tsv"
}

# ---------------------------------------------------------------- image assembly
# The archives are written by strata's image generator (`corpus wrap`, crates/imagegen/src/wrap.rs),
# the one archive writer the tests, corpus and bench share. CORPUS names a built generator
# (bench/run.sh passes its own path); when that is not built yet, it is built here.
corpus_bin() {
  if [ ! -x "${CORPUS:-}" ]; then
    local root; root=$(cd "$(dirname "$0")/.." && pwd)
    local target=${CARGO_TARGET_DIR:-$root/target}
    log "building the corpus generator"
    (cd "$root" && CARGO_TARGET_DIR=$target cargo build --release --quiet --example corpus)
    CORPUS=$target/release/examples/corpus
  fi
}
# oci_archive OUT COMP LAYERTAR... : OCI archive, every layer compressed with COMP (gzip|zstd)
oci_archive() {
  local out=$1 comp=$2; shift 2
  corpus_bin
  "$CORPUS" wrap "oci-$comp" "$@" bench "$out" >/dev/null
}
# docker_archive OUT LAYERTAR... : docker-save layout, layers uncompressed
docker_archive() {
  local out=$1; shift
  corpus_bin
  "$CORPUS" wrap docker "$@" bench/real:latest "$out" >/dev/null
}

# ---------------------------------------------------------------- the real tree
stage_real() {
  local s=$WORK/stage
  [ -f "$s/.complete" ] && return
  if [ ! -f "$ROOTFS/.complete" ]; then
    command -v debootstrap >/dev/null || apt-get install -y debootstrap >/dev/null
    rm -rf "$ROOTFS"
    log "debootstrap --variant=minbase bookworm $ROOTFS"
    debootstrap --variant=minbase bookworm "$ROOTFS" http://deb.debian.org/debian >"$ROOTFS.log" 2>&1
    touch "$ROOTFS/.complete"
  fi
  rm -rf "$s"; mkdir -p "$s"
  log "staging the rootfs and host /usr trees up to ${REAL_MB} MiB"
  (cd "$ROOTFS" && tar --exclude=./.complete --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* -cf - .) | tar -C "$s" -xf -
  local have budget
  have=$(du -sb "$s" | cut -f1)
  budget=$((REAL_MB * 1048576 - have - (30 << 20)))
  # Host trees in a fixed order, files sorted, until the budget is spent: man pages (.gz),
  # docs, Python packages, GCC's .a/.so/binaries, /usr/bin, shared libraries.
  local d
  for d in /usr/share/man /usr/share/doc /usr/lib/python3 /usr/lib/python3.11 /usr/lib/gcc /usr/bin /usr/lib/x86_64-linux-gnu; do
    if [ -d "$d" ]; then find "$d" -xdev \( -type f -o -type l \) -printf '%s\t%p\n' | sort -t$'\t' -k2; fi
  done | awk -F'\t' -v b="$budget" '{ t += $1; if (t <= b) print $2 }' >"$WORK/host.list"
  tar -cf - --no-recursion -T "$WORK/host.list" 2>/dev/null | tar -C "$s" -xf - 2>/dev/null || true
  plant_real "$s"
  printf '%s' "$PLANTED" >"$s/.planted"
  touch "$s/.complete"
  log "staged $(du -sh --exclude=.complete "$s" | cut -f1) in $(find "$s" -type f | wc -l) files"
}

real_layers() { # -> $WORK/layer-all.tar, $WORK/layer-part{0..3}.tar
  local s=$WORK/stage
  if [ ! -s "$WORK/layer-all.tar" ] || [ "$s/.complete" -nt "$WORK/layer-all.tar" ]; then
    log "tar: one layer"
    (cd "$s" && find . -mindepth 1 -maxdepth 1 ! -name .complete ! -name .planted -printf '%P\n' | sort >"$WORK/top.list")
    "${TAR[@]}" -C "$s" -cf "$WORK/layer-all.tar.tmp" -T "$WORK/top.list"
    mv "$WORK/layer-all.tar.tmp" "$WORK/layer-all.tar"
  fi
  if [ ! -s "$WORK/layer-part3.tar" ] || [ "$WORK/layer-all.tar" -nt "$WORK/layer-part3.tar" ]; then
    log "tar: 4 uneven layers"
    # Directories go in the first layer; files by cumulative size: 45/30/15/10 %.
    (cd "$s" && find . -mindepth 1 -type d -printf '%P\n' | sort >"$WORK/dirs.list"
      find . -mindepth 1 ! -type d ! -name .complete ! -name .planted -printf '%s\t%P\n' | sort -t$'\t' -k2 >"$WORK/files.list")
    awk -F'\t' -v w="$WORK" '{ s[NR] = $1; p[NR] = $2; t += $1 }
      END { c = 0; for (i = 1; i <= NR; i++) { f = c / t; k = f < .45 ? 0 : f < .75 ? 1 : f < .90 ? 2 : 3;
            print p[i] > (w "/part" k ".list"); c += s[i] } }' "$WORK/files.list"
    cat "$WORK/dirs.list" "$WORK/part0.list" >"$WORK/part0d.list"
    "${TAR[@]}" -C "$s" --no-recursion -cf "$WORK/layer-part0.tar" -T "$WORK/part0d.list"
    local k; for k in 1 2 3; do "${TAR[@]}" -C "$s" --no-recursion -cf "$WORK/layer-part$k.tar" -T "$WORK/part$k.list"; done
  fi
}

# ---------------------------------------------------------------- many small files
stage_small() {
  local s=$WORK/small
  [ -f "$s/.complete" ] && return
  rm -rf "$s"; mkdir -p "$s/seed"
  log "staging a node_modules-like tree of $SMALL_FILES small files"
  # Seed: this machine's small source and text files (<= 4 KiB), as in a package tree.
  local d
  for d in /usr/lib/python3 /usr/lib/python3.11 /usr/include /usr/share/doc /usr/lib/node_modules /usr/share/nodejs; do
    if [ -d "$d" ]; then find "$d" -xdev -type f -size -4k -printf '%p\n'; fi
  done | sort >"$WORK/seed.list"
  tar -cf - --no-recursion -T "$WORK/seed.list" 2>/dev/null | tar -C "$s/seed" -xf - 2>/dev/null || true
  local per; per=$(find "$s/seed" -type f | wc -l)
  [ "$per" -gt 0 ] || { echo "no seed files" >&2; exit 2; }
  local copies=$(( (SMALL_FILES + per - 1) / per )) i
  mkdir -p "$s/tree"
  for ((i = 0; i < copies; i++)); do
    mkdir -p "$s/tree/srv/app$(printf %02d "$i")"
    cp -a "$s/seed/." "$s/tree/srv/app$(printf %02d "$i")/node_modules"
  done
  rm -rf "$s/seed"
  # Planted: where they sit in real JavaScript trees.
  local a=$s/tree/srv/app00 z; z=$s/tree/srv/app$(printf %02d $((copies - 1)))
  printf '//registry.npmjs.org/:_authToken=%s\n' "$NPM_TOKEN" >"$a/.npmrc"
  mkdir -p "$z/node_modules/fake-test-sdk/lib"
  printf "module.exports = { token: '%s' };\n" "$GH_TOKEN" >"$z/node_modules/fake-test-sdk/lib/config.js"
  printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "$AWS_ID" "$AWS_SECRET" >"$z/.env"
  {
    printf 'npm-npmrc\t/srv/app00/.npmrc\t%s\n' "$NPM_TOKEN"
    printf 'github-in-js\t/%s/node_modules/fake-test-sdk/lib/config.js\t%s\n' "${z#"$s/tree/"}" "$GH_TOKEN"
    printf 'aws-access-key\t/%s/.env\t%s\n' "${z#"$s/tree/"}" "$AWS_ID"
    printf 'aws-secret-key\t/%s/.env\t%s\n' "${z#"$s/tree/"}" "$AWS_SECRET"
  } >"$IMG/planted-rs.tsv"
  touch "$s/.complete"
  log "staged $(find "$s/tree" -type f | wc -l) files, $(du -sh "$s/tree" | cut -f1)"
}

built() { [ -s "$IMG/$1" ]; }
# A staged tree planted with other values (an older version of this script) is re-planted, and the
# layers and images made from it are rebuilt.
PLANTED="$AWS_ID $AWS_SECRET $GH_TOKEN $SLACK $GITLAB $NPM_TOKEN $STRIPE"
if [ -f "$WORK/stage/.complete" ] && [ "$(cat "$WORK/stage/.planted" 2>/dev/null)" != "$PLANTED" ]; then
  log "planted values changed: re-planting the staged tree, rebuilding r1 r4 rd rz"
  plant_real "$WORK/stage"
  printf '%s' "$PLANTED" >"$WORK/stage/.planted"
  touch "$WORK/stage/.complete"
  rm -f "$IMG/r1.oci.tar" "$IMG/r4.oci.tar" "$IMG/rd.docker.tar" "$IMG/rz.oci.tar"
fi
for want in r1 r4 rd rz; do
  built "$want.oci.tar" || built "$want.docker.tar" || { NEED_REAL=1; break; }
done
if [ "${NEED_REAL:-0}" = 1 ]; then
  stage_real
  real_layers
  P=("$WORK"/layer-part{0,1,2,3}.tar)
  built r1.oci.tar || { log "r1: one gzip layer"; oci_archive "$IMG/r1.oci.tar.tmp" gzip "$WORK/layer-all.tar" && mv "$IMG/r1.oci.tar.tmp" "$IMG/r1.oci.tar"; }
  built r4.oci.tar || { log "r4: 4 gzip layers"; oci_archive "$IMG/r4.oci.tar.tmp" gzip "${P[@]}" && mv "$IMG/r4.oci.tar.tmp" "$IMG/r4.oci.tar"; }
  built rd.docker.tar || { log "rd: docker-save, uncompressed"; docker_archive "$IMG/rd.docker.tar.tmp" "${P[@]}" && mv "$IMG/rd.docker.tar.tmp" "$IMG/rd.docker.tar"; }
  built rz.oci.tar || { log "rz: one zstd layer"; oci_archive "$IMG/rz.oci.tar.tmp" zstd "$WORK/layer-all.tar" && mv "$IMG/rz.oci.tar.tmp" "$IMG/rz.oci.tar"; }
fi
if ! built rs.oci.tar; then
  stage_small
  log "rs: small files, one gzip layer"
  "${TAR[@]}" -C "$WORK/small/tree" -cf "$WORK/layer-small.tar" srv
  oci_archive "$IMG/rs.oci.tar.tmp" gzip "$WORK/layer-small.tar"
  mv "$IMG/rs.oci.tar.tmp" "$IMG/rs.oci.tar"
  rm -f "$WORK/layer-small.tar"
fi
if ! built ru.oci.tar; then
  stage_small
  log "ru: rs's tree with every file unique, one gzip layer"
  rm -rf "$WORK/unique"; mkdir -p "$WORK/unique"
  cp -a "$WORK/small/tree/srv" "$WORK/unique/srv"
  # A numbered line of its own at the end of every file, in name order: no two files alike. A
  # gzip file gets it as a gzip member of its own (still valid gzip).
  python3 - "$WORK/unique" <<'PY'
import gzip, os, sys
root = sys.argv[1]
n = 0
for d, subdirs, files in os.walk(root):
    subdirs.sort()
    for f in sorted(files):
        p = os.path.join(d, f)
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        with open(p, "rb") as src:
            data = src.read()
        n += 1
        line = b"\n# unique %07d\n" % n
        if data[:2] == b"\x1f\x8b":
            line = gzip.compress(line, mtime=0)
        with open(p, "ab") as out:
            out.write(line)
print("ru: %d files made unique" % n, file=sys.stderr)
PY
  "${TAR[@]}" -C "$WORK/unique" -cf "$WORK/layer-unique.tar" srv
  oci_archive "$IMG/ru.oci.tar.tmp" gzip "$WORK/layer-unique.tar"
  mv "$IMG/ru.oci.tar.tmp" "$IMG/ru.oci.tar"
  rm -rf "$WORK/layer-unique.tar" "$WORK/unique"
fi
