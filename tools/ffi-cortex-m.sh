#!/usr/bin/env bash
# Build the C ABI's static library (engine/ffi, no_std, the DSP kernels) for
# Cortex-M4F (thumbv7em-none-eabihf), as an embedded C app links it, and link
# the library alone with lld: every symbol must resolve inside it (no
# allocator, no libc). Prints the library's path and the linked code size.
# Uses rustup's target where installed, else Debian's toolchain (see tools/setup.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
target=thumbv7em-none-eabihf
args=(build --release -p kantor-ffi --no-default-features --features dsp --target "$target"
      --manifest-path "$root/Cargo.toml")
if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -q "$target"; then
  cargo "${args[@]}" >&2
  lld="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/rust-lld"
  lld=("$lld" -flavor gnu)
else
  PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo "${args[@]}" -Zbuild-std=core >&2
  lld=("$(command -v ld.lld-22 || command -v ld.lld)")
fi
lib="$target_dir/$target/release/libkantor_ffi.a"
[ -f "$lib" ] || { echo "ffi-cortex-m: $lib was not built" >&2; exit 1; }
# Keep every function kantor.h declares; an undefined symbol fails the link.
# (cargo warns that a cdylib cannot be built for this target: the static library is what counts.)
functions=($(grep -o 'kantor_[a-z_]*(' "$root/engine/ffi/include/kantor.h" | tr -d '(' | sort -u))
undefined=()
for name in "${functions[@]}"; do
  undefined+=(-u "$name")
done
elf="$target_dir/$target/release/kantor-ffi-linked.elf"
"${lld[@]}" --gc-sections --entry=kantor_step "${undefined[@]}" -o "$elf" "$lib"
text=$(size -A "$elf" 2>/dev/null | awk '$1 == ".text" {print $2}')
echo "ffi-cortex-m: all ${#functions[@]} functions of kantor.h link from the library alone; .text ${text:-?} bytes" >&2
echo "$lib"
