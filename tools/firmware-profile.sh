#!/usr/bin/env bash
# An exact instruction profile of the firmware on the emulated board: the
# short QEMU image (`--features short`: 2 profiled steps and 4 tokens after
# model loading and calibration) runs one instruction per translation block
# with every instruction logged, and tools/profile/qemu_trace.py counts them
# per source line (inlined frames resolved). Takes a few minutes and a few
# GB of disk in OUT_DIR (the trace is deleted at the end).
#
#   tools/firmware-profile.sh OUT_DIR [DEPTH] [ROWS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: tools/firmware-profile.sh OUT_DIR [DEPTH] [ROWS]}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
elf="$(CARGO_TARGET_DIR="$here/../firmware/target/profile" "$here/firmware-build.sh" --features short)"
cp "$elf" "$out/kantor-firmware-short.elf"
# One instruction per translation block: QEMU 8.1 renamed -singlestep.
if qemu-system-arm -accel help 2>/dev/null | grep -q tcg && qemu-system-arm -accel tcg,help 2>&1 | grep -q one-insn-per-tb; then
  one=(-accel tcg,one-insn-per-tb=on)
else
  one=(-singlestep)
fi
timeout 1200 qemu-system-arm -machine netduinoplus2 -nographic -monitor none \
  -semihosting-config enable=on,target=native -icount shift=0,sleep=off -no-reboot \
  -serial "file:$out/usart.bin" -kernel "$out/kantor-firmware-short.elf" \
  "${one[@]}" -d exec,nochain -D "$out/trace.log" > "$out/report.txt"
python3 "$here/profile/qemu_trace.py" "$out/trace.log" "$out/kantor-firmware-short.elf" "${2:-1}" "${3:-50}" | tee "$out/profile.txt"
rm -f "$out/trace.log"
