#!/usr/bin/env bash
# What chunking costs: one recording composed in one pass, then with --chunk-secs at several
# sizes, each run's chunks and stitch timed by mosaic itself (--json's "chunks"). Prints, per
# size, the sum of the chunks' times, the longest chunk, the stitch, and the overhead of the
# chunks and stitch against the one pass.
#
# Usage: benches/chunks.sh [SECONDS] [SIZES...]   (defaults: 3600 s; 60 300 900)
# The archive: four 640x480 VP8/Opus cameras (benches/compare.sh's spec), made once and kept
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

archive="$work/archive-$seconds.zip"
if [ ! -f "$archive" ]; then
  python3 - "$seconds" > "$work/spec.json" <<'PY'
import json, sys
ms = int(float(sys.argv[1]) * 1000)
colors = [[220, 40, 40], [40, 180, 60], [40, 80, 220], [230, 200, 40]]
print(json.dumps({"id": "chunks", "container": "webm", "fps": 30, "video_kbps": 500, "streams": [
    {"id": f"cam{i+1}", "label": f"Camera {i+1}", "width": 640, "height": 480, "color": colors[i],
     "tone_hz": 300 + 110 * i, "marks_ms": [1000, ms // 2], "segments": [{"start_ms": 0, "stop_ms": ms}]}
    for i in range(4)]}))
PY
  "$mosaic" sample "$archive" --spec "$work/spec.json" 2>/dev/null
fi

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
