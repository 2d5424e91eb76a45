//! The C-visible types and status codes (mirrored by `include/kantor.h`).

use core::ffi::c_char;

/// What every function returns: [`KANTOR_OK`] or one of the `KANTOR_ERROR_*` codes.
pub type KantorStatus = i32;

/// Success.
pub const KANTOR_OK: KantorStatus = 0;
/// A required pointer argument was null.
pub const KANTOR_ERROR_NULL: KantorStatus = 1;
/// A buffer (the generator's memory, a message array) is too small.
pub const KANTOR_ERROR_BUFFER_TOO_SMALL: KantorStatus = 2;
/// The model bytes are not a valid Kantor model.
pub const KANTOR_ERROR_BAD_MODEL: KantorStatus = 3;
/// An argument is out of range: a token id, a sampling setting.
pub const KANTOR_ERROR_BAD_ARGUMENT: KantorStatus = 4;
/// Not allowed now: sampling is set before the first token is fed or generated.
pub const KANTOR_ERROR_BAD_STATE: KantorStatus = 5;
/// The pointer is not a generator made by `kantor_generator_new`.
pub const KANTOR_ERROR_BAD_HANDLE: KantorStatus = 6;
/// The engine panicked (a bug in Kantor); this generator can no longer be used.
pub const KANTOR_ERROR_PANIC: KantorStatus = 7;

/// Grid ticks per quarter note in [`KantorMessage::tick`].
pub const KANTOR_TICKS_PER_QUARTER: u32 = kantor_engine::vocab::TICKS_PER_QUARTER;

/// [`KantorMessage::kind`]: note-on.
pub const KANTOR_NOTE_ON: u8 = 1;
/// [`KantorMessage::kind`]: note-off.
pub const KANTOR_NOTE_OFF: u8 = 2;
/// [`KantorMessage::kind`]: tempo change (not a wire message: the player's clock changes).
pub const KANTOR_TEMPO: u8 = 3;

/// Sampling settings and the seed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KantorSampling {
    /// Seed of the sampler's random generator (any value).
    pub seed: u64,
    /// Softmax temperature, finite and ≥ 0; 0 picks the most likely token.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0 = off).
    pub top_k: u32,
    /// Keep the smallest set whose probability reaches `top_p`, in \[0, 1\] (1 = off).
    pub top_p: f32,
    /// 1: mask ill-formed tokens before sampling (as the firmware does); 0: off.
    pub constrained: u32,
}

/// A timed MIDI message.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KantorMessage {
    /// Grid tick ([`KANTOR_TICKS_PER_QUARTER`] per quarter note).
    pub tick: u32,
    /// [`KANTOR_NOTE_ON`], [`KANTOR_NOTE_OFF`] or [`KANTOR_TEMPO`].
    pub kind: u8,
    /// Channel 0–15 (notes).
    pub channel: u8,
    /// Key 0–127 (notes).
    pub key: u8,
    /// Velocity 1–127 (note-on; 0 otherwise).
    pub velocity: u8,
    /// Microseconds per quarter note (tempo; 0 otherwise).
    pub micros_per_quarter: u32,
}

/// Where a generator stands.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KantorStats {
    /// Tokens fed so far (prompt and generated).
    pub tokens: u32,
    /// Tokens the decoder rejected.
    pub ill_formed: u32,
    /// Notes dropped by a full message queue.
    pub dropped_notes: u32,
    /// How often the KV cache slid.
    pub evictions: u32,
    /// Positions in the KV cache.
    pub position: u32,
    /// The decoder's clock: grid tick of the last token.
    pub now: u32,
    /// Grid tick at which the current bar starts.
    pub bar_start: u32,
    /// Grid tick at which the current bar ends.
    pub bar_end: u32,
    /// 1 if no message waits (released or not), else 0.
    pub idle: u32,
    /// Tokens in the model's vocabulary (valid ids are below it).
    pub vocab_size: u32,
    /// The model's context length.
    pub context: u32,
}

/// A static, NUL-terminated description of a status code.
pub fn status_message(status: KantorStatus) -> *const c_char {
    let text: &'static core::ffi::CStr = match status {
        KANTOR_OK => c"ok",
        KANTOR_ERROR_NULL => c"a required pointer is null",
        KANTOR_ERROR_BUFFER_TOO_SMALL => c"the buffer is too small",
        KANTOR_ERROR_BAD_MODEL => c"not a valid Kantor model",
        KANTOR_ERROR_BAD_ARGUMENT => c"an argument is out of range",
        KANTOR_ERROR_BAD_STATE => c"not allowed once generation has started",
        KANTOR_ERROR_BAD_HANDLE => c"not a Kantor generator",
        KANTOR_ERROR_PANIC => c"the engine panicked (a bug); the generator is unusable",
        _ => c"unknown status",
    };
    text.as_ptr()
}
