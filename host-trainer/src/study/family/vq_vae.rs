//! The VQ-VAE over two-bar piano rolls: a 64-code bottleneck
//! (straight-through, commitment loss, dead-code restarts) and an LSTM prior
//! over code sequences for generation.

use anyhow::Result;
use candle_core::{DType, Tensor};
use candle_nn::{VarBuilder, VarMap};
use kantor_engine::sampler::{Sampler, SamplerConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{count, trained, Context, Family, Nll, Rolls, Samples, Trained};
use crate::config::{Architecture, ModelConfig};
use crate::model::{ids_tensor, LanguageModel, Mode};
use crate::study::fit::{fit, rows, FitReport};
use crate::study::roll::rolls_to_piece;
use crate::study::vqvae::{codebook_usage, restart_dead_codes, VqConfig, VqVae, CODES};

const CONFIG: VqConfig = VqConfig {
    codes: 64,
    dim: 16,
    hidden: 0, // the study's width
    commitment: 0.25,
};

/// The trained VQ-VAE and its prior.
struct Model {
    vq: VqVae,
    config: VqConfig,
    prior: Box<dyn LanguageModel>,
    prior_fit: FitReport,
    restarts: usize,
}

/// The VQ-VAE family (untrained by default).
#[derive(Default)]
pub struct VqVaeFamily {
    model: Option<Model>,
    /// (codes used on the validation segments, code perplexity).
    usage: (f64, f64),
}

/// The codes of the first `n` rolls, in chunks of 64.
fn codes_of(vq: &VqVae, rolls: &Tensor, n: usize) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        out.extend(vq.codes_of(&rows(rolls, chunk)?)?.to_vec2::<u32>()?);
    }
    Ok(out)
}

/// Train the VQ-VAE, restarting codes nobody used for 50 steps (from the
/// data at step 0). Returns the fit and the restarts.
fn fit_vq(
    cx: &Context<'_>,
    r: &Rolls,
    vq: &VqVae,
    varmap: &VarMap,
    codes: usize,
) -> Result<(FitReport, usize)> {
    let steps = cx.preset.roll_steps;
    let codebook_var = varmap
        .data()
        .lock()
        .expect("varmap lock")
        .get("codebook")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("VQ-VAE has no codebook variable"))?;
    let mut used = vec![false; codes];
    let mut restarts = 0;
    let report = cx.fit_rolls(varmap, 13, |batch, step, rng| {
        let x = rows(&r.train, batch)?;
        if step % 50 == 0 && step < steps * 3 / 4 {
            if step == 0 {
                used.fill(false);
            }
            restarts += restart_dead_codes(&codebook_var, &used, &vq.latents(&x)?, rng)?;
            used.fill(false);
        }
        let parts = vq.loss(&x)?;
        for c in parts.codes.flatten_all()?.to_vec1::<u32>()? {
            used[c as usize] = true;
        }
        parts.reconstruction + parts.vq
    })?;
    Ok((report, restarts))
}

/// Train the prior, an LSTM with attention over `Bos` + code sequences.
fn fit_prior(
    cx: &Context<'_>,
    train_codes: &[Vec<u32>],
    codes: usize,
) -> Result<(Box<dyn LanguageModel>, VarMap, FitReport)> {
    let p = cx.preset;
    let prior_config = ModelConfig {
        architecture: Architecture::LstmAttention,
        vocab_size: codes + 1,
        dim: p.width,
        n_layers: 1,
        n_heads: 4,
        n_kv_heads: 4,
        hidden_dim: p.width,
        context: CODES,
        dropout: 0.0,
        ..ModelConfig::preset("tiny")?
    };
    let prior_vars = VarMap::new();
    let prior = crate::model::build(
        &prior_config,
        VarBuilder::from_varmap(&prior_vars, DType::F32, cx.device),
    )?;
    let bos = codes as u16;
    let sequences: Vec<Vec<u16>> = train_codes
        .iter()
        .map(|c| {
            std::iter::once(bos)
                .chain(c.iter().map(|&x| x as u16))
                .collect()
        })
        .collect();
    let report = fit(
        &prior_vars,
        sequences.len(),
        cx.fit_options(p.roll_steps, 17),
        |batch, step, _| {
            let chosen: Vec<Vec<u16>> = batch.iter().map(|&i| sequences[i].clone()).collect();
            let x: Vec<Vec<u16>> = chosen.iter().map(|s| s[..CODES].to_vec()).collect();
            let y: Vec<Vec<u16>> = chosen.iter().map(|s| s[1..].to_vec()).collect();
            prior.loss(
                &ids_tensor(&x, cx.device)?,
                &ids_tensor(&y, cx.device)?,
                Mode::Train { seed: step as u64 },
            )
        },
    )?;
    Ok((prior, prior_vars, report))
}

impl Family for VqVaeFamily {
    fn name(&self) -> &'static str {
        "vq-vae"
    }

    fn describe(&self) -> &'static str {
        "VQ-VAE"
    }

    fn train(&mut self, cx: &Context<'_>) -> Result<Trained> {
        let r = cx.rolls()?;
        let varmap = VarMap::new();
        let config = VqConfig {
            hidden: cx.preset.width,
            ..CONFIG
        };
        let vq = VqVae::new(
            config,
            VarBuilder::from_varmap(&varmap, DType::F32, cx.device),
        )?;
        let (report, restarts) = fit_vq(cx, r, &vq, &varmap, config.codes)?;
        let train_codes = codes_of(&vq, &r.train, r.train_segments.len())?;
        let (prior, prior_vars, prior_fit) = fit_prior(cx, &train_codes, config.codes)?;
        let mut trained = Trained::of_fit(count(&varmap) + count(&prior_vars), &report);
        trained.seconds += prior_fit.seconds;
        self.model = Some(Model {
            vq,
            config,
            prior,
            prior_fit,
            restarts,
        });
        Ok(trained)
    }

    fn nll(&mut self, cx: &Context<'_>) -> Result<Nll> {
        let r = cx.rolls()?;
        let m = trained(&mut self.model)?;
        let valid_codes = codes_of(&m.vq, &r.valid, r.valid_segments.len())?;
        let flat: Vec<u32> = valid_codes.iter().flatten().copied().collect();
        self.usage = codebook_usage(&flat, m.config.codes);
        let mut rec = 0.0;
        for chunk in r.valid_chunks(32) {
            let parts = m.vq.loss(&rows(&r.valid, &chunk)?)?;
            rec += f64::from(parts.reconstruction.to_scalar::<f32>()?) * chunk.len() as f64;
        }
        rec /= r.valid_segments.len().max(1) as f64;
        Ok(Nll::per_cell(rec, "nats per roll cell (reconstruction)"))
    }

    /// Four segments per piece: code sequences from the prior (codes only,
    /// no `Bos`), decoded and drawn cell by cell.
    fn sample(&mut self, cx: &Context<'_>) -> Result<Samples> {
        let m = trained(&mut self.model)?;
        let bos = m.config.codes as u16;
        let mut sampler = Sampler::new(
            SamplerConfig {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
            },
            23,
        );
        let mut roll_rng = ChaCha8Rng::seed_from_u64(23);
        let mut pieces = Vec::new();
        for _ in 0..cx.preset.samples {
            let mut all = Vec::new();
            for _ in 0..4 {
                let mut seq = vec![bos];
                for _ in 0..CODES {
                    let logits = m
                        .prior
                        .logits(&ids_tensor(&[seq.clone()], cx.device)?, Mode::Eval)?;
                    let mut last = logits.squeeze(0)?.get(seq.len() - 1)?.to_vec1::<f32>()?;
                    last[usize::from(bos)] = f32::NEG_INFINITY; // codes only
                    let mut order = vec![0u16; last.len()];
                    seq.push(sampler.sample(&mut last, &mut order));
                }
                all.push(seq[1..].iter().map(|&c| u32::from(c)).collect::<Vec<u32>>());
            }
            let codes = Tensor::from_vec(all.concat(), (4, CODES), cx.device)?;
            let probs = candle_nn::ops::sigmoid(&m.vq.decode_codes(&codes)?)?;
            pieces.push(rolls_to_piece(&crate::study::vae::bernoulli(
                &probs,
                &mut roll_rng,
            )?)?);
        }
        Ok(Samples::of(pieces))
    }

    fn notes(&self) -> serde_json::Value {
        let Some(m) = &self.model else {
            return serde_json::Value::Null;
        };
        serde_json::json!({
            "codebook_size": m.config.codes,
            "codebook_used": self.usage.0,
            "codebook_perplexity": self.usage.1,
            "prior_final_loss": m.prior_fit.final_loss,
            "dead_code_restarts": m.restarts,
        })
    }
}
