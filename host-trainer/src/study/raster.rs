//! The JSB Chorales benchmark in the published setting (Huang et al. 2017,
//! Coconet; Huang et al. 2019, Music Transformer): each chorale on a 16th-note
//! grid, the four voices serialized in raster order (soprano, alto, tenor,
//! bass per step), one token per voice per step — a pitch or a rest — and the
//! note-wise negative log-likelihood on the official validation split.
//!
//! Our model is the Kantor Transformer (RoPE, SwiGLU, RMSNorm), trained on
//! the training split transposed within ±6 semitones, evaluated on the
//! untransposed validation chorales: [`chorale_nll`] scores each chorale
//! from its start (`host-trainer jsb`); [`benchmark`], the comparative
//! study's short version, over side-by-side windows of `context` tokens.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{VarBuilder, VarMap};
use serde::Serialize;

use super::fit::{fit, FitOptions, FitReport};
use crate::config::ModelConfig;
use crate::corpus::windows;
use crate::model::{ids_tensor, LanguageModel, Mode, Transformer};
use crate::train::{mean_loss, Dataset};

/// Start of a chorale.
pub const BOS: u16 = 0;
/// A silent voice.
pub const REST: u16 = 1;
/// Lowest pitch the raster vocabulary holds (chorales span 36–81; ±6 semitones of room).
pub const LOW: i32 = 30;
/// Highest pitch.
pub const HIGH: i32 = 87;
/// Vocabulary: BOS, rest, pitches LOW..=HIGH.
pub const VOCAB: usize = 2 + (HIGH - LOW + 1) as usize;

/// Figures of the published setting (Music Transformer, Table 1: note-wise
/// validation NLL on JSB Chorales).
pub const PUBLISHED: [(&str, f64); 3] = [
    ("Coconet (Huang et al. 2017)", 0.436),
    ("Transformer, absolute positions (Huang et al. 2019)", 0.417),
    (
        "Music Transformer, relative attention (Huang et al. 2019)",
        0.335,
    ),
];

/// One chorale (steps of four pitches, −1 silent) as raster tokens, moved by `shift`.
/// `None` if a pitch leaves the vocabulary.
pub fn raster(steps: &[Vec<f64>], shift: i32) -> Option<Vec<u16>> {
    let mut out = Vec::with_capacity(1 + steps.len() * 4);
    out.push(BOS);
    for step in steps {
        for v in 0..4 {
            let p = step.get(v).copied().unwrap_or(-1.0);
            if p < 0.0 || p.is_nan() {
                out.push(REST);
            } else {
                let q = p as i32 + shift;
                if !(LOW..=HIGH).contains(&q) {
                    return None;
                }
                out.push((2 + q - LOW) as u16);
            }
        }
    }
    Some(out)
}

/// The result.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RasterReport {
    /// Note-wise NLL (nats per voice-step token) on the validation split.
    pub valid_nll: f64,
    /// Tokens evaluated.
    pub valid_tokens: usize,
    /// Parameters.
    pub parameters: usize,
    /// Training.
    pub training: FitReport,
}

/// The JSB splits as raster token sequences, one per chorale (`Bos` first).
#[derive(Clone, Debug)]
pub struct Splits {
    /// The training chorales, each in every transposition of ±`transpose`
    /// semitones that stays inside the vocabulary.
    pub train: Vec<Vec<u16>>,
    /// The validation chorales, as written.
    pub valid: Vec<Vec<u16>>,
    /// The test chorales, as written.
    pub test: Vec<Vec<u16>>,
}

/// Read the JSB JSON at `path` (`{"train": [chorale…], "valid": …, "test": …}`,
/// a chorale a list of steps of four pitches) as raster tokens.
pub fn load(path: &std::path::Path, transpose: i32) -> anyhow::Result<Splits> {
    use anyhow::Context as _;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let data: std::collections::HashMap<String, Vec<Vec<Vec<f64>>>> =
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSB Chorales JSON", path.display()))?;
    let split = |name: &str| {
        data.get(name)
            .ok_or_else(|| anyhow::anyhow!("{} has no {name} split", path.display()))
    };
    // A held-out chorale that does not fit the vocabulary is an error, not
    // left out: the benchmark is the whole split.
    let as_written = |name: &str| -> anyhow::Result<Vec<Vec<u16>>> {
        split(name)?
            .iter()
            .enumerate()
            .map(|(i, c)| {
                raster(c, 0).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: {name} chorale {i} has a pitch outside {LOW}–{HIGH}",
                        path.display()
                    )
                })
            })
            .collect()
    };
    Ok(Splits {
        train: split("train")?
            .iter()
            .flat_map(|c| (-transpose..=transpose).filter_map(move |s| raster(c, s)))
            .collect(),
        valid: as_written("valid")?,
        test: as_written("test")?,
    })
}

/// The splits cut into the trainer's windows of `context + 1` tokens (the
/// chorales laid end to end): training windows every `stride` tokens,
/// held-out ones side by side.
pub fn dataset(splits: &Splits, context: usize, stride: usize) -> anyhow::Result<Dataset> {
    let len = context + 1;
    let data = Dataset {
        bpe: None,
        train: windows(&splits.train, len, stride.max(1)),
        valid: windows(&splits.valid, len, context),
        test: windows(&splits.test, len, context),
    };
    if data.train.is_empty() || data.valid.is_empty() || data.test.is_empty() {
        anyhow::bail!("JSB splits too short for windows of {len} tokens");
    }
    Ok(data)
}

/// Negative log-likelihood summed over scored tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Scored {
    /// Nats in all.
    pub nats: f64,
    /// Tokens scored.
    pub tokens: usize,
}

impl Scored {
    /// Nats per token.
    pub fn mean(&self) -> f64 {
        self.nats / self.tokens.max(1) as f64
    }
}

/// Note-wise NLL of whole chorales: every token after a chorale's `Bos` is
/// scored once, predicted from its chorale up to it — all of it, or, where
/// the chorale is longer than the model's context, from the start of a
/// window of `context` tokens (windows overlap by half a context, so each
/// token sees at least half a context of its past). The published setting.
pub fn chorale_nll(
    model: &dyn LanguageModel,
    chorales: &[Vec<u16>],
    device: &Device,
) -> anyhow::Result<Scored> {
    let context = model.config().context;
    let mut scored = Scored::default();
    for chorale in chorales.iter().filter(|c| c.len() > 1) {
        let mut next = 1; // the first token not yet scored (the Bos is no target)
        let mut start = 0;
        while next < chorale.len() {
            let end = (start + context + 1).min(chorale.len());
            let log_p = token_log_probs(model, &chorale[start..end], device)?;
            // log_p[i] is the log-probability of chorale[start + 1 + i].
            for lp in &log_p[next - start - 1..] {
                scored.nats -= f64::from(*lp);
                scored.tokens += 1;
            }
            next = end;
            start += (context / 2).max(1);
        }
    }
    Ok(scored)
}

/// The log-probability the model gives each token of `window` after the first.
fn token_log_probs(
    model: &dyn LanguageModel,
    window: &[u16],
    device: &Device,
) -> anyhow::Result<Vec<f32>> {
    let inputs = ids_tensor(&[window[..window.len() - 1].to_vec()], device)?;
    let targets = ids_tensor(&[window[1..].to_vec()], device)?;
    let logits = model.logits(&inputs, Mode::Eval)?.squeeze(0)?;
    let log_p = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    Ok(log_p
        .gather(&targets.squeeze(0)?.unsqueeze(1)?, 1)?
        .squeeze(1)?
        .to_vec1()?)
}

/// Train and evaluate on the JSB JSON at `path` (the comparative study's
/// short benchmark: the held-out loss over side-by-side windows).
pub fn benchmark(
    path: &std::path::Path,
    config: &ModelConfig,
    options: FitOptions,
    device: &Device,
) -> anyhow::Result<RasterReport> {
    config.validate_shape()?;
    let splits = load(path, 6)?;
    let data = dataset(&splits, config.context, config.context / 2)?;
    let (train_windows, valid_windows) = (data.train, data.valid);
    let varmap = VarMap::new();
    let model = Transformer::new(config, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    let training = fit(
        &varmap,
        train_windows.len(),
        options,
        |batch, step, _rng| {
            let rows: Vec<Vec<u16>> = batch.iter().map(|&i| train_windows[i].clone()).collect();
            let (x, y) = split_rows(&rows, device)?;
            model.loss(
                &x,
                &y,
                Mode::Train {
                    seed: options.seed ^ step as u64,
                },
            )
        },
    )?;
    Ok(RasterReport {
        valid_nll: mean_loss(&model, &valid_windows, 16, device)?,
        valid_tokens: valid_windows.len() * config.context,
        parameters: config.parameters(),
        training,
    })
}

fn split_rows(rows: &[Vec<u16>], device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let inputs: Vec<Vec<u16>> = rows.iter().map(|w| w[..w.len() - 1].to_vec()).collect();
    let targets: Vec<Vec<u16>> = rows.iter().map(|w| w[1..].to_vec()).collect();
    Ok((ids_tensor(&inputs, device)?, ids_tensor(&targets, device)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raster_order_is_soprano_alto_tenor_bass_per_step() {
        let steps = vec![vec![74.0, 70.0, 65.0, 58.0], vec![75.0, -1.0, 58.0, 55.0]];
        let t = raster(&steps, 0).unwrap();
        let p = |x: i32| (2 + x - LOW) as u16;
        assert_eq!(
            t,
            vec![BOS, p(74), p(70), p(65), p(58), p(75), REST, p(58), p(55)]
        );
        assert!(raster(&steps, 20).is_none());
        assert_eq!(raster(&steps, -2).unwrap()[1], p(72));
    }

    fn tiny_model(context: usize) -> (Transformer, VarMap) {
        let config = ModelConfig {
            vocab_size: VOCAB,
            dim: 16,
            n_layers: 1,
            n_heads: 2,
            n_kv_heads: 2,
            hidden_dim: 32,
            context,
            dropout: 0.0,
            ..ModelConfig::preset("tiny").unwrap()
        };
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        (Transformer::new(&config, vb).unwrap(), varmap)
    }

    fn chorale(len: usize, seed: u16) -> Vec<u16> {
        std::iter::once(BOS)
            .chain((1..len as u16).map(|i| 2 + (i * 7 + seed) % (VOCAB as u16 - 2)))
            .collect()
    }

    #[test]
    fn a_chorale_inside_the_context_is_scored_as_one_window() {
        let (model, _vars) = tiny_model(32);
        let c = chorale(20, 3);
        let scored = chorale_nll(&model, std::slice::from_ref(&c), &Device::Cpu).unwrap();
        assert_eq!(scored.tokens, 19);
        let loss = mean_loss(&model, &[c], 1, &Device::Cpu).unwrap();
        assert!(
            (scored.mean() - loss).abs() < 1e-5,
            "{} vs {loss}",
            scored.mean()
        );
    }

    #[test]
    fn every_token_of_a_long_chorale_is_scored_once() {
        let (model, _vars) = tiny_model(8);
        let (long, short) = (chorale(45, 1), chorale(6, 2));
        let both = chorale_nll(&model, &[long.clone(), short.clone()], &Device::Cpu).unwrap();
        let a = chorale_nll(&model, &[long], &Device::Cpu).unwrap();
        let b = chorale_nll(&model, &[short], &Device::Cpu).unwrap();
        assert_eq!((a.tokens, b.tokens, both.tokens), (44, 5, 49));
        assert!((both.nats - a.nats - b.nats).abs() < 1e-4);
        assert!(a.mean().is_finite() && a.mean() > 0.0);
    }
}
