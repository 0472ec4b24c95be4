#!/usr/bin/env bash
# Installs what mosaic needs on Debian 12, from Debian's packages only, and checks the Rust
# toolchain. Safe to run again: it skips apt when everything is already there.
set -euo pipefail

packages=(
  pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libyuv-dev libopus-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-x
  fonts-dejavu-core fonts-noto-core fonts-droid-fallback fonts-nanum fonts-noto-color-emoji ffmpeg mkvtoolnix time unzip zip
  postgresql
  espeak-ng
  chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm for the browser tests' page scripts (hls.js, playwright-core from the
# npm registry): Debian's, unless the machine already has a Node.js with npm.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "mosaic needs Rust 1.95 or newer (cargo, with clippy and rustfmt); install it with rustup" >&2
  exit 1
fi
version=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n' 1.95.0 "$version" | sort -V | head -n1)" != 1.95.0 ]; then
  echo "mosaic needs Rust 1.95 or newer; this machine has $version" >&2
  exit 1
fi
