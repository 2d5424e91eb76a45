//! Generation end to end: sample a token, decode it through the
//! [`Grammar`] (BPE expansion, decoder, mask), schedule the notes as timed
//! MIDI messages and feed it back (computing only the logits the grammar
//! allows next).
//!
//! ```no_run
//! # use kantor_engine::{generator::Generator, model::Model, sampler::{Sampler, SamplerConfig},
//! #     session::{Session, SessionOptions}, vocab::BOS_ID};
//! # fn run(bytes: &[u8], memory: &mut [u8]) -> Option<()> {
//! let model = Model::from_bytes(bytes).ok()?;
//! let session = Session::new(&model, SessionOptions::for_model(&model), memory).ok()?;
//! let mut generator: Generator<'_, '_, 64> =
//!     Generator::new(session, Sampler::new(SamplerConfig::default(), 1), true);
//! generator.feed(BOS_ID).ok()?;
//! for _ in 0..1000 {
//!     generator.step().ok()?;
//!     while let Some(message) = generator.pop_message() {
//!         // play `message.message` at `message.tick`
//!     }
//! }
//! # Some(())
//! # }
//! ```

use crate::decoder::Decoder;
use crate::form::Repeat;
use crate::grammar::Grammar;
use crate::plan::PiecePlan;
use crate::sampler::Sampler;
use crate::session::{Session, SessionError};
use crate::stream::{Scheduler, TimedMessage};
use crate::vocab::{BOS_ID, EOS_ID};

/// A session, a sampler, the grammar and the scheduler, driven together.
/// `Q` is the scheduler's queue capacity.
#[derive(Debug)]
pub struct Generator<'m, 'b, const Q: usize> {
    session: Session<'m, 'b>,
    sampler: Sampler,
    grammar: Grammar,
    scheduler: Scheduler<Q>,
    fed: bool,
    tokens: u32,
    ill_formed: u32,
    plan: PiecePlan,
    plan_seed: u64,
    pieces: u32,
    repeat: Repeat,
}

impl<'m, 'b, const Q: usize> Generator<'m, 'b, Q> {
    /// A generator; `constrained` masks ill-formed tokens before sampling.
    pub fn new(session: Session<'m, 'b>, sampler: Sampler, constrained: bool) -> Self {
        Generator {
            session,
            sampler,
            grammar: Grammar::new(constrained),
            scheduler: Scheduler::new(),
            fed: false,
            tokens: 0,
            ill_formed: 0,
            plan: PiecePlan::free(),
            plan_seed: 0,
            pieces: 0,
            repeat: Repeat::new(0),
        }
    }

    /// The same generator, choosing each piece's voices and form by `plan`
    /// (usually the model's, [`crate::model::Model::plan`]) with draws
    /// seeded by `seed` (when constrained; see [`crate::plan`]).
    pub fn with_plan(mut self, plan: PiecePlan, seed: u64) -> Self {
        self.plan = plan;
        self.plan_seed = seed;
        self
    }

    /// Feed a prompt token: decode it and run the model on it (a
    /// well-formed `Bos`, a new piece, first empties the cache). When
    /// constrained, the logits of the tokens that may not follow are −∞
    /// (and not computed at all).
    pub fn feed(&mut self, id: u16) -> Result<(), SessionError> {
        if usize::from(id) >= self.session.model().config.vocab_size {
            return Err(SessionError::TokenOutOfRange(id));
        }
        let bpe = self.session.model().bpe;
        if id == BOS_ID && self.grammar.constrained() {
            // A piece starts: choose its voices and form.
            let choice = self.plan.choose(self.plan_seed, self.pieces);
            self.pieces = self.pieces.wrapping_add(1);
            self.grammar.set_voicing(choice.voicing);
            self.repeat = Repeat::new(choice.repeat_bars);
        }
        let scheduler = &mut self.scheduler;
        let accepted = self.grammar.accept(id, &bpe, |event| scheduler.push(event));
        if id == BOS_ID && accepted.well_formed {
            // Each piece from an empty cache, as `host-trainer eval` measures
            // them: the last piece's positions would only cost attention, and
            // the sinks are the start of this piece.
            self.session.reset();
        }
        for token in bpe.expand_tokens(id) {
            self.repeat.follow(token);
        }
        self.tokens = self.tokens.saturating_add(1);
        self.ill_formed = self
            .ill_formed
            .saturating_add(u32::from(!accepted.well_formed));
        self.scheduler.release_until(self.grammar.decoder().now());
        self.fed = true;
        let logits = self.grammar.forward(&mut self.session, id)?;
        if !self.repeat.may_end() {
            if let Some(end) = logits.get_mut(usize::from(EOS_ID)) {
                *end = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }

    /// Feed `Bos` if nothing was fed yet (so that the first [`Generator::step`]
    /// costs one forward pass like every other).
    pub fn prime(&mut self) -> Result<(), SessionError> {
        if self.fed {
            return Ok(());
        }
        self.feed(BOS_ID)
    }

    /// Sample the next token, feed it back and decode it; returns it. Starts
    /// with `Bos` if nothing was fed yet.
    pub fn step(&mut self) -> Result<u16, SessionError> {
        self.prime()?;
        let bpe = self.session.model().bpe;
        let id = match self.repeat.next(&bpe) {
            Some(replayed) => replayed,
            None => {
                let id = self.session.sample(&mut self.sampler);
                if self.repeat.cue(bpe.expand(id)) {
                    self.repeat.next(&bpe).unwrap_or(id)
                } else {
                    id
                }
            }
        };
        self.feed(id)?;
        Ok(id)
    }

    /// The next message that is due, in time order.
    pub fn pop_message(&mut self) -> Option<TimedMessage> {
        self.scheduler.pop()
    }

    /// The next released message due at or before `tick` (a player's clock).
    pub fn pop_due(&mut self, tick: u32) -> Option<TimedMessage> {
        self.scheduler.pop_due(tick)
    }

    /// True if no message is waiting, released or not.
    pub fn is_idle(&self) -> bool {
        self.scheduler.is_empty()
    }

    /// Release every pending message (the last notes' note-offs).
    pub fn finish(&mut self) {
        self.scheduler.flush();
    }

    /// Tokens fed so far (prompt and generated).
    pub fn tokens(&self) -> u32 {
        self.tokens
    }

    /// Tokens the decoder rejected.
    pub fn ill_formed(&self) -> u32 {
        self.ill_formed
    }

    /// Notes dropped by a full scheduler queue.
    pub fn dropped_notes(&self) -> u32 {
        self.scheduler.dropped()
    }

    /// The decoder (its clock is the musical time of the last token).
    pub fn decoder(&self) -> &Decoder {
        self.grammar.decoder()
    }

    /// The session.
    pub fn session(&self) -> &Session<'m, 'b> {
        &self.session
    }
}
