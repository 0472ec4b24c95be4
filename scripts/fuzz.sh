#!/usr/bin/env bash
# Fuzzes every parser of untrusted input with cargo fuzz (libFuzzer) on the stable toolchain:
# the OpenTok manifest, the LiveSwitch log and event, the EnableX notification, the Matroska
# scan, and the identifier gate (plain, distinct names). Installs cargo-fuzz from crates.io
# when missing.
#
#   scripts/fuzz.sh                      # each target for 10 s (what CI runs)
#   scripts/fuzz.sh --seconds 60         # each target for a minute
#   scripts/fuzz.sh --runs 10000000      # each target for 10 million executions
#   scripts/fuzz.sh --runs 1000 matroska_scan
#
# Seeds are fuzz/seeds/<target>; what the fuzzer finds grows fuzz/corpus/<target> (not
# committed). A crash, hang (10 s) or allocation over 1 GiB fails the run and leaves the
# input in fuzz/artifacts/<target>.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=(-max_total_time=10)
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(manifest liveswitch_log liveswitch_event enablex_notification matroska_scan names)

bash scripts/install-deps.sh
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version '^0.13'
fi

mkdir -p fuzz/artifacts
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  log="fuzz/artifacts/$t.log"
  echo "fuzzing $t (${limit[*]})" >&2
  if ! cargo fuzz run -s none "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    "${limit[@]}" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=1024 -print_final_stats=1 \
    >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz target $t failed; the input is in fuzz/artifacts/$t" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)' "$log" >&2 || true
done
