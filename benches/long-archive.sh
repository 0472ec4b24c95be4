#!/usr/bin/env bash
# Makes (once) the benchmarks' long archive: four 640x480 VP8/Opus cameras of SECONDS, each
# with a mark at 1 s and half-way, at DIR/archive-SECONDS.zip; prints its path.
# Usage: benches/long-archive.sh SECONDS DIR   (needs a release build and python3)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=$1
dir=$2
mosaic=./target/release/mosaic
[ -x "$mosaic" ] || cargo build --release --locked >&2
mkdir -p "$dir"
archive="$dir/archive-$seconds.zip"
if [ ! -f "$archive" ]; then
  python3 - "$seconds" > "$dir/spec-$seconds.json" <<'PY'
import json, sys
ms = int(float(sys.argv[1]) * 1000)
colors = [[220, 40, 40], [40, 180, 60], [40, 80, 220], [230, 200, 40]]
print(json.dumps({"id": "chunks", "container": "webm", "fps": 30, "video_kbps": 500, "streams": [
    {"id": f"cam{i+1}", "label": f"Camera {i+1}", "width": 640, "height": 480, "color": colors[i],
     "tone_hz": 300 + 110 * i, "marks_ms": [1000, ms // 2], "segments": [{"start_ms": 0, "stop_ms": ms}]}
    for i in range(4)]}))
PY
  "$mosaic" sample "$archive" --spec "$dir/spec-$seconds.json" >/dev/null 2>&1
fi
echo "$archive"
