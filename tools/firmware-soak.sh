#!/usr/bin/env bash
# The soak test: the firmware plays a little over an hour of music on the
# emulated board (QEMU netduinoplus2, `-icount shift=0,sleep=off`: one
# instruction per virtual nanosecond, waits take no real time) without a
# reset, and reports how many notes it played, how often the KV cache slid
# and how many notes it dropped. Takes a few minutes of real time.
#
#   tools/firmware-soak.sh OUT_DIR
#
# Fails unless the run reached the end (a panic or fault resets the board,
# which -no-reboot turns into an early exit without a report), played at
# least an hour, and dropped no note.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: tools/firmware-soak.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# Its own target directory, so that the QEMU test image is not rebuilt after it.
elf="$(CARGO_TARGET_DIR="$here/../firmware/target/soak" "$here/firmware-build.sh" --features soak)"
cp "$elf" "$out/kantor-firmware-soak.elf"
start=$(date +%s)
timeout 3000 qemu-system-arm -machine netduinoplus2 -nographic -monitor none \
  -semihosting-config enable=on,target=native -icount shift=0,sleep=off -no-reboot \
  -serial "file:$out/usart.bin" -kernel "$out/kantor-firmware-soak.elf" | tee "$out/report.txt"
echo "real time: $(( $(date +%s) - start )) s" | tee -a "$out/report.txt"

python3 - "$out/report.txt" "$out/usart.bin" <<'PY'
import re, sys
r = {}
for line in open(sys.argv[1]):
    if line.startswith("KANTOR-REPORT"):
        r.update({k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)})
if "elapsed_us" not in r:
    sys.exit("soak: the firmware did not reach its report (reset or fault?)")
data = open(sys.argv[2], "rb").read()
note_ons = sum(1 for i in range(len(data) - 2) if 0x90 <= data[i] <= 0x9f and data[i + 2] > 0)
ipc = r["calibration_instructions"] / r["calibration_cycles"]
hours = r["elapsed_us"] / 3.6e9
print(f"soak: {r['elapsed_us']/1e6:.0f} s of music ({hours:.2f} h emulated), {r['tokens']} tokens, "
      f"{r['messages']} note messages (about {note_ons} note-ons in the MIDI bytes), {r['evictions']} KV-cache slides, {r['pieces']} pieces, "
      f"{r['dropped']} dropped notes, {r['ill_formed']} ill-formed tokens, 0 resets; "
      f"{r['generate_cycles']*ipc/max(r['tokens']-1,1)/1e6:.3f} M instructions per token mean, "
      f"{r['max_token_cycles']*ipc/1e6:.3f} M max")
if hours < 1.0:
    sys.exit("soak: shorter than an hour")
if r["dropped"] != 0:
    sys.exit("soak: notes were dropped")
PY
