#!/usr/bin/env bash
# Install what Kantor needs on a bare Debian/Ubuntu machine that has Rust (cargo).
# Idempotent: skips what is already there.
#
#   - rustfmt and clippy (rustup components, when rustup is present)
#   - the thumbv7em-none-eabihf target for the firmware: `rustup target add` where
#     that can download, else Debian's rustc-web + rust-web-src (build-std route)
#   - qemu-system-arm (netduinoplus2 board) and lld for the firmware test
#   - the wasm32-unknown-unknown target (the web page's engine) and Debian's
#     chromium (the web page's test, headless)
#   - libasound2-dev and pkg-config: midir (host-trainer's `live` feature, on by
#     default) links ALSA; without them host-trainer does not build
#   - a General MIDI SoundFont (timgm6mb-soundfont, 6 MB) for `host-trainer render`
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if have rustup; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

missing=()
have qemu-system-arm || missing+=(qemu-system-arm)
{ have pkg-config && pkg-config --exists alsa; } || missing+=(libasound2-dev pkg-config)
sf2=/usr/share/sounds/sf2
[ -e $sf2/FluidR3_GM.sf2 ] || [ -e $sf2/default-GM.sf2 ] || [ -e $sf2/TimGM6mb.sf2 ] || missing+=(timgm6mb-soundfont)

# The firmware target: rustup's prebuilt core where possible, Debian's otherwise.
if have rustup && rustup target list --installed 2>/dev/null | grep -q thumbv7em-none-eabihf; then
  :
elif have rustup && rustup target add thumbv7em-none-eabihf >/dev/null 2>&1; then
  :
else
  [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library/core ] || missing+=(rustc-web cargo-web rust-web-src)
  have ld.lld-22 || have rust-lld || missing+=(lld-22)
fi

# The web page: the engine for WebAssembly, and a browser to test it in.
if have rustup && ! rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || missing+=(rustc-web cargo-web rust-web-src lld-22)
fi
have chromium || missing+=(chromium)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
echo "setup: ok"
