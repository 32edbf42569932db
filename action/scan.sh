#!/usr/bin/env bash
# The scan step of the GitHub Action (also runs anywhere: its test is tests/it/action.rs).
# STRATA_IMAGE: an archive or OCI layout path, or a local image name exported with `docker save`.
# Writes SARIF to STRATA_SARIF, the human report to the log, and `findings` / `exit-code` to
# GITHUB_OUTPUT. Exits with strata's code, unless STRATA_DEFER_FAILURE=true (the action then
# uploads the SARIF first and fails in a later step).
set -uo pipefail
strata_bin="${STRATA_BIN:-strata}"
target="${STRATA_IMAGE:?set the image input}"
fail_on="${STRATA_FAIL_ON:-high}"
sarif="${STRATA_SARIF:-strata.sarif}"
read -r -a extra <<<"${STRATA_ARGS:-}"

mkdir -p "$(dirname "$sarif")"
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
if [ -e "$target" ]; then
  archive="$target"
else
  # Not a path: an image of the local engine. `docker save` streams it; strata reads stdin.
  if ! command -v docker >/dev/null 2>&1; then
    echo "strata: '$target' is not a file or directory, and docker is not installed to export it" >&2
    exit 2
  fi
  archive="$workdir/image.tar"
  docker save "$target" -o "$archive" || { echo "strata: docker save $target failed" >&2; exit 2; }
fi

"$strata_bin" scan --format sarif -o "$sarif" --fail-on "$fail_on" "${extra[@]}" "$archive"
code=$?
findings=0
if [ -s "$sarif" ]; then
  # One result per finding; each carries exactly one "ruleId" line in strata's pretty SARIF.
  findings="$(grep -c '"ruleId"' "$sarif" || true)"
fi
{
  echo "findings=${findings:-0}"
  echo "exit-code=$code"
} >>"${GITHUB_OUTPUT:-/dev/null}"
echo "strata: ${findings:-0} findings, exit $code (fail-on $fail_on)"
if [ "${STRATA_DEFER_FAILURE:-false}" = "true" ]; then
  exit 0
fi
exit "$code"
