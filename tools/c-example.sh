#!/usr/bin/env bash
# Build the C example (tools/c-example/generate.c) with the system cc against
# the engine's static library (engine/ffi), then run it: it writes the same
# MIDI file, byte for byte, as the Rust example
# (cargo run --release -p kantor-engine --example generate -- MODEL OUT.mid TOKENS SEED).
#   tools/c-example.sh MODEL.safetensors OUT.mid [TOKENS] [SEED]
set -euo pipefail
if [ $# -lt 2 ] || [ $# -gt 4 ]; then
  echo "usage: tools/c-example.sh MODEL.safetensors OUT.mid [TOKENS] [SEED]" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release -p kantor-ffi --manifest-path "$root/Cargo.toml" --quiet >&2
mkdir -p "$target/c-example"
# The Rust standard library inside the static library needs these system libraries.
exe="$target/c-example/generate"
# Compiled aside and renamed: a concurrent run keeps the program it started.
cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -I "$root/engine/ffi/include" \
  "$root/tools/c-example/generate.c" "$target/release/libkantor_ffi.a" \
  -lpthread -ldl -lm -o "$exe.$$"
mv -f "$exe.$$" "$exe"
exec "$exe" "$@"
