#!/usr/bin/env bash
# Runs strata's cargo-fuzz targets, one at a time, each for N seconds.
#
#   fuzz/run.sh [TARGET...] [--seconds N] [--keep-going] [--no-build]
#               [--sanitizer none|address]
#
# Works on stable Rust: cargo-fuzz needs nightly-only -Z flags, which stable
# rustc accepts under RUSTC_BOOTSTRAP=1 (set here). --sanitizer defaults to
# none (strata is safe Rust; ASan only slows it). Binaries go to
# $CARGO_TARGET_DIR (default fuzz/target).
# No TARGET: every target. Each run is niced (-n 15), one process, with
# -rss_limit_mb=2048 and -timeout=10. A run stops at its first crasher unless
# --keep-going (libFuzzer's fork mode, one child at a time, which records
# every crasher and goes on). The
# working corpus (fuzz/corpus/TARGET, not committed) is seeded from
# fuzz/seeds/TARGET and the real-tool images in corpus/real (git_objects: a
# repo made by git, see git_seeds.py).
# Crashers land in fuzz/artifacts/TARGET/; logs in fuzz/logs/. Prints one
# summary line per target: seconds, execs, corpus size, new crashers.
# --no-build runs the binaries already built (while a rebuild goes on).
set -euo pipefail
cd "$(dirname "$0")"

seconds=60
build=1
sanitizer=none
targets=()
mode=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    --no-build) build=0; shift ;;
    --sanitizer) sanitizer="$2"; shift 2 ;;
    --sanitizer=*) sanitizer="${1#*=}"; shift ;;
    --keep-going) mode=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1); shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=(docker_manifest oci_manifest oci_index image_config layer_walk layer_entries
     reference auth_challenge nested_archive scan_archive git_objects)
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [ -f "fuzz_targets/$t.rs" ] || { echo "run.sh: no target $t (have: ${all[*]})" >&2; exit 2; }
done

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
real=../corpus/real
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Documents and layers of the real-tool images, for the metadata and walk targets.
extract_real() {
  local out="$tmp/real"
  [ -d "$out" ] && return
  mkdir -p "$out"/{json,config,manifest,index,layer,archive}
  cp "$real"/*.tar "$out/archive/"
  for layout in "$real"/*-oci; do
    cp "$layout/index.json" "$out/index/$(basename "$layout").json"
    for blob in "$layout"/blobs/sha256/*; do
      case "$(head -c 2 "$blob" | od -An -tx1 | tr -d ' ')" in
        1f8b) cp "$blob" "$out/layer/" ;;
        7b*)
          if grep -q '"manifests"' "$blob"; then cp "$blob" "$out/index/"
          elif grep -Eq '"layers": *\[' "$blob"; then cp "$blob" "$out/manifest/"
          else cp "$blob" "$out/config/"; fi ;;
      esac
    done
  done
  for a in "$real"/*.docker.tar; do
    tar -xOf "$a" manifest.json > "$out/json/$(basename "$a").manifest.json"
  done
}

seed() {
  local t="$1" dir="corpus/$1"
  mkdir -p "$dir" "artifacts/$t"
  cp -n seeds/"$t"/* "$dir/" 2>/dev/null || true
  extract_real
  case "$t" in
    docker_manifest) cp -n "$tmp"/real/json/* "$dir/" 2>/dev/null || true ;;
    oci_manifest) cp -n "$tmp"/real/manifest/* "$dir/" 2>/dev/null || true ;;
    oci_index) cp -n "$tmp"/real/index/* "$dir/" 2>/dev/null || true ;;
    image_config) cp -n "$tmp"/real/config/* "$dir/" 2>/dev/null || true ;;
    layer_walk) cp -n "$tmp"/real/layer/* "$dir/" 2>/dev/null || true ;;
    nested_archive|scan_archive) cp -n "$tmp"/real/archive/* "$dir/" 2>/dev/null || true ;;
    # Loose objects and a `git gc --aggressive` pack of a repo made by git itself.
    git_objects) command -v git >/dev/null && python3 git_seeds.py "$dir" ;;
  esac
}

target_dir="${CARGO_TARGET_DIR:-target}"
export RUSTC_BOOTSTRAP=1
# One core: the scan targets would otherwise start a rayon pool per core.
export RAYON_NUM_THREADS=1
if ((build)); then
  # -a: debug assertions and overflow checks, so arithmetic on sizes read from
  # an image panics where a release build would silently wrap.
  build_cmd=(nice -n 10 cargo fuzz build --sanitizer "$sanitizer" -a --target-dir "$target_dir")
  "${build_cmd[@]}" >/dev/null 2>&1 || "${build_cmd[@]}"
fi
mkdir -p logs
for t in "${targets[@]}"; do
  seed "$t"
  before=$(find "artifacts/$t" -type f | wc -l)
  log="logs/$t.log"
  start=$(date +%s)
  set +e
  nice -n 15 "$target_dir/x86_64-unknown-linux-gnu/release/$t" "corpus/$t" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 "${mode[@]}" >"$log" 2>&1
  code=$?
  set -e
  took=$(( $(date +%s) - start ))
  execs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  if [ -z "$execs" ]; then
    execs=$(grep -aEo '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)  # fork mode: last status line
  fi
  size=$(find "corpus/$t" -type f | wc -l)
  after=$(find "artifacts/$t" -type f | wc -l)
  printf '%-16s %6ss  execs %-10s corpus %-6s new crashers %s%s\n' "$t" "$took" "${execs:-0}" \
    "$size" "$((after - before))" "$( ((code)) && echo "  (exit $code, see fuzz/$log)")"
done
