#!/usr/bin/env bash
# Coverage of strata on sets of example secrets, each planted in one image layer and
# deleted in the next, the way a leaked file is "removed" in a later Dockerfile step.
#
#   bash bench/coverage/run.sh [--bin STRATA] [--misses] SET_DIR [SET_DIR ...]
#
# STRATA_SCAN_ARGS adds options to the scan (e.g. "--signatures signatures/" to try rule
# files without rebuilding).
#
# Each SET_DIR is a directory of small text files, one example each (the name of the
# directory is the set's name). For every set, umoci builds an OCI layout whose layer 1
# adds /planted/<set>/<file> for every file and whose layer 2 deletes each of them
# (per-file whiteouts). strata scans the layout; an example counts as covered when at
# least one finding is reported at its path with status `deleted`.
#
# Files whose name contains `.public.` (public identifiers: bucket names, client IDs,
# public keys) or `.placeholder.` (values that are placeholders by design) are examples
# strata deliberately does not report (signatures/README.md says why); they are scored
# separately so the "secrets" figure is comparable across runs.
#
# Needs umoci and python3. Writes only under a temporary directory it removes.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
bin="${STRATA_BIN:-$here/../../target/release/strata}"
misses=""
sets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --misses) misses="--misses"; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) sets+=("$1"); shift ;;
    esac
done
[ ${#sets[@]} -gt 0 ] || { echo "usage: $0 [--bin STRATA] [--misses] SET_DIR..." >&2; exit 2; }
command -v umoci >/dev/null || { echo "umoci is required (apt-get install umoci)" >&2; exit 2; }
[ -x "$bin" ] || { echo "strata binary not found: $bin (cargo build --release, or --bin)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for dir in "${sets[@]}"; do
    [ -d "$dir" ] || { echo "not a directory: $dir" >&2; exit 2; }
    name="$(basename "$dir")"
    img="$work/$name-img"
    bundle="$work/$name-bundle"
    umoci init --layout "$img" >/dev/null
    umoci new --image "$img:cov" >/dev/null
    umoci unpack --image "$img:cov" "$bundle" >/dev/null
    mkdir -p "$bundle/rootfs/planted/$name"
    cp "$dir"/* "$bundle/rootfs/planted/$name/"
    # --refresh-bundle: the next repack must diff against this layer, not the empty base.
    umoci repack --refresh-bundle --image "$img:cov" "$bundle" >/dev/null
    rm -f "$bundle/rootfs/planted/$name"/*
    umoci repack --image "$img:cov" "$bundle" >/dev/null
    rc=0
    # shellcheck disable=SC2086
    "$bin" scan ${STRATA_SCAN_ARGS:-} --format json -o "$work/$name.json" "$img" || rc=$?
    if [ "$rc" -ge 2 ]; then
        echo "$name: strata failed (exit $rc)" >&2
        exit 2
    fi
    python3 "$here/score.py" $misses "$name" "$dir" "$work/$name.json"
done
