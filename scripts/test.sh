#!/usr/bin/env bash
# Sets up the machine and runs the whole test suite (format, lints, unit and integration
# tests on real GStreamer pipelines). Tests that use ../shared/media skip, saying so, where
# it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The browser tests' page scripts, at the versions package-lock.json pins.
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# The media library alone, without the `service` feature (as the fuzz targets build it).
cargo clippy --locked --no-default-features --all-targets -- -D warnings
cargo test --locked
# Every parser of untrusted input, fuzzed briefly (10 s a target); see docs/fuzzing.md.
bash scripts/fuzz.sh --seconds 10
