#!/usr/bin/env bash
# Build the firmware for the STM32F405 (thumbv7em-none-eabihf).
#   tools/firmware-build.sh [--qemu] [extra cargo args]
# Uses rustup's target where installed, else Debian's rustc-web with
# -Zbuild-std=core (see tools/setup.sh). Prints the ELF path (CARGO_TARGET_DIR
# is honoured).
set -euo pipefail
cd "$(dirname "$0")/../firmware"
features=()
if [ "${1:-}" = "--qemu" ]; then
  features=(--features qemu)
  shift
fi
target=thumbv7em-none-eabihf
if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -q "$target"; then
  cargo build --release "${features[@]}" "$@" >&2
else
  PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --release \
    -Zbuild-std=core --target "$target" "${features[@]}" "$@" >&2
fi
echo "${CARGO_TARGET_DIR:-$PWD/target}/$target/release/kantor-firmware"
