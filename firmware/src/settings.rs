//! What the board plays, in one place: the model linked into flash, the
//! sampling settings and seed, and the sizes of the static buffers.

use kantor_engine::generator::Generator;
use kantor_engine::model::Model;
use kantor_engine::sampler::Sampler;
use kantor_engine::session::{Session, SessionError, SessionOptions};

include!("performance.rs");

/// Word alignment for the model bytes in flash.
#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);

static MODEL_BYTES: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("KANTOR_MODEL")));

/// The exported model (`host-trainer export`), linked into flash.
/// `build.rs` picks the file: `model/student.safetensors` or `$KANTOR_MODEL`.
pub static MODEL: &[u8] = &MODEL_BYTES.0;

// SESSION_SRAM and SESSION_CCM: how the linked model's session (run state
// and KV cache) splits between SRAM and the 64 KiB CCM. `build.rs` carves
// the session with the engine's first fit ([`Session::new_in`], SRAM first)
// and puts as much as it can in the CCM: for the student both halves of the
// KV cache, the run state and the cache's scales in SRAM.
include!(concat!(env!("OUT_DIR"), "/session_layout.rs"));

/// Bytes for the run state and the KV cache, in SRAM and the CCM together.
pub const SESSION_MEMORY: usize = SESSION_SRAM + SESSION_CCM;

/// Capacity of the note scheduler's queue (sounding notes plus pending messages).
pub const QUEUE: usize = 64;

/// Tokens the QEMU test image generates before it stops (4 in the short
/// image `tools/firmware-profile.sh` traces instruction by instruction).
pub const TEST_TOKENS: u32 = if cfg!(feature = "short") { 4 } else { 384 };

/// Seconds of music the soak image (`--features qemu,soak`,
/// `tools/firmware-soak.sh`) plays before it stops: a little over an hour.
pub const SOAK_SECONDS: u32 = 3660;

/// Most tokens generated for one grid tick before playback moves on anyway.
pub const MAX_TOKENS_PER_TICK: u32 = 64;

/// How the board runs the model.
pub fn session_options(model: &Model<'_>) -> SessionOptions {
    SessionOptions {
        sinks: SINKS,
        ..SessionOptions::for_model(model)
    }
}

/// The generator the board plays: the model, a session in `sram` and then
/// `ccm` (empty where one block holds it all: the results are the same), the
/// seeded sampler, grammar-constrained, each piece's voices and form drawn
/// by the model's plan. The host reference builds the same.
pub fn generator<'m, 'b>(
    model: &'m Model<'m>,
    sram: &'b mut [u8],
    ccm: &'b mut [u8],
) -> Result<Generator<'m, 'b, QUEUE>, SessionError> {
    let session = Session::new_in(model, session_options(model), &mut [sram, ccm])?;
    Ok(Generator::new(session, Sampler::new(SAMPLER, SEED), true).with_plan(model.plan, SEED))
}
