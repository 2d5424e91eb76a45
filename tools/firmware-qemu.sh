#!/usr/bin/env bash
# Build the firmware's QEMU image and run it on the emulated STM32F405 board
# (netduinoplus2, Cortex-M4F) for a fixed number of tokens.
#
#   tools/firmware-qemu.sh OUT_DIR
#
# Writes OUT_DIR/usart.bin (the MIDI bytes USART1 sent), OUT_DIR/report.txt
# (the firmware's semihosting report) and OUT_DIR/kantor-firmware.elf, and
# prints the figures: instructions per token (SysTick under `-icount shift=0`,
# calibrated against a loop of known length), flash, static RAM, stack.
# KANTOR_MODEL=FILE links another exported model instead of the shipped student.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: tools/firmware-qemu.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

elf="$("$here/firmware-build.sh" --qemu)"
cp "$elf" "$out/kantor-firmware.elf"
cp "$(dirname "$elf")/on-target-tests" "$out/on-target-tests.elf"
rm -f "$out/usart.bin"

qemu() {
  timeout 600 qemu-system-arm -machine netduinoplus2 -nographic -monitor none \
    -semihosting-config enable=on,target=native -icount shift=0,sleep=off -no-reboot "$@"
}
# The on-target tests first (their exit status comes back through semihosting).
qemu -kernel "$out/on-target-tests.elf"
# -icount shift=0: one instruction per virtual nanosecond (deterministic);
# sleep=off: while the firmware waits (WFI) virtual time jumps ahead.
# -no-reboot: a panic's reset ends the run instead of looping.
qemu -serial "file:$out/usart.bin" -kernel "$out/kantor-firmware.elf" | tee "$out/report.txt"
grep -q "^KANTOR-REPORT tokens=" "$out/report.txt" || { echo "firmware did not report (see $out/report.txt)" >&2; exit 1; }

python3 - "$out/report.txt" <<'PY'
import re, sys
r = {}
for line in open(sys.argv[1]):
    if line.startswith("KANTOR-REPORT"):
        r.update({k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)})
ipc = r["calibration_instructions"] / r["calibration_cycles"]
generated = r["tokens"] - 1
per_token = r["generate_cycles"] * ipc / generated
forward = r["forward_cycles"] * ipc / r["profile_steps"]
grammar = r["grammar_cycles"] * ipc / r["profile_steps"]
sample = r["sample_cycles"] * ipc / r["profile_steps"]
ram = r["static_ram"] + r["static_ccm"] + r["stack_high_water"]
print(f"instructions per token: {per_token/1e6:.3f} M mean over {generated} tokens, {r['max_token_cycles']*ipc/1e6:.3f} M max "
      f"= {168e6/per_token:.0f} tokens/s at 168 MHz (goal: <= 1.680 M, >= 100 tokens/s)")
print(f"  first {r['profile_steps']} steps: forward {forward/1e6:.3f} M, grammar mask {grammar/1e6:.3f} M, sampling {sample/1e6:.3f} M")
late = [r[f"late_{k}_cycles"] * ipc / r["late_steps"] for k in ("forward", "grammar", "sample")]
print(f"  next {r['late_steps']} steps: forward {late[0]/1e6:.3f} M, grammar mask {late[1]/1e6:.3f} M, sampling {late[2]/1e6:.3f} M")
print(f"flash used: {r['flash_used']} bytes ({r['flash_used']/1024:.1f} KiB of 1024 KiB)")
print(f"RAM: {r['static_ram']} bytes static in SRAM + {r['static_ccm']} in the CCM (the session {r['session_memory']} of them, "
      f"the engine's bound {r['session_needed']}) + {r['stack_high_water']} bytes stack high-water = {ram/1024:.1f} KiB "
      f"(goal <= 192 KiB; SRAM {(r['static_ram'] + r['stack_high_water'])/1024:.1f} of 128 KiB, CCM {r['static_ccm']/1024:.1f} of 64 KiB)")
print(f"MIDI: {r['bytes']} bytes, {r['messages']} note messages, {r['clocks']} clocks, "
      f"{r['ill_formed']} ill-formed tokens, {r['dropped']} dropped notes, {r['evictions']} KV-cache slides, {r['pieces']} pieces")
PY
