#!/usr/bin/env bash
# Kantor's whole test suite, as CI runs it: formatting, lints, every crate's
# tests (including the cross-crate tests in tests/ and the C example), the
# firmware and the C ABI's static library built for the STM32F405's Cortex-M4,
# the web page in headless Chromium, and the firmware on the emulated board in
# QEMU compared byte for byte with the host. Run tools/setup.sh first on a bare machine.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo fmt --manifest-path firmware/Cargo.toml -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --manifest-path firmware/Cargo.toml --lib --bins -- -D warnings
cargo test --workspace

# The firmware (and with it the no_std engine) for thumbv7em-none-eabihf.
tools/firmware-build.sh >/dev/null
# The C ABI's static library for Cortex-M, linked alone (no allocator, no libc).
tools/ffi-cortex-m.sh >/dev/null
# The web page in headless Chromium: the Rust example's notes, a drawn roll, a clean console.
cargo test -p kantor-tests --test web_page -- --ignored --nocapture
# The QEMU on-target test: byte-identical MIDI, instructions per token, memory.
cargo test -p kantor-tests --test firmware_qemu -- --ignored --nocapture
