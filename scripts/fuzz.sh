#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time each (default 20 s).
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
cd fuzz
# New inputs go to a scratch directory (libFuzzer writes to the first corpus
# directory); the committed corpus (capture seeds + crash regressions) is read only.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo fuzz list); do
  mkdir -p "$scratch/$target" "corpus/$target"
  echo "fuzzing $target for ${seconds}s"
  if ! cargo fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024 > "$scratch/$target.log" 2>&1; then
    tail -n 40 "$scratch/$target.log"
    echo "fuzz target $target failed; the crashing input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
  grep -E "^Done" "$scratch/$target.log" || tail -n 3 "$scratch/$target.log"
done
