#!/usr/bin/env bash
# One chunked job through the queue on this machine: an intake (`mosaic serve`, no workers)
# and WORKERS `mosaic worker` processes on one SQLite queue (in their shared data folder; each
# process works in folders of its own), the archive served over loopback HTTP. Prints, from
# the POST: when the job fanned out, when its chunks were taken and ended, when an HLS
# output's first segments were listed in the store's playlist (a viewer could start), and
# when the job ended.
#
# Usage: benches/serve-chunks.sh [SECONDS] [CHUNK_SECS] [FORMAT] [WORKERS]
#        (defaults: 3600 300 hls 2; FORMAT mp4, webm or hls)
# The archive is benches/long-archive.sh's (four 640x480 VP8/Opus cameras), made once in $WORK
# (default: a temporary folder). Needs a release build, python3 and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3600}
chunk=${2:-300}
format=${3:-hls}
workers=${4:-2}
mosaic=$PWD/target/release/mosaic
[ -x "$mosaic" ] || cargo build --release --locked
work=${WORK:-$(mktemp -d)}
mkdir -p "$work/files"

archive=$(bash benches/long-archive.sh "$seconds" "$work/files")

run="$work/run-$$"
mkdir -p "$run"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
files_port=$(port)
intake_port=$(port)
token="bench-token-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
config() { # workers
  cat <<EOF
listen = "127.0.0.1:$intake_port"
data_dir = "$run/data"
queue = "sqlite"
output = "file://$run/out"
workers = $1
api_token = "$token"
allow_private_urls = true
poll_ms = 200
EOF
}
config 0 > "$run/intake.toml"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
python3 -m http.server "$files_port" --bind 127.0.0.1 --directory "$work/files" >/dev/null 2>&1 &
pids+=($!)
"$mosaic" serve --config "$run/intake.toml" >"$run/intake.log" 2>&1 &
pids+=($!)
for w in $(seq 1 "$workers"); do
  config 1 | sed "s/^listen = .*/listen = \"127.0.0.1:0\"/" > "$run/worker-$w.toml"
  "$mosaic" worker --config "$run/worker-$w.toml" >"$run/worker-$w.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$intake_port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

python3 - "$intake_port" "$token" "$files_port" "$(basename "$archive")" "$format" "$chunk" "$run/out" <<'PY'
import json, os, sys, time, urllib.request
port, token, files_port, name, fmt, chunk, out = sys.argv[1:]
base = f"http://127.0.0.1:{port}"
def call(path, body=None):
    req = urllib.request.Request(base + path, data=body and json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
t0 = time.monotonic()
job = call("/v1/jobs", {"url": f"http://127.0.0.1:{files_port}/{name}", "key": "bench",
                        "compose": {"format": fmt, "chunk_secs": int(chunk)}})["job"]
seen, playable = {}, None
playlist = os.path.join(out, "api", "bench", "index.m3u8")
while True:
    j = call(f"/v1/jobs/{job}")
    now = time.monotonic() - t0
    if j["state"] == "waiting" and "fanned out" not in seen:
        seen["fanned out"] = now
    for c in j.get("chunks") or []:
        for state in ("running", "succeeded"):
            key = f"chunk {c['index']} {state}"
            if c["state"] == state and key not in seen:
                seen[key] = now
    if playable is None and os.path.exists(playlist):
        text = open(playlist).read()
        if ".ts\n" in text:
            listed = sum(float(l[8:].split(",")[0]) for l in text.splitlines() if l.startswith("#EXTINF:"))
            playable = (now, listed)
    if j["state"] in ("succeeded", "failed", "dead"):
        break
    time.sleep(0.25)
ended = time.monotonic() - t0
print(f"{fmt}, chunks of {chunk} s: job {j['state']} {ended:.1f} s after the POST")
if "fanned out" in seen:
    print(f"  fanned out at {seen['fanned out']:.1f} s")
chunks = j.get("chunks") or []
for c in chunks:
    i = c["index"]
    print(f"  chunk {i} ({c['from_ms'] // 1000}-{c['to_ms'] // 1000} s) taken {seen.get(f'chunk {i} running', float('nan')):.1f} s, "
          f"done {seen.get(f'chunk {i} succeeded', float('nan')):.1f} s, worker {c['worker']}, attempts {c['attempts']}")
if chunks:
    last = max(seen.get(f"chunk {c['index']} succeeded", 0) for c in chunks)
    print(f"  last chunk done {last:.1f} s; the job's last attempt after it: {ended - last:.1f} s (to within the 0.25 s poll)")
if playable:
    print(f"  first segments playable {playable[0]:.1f} s after the POST ({playable[1]:.0f} s of the call listed)")
PY
