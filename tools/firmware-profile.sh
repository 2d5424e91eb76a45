#!/usr/bin/env bash
# An exact instruction profile of the firmware on the emulated board: QEMU
# runs one instruction per translation block with every instruction logged,
# and tools/profile/qemu_trace.py counts them per source line (inlined
# frames resolved). Takes a few minutes and a few GB of disk in OUT_DIR (the
# trace is deleted at the end).
#
#   tools/firmware-profile.sh OUT_DIR [DEPTH] [ROWS]   (DEPTH 0: per function)
#   tools/firmware-profile.sh --from TOKEN [--tokens N] [--soak] OUT_DIR [DEPTH] [ROWS]
#
# Without --from: the short QEMU image (`--features short`: 2 profiled steps
# and 4 tokens after model loading and calibration), traced whole — the
# first tokens, from an empty cache.
# With --from: N tokens (default 4) from the sequencer's token TOKEN on (1 is
# the first after the piece's Bos) of the test image (384 tokens; with
# --soak the soak image, about 46,000), where the cache holds what it holds
# in steady state. tools/profile/qemu_window.py runs QEMU at full speed up to
# there and traces only the window.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
usage="usage: tools/firmware-profile.sh [--from TOKEN [--tokens N] [--soak]] OUT_DIR [DEPTH] [ROWS]"
from="" tokens=4 soak=""
while [ $# -gt 0 ]; do
  case "$1" in
    --from) from="${2:?$usage}"; shift 2 ;;
    --tokens) tokens="${2:?$usage}"; shift 2 ;;
    --soak) soak=1; shift ;;
    --*) echo "$usage" >&2; exit 2 ;;
    *) break ;;
  esac
done
out="${1:?$usage}"
if [ -z "$from" ] && [ -n "$soak" ]; then echo "$usage (--soak goes with --from)" >&2; exit 2; fi
case "$from$tokens" in *[!0-9]*) echo "$usage (TOKEN and N are numbers)" >&2; exit 2 ;; esac
mkdir -p "$out"
out="$(cd "$out" && pwd)"
trap 'rm -f "$out/trace.log"' EXIT  # gigabytes; also after a failed run
qemu=(qemu-system-arm -machine netduinoplus2 -nographic -monitor none
  -semihosting-config enable=on,target=native -icount shift=0,sleep=off -no-reboot
  -serial "file:$out/usart.bin")

if [ -z "$from" ]; then
  elf="$(CARGO_TARGET_DIR="$here/../firmware/target/profile" "$here/firmware-build.sh" --features short)"
  cp "$elf" "$out/kantor-firmware-short.elf"
  elf="$out/kantor-firmware-short.elf"
  # One instruction per translation block: QEMU 8.1 renamed -singlestep.
  if qemu-system-arm -accel help 2>/dev/null | grep -q tcg && qemu-system-arm -accel tcg,help 2>&1 | grep -q one-insn-per-tb; then
    one=(-accel tcg,one-insn-per-tb=on)
  else
    one=(-singlestep)
  fi
  timeout 1200 "${qemu[@]}" -kernel "$elf" "${one[@]}" -d exec,nochain -D "$out/trace.log" > "$out/report.txt"
else
  if [ -n "$soak" ]; then
    # The soak's own target directory, as tools/firmware-soak.sh builds it.
    elf="$(CARGO_TARGET_DIR="$here/../firmware/target/soak" "$here/firmware-build.sh" --features soak)"
  else
    elf="$("$here/firmware-build.sh" --qemu)"
  fi
  cp "$elf" "$out/kantor-firmware.elf"
  elf="$out/kantor-firmware.elf"
  # Forward passes before the sequencer's token 1: the QEMU image's phase
  # profile (2 × 64 steps, firmware/src/main.rs) and the piece's Bos.
  before=$((2 * 64 + 1))
  timeout 3000 python3 "$here/profile/qemu_window.py" "$elf" "$out/trace.log" \
    "$((before + from))" "$tokens" -- "${qemu[@]}" -kernel "$elf" > "$out/report.txt"
fi
python3 "$here/profile/qemu_trace.py" "$out/trace.log" "$elf" "${2:-1}" "${3:-50}" | tee "$out/profile.txt"
