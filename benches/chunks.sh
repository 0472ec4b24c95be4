#!/usr/bin/env bash
# What chunking costs: one recording composed in one pass, then with --chunk-secs at several
# sizes, each run's chunks and stitch timed by mosaic itself (--json's "chunks"). Prints, per
# size, the sum of the chunks' times, the longest chunk, the stitch, and the overhead of the
# chunks and stitch against the one pass.
#
# Usage: benches/chunks.sh [SECONDS] [SIZES...]   (defaults: 3600 s; 60 300 900)
# The archive: benches/long-archive.sh's (four 640x480 VP8/Opus cameras), made once and kept
# in $WORK (default: a temporary folder). Needs a release build and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3600}
shift || true
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(60 300 900)
mosaic=./target/release/mosaic
[ -x "$mosaic" ] || cargo build --release --locked
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"

archive=$(bash benches/long-archive.sh "$seconds" "$work")

one=$("$mosaic" compose "$archive" -o "$work/one.mp4" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["wall_ms"])')
echo "one pass: $one ms"
for size in "${sizes[@]}"; do
  "$mosaic" compose "$archive" -o "$work/chunked-$size.mp4" --chunk-secs "$size" --json > "$work/chunked-$size.json"
  python3 - "$work/chunked-$size.json" "$one" "$size" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); one = int(sys.argv[2])
c = r["chunks"]; times = [x["wall_ms"] for x in c["chunks"]]
total, stitch = sum(times), c["stitch_ms"]
print(f"chunks of {sys.argv[3]} s: {len(times)} chunks, sum {total} ms, longest {max(times)} ms, "
      f"stitch {stitch} ms, whole run {r['wall_ms']} ms; "
      f"chunks + stitch against one pass: {(total + stitch) / one:.3f}")
PY
done
