//! Generation on the host: with the engine (an exported model) or with candle
//! (a checkpoint). Both sample with the engine's sampler and, optionally, its
//! grammar mask, so a seed means the same thing everywhere.

use anyhow::{bail, Context, Result};
use candle_core::Device;
use kantor_engine::bpe::BpeTable;
use kantor_engine::decoder::Decoder;
use kantor_engine::grammar::mask_ill_formed;
use kantor_engine::model::Model;
use kantor_engine::sampler::{Sampler, SamplerConfig};
use kantor_engine::session::{Session, SessionOptions};
use kantor_engine::vocab::{Token, BOS_ID, EOS_ID};

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

/// Counts the bars started by generated tokens, to know when to stop.
struct BarCounter {
    bars: usize,
}

impl BarCounter {
    fn add(&mut self, bpe: &BpeTable<'_>, id: u16) -> bool {
        let mut eos = false;
        for t in bpe.expand_tokens(id) {
            match t {
                Token::Bar => self.bars += 1,
                Token::Rest(n) => self.bars += usize::from(n),
                Token::Eos => eos = true,
                _ => {}
            }
        }
        eos
    }
}

/// Continue `prompt` (BPE ids; empty = start a piece) with the engine.
/// Returns prompt and continuation.
pub fn generate_engine(
    model_bytes: &[u8],
    prompt: &[u16],
    options: &GenerateOptions,
) -> Result<Vec<u16>> {
    let model = Model::from_bytes(model_bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let session_options = SessionOptions::for_model(&model);
    let mut memory = vec![0u8; Session::memory_required(&model, session_options)];
    let mut session =
        Session::new(&model, session_options, &mut memory).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut sampler = Sampler::new(options.sampler, options.seed);
    let mut decoder = Decoder::new();
    let mut tokens = Vec::new();
    let start: &[u16] = if prompt.is_empty() { &[BOS_ID] } else { prompt };
    for &id in start {
        if usize::from(id) >= model.config.vocab_size {
            bail!("prompt token {id} is outside the model's vocabulary");
        }
        session.forward(id).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        for base in model.bpe.expand(id) {
            let _ = decoder.push_id(base);
        }
        tokens.push(id);
    }
    let mut counter = BarCounter { bars: 0 };
    for _ in 0..options.max_tokens {
        if options.constrained {
            mask_ill_formed(session.logits_mut(), &decoder, &model.bpe);
        }
        let id = session.sample(&mut sampler);
        tokens.push(id);
        for base in model.bpe.expand(id) {
            let _ = decoder.push_id(base);
        }
        let eos = counter.add(&model.bpe, id);
        if (eos && options.stop_at_eos) || counter.bars > options.bars {
            break;
        }
        session.forward(id).map_err(|e| anyhow::anyhow!("{e:?}"))?;
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
    let table = BpeTable::new(&merges).map_err(|e| anyhow::anyhow!("BPE table: {e:?}"))?;
    let context = model.config().context;
    let mut sampler = Sampler::new(options.sampler, options.seed);
    let mut decoder = Decoder::new();
    let mut tokens: Vec<u16> = if prompt.is_empty() {
        vec![BOS_ID]
    } else {
        prompt.to_vec()
    };
    for &id in &tokens {
        for base in table.expand(id) {
            let _ = decoder.push_id(base);
        }
    }
    let mut order = vec![0u16; model.config().vocab_size];
    let mut counter = BarCounter { bars: 0 };
    for _ in 0..options.max_tokens {
        let window = &tokens[tokens.len().saturating_sub(context)..];
        let logits = model
            .logits(&ids_tensor(&[window.to_vec()], device)?, Mode::Eval)?
            .squeeze(0)?
            .get(window.len() - 1)?
            .to_vec1::<f32>()?;
        let mut logits = logits;
        if options.constrained {
            mask_ill_formed(&mut logits, &decoder, &table);
        }
        let id = sampler.sample(&mut logits, &mut order);
        tokens.push(id);
        for base in table.expand(id) {
            let _ = decoder.push_id(base);
        }
        let eos = counter.add(&table, id);
        if (eos && options.stop_at_eos) || counter.bars > options.bars {
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
