//! Generation on the host: with the engine (an exported model) or with candle
//! (a checkpoint). Both sample with the engine's sampler and, optionally, its
//! grammar mask, so a seed means the same thing everywhere.

use anyhow::{bail, Context, Result};
use candle_core::Device;
use kantor_engine::bpe::BpeTable;
use kantor_engine::form::Repeat;
use kantor_engine::grammar::{Accepted, Grammar};
use kantor_engine::model::Model;
use kantor_engine::sampler::{Sampler, SamplerConfig};
use kantor_engine::session::{Session, SessionOptions};
use kantor_engine::vocab::{BOS_ID, EOS_ID};
use kantor_engine::voicing::Voicing;

use crate::bpe::Bpe;
use crate::model::{ids_tensor, LanguageModel, Mode};
use crate::piece::Piece;
use crate::remi;

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct GenerateOptions {
    /// Sampling settings.
    pub sampler: SamplerConfig,
    /// Random seed.
    pub seed: u64,
    /// Bars to add after the prompt.
    pub bars: usize,
    /// Stop after this many generated tokens whatever happens.
    pub max_tokens: usize,
    /// Mask ill-formed tokens.
    pub constrained: bool,
    /// Stop at `Eos` (otherwise a new piece starts and generation goes on).
    pub stop_at_eos: bool,
    /// The voices to write for (enforced with the grammar mask).
    pub voicing: Voicing,
    /// Bar form: play the first this-many bars again when the model starts
    /// the next bar (0: no repeat; engine generation only). See
    /// [`kantor_engine::form`].
    pub repeat_bars: u32,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            sampler: SamplerConfig::default(),
            seed: 0,
            bars: 16,
            max_tokens: 4096,
            constrained: true,
            stop_at_eos: true,
            voicing: Voicing::free(),
            repeat_bars: 0,
        }
    }
}

/// The prompt of a piece: its BPE tokens without the final `Eos`.
pub fn prompt_tokens(piece: &Piece, bpe: &Bpe) -> Vec<u16> {
    let mut ids = bpe.encode(&remi::encode_ids(piece));
    if ids.last() == Some(&EOS_ID) {
        ids.pop();
    }
    ids
}

/// When to stop: the bars started by generated tokens, and `Eos`.
struct Stop {
    bars: u32,
    limit: usize,
    at_eos: bool,
}

impl Stop {
    fn new(options: &GenerateOptions) -> Self {
        Stop {
            bars: 0,
            limit: options.bars,
            at_eos: options.stop_at_eos,
        }
    }

    /// Count a generated token; true when generation should end with it.
    fn after(&mut self, accepted: Accepted) -> bool {
        self.bars += accepted.bars;
        (accepted.end && self.at_eos) || self.bars as usize > self.limit
    }
}

/// Continue `prompt` (BPE ids; empty = start a piece) with the engine.
/// Returns prompt and continuation.
pub fn generate_engine(
    model_bytes: &[u8],
    prompt: &[u16],
    options: &GenerateOptions,
) -> Result<Vec<u16>> {
    let model = Model::from_bytes(model_bytes)?;
    let session_options = SessionOptions::for_model(&model);
    let mut memory = vec![0u8; Session::memory_required(&model, session_options)];
    let mut session = Session::new(&model, session_options, &mut memory)?;
    let mut sampler = Sampler::new(options.sampler, options.seed);
    let mut grammar = Grammar::new(options.constrained).with_voicing(options.voicing);
    // The engine's bar-form repeat, as the board plays it (boxed: it holds
    // the opening's tokens).
    let mut repeat = Box::new(Repeat::new(options.repeat_bars));
    let mut tokens = Vec::new();
    let start: &[u16] = if prompt.is_empty() { &[BOS_ID] } else { prompt };
    for &id in start {
        if usize::from(id) >= model.config.vocab_size {
            bail!("prompt token {id} is outside the model's vocabulary");
        }
        grammar.accept(id, &model.bpe, |_| {});
        model.bpe.expand_tokens(id).for_each(|t| repeat.follow(t));
        grammar.forward(&mut session, id)?;
        tokens.push(id);
    }
    let mut stop = Stop::new(options);
    for _ in 0..options.max_tokens {
        let id = match repeat.next(&model.bpe) {
            Some(replayed) => replayed,
            None => {
                let id = session.sample(&mut sampler);
                if repeat.cue(model.bpe.expand(id)) {
                    repeat.next(&model.bpe).unwrap_or(id)
                } else {
                    id
                }
            }
        };
        tokens.push(id);
        let accepted = grammar.accept(id, &model.bpe, |_| {});
        model.bpe.expand_tokens(id).for_each(|t| repeat.follow(t));
        if stop.after(accepted) {
            break;
        }
        let logits = grammar.forward(&mut session, id)?;
        if !repeat.may_end() {
            logits[usize::from(EOS_ID)] = f32::NEG_INFINITY;
        }
    }
    Ok(tokens)
}

/// Continue `prompt` with a candle model (no KV cache: each step runs the
/// last `context` tokens).
pub fn generate_candle(
    model: &dyn LanguageModel,
    bpe: &Bpe,
    prompt: &[u16],
    options: &GenerateOptions,
    device: &Device,
) -> Result<Vec<u16>> {
    let merges = bpe.merge_bytes();
    let table = BpeTable::new(&merges).context("the BPE table")?;
    let context = model.config().context;
    let mut sampler = Sampler::new(options.sampler, options.seed);
    let mut grammar = Grammar::new(options.constrained).with_voicing(options.voicing);
    let mut tokens: Vec<u16> = if prompt.is_empty() {
        vec![BOS_ID]
    } else {
        prompt.to_vec()
    };
    for &id in &tokens {
        grammar.accept(id, &table, |_| {});
    }
    let mut order = vec![0u16; model.config().vocab_size];
    let mut stop = Stop::new(options);
    for _ in 0..options.max_tokens {
        let window = &tokens[tokens.len().saturating_sub(context)..];
        let mut logits = model
            .logits(&ids_tensor(&[window.to_vec()], device)?, Mode::Eval)?
            .squeeze(0)?
            .get(window.len() - 1)?
            .to_vec1::<f32>()?;
        grammar.mask(&mut logits, &table);
        let id = sampler.sample(&mut logits, &mut order);
        tokens.push(id);
        if stop.after(grammar.accept(id, &table, |_| {})) {
            break;
        }
    }
    Ok(tokens)
}

/// Decode BPE ids to a piece (ill-formed tokens skipped and counted).
pub fn to_piece(tokens: &[u16], bpe: &Bpe) -> Result<remi::Decoded> {
    let base = bpe.decode(tokens).context("decoding BPE")?;
    Ok(remi::decode_ids(&base))
}
