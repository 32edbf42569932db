#!/usr/bin/env bash
# Installs strata for the GitHub Action: a release binary when STRATA_VERSION names one,
# else a build of the action's own source (ACTION_PATH) with cargo. Puts it on GITHUB_PATH.
set -euo pipefail
bin_dir="${RUNNER_TEMP:-/tmp}/strata-bin"
mkdir -p "$bin_dir"
if command -v strata >/dev/null 2>&1 && [ -z "${STRATA_VERSION:-}" ]; then
  echo "strata already installed: $(command -v strata)"
  exit 0
fi
if [ -n "${STRATA_VERSION:-}" ]; then
  repo="${STRATA_REPOSITORY:?the action repository is unknown}"
  url="https://github.com/$repo/releases/download/$STRATA_VERSION/strata-x86_64-unknown-linux-musl"
  echo "strata: downloading $url"
  curl --fail --location --silent --show-error -o "$bin_dir/strata" "$url"
  chmod +x "$bin_dir/strata"
else
  echo "strata: building from ${ACTION_PATH:?} with cargo"
  cargo install --locked --root "$bin_dir/.." --path "$ACTION_PATH" >/dev/null
fi
echo "$bin_dir" >>"${GITHUB_PATH:-/dev/null}"
"$bin_dir/strata" --version
