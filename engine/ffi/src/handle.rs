//! The generator object, laid out in memory the caller gives:
//!
//! ```text
//! memory: [pad | Model | pad | KantorGenerator | session arena (KV cache, buffers) ...]
//! ```
//!
//! The model descriptor and the generator state are separate regions: the
//! session holds a shared reference to the model while the state is borrowed
//! mutably, so the two never overlap. Nothing is allocated and nothing needs
//! freeing: the caller releases the memory (and the model bytes) when done.

use core::mem::{align_of, size_of};

use kantor_engine::decoder::Decoder;
use kantor_engine::generator::Generator;
use kantor_engine::model::Model;
use kantor_engine::sampler::{Sampler, SamplerConfig};
use kantor_engine::session::{Session, SessionError, SessionOptions};

use crate::abi::*;

/// Message queue capacity: the same as the desktop example's (`engine/examples/generate.rs`).
pub(crate) const QUEUE: usize = 128;

/// Marks a live generator ("KANT").
const MAGIC: u32 = 0x4b41_4e54;

/// Before the first token a generator can still change its sampling; then
/// the session and sampler move into the engine's [`Generator`].
// No allocator to box the large variant with; a stage exists once, in the caller's memory.
#[allow(clippy::large_enum_variant)]
enum Stage {
    Ready {
        session: Session<'static, 'static>,
        sampler: Sampler,
        constrained: bool,
    },
    Running(Generator<'static, 'static, QUEUE>),
    /// Only while moving from `Ready` to `Running`.
    Moving,
}

/// A generator (opaque to C).
pub struct KantorGenerator {
    magic: u32,
    /// Set during a call: still set afterwards means that call panicked.
    busy: bool,
    stage: Stage,
}

/// The default sampling: the engine's defaults, seed 1, constrained (as the
/// desktop example and the firmware run).
pub(crate) fn default_sampling() -> KantorSampling {
    let c = SamplerConfig::default();
    KantorSampling {
        seed: 1,
        temperature: c.temperature,
        top_k: u32::try_from(c.top_k).unwrap_or(u32::MAX),
        top_p: c.top_p,
        constrained: 1,
    }
}

/// Checked sampling settings.
pub(crate) fn sampler_from(s: &KantorSampling) -> Result<(Sampler, bool), KantorStatus> {
    let temperature_ok = s.temperature.is_finite() && s.temperature >= 0.0;
    let top_p_ok = (0.0..=1.0).contains(&s.top_p);
    if !temperature_ok || !top_p_ok || s.constrained > 1 {
        return Err(KANTOR_ERROR_BAD_ARGUMENT);
    }
    let config = SamplerConfig {
        temperature: s.temperature,
        top_k: usize::try_from(s.top_k).unwrap_or(usize::MAX),
        top_p: s.top_p,
    };
    Ok((Sampler::new(config, s.seed), s.constrained == 1))
}

pub(crate) fn load(bytes: &[u8]) -> Result<Model<'_>, KantorStatus> {
    Model::from_bytes(bytes).map_err(|_| KANTOR_ERROR_BAD_MODEL)
}

/// Bytes of memory a generator of `model` needs, whatever the memory's alignment.
pub(crate) fn memory_required(model: &Model<'_>) -> usize {
    let session = Session::memory_required(model, SessionOptions::for_model(model));
    (size_of::<Model<'static>>() + align_of::<Model<'static>>() - 1)
        .saturating_add(size_of::<KantorGenerator>() + align_of::<KantorGenerator>() - 1)
        .saturating_add(session)
}

/// Split off the bytes before the next `T`-aligned address of `memory`, and
/// room for one `T`: returns a pointer to that room and the rest.
fn carve<T>(memory: &'static mut [u8]) -> Option<(*mut T, &'static mut [u8])> {
    let pad = memory.as_ptr().align_offset(align_of::<T>());
    let end = pad.checked_add(size_of::<T>())?;
    if end > memory.len() {
        return None;
    }
    let (head, rest) = memory.split_at_mut(end);
    Some((head[pad..].as_mut_ptr().cast::<T>(), rest))
}

/// Lay out a generator for `bytes` in `memory`.
///
/// # Safety
/// `bytes` and `memory` must not overlap and must stay valid, and `bytes`
/// unchanged, for as long as the returned generator is used.
pub(crate) unsafe fn create(
    bytes: &'static [u8],
    memory: &'static mut [u8],
) -> Result<*mut KantorGenerator, KantorStatus> {
    let model = load(bytes)?;
    let options = SessionOptions::for_model(&model);
    let (model_slot, rest) =
        carve::<Model<'static>>(memory).ok_or(KANTOR_ERROR_BUFFER_TOO_SMALL)?;
    let (state_slot, arena) =
        carve::<KantorGenerator>(rest).ok_or(KANTOR_ERROR_BUFFER_TOO_SMALL)?;
    // SAFETY: `model_slot` is aligned, in bounds and borrowed from nothing
    // else from here on; it is only read (through this reference) afterwards.
    let model: &'static Model<'static> = unsafe {
        model_slot.write(model);
        &*model_slot
    };
    let session = Session::new(model, options, arena).map_err(session_status)?;
    let (sampler, constrained) = sampler_from(&default_sampling())?;
    // SAFETY: aligned, in bounds, disjoint from the model and the arena.
    unsafe {
        state_slot.write(KantorGenerator {
            magic: MAGIC,
            busy: false,
            stage: Stage::Ready {
                session,
                sampler,
                constrained,
            },
        });
    }
    Ok(state_slot)
}

pub(crate) fn session_status(e: SessionError) -> KantorStatus {
    match e {
        SessionError::MemoryTooSmall { .. } => KANTOR_ERROR_BUFFER_TOO_SMALL,
        SessionError::TooManySinks => KANTOR_ERROR_BAD_MODEL,
        SessionError::TokenOutOfRange(_) => KANTOR_ERROR_BAD_ARGUMENT,
    }
}

/// Check a handle and mark it busy for the duration of `body`.
///
/// # Safety
/// `handle` is null or points to readable memory of at least a
/// `KantorGenerator`'s size (ideally one made by [`create`]).
pub(crate) unsafe fn with(
    handle: *mut KantorGenerator,
    body: impl FnOnce(&mut KantorGenerator) -> KantorStatus,
) -> KantorStatus {
    if handle.is_null() {
        return KANTOR_ERROR_NULL;
    }
    if !handle.is_aligned() {
        return KANTOR_ERROR_BAD_HANDLE;
    }
    // SAFETY: aligned and readable by the caller's contract; the magic word
    // is read alone before the state is trusted.
    let magic = unsafe { core::ptr::addr_of!((*handle).magic).read() };
    if magic != MAGIC {
        return KANTOR_ERROR_BAD_HANDLE;
    }
    // SAFETY: a generator made by `create` (its magic word says so).
    let state = unsafe { &mut *handle };
    if state.busy {
        return KANTOR_ERROR_PANIC;
    }
    state.busy = true;
    let status = body(state);
    state.busy = false;
    status
}

impl KantorGenerator {
    pub(crate) fn set_sampling(&mut self, s: &KantorSampling) -> KantorStatus {
        let (new_sampler, new_constrained) = match sampler_from(s) {
            Ok(v) => v,
            Err(code) => return code,
        };
        match &mut self.stage {
            Stage::Ready {
                sampler,
                constrained,
                ..
            } => {
                *sampler = new_sampler;
                *constrained = new_constrained;
                KANTOR_OK
            }
            _ => KANTOR_ERROR_BAD_STATE,
        }
    }

    fn vocab_size(&self) -> usize {
        match &self.stage {
            Stage::Ready { session, .. } => session.model().config.vocab_size,
            Stage::Running(g) => g.session().model().config.vocab_size,
            Stage::Moving => 0,
        }
    }

    /// The engine's generator, made on first use.
    fn running(&mut self) -> Result<&mut Generator<'static, 'static, QUEUE>, KantorStatus> {
        if matches!(self.stage, Stage::Ready { .. }) {
            self.stage = match core::mem::replace(&mut self.stage, Stage::Moving) {
                Stage::Ready {
                    session,
                    sampler,
                    constrained,
                } => Stage::Running(Generator::new(session, sampler, constrained)),
                other => other,
            };
        }
        match &mut self.stage {
            Stage::Running(g) => Ok(g),
            _ => Err(KANTOR_ERROR_PANIC),
        }
    }

    /// Feed prompt tokens (all checked before any is fed).
    pub(crate) fn feed(&mut self, tokens: impl Iterator<Item = u16> + Clone) -> KantorStatus {
        let vocab = self.vocab_size();
        if tokens.clone().any(|t| usize::from(t) >= vocab) {
            return KANTOR_ERROR_BAD_ARGUMENT;
        }
        let generator = match self.running() {
            Ok(g) => g,
            Err(code) => return code,
        };
        for token in tokens {
            if let Err(e) = generator.feed(token) {
                return session_status(e);
            }
        }
        KANTOR_OK
    }

    pub(crate) fn step(&mut self) -> Result<u16, KantorStatus> {
        self.running()?.step().map_err(session_status)
    }

    pub(crate) fn finish(&mut self) -> KantorStatus {
        match self.running() {
            Ok(g) => {
                g.finish();
                KANTOR_OK
            }
            Err(code) => code,
        }
    }

    /// The next released message, if any.
    pub(crate) fn pop(&mut self) -> Option<KantorMessage> {
        let Stage::Running(g) = &mut self.stage else {
            return None;
        };
        let m = g.pop_message()?;
        use kantor_engine::stream::MidiMessage;
        let mut out = KantorMessage {
            tick: m.tick,
            ..KantorMessage::default()
        };
        match m.message {
            MidiMessage::NoteOn {
                channel,
                key,
                velocity,
            } => {
                out.kind = KANTOR_NOTE_ON;
                out.channel = channel;
                out.key = key;
                out.velocity = velocity;
            }
            MidiMessage::NoteOff { channel, key } => {
                out.kind = KANTOR_NOTE_OFF;
                out.channel = channel;
                out.key = key;
            }
            MidiMessage::Tempo { micros_per_quarter } => {
                out.kind = KANTOR_TEMPO;
                out.micros_per_quarter = micros_per_quarter;
            }
        }
        Some(out)
    }

    pub(crate) fn stats(&self) -> KantorStats {
        let small = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let fresh = Decoder::new();
        let (session, decoder, counts) = match &self.stage {
            Stage::Ready { session, .. } => (session, &fresh, [0, 0, 0, 1]),
            Stage::Running(g) => (
                g.session(),
                g.decoder(),
                [
                    g.tokens(),
                    g.ill_formed(),
                    g.dropped_notes(),
                    u32::from(g.is_idle()),
                ],
            ),
            Stage::Moving => return KantorStats::default(),
        };
        let config = &session.model().config;
        KantorStats {
            tokens: counts[0],
            ill_formed: counts[1],
            dropped_notes: counts[2],
            evictions: small(session.evictions()),
            position: small(session.position()),
            now: decoder.now(),
            bar_start: decoder.bar_start(),
            bar_end: decoder.bar_end(),
            idle: counts[3],
            vocab_size: small(config.vocab_size),
            context: small(config.context),
        }
    }
}
