#!/usr/bin/env bash
# Build the web page: the engine (engine/ffi, no_std) for wasm32-unknown-unknown,
# the page (web/) and the shipped student model, into target/web-page (or $1; not target/web, which is
# cargo's directory for the web profile).
# Prints the directory. Serve it with tools/web-serve.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
out="${1:-$target/web-page}"
wasm_target=wasm32-unknown-unknown
# 128-bit SIMD (every current browser has it): ~25% more tokens/s, the same notes
# (integer sums are exact and LLVM does not reorder float arithmetic).
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:--C target-feature=+simd128}"
args=(build --profile web -p kantor-ffi --no-default-features --target "$wasm_target"
      --manifest-path "$root/Cargo.toml")
if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -q "$wasm_target"; then
  cargo "${args[@]}" >&2
else
  # Debian's toolchain (see tools/setup.sh): core built from its sources.
  PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo "${args[@]}" -Zbuild-std=core >&2
fi
mkdir -p "$out"
cp "$root"/web/*.html "$root"/web/*.js "$root"/web/*.css "$out"/
cp "$target/$wasm_target/web/kantor_ffi.wasm" "$out/kantor.wasm"
cp "$root/firmware/model/student.safetensors" "$out/student.safetensors"
echo "$out"
