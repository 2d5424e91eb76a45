// The piano roll: notes as the engine writes them (time across, pitch up),
// one colour per part, bar lines, and a playhead; notes already played are
// drawn bright.
import { NOTE_ON, NOTE_OFF } from './kantor-engine.js';

const COLOURS = ['#e8b04b', '#6fb7e8', '#9bd67a', '#e57f9c', '#b59cf0', '#f29a5c', '#5fd1c1', '#d9d26a'];

export class Roll {
  constructor(canvas) {
    this.canvas = canvas;
    this.g = canvas.getContext('2d');
    this.clear();
  }

  clear() {
    this.notes = []; // {channel, key, on, off (null while sounding)}
    this.open = new Map();
    this.bars = [];
    this.end = 0; // the engine's clock
  }

  /** Add a released message. */
  add(m) {
    const id = m.channel * 128 + m.key;
    if (m.kind === NOTE_ON) {
      const note = { channel: m.channel, key: m.key, on: m.tick, off: null };
      this.notes.push(note);
      this.open.set(id, note);
    } else if (m.kind === NOTE_OFF) {
      const note = this.open.get(id);
      if (note) note.off = m.tick;
      this.open.delete(id);
    }
    this.end = Math.max(this.end, m.tick);
  }

  bar(tick) {
    if (this.bars[this.bars.length - 1] !== tick) this.bars.push(tick);
  }

  /** Draw everything; `playhead` is the tick playing now (or null). */
  draw(playhead) {
    const { canvas, g } = this;
    const w = canvas.width;
    const h = canvas.height;
    g.fillStyle = '#0d0f13';
    g.fillRect(0, 0, w, h);
    let lo = 48;
    let hi = 84;
    for (const n of this.notes) {
      lo = Math.min(lo, n.key - 2);
      hi = Math.max(hi, n.key + 2);
    }
    const span = Math.max(this.end, 16 * 48);
    const x = (tick) => (tick / span) * (w - 20) + 10;
    const rowH = (h - 20) / (hi - lo + 1);
    const y = (key) => h - 10 - (key - lo + 1) * rowH;
    // Octave lines (C) and bar lines.
    g.fillStyle = '#1a1e26';
    for (let k = Math.ceil(lo / 12) * 12; k <= hi; k += 12) g.fillRect(0, y(k) + rowH, w, 1);
    g.fillStyle = '#262b35';
    for (const b of this.bars) g.fillRect(Math.round(x(b)), 0, 1, h);
    for (const n of this.notes) {
      const off = n.off ?? this.end;
      g.globalAlpha = playhead !== null && n.on <= playhead ? 1 : 0.45;
      g.fillStyle = COLOURS[n.channel % COLOURS.length];
      g.fillRect(x(n.on), y(n.key), Math.max(2, x(off) - x(n.on) - 1), Math.max(2, rowH - 1));
    }
    g.globalAlpha = 1;
    if (playhead !== null) {
      g.fillStyle = '#f4f0e6';
      g.fillRect(Math.round(x(Math.min(playhead, span))), 0, 2, h);
    }
  }
}
