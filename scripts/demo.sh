#!/usr/bin/env bash
# Sets up the machine, builds mosaic and runs it on the committed sample archive: shows what
# is in it, then composes it into one video.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --locked
./target/release/mosaic inspect testdata/demo.zip --svg target/demo-timeline.svg
./target/release/mosaic compose testdata/demo.zip -o target/demo.mp4 --labels
echo "timeline drawn to target/demo-timeline.svg; the call composed to target/demo.mp4" >&2
