//! The JSB Chorales benchmark in the published setting (Huang et al. 2017,
//! Coconet; Huang et al. 2019, Music Transformer): each chorale on a 16th-note
//! grid, the four voices serialized in raster order (soprano, alto, tenor,
//! bass per step), one token per voice per step — a pitch or a rest — and the
//! note-wise negative log-likelihood on the official validation split.
//!
//! Our model is the Kantor Transformer (RoPE, SwiGLU, RMSNorm), trained on
//! the training split transposed within ±6 semitones, evaluated on the
//! untransposed validation chorales in windows of `context` tokens.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::Serialize;

use super::fit::{fit, FitOptions, FitReport};
use crate::config::ModelConfig;
use crate::corpus::windows;
use crate::model::{ids_tensor, LanguageModel, Mode, Transformer};

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

/// Train and evaluate on the JSB JSON at `path`.
pub fn benchmark(
    path: &std::path::Path,
    config: &ModelConfig,
    options: FitOptions,
    device: &Device,
) -> anyhow::Result<RasterReport> {
    config.validate_shape()?;
    let text = std::fs::read_to_string(path)?;
    let data: std::collections::HashMap<String, Vec<Vec<Vec<f64>>>> = serde_json::from_str(&text)?;
    let split = |name: &str| {
        data.get(name)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{} has no {name} split", path.display()))
    };
    let train: Vec<Vec<u16>> = split("train")?
        .iter()
        .flat_map(|c| (-6..=6).filter_map(move |s| raster(c, s)))
        .collect();
    let valid: Vec<Vec<u16>> = split("valid")?
        .iter()
        .filter_map(|c| raster(c, 0))
        .collect();
    let len = config.context + 1;
    let train_windows = windows(&train, len, config.context / 2);
    let valid_windows = windows(&valid, len, config.context);
    if train_windows.is_empty() || valid_windows.is_empty() {
        anyhow::bail!("JSB splits too short for windows of {len} tokens");
    }
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
    let mut total = 0.0;
    for chunk in valid_windows.chunks(16) {
        let (x, y) = split_rows(chunk, device)?;
        total +=
            f64::from(model.loss(&x, &y, Mode::Eval)?.to_scalar::<f32>()?) * chunk.len() as f64;
    }
    Ok(RasterReport {
        valid_nll: total / valid_windows.len() as f64,
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
}
