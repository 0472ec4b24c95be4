#!/usr/bin/env bash
# Repair speed, measured against the obvious alternative: an ffmpeg re-encode of each stream
# file that fixes the same problems (-af aresample=async=1, libvpx at realtime speed, Opus).
#
# Usage: benches/compare-repair.sh [SECONDS] [RUNS]   (defaults: 60 s archive, 3 runs each)
# Needs: a release build, ffmpeg, GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
runs=${2:-3}
mosaic=./target/release/mosaic
[ -x "$mosaic" ] || cargo build --release --locked
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$seconds" > "$work/spec.json" <<'PY'
import json, sys
ms = int(float(sys.argv[1]) * 1000)
colors = [[220, 40, 40], [40, 180, 60], [40, 80, 220], [230, 200, 40]]
print(json.dumps({"id": "compare", "container": "webm", "fps": 30, "video_kbps": 500, "streams": [
    {"id": f"cam{i+1}", "width": 640, "height": 480, "color": c,
     "segments": [{"start_ms": 0, "stop_ms": ms, "audio_mutes": [[ms // 4, ms // 4 + 3000]]}]}
    for i, c in enumerate(colors)]}))
PY
"$mosaic" sample "$work/archive.zip" --spec "$work/spec.json" 2>/dev/null
(cd "$work" && mkdir -p files && cd files && unzip -q ../archive.zip)
bytes=$(stat -c %s "$work/archive.zip")

ffmpeg_all() {
  for f in "$work"/files/*.webm; do
    ffmpeg -nostdin -v error -y -i "$f" -af aresample=async=1 -c:v libvpx -deadline realtime \
      -cpu-used 8 -b:v 500k -c:a libopus -b:a 32k "$work/ff-$(basename "$f")"
  done
}

for _ in $(seq "$runs"); do
  /usr/bin/time -f "mosaic %e %M" -a -o "$work/t.txt" "$mosaic" repair "$work/archive.zip" -o "$work/out" >/dev/null 2>&1
  /usr/bin/time -f "ffmpeg %e %M" -a -o "$work/t.txt" bash -c "$(declare -f ffmpeg_all); work=$work; ffmpeg_all"
done
python3 - "$bytes" "$work/t.txt" <<'PY'
import statistics, sys
size = int(sys.argv[1])
rows = {}
for line in open(sys.argv[2]):
    name, wall, rss = line.split()
    rows.setdefault(name, []).append((float(wall), int(rss)))
med = {n: statistics.median(w for w, _ in r) for n, r in rows.items()}
for n in ("mosaic", "ffmpeg"):
    rss = statistics.median(r for _, r in rows[n]) / 1024
    print(f"{n:7} {med[n]:8.3f} s  {size / 1e6 / max(med[n], 1e-9):9.1f} MB/s of input  peak RSS {rss:.0f} MB")
print(f"mosaic is {med['ffmpeg'] / max(med['mosaic'], 1e-9):.0f}x faster")
PY
