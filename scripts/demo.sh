#!/usr/bin/env bash
# Sets up the machine, builds mosaic and runs it on the committed sample archive.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --locked
./target/release/mosaic inspect testdata/demo.zip --svg target/demo-timeline.svg
echo "timeline drawn to target/demo-timeline.svg" >&2
