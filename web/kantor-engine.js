// The Kantor engine in the page: the WebAssembly build of engine/ffi, whose
// exports are the C ABI of engine/ffi/include/kantor.h over linear memory.
// The module has no allocator: this file hands it memory past its own data
// and stack (grown on demand), as a C app hands the library its buffers.

const SAMPLING_SIZE = 24; // KantorSampling: u64 seed, f32 temperature, u32 top_k, f32 top_p, u32 constrained
const MESSAGE_SIZE = 12; // KantorMessage: u32 tick, u8 kind, channel, key, velocity, u32 micros_per_quarter
const STATS_FIELDS = ['tokens', 'illFormed', 'droppedNotes', 'evictions', 'position', 'now',
  'barStart', 'barEnd', 'idle', 'vocabSize', 'context'];
const BATCH = 64;

export const NOTE_ON = 1;
export const NOTE_OFF = 2;
export const TEMPO = 3;
export const TICKS_PER_QUARTER = 12;

/** A failed engine call: `status` is the KANTOR_ERROR_* code. */
export class KantorError extends Error {
  constructor(call, status, text) {
    super(`${call}: ${text} (status ${status})`);
    this.status = status;
  }
}

/** The WebAssembly module and the memory it was given. */
export class Engine {
  /** Instantiate the module from its bytes (it imports nothing). */
  static async load(wasmBytes) {
    const { instance } = await WebAssembly.instantiate(wasmBytes, {});
    return new Engine(instance.exports);
  }

  constructor(exports) {
    this.x = exports;
    this.memory = exports.memory;
    // Everything past the module's initial memory is ours to hand out.
    this.base = this.memory.buffer.byteLength;
    this.top = this.base;
    this.model = null;
  }

  /** `bytes` of linear memory, aligned; grows the memory when needed. */
  alloc(bytes, align = 16) {
    const at = Math.ceil(this.top / align) * align;
    const end = at + bytes;
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / 65536));
    this.top = end;
    return at;
  }

  view() {
    return new DataView(this.memory.buffer); // afresh: growing detaches the old buffer
  }

  check(status, call) {
    if (status !== 0) throw new KantorError(call, status, this.statusMessage(status));
  }

  /** The engine's description of a status code. */
  statusMessage(status) {
    const bytes = new Uint8Array(this.memory.buffer);
    const start = this.x.kantor_status_message(status);
    let end = start;
    while (bytes[end] !== 0) end++;
    return new TextDecoder().decode(bytes.subarray(start, end));
  }

  /**
   * Copy a model file into memory, check it and make room for a generator.
   * Replaces the previous model (and invalidates its generators).
   */
  loadModel(modelBytes) {
    this.top = this.base;
    const scratch = this.alloc(256);
    const model = this.alloc(modelBytes.byteLength);
    new Uint8Array(this.memory.buffer, model, modelBytes.byteLength).set(new Uint8Array(modelBytes));
    try {
      this.check(this.x.kantor_memory_required(model, modelBytes.byteLength, scratch), 'kantor_memory_required');
    } catch (e) {
      this.top = this.base;
      this.model = null;
      throw e;
    }
    const memoryLen = this.view().getUint32(scratch, true);
    const memory = this.alloc(memoryLen);
    const messages = this.alloc(BATCH * MESSAGE_SIZE);
    this.model = { ptr: model, len: modelBytes.byteLength, memory, memoryLen, scratch, messages };
    return { bytes: modelBytes.byteLength, memoryBytes: memoryLen };
  }

  /** The engine's default sampling (temperature, topK, topP, seed, constrained). */
  defaultSampling() {
    const at = this.alloc(SAMPLING_SIZE, 8);
    this.check(this.x.kantor_sampling_default(at), 'kantor_sampling_default');
    const v = this.view();
    return {
      seed: v.getBigUint64(at, true),
      temperature: v.getFloat32(at + 8, true),
      topK: v.getUint32(at + 12, true),
      topP: v.getFloat32(at + 16, true),
      constrained: v.getUint32(at + 20, true) === 1,
    };
  }

  /** A fresh generator for the loaded model (reusing its memory). */
  generator(sampling) {
    if (!this.model) throw new Error('no model loaded');
    const m = this.model;
    this.check(this.x.kantor_generator_new(m.ptr, m.len, m.memory, m.memoryLen, m.scratch), 'kantor_generator_new');
    const handle = this.view().getUint32(m.scratch, true);
    const g = new Generator(this, handle, m.scratch, m.messages);
    if (sampling) g.setSampling(sampling);
    return g;
  }
}

/** A generator living in the engine's memory. */
export class Generator {
  constructor(engine, handle, scratch, messages) {
    this.e = engine;
    this.handle = handle;
    this.scratch = scratch; // out-parameters and the sampling struct
    this.messages = messages; // BATCH messages
  }

  /** Set seed (BigInt, number or decimal string), temperature, topK, topP, constrained. */
  setSampling({ seed, temperature, topK, topP, constrained = true }) {
    const v = this.e.view();
    const at = this.scratch + 64;
    v.setBigUint64(at, BigInt(seed), true);
    v.setFloat32(at + 8, temperature, true);
    v.setUint32(at + 12, topK, true);
    v.setFloat32(at + 16, topP, true);
    v.setUint32(at + 20, constrained ? 1 : 0, true);
    this.e.check(this.e.x.kantor_set_sampling(this.handle, at), 'kantor_set_sampling');
  }

  /** Generate one token; returns its id. */
  step() {
    this.e.check(this.e.x.kantor_step(this.handle, this.scratch), 'kantor_step');
    return this.e.view().getUint16(this.scratch, true);
  }

  /** Release the last notes' note-offs. */
  finish() {
    this.e.check(this.e.x.kantor_finish(this.handle), 'kantor_finish');
  }

  /** Every message that is due, in time order. */
  popMessages() {
    const out = [];
    for (;;) {
      this.e.check(this.e.x.kantor_pop_messages(this.handle, this.messages, BATCH, this.scratch), 'kantor_pop_messages');
      const v = this.e.view();
      const n = v.getUint32(this.scratch, true);
      for (let i = 0; i < n; i++) {
        const at = this.messages + i * MESSAGE_SIZE;
        out.push({
          tick: v.getUint32(at, true),
          kind: v.getUint8(at + 4),
          channel: v.getUint8(at + 5),
          key: v.getUint8(at + 6),
          velocity: v.getUint8(at + 7),
          microsPerQuarter: v.getUint32(at + 8, true),
        });
      }
      if (n < BATCH) return out;
    }
  }

  /** Where the generator stands (tokens, clock, bar, ...). */
  stats() {
    const at = this.scratch + 128;
    this.e.check(this.e.x.kantor_stats(this.handle, at), 'kantor_stats');
    const v = this.e.view();
    return Object.fromEntries(STATS_FIELDS.map((name, i) => [name, v.getUint32(at + 4 * i, true)]));
  }
}
