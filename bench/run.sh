#!/usr/bin/env bash
# strata throughput / parallelism / memory benchmark. See bench/README.md.
#
#   bash bench/run.sh [--quick]
#
# Env: STRATA_BIN (skip building strata), CARGO_TARGET_DIR (default <repo>/target),
#      BENCH_DIR (images + work files, default /tmp/strata-bench; --quick uses $BENCH_DIR/quick),
#      RUNS (timing repetitions, default 3, --quick 1), SKIP (e.g. "d e": images to skip).
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
mkbig() { python3 "$BENCH/mkbig.py" "$1" --total-mb "$BIG_TOTAL_MB" --file-mb "$BIG_FILE_MB"; }
os_image() { # OUT: debootstrap minbase bookworm, else host trees; one gzip layer
  local out=$1 root=$ROOTFS
  if [ ! -f "$root/.complete" ]; then
    need debootstrap || apt-get install -y debootstrap >/dev/null 2>&1 || true
    if need debootstrap; then
      rm -rf "$root"
      log "  debootstrap --variant=minbase bookworm $root"
      if debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$ROOTFS.log" 2>&1; then
        touch "$root/.complete"
      else
        log "  debootstrap failed (see $ROOTFS.log); falling back to host trees"
      fi
    fi
  fi
  if [ -f "$root/.complete" ]; then
    echo "debootstrap minbase bookworm" >"$IMG/e.source"
    # the rootfs as ONE layer with image-relative paths (./etc/..., ./usr/...)
    (cd "$root" && python3 "$BENCH/mkimage.py" "$out" --gzip .)
  else
    local dirs=(/usr/share) d
    for d in /usr/lib/python3* /root/.pyenv/versions/*/lib/python3* /usr/local/lib/python3*; do
      [ -d "$d" ] && dirs+=("$d")
    done
    echo "host trees: ${dirs[*]}" >"$IMG/e.source"
    python3 "$BENCH/mkimage.py" "$out" --gzip "${dirs[@]}"
  fi
}

skipped() { [[ " $SKIP " == *" $1 "* ]]; }
IMAGES=()
for n in a b c d e ref; do skipped "$n" || IMAGES+=("$n"); done
for n in "${IMAGES[@]}"; do
  case $n in
    a)   gen a.oci.tar   corpus_big "$SIZE_MB" 1 gzip ;;
    b)   gen b.oci.tar   corpus_big "$SIZE_MB" 8 gzip ;;
    c)   gen c.oci.tar   corpus_big "$SIZE_MB" 1 zstd ;;
    d)   gen d.docker.tar mkbig ;;
    e)   gen e.docker.tar os_image ;;
    ref) gen ref.oci.tar corpus_big "$REF_MB" 1 gzip ;;
  esac
done
file_of() { case $1 in d|e) echo "$IMG/$1.docker.tar" ;; *) echo "$IMG/$1.oci.tar" ;; esac; }
desc_of() {
  case $1 in
    a) echo "${SIZE_MB}MiB text, 1 gzip layer" ;;
    b) echo "${SIZE_MB}MiB text, 8 gzip layers" ;;
    c) echo "${SIZE_MB}MiB text, 1 zstd layer" ;;
    d) echo "${BIG_TOTAL_MB}MiB, one ${BIG_FILE_MB}MiB file, 4 gzip layers" ;;
    e) echo "OS: $(cat "$IMG/e.source" 2>/dev/null)" ;;
    ref) echo "${REF_MB}MiB text, 1 gzip layer (RSS reference)" ;;
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
      n=$("$(decomp_of "$b")" -dc <"$b" | wc -c)
      total=$((total + n))
    done < <(blobs_of "$1")
    echo "$total" >"$f"
  fi
  cat "$f"
}

# ---------------------------------------------------------------- timing
# measure CMD... : runs RUNS times; sets M_WALL (median seconds) and M_RSS (max KiB)
now_ns() { date +%s%N; }
measure() {
  local i t0 t1 rc walls=() cpus=() rss=0 r
  for ((i = 0; i < RUNS; i++)); do
    [ -n "${MEASURE_PREP:-}" ] && eval "$MEASURE_PREP"
    t0=$(now_ns)
    set +e
    /usr/bin/time -f '%M %U %S' -o "$WORK/time.out" "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err"
    rc=$?
    set -e
    t1=$(now_ns)
    if [ "$rc" -ge 2 ]; then
      log "FAILED (exit $rc): $*"; sed 's/^/    /' "$WORK/cmd.err" | tail -5 >&2
      M_WALL=nan; M_CPU=nan; M_RSS=0; return 0
    fi
    walls+=("$(( (t1 - t0) / 1000 ))")
    read -r r u sy < <(tail -1 "$WORK/time.out")
    [ "$r" -gt "$rss" ] && rss=$r
    cpus+=("$(awk -v u="$u" -v s="$sy" 'BEGIN { printf "%d", (u + s) * 1000 }')")
  done
  M_WALL=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]/1e6}')
  M_CPU=$(printf '%s\n' "${cpus[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1e3}')
  M_RSS=$rss
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b + 0 == 0) print "nan"; else printf "%.2f", a / b }'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s == "nan" || s + 0 == 0) print "nan"; else printf "%.0f", b / s / 1048576 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

MEASURE_PREP=
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A R  # results: R[name.key]
RESULTS=$WORK/results-$(date +%Y%m%d-%H%M%S).tsv
for n in "${IMAGES[@]}"; do
  f=$(file_of "$n")
  mapfile -t blobs < <(blobs_of "$n")
  tool=$(decomp_of "${blobs[0]}")
  R[$n.usize]=$(usize_of "$n")
  R[$n.tool]=$tool
  log "$n: $(desc_of "$n"); $(numfmt --to=iec "${R[$n.usize]}")B uncompressed; timing $tool -dc"
  measure "$tool" -dc "${blobs[@]}"
  R[$n.dec]=$M_WALL; R[$n.decc]=$M_CPU
  log "$n: strata scan --threads 1"
  measure "$STRATA_BIN" scan --threads 1 "$f"
  R[$n.s1]=$M_WALL; R[$n.s1c]=$M_CPU; R[$n.rss1]=$M_RSS
  log "$n: strata scan (all threads)"
  measure "$STRATA_BIN" scan --format json "$f"
  R[$n.sN]=$M_WALL; R[$n.sNc]=$M_CPU; R[$n.rssN]=$M_RSS
  if [ "$n" = e ] && [ -s "$WORK/cmd.out" ]; then
    R[e.sev]=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
s = d.get("summary", {}).get("by_severity")
if s is None:  # no summary block: count the findings
    s = {}
    for f in d.get("findings", []):
        s[f["severity"]] = s.get(f["severity"], 0) + 1
order = ["critical", "high", "medium", "low", "info"]
print(" ".join(f"{k}={s.get(k, 0)}" for k in order + sorted(set(s) - set(order))),
      "total=%d" % len(d.get("findings", [])))
 ' "$WORK/cmd.out" 2>/dev/null || echo "json parse failed")
  fi
  if [ "$n" = a ]; then
    # The layer walk alone: decompress + tar walk + digests, every byte read (strata layers).
    log "a: layer walk alone (strata layers, one thread), with and without diff_id checks"
    measure env RAYON_NUM_THREADS=1 "$STRATA_BIN" layers "$f"
    R[a.walk]=$M_WALL
    measure env RAYON_NUM_THREADS=1 "$STRATA_BIN" layers --no-diff-id-check "$f"
    R[a.walkf]=$M_WALL
    log "a: strata scan --threads 1 --no-diff-id-check"
    measure "$STRATA_BIN" scan --threads 1 --no-diff-id-check "$f"
    R[a.s1f]=$M_WALL
  fi
  if [ "$n" = b ]; then
    if [ "$HAVE_CACHE" = 1 ]; then
      log "b: cached rescan after changing only the top layer"
      [ -s "$IMG/b2.oci.tar" ] && [ "$IMG/b2.oci.tar" -nt "$f" ] || python3 "$BENCH/retop.py" "$f" "$IMG/b2.oci.tar" bench
      rm -rf "$WORK/cache-warm"
      "$STRATA_BIN" scan --cache-dir "$WORK/cache-warm" "$f" >/dev/null 2>&1 || true
      # each run starts (untimed) from the cache as left by the full scan of b
      MEASURE_PREP='rm -rf "$WORK/cache-run"; cp -a "$WORK/cache-warm" "$WORK/cache-run"'
      measure "$STRATA_BIN" scan --cache-dir "$WORK/cache-run" "$IMG/b2.oci.tar"
      MEASURE_PREP=
      R[b.cache]=$M_WALL
    else
      R[b.cache]="n/a"
    fi
  fi
  printf '%s\t%s\n' "$n" "$(for k in usize tool dec decc s1 s1c sN sNc rss1 rssN; do printf '%s=%s ' "$k" "${R[$n.$k]}"; done)" >>"$RESULTS"
done

# ---------------------------------------------------------------- report
echo
echo "strata benchmark  $(date -u +%FT%TZ)  $(uname -m), $NPROC CPUs, runs=$RUNS (median)$([ "$QUICK" = 1 ] && echo ', QUICK sizes')"
echo "binary: $STRATA_BIN   images: $IMG"
echo "throughput = uncompressed bytes / wall seconds; ratio = strata(1 thread) throughput / decompressor throughput"
echo "cpuRat = the same ratio from user+sys CPU seconds (robust to a busy machine); cpu_s = CPU seconds of the ${NPROC}-thread scan"
echo "load average at start: $LOAD0   at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-4s %-40s %9s | %-5s %7s %6s | %8s %6s %6s %6s | %8s %6s %7s %6s | %7s %7s\n' \
  img description uncompr dec secs MiB/s "1T secs" MiB/s ratio cpuRat "${NPROC}T secs" MiB/s speedup cpu_s "RSS 1T" "RSS ${NPROC}T"
printf '%s\n' "$(printf -- '-%.0s' {1..160})"
for n in "${IMAGES[@]}"; do
  u=${R[$n.usize]}
  printf '%-4s %-40s %7sB | %-5s %7s %6s | %8s %6s %5sx %5sx | %8s %6s %6sx %6s | %4sMiB %4sMiB\n' \
    "$n" "$(desc_of "$n" | cut -c1-40)" "$(numfmt --to=iec "$u")i" \
    "${R[$n.tool]}" "${R[$n.dec]}" "$(mbps "$u" "${R[$n.dec]}")" \
    "${R[$n.s1]}" "$(mbps "$u" "${R[$n.s1]}")" "$(div "${R[$n.dec]}" "${R[$n.s1]}")" "$(div "${R[$n.decc]}" "${R[$n.s1c]}")" \
    "${R[$n.sN]}" "$(mbps "$u" "${R[$n.sN]}")" "$(div "${R[$n.s1]}" "${R[$n.sN]}")" "${R[$n.sNc]}" \
    "$(mib "${R[$n.rss1]}")" "$(mib "${R[$n.rssN]}")"
done
echo
if [[ -n "${R[b.cache]:-}" ]]; then
  if [ "${R[b.cache]}" = "n/a" ]; then
    echo "b cached rescan: cache: not available (strata scan --help has no --cache-dir)"
  else
    echo "b cached rescan (top layer changed): ${R[b.cache]}s vs full ${R[b.sN]}s = $(div "${R[b.cache]}" "${R[b.sN]}") of a full scan"
  fi
fi
if [[ -n "${R[a.walk]:-}" ]]; then
  echo "a layer walk alone, 1 thread: $(mbps "${R[a.usize]}" "${R[a.walk]}") MiB/s with diff_id checks, $(mbps "${R[a.usize]}" "${R[a.walkf]}") MiB/s with --no-diff-id-check"
  echo "a scan, 1 thread, --no-diff-id-check: ${R[a.s1f]}s = $(div "${R[a.dec]}" "${R[a.s1f]}")x gzip -dc"
fi
[[ -n "${R[e.sev]:-}" ]] && echo "e findings by severity: ${R[e.sev]}"
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
has a && add "gzip1T(a)" "$(div "${R[a.dec]}" "${R[a.s1]}")" ">=" 1.3 x "$(div "${R[a.decc]}" "${R[a.s1c]}")"
has b && add "gzip1T(b)" "$(div "${R[b.dec]}" "${R[b.s1]}")" ">=" 1.3 x "$(div "${R[b.decc]}" "${R[b.s1c]}")"
has c && add "zstd1T(c)" "$(div "${R[c.dec]}" "${R[c.s1]}")" ">=" 0.3 x "$(div "${R[c.decc]}" "${R[c.s1c]}")"
has b && add "par${NPROC}T(b)" "$(div "${R[b.s1]}" "${R[b.sN]}")" ">=" 1.8 x
has a && add "par${NPROC}T(a)" "$(div "${R[a.s1]}" "${R[a.sN]}")" ">=" 1.4 x
if has d; then
  d_rss=$(( ${R[d.rss1]} > ${R[d.rssN]} ? ${R[d.rss1]} : ${R[d.rssN]} ))
  add "rss(d)" "$(mib "$d_rss")" "<=" 200 MiB
  if has ref; then
    r_rss=$(( ${R[ref.rss1]} > ${R[ref.rssN]} ? ${R[ref.rss1]} : ${R[ref.rssN]} ))
    add "rss(d)/rss(ref)" "$(div "$d_rss" "$r_rss")" "<=" 1.2 x
  fi
fi
if has b; then
  if [ "${R[b.cache]}" = "n/a" ]; then S+=("cache(b)=not-available N/A")
  else add "cache(b)" "$(div "${R[b.cache]}" "${R[b.sN]}")" "<=" 0.2 x; fi
fi
if [[ -n "${R[a.walk]:-}" ]]; then
  # The issue's "layer walk alone" is decompress + tar walk reading every byte: measured
  # without the optional diff_id SHA-256; the default (with it) is shown beside it.
  walk_mb() { awk -v b="${R[a.usize]}" -v s="$1" 'BEGIN { if (s + 0 == 0) print "nan"; else printf "%.0f", b / s / 1e6 }'; }
  add "walk1T(a)" "$(walk_mb "${R[a.walkf]}")" ">=" 700 MB/s
  S+=("walk1T(a,+diff_id sha256)=$(walk_mb "${R[a.walk]}")MB/s (info)")
fi
SUMMARY=$(printf '%s; ' "${S[@]}")
echo "SUMMARY: ${SUMMARY%; }"
