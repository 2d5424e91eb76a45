#!/usr/bin/env bash
# Kantor's whole test suite, as CI runs it: formatting, lints, every crate's
# tests (including the cross-crate tests in tests/ and the C example), the
# firmware and the C ABI's static library built for the STM32F405's Cortex-M4,
# the web page in headless Chromium, and the firmware on the emulated board in
# QEMU compared byte for byte with the host. Run tools/setup.sh first on a bare machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step with the seconds it took (the whole suite should stay under 15 minutes).
start=$SECONDS
step() {
    local t=$SECONDS
    "$@"
    echo "test.sh: $* — $((SECONDS - t)) s (total $((SECONDS - start)) s)" >&2
}

step cargo fmt --all -- --check
step cargo fmt --manifest-path firmware/Cargo.toml -- --check
step cargo clippy --workspace --all-targets -- -D warnings
step cargo clippy --manifest-path firmware/Cargo.toml --lib --bins -- -D warnings
step cargo test --workspace

# The firmware (and with it the no_std engine) for thumbv7em-none-eabihf.
step tools/firmware-build.sh >/dev/null
# The C ABI's static library for Cortex-M, linked alone (no allocator, no libc).
step tools/ffi-cortex-m.sh >/dev/null
# The web page in headless Chromium: the Rust example's notes, a drawn roll, a clean console.
step cargo test -p kantor-tests --test web_page -- --ignored --nocapture
# The QEMU on-target test: byte-identical MIDI, instructions per token, memory.
step cargo test -p kantor-tests --test firmware_qemu -- --ignored --nocapture
