#!/usr/bin/env bash
# Compose speed, measured against the obvious alternative: one ffmpeg filter_complex
# command that makes the same output from the same archive (2x2 grid at 1280x720/30, x264
# veryfast at constant quality 23, AAC 128k, the four voices summed without 1/N). Both
# encoders get identical x264 settings (the option strings in the outputs are compared):
# no B-frames and a key frame every 8 s as mosaic writes them, and the VBV cap GStreamer's
# x264enc always sets, lifted out of reach.
#
# Usage: benches/compare.sh [SECONDS] [RUNS]    (defaults: 60 s archive, 3 runs each)
#        CAMS=9 SIZE=1280x720 benches/compare.sh   (cameras in a grid, output size;
#                                                   defaults 4 and 1280x720)
# Prints wall time, real-time factor, CPU % and peak RSS of each, as medians over the runs.
# Needs: a release build (cargo build --release), ffmpeg, GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
runs=${2:-3}
cams=${CAMS:-4}
size=${SIZE:-1280x720}
mosaic=./target/release/mosaic
[ -x "$mosaic" ] || cargo build --release --locked
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The archive: $cams 640x480 VP8/Opus cameras for $seconds s.
python3 - "$seconds" "$cams" > "$work/spec.json" <<'PY'
import json, sys
ms, n = int(float(sys.argv[1]) * 1000), int(sys.argv[2])
colors = [[220, 40, 40], [40, 180, 60], [40, 80, 220], [230, 200, 40], [200, 60, 200],
          [60, 200, 200], [240, 140, 40], [120, 120, 240], [160, 220, 80]]
print(json.dumps({"id": "compare", "container": "webm", "fps": 30, "video_kbps": 500, "streams": [
    {"id": f"cam{i+1}", "label": f"Camera {i+1}", "width": 640, "height": 480, "color": colors[i % 9],
     "tone_hz": 300 + 110 * i, "marks_ms": [1000, ms // 2], "segments": [{"start_ms": 0, "stop_ms": ms}]}
    for i in range(n)]}))
PY
"$mosaic" sample "$work/archive.zip" --spec "$work/spec.json" 2>/dev/null
(cd "$work" && mkdir -p files && cd files && unzip -q ../archive.zip)

# The same grid as mosaic's bestFit: ceil(sqrt(n)) columns, each picture letterboxed in its tile.
filter=$(python3 - "$cams" "$size" <<'PY'
import math, sys
n = int(sys.argv[1]); w, h = map(int, sys.argv[2].split("x"))
cols = math.ceil(math.sqrt(n)); rows = math.ceil(n / cols)
tw, th = (w // cols) // 2 * 2, (h // rows) // 2 * 2
parts = [f"[{i}:v]scale={tw}:{th}:force_original_aspect_ratio=decrease,pad={tw}:{th}:(ow-iw)/2:(oh-ih)/2[v{i}]" for i in range(n)]
layout = "|".join(f"{(i % cols) * tw}_{(i // cols) * th}" for i in range(n))
inputs = "".join(f"[v{i}]" for i in range(n))
parts.append(f"{inputs}xstack=inputs={n}:layout={layout}:fill=black,pad={w}:{h}:0:0,fps=30,format=yuv420p[v]")
parts.append("".join(f"[{i}:a]" for i in range(n)) + f"amix=inputs={n}:normalize=0,aresample=48000[a]")
print(";".join(parts))
PY
)
inputs=()
for i in $(seq "$cams"); do inputs+=(-i "$work/files/cam$i.webm"); done
ffmpeg_cmd=(ffmpeg -nostdin -v error -y "${inputs[@]}"
  -filter_complex "$filter"
  -map "[v]" -map "[a]" -c:v libx264 -preset veryfast -crf 23 -bf 0 -g 240 -keyint_min 24
  -maxrate 2000000k -bufsize 1228800k -c:a aac -b:a 128k -ac 2
  "$work/ffmpeg.mp4")
mosaic_cmd=("$mosaic" compose "$work/archive.zip" -o "$work/mosaic.mp4" --size "$size" --fps 30 --speed balanced --quality 23)

measure() { # name, command...: prints "wall_s cpu_percent max_rss_kb" per run
  local name=$1; shift
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %P %M %U %S" -o "$work/time.txt" "$@" >/dev/null 2>&1
    echo "$name $(tr -d '%' < "$work/time.txt")"
  done
}

# Alternating runs (mosaic, ffmpeg, mosaic, ...), so a drift in the machine's speed hits both.
runs_each=$runs; runs=1
for _ in $(seq "$runs_each"); do
  measure mosaic "${mosaic_cmd[@]}"; measure ffmpeg "${ffmpeg_cmd[@]}"
done > "$work/results.txt"
opts() { strings "$1" | grep -m1 'x264 - core' | sed 's/.*options: //'; }
if [ "$(opts "$work/mosaic.mp4")" != "$(opts "$work/ffmpeg.mp4")" ]; then
  echo "warning: the two x264 option strings differ:" >&2
  diff <(opts "$work/mosaic.mp4" | tr ' ' '\n') <(opts "$work/ffmpeg.mp4" | tr ' ' '\n') >&2 || true
fi

python3 - "$seconds" "$work/results.txt" "$cams" "$size" <<'PY'
import statistics, sys
seconds = float(sys.argv[1])
rows = {}
for line in open(sys.argv[2]):
    name, wall, cpu, rss, user, sys_s = line.split()
    rows.setdefault(name, []).append((float(wall), float(cpu), int(rss), float(user) + float(sys_s), float(sys_s)))
print(f"{seconds:.0f} s archive, {sys.argv[3]} x 640x480 VP8/Opus -> {sys.argv[4]}/30 H.264 (veryfast, q23) + AAC 128k; medians of {len(rows['mosaic'])} runs")
print(f"{'tool':8} {'wall s':>8} {'x real time':>12} {'CPU %':>7} {'CPU s':>7} {'sys s':>6} {'peak RSS MB':>12}")
med = {}
for name in ("mosaic", "ffmpeg"):
    r = rows[name]
    wall = statistics.median(x[0] for x in r)
    med[name] = wall
    print(f"{name:8} {wall:8.2f} {seconds / wall:12.1f} {statistics.median(x[1] for x in r):7.0f} "
          f"{statistics.median(x[3] for x in r):7.1f} {statistics.median(x[4] for x in r):6.1f} "
          f"{statistics.median(x[2] for x in r) / 1024:12.0f}")
print(f"mosaic / ffmpeg wall time: {med['mosaic'] / med['ffmpeg']:.2f}")
PY
