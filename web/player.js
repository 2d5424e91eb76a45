// Plays timed messages as they come: through WebAudio (a simple synth, one
// timbre per part) and, where the browser has Web MIDI and the user picked an
// output, out of a MIDI port. Also maps the audio clock back to grid ticks
// for the piano roll's playhead.
import { NOTE_ON, NOTE_OFF, TEMPO, TICKS_PER_QUARTER } from './kantor-engine.js';

const LEAD_SECONDS = 0.25; // between "play" and the first note
const RELEASE = 0.09;
// One timbre per part (channel); the chorales' four voices are channels 0-3.
const TIMBRES = [
  { type: 'triangle', gain: 0.9 },
  { type: 'sine', gain: 1.0 },
  { type: 'square', gain: 0.22 },
  { type: 'sawtooth', gain: 0.3 },
];

export class Player {
  constructor() {
    this.ctx = null;
    this.midiOut = null;
    this.soundOn = true;
    this.reset();
  }

  reset() {
    this.segments = [{ tick: 0, seconds: 0, microsPerQuarter: 500000 }]; // the tempo map
    this.voices = new Map();
    this.start = null; // audio time of tick 0
    this.startPerf = null; // performance.now() of tick 0
  }

  /** Start a piece: tick 0 is a moment from now. */
  begin() {
    this.stop();
    this.reset();
    if (this.soundOn && !this.ctx) {
      try {
        this.ctx = new AudioContext();
      } catch (e) {
        console.warn('no WebAudio:', e.message);
        this.soundOn = false;
      }
    }
    if (this.ctx) {
      this.ctx.resume().catch(() => {});
      this.master = this.ctx.createGain();
      this.master.gain.value = 0.12;
      this.master.connect(this.ctx.destination);
      this.start = this.ctx.currentTime + LEAD_SECONDS;
    }
    this.startPerf = performance.now() + LEAD_SECONDS * 1000;
  }

  /** Seconds from tick 0 to `tick` (messages come in time order). */
  seconds(tick) {
    const s = this.segments[this.segments.length - 1];
    return s.seconds + ((tick - s.tick) * s.microsPerQuarter) / TICKS_PER_QUARTER / 1e6;
  }

  /** The grid tick playing now (for the playhead); null before the start. */
  nowTick() {
    if (this.startPerf === null) return null;
    const t = this.ctx && this.soundOn
      ? this.ctx.currentTime - this.start
      : (performance.now() - this.startPerf) / 1000;
    if (t < 0) return 0;
    let s = this.segments[0];
    for (const seg of this.segments) if (seg.seconds <= t) s = seg;
    return s.tick + ((t - s.seconds) * 1e6 * TICKS_PER_QUARTER) / s.microsPerQuarter;
  }

  /** Schedule one message. */
  play(m) {
    const at = this.seconds(m.tick);
    if (m.kind === TEMPO) {
      this.segments.push({ tick: m.tick, seconds: at, microsPerQuarter: m.microsPerQuarter });
      return;
    }
    if (this.midiOut) {
      const status = (m.kind === NOTE_ON ? 0x90 : 0x80) | m.channel;
      this.midiOut.send([status, m.key, m.kind === NOTE_ON ? m.velocity : 0], this.startPerf + at * 1000);
    }
    if (!this.ctx || !this.soundOn) return;
    const when = this.start + at;
    const id = m.channel * 128 + m.key;
    if (m.kind === NOTE_ON) {
      const timbre = TIMBRES[m.channel % TIMBRES.length];
      const osc = this.ctx.createOscillator();
      const env = this.ctx.createGain();
      osc.type = timbre.type;
      osc.frequency.value = 440 * 2 ** ((m.key - 69) / 12);
      const peak = timbre.gain * (m.velocity / 127);
      env.gain.setValueAtTime(0, when);
      env.gain.linearRampToValueAtTime(peak, when + 0.012);
      env.gain.setTargetAtTime(peak * 0.7, when + 0.012, 0.3);
      osc.connect(env).connect(this.master);
      osc.start(when);
      this.voices.set(id, { osc, env });
    } else if (m.kind === NOTE_OFF) {
      const v = this.voices.get(id);
      if (!v) return;
      this.voices.delete(id);
      v.env.gain.cancelScheduledValues(when);
      v.env.gain.setTargetAtTime(0, when, RELEASE / 3);
      v.osc.stop(when + RELEASE);
    }
  }

  /** Silence everything now. */
  stop() {
    if (this.master) {
      this.master.disconnect();
      this.master = null;
    }
    this.voices.clear();
    if (this.midiOut) {
      this.midiOut.clear?.();
      for (let ch = 0; ch < 16; ch++) this.midiOut.send([0xb0 | ch, 123, 0]); // all notes off
    }
    this.startPerf = null;
  }
}

/** Web MIDI outputs, asked for only when the user wants them. */
export async function midiOutputs() {
  const access = await navigator.requestMIDIAccess();
  return [...access.outputs.values()];
}
