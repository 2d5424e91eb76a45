// Timed messages → a Standard MIDI File, written exactly as the Rust example
// (engine/examples/generate.rs, with midly) and the C example write it:
// format 0, one track, 480 ticks per quarter note, note-off as 0x80 with
// velocity 0, running status (cancelled by meta events), end of track.
import { NOTE_ON, TEMPO, TICKS_PER_QUARTER } from './kantor-engine.js';

const TPQ = 480;

function varlen(out, value) {
  value &= 0x0fffffff;
  let started = false;
  for (let i = 3; i >= 0; i--) {
    const byte = (value >>> (7 * i)) & 0x7f;
    if (started || byte !== 0 || i === 0) {
      started = true;
      out.push(i === 0 ? byte : byte | 0x80);
    }
  }
}

/** `messages` in the order the engine released them → the file's bytes. */
export function midiFile(messages) {
  const track = [];
  const scale = TPQ / TICKS_PER_QUARTER;
  let last = 0;
  let running = -1;
  for (const m of messages) {
    const at = (m.tick * scale) >>> 0;
    varlen(track, at > last ? at - last : 0);
    last = Math.max(last, at);
    if (m.kind === TEMPO) {
      running = -1;
      const us = m.microsPerQuarter;
      track.push(0xff, 0x51, 3, (us >>> 16) & 0xff, (us >>> 8) & 0xff, us & 0xff);
      continue;
    }
    const on = m.kind === NOTE_ON;
    const status = (on ? 0x90 : 0x80) | (m.channel & 0x0f);
    if (status !== running) {
      track.push(status);
      running = status;
    }
    track.push(m.key & 0x7f, on ? m.velocity & 0x7f : 0);
  }
  track.push(0, 0xff, 0x2f, 0);
  const n = track.length;
  const header = [0x4d, 0x54, 0x68, 0x64, 0, 0, 0, 6, 0, 0, 0, 1, TPQ >> 8, TPQ & 0xff,
    0x4d, 0x54, 0x72, 0x6b, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  return Uint8Array.from([...header, ...track]);
}
