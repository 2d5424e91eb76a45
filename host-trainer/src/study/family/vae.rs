//! The recurrent VAE over two-bar piano rolls, with a GRU or an MLP decoder.

use anyhow::Result;
use candle_core::DType;
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{count, trained, Context, Family, Nll, Samples, Trained};
use crate::study::fit::rows;
use crate::study::roll::rolls_to_piece;
use crate::study::vae::{DecoderKind, Vae, VaeConfig};

/// The recurrent VAE family.
pub struct VaeFamily {
    kind: DecoderKind,
    model: Option<(Vae, VaeConfig)>,
    /// Draws the validation latents, then the samples.
    rng: ChaCha8Rng,
    /// KL per latent dimension and reconstruction NLL per segment, on the
    /// validation segments.
    kl: Vec<f64>,
    reconstruction: f64,
}

impl VaeFamily {
    /// With a GRU or an MLP decoder.
    pub fn new(kind: DecoderKind) -> Self {
        VaeFamily {
            kind,
            model: None,
            rng: ChaCha8Rng::seed_from_u64(5),
            kl: Vec::new(),
            reconstruction: 0.0,
        }
    }
}

impl Family for VaeFamily {
    fn name(&self) -> &'static str {
        match self.kind {
            DecoderKind::Gru => "vae-gru-decoder",
            DecoderKind::Mlp => "vae-mlp-decoder",
        }
    }

    fn describe(&self) -> &'static str {
        match self.kind {
            DecoderKind::Gru => "recurrent VAE (vae-gru-decoder)",
            DecoderKind::Mlp => "recurrent VAE (vae-mlp-decoder)",
        }
    }

    fn train(&mut self, cx: &Context<'_>) -> Result<Trained> {
        let (p, r) = (cx.preset, cx.rolls()?);
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, cx.device);
        let config = VaeConfig {
            latent: 16,
            hidden: p.width,
            decoder: self.kind,
            warmup_steps: p.roll_steps / 2,
            free_bits: 0.05,
        };
        let vae = Vae::new(config, vb)?;
        let report = cx.fit_rolls(&varmap, 11, |batch, step, rng| {
            let x = rows(&r.train, batch)?;
            vae.objective(&vae.loss(&x, rng)?, step)
        })?;
        self.model = Some((vae, config));
        Ok(Trained::of_fit(count(&varmap), &report))
    }

    fn nll(&mut self, cx: &Context<'_>) -> Result<Nll> {
        let r = cx.rolls()?;
        let (vae, config) = trained(&mut self.model)?;
        let (mut rec, mut kl, mut n) = (0.0, vec![0.0f64; config.latent], 0usize);
        for chunk in r.valid_chunks(32) {
            let parts = vae.loss(&rows(&r.valid, &chunk)?, &mut self.rng)?;
            rec += f64::from(parts.reconstruction.to_scalar::<f32>()?) * chunk.len() as f64;
            for (k, v) in kl.iter_mut().zip(parts.kl_per_dim.to_vec1::<f32>()?) {
                *k += f64::from(v) * chunk.len() as f64;
            }
            n += chunk.len();
        }
        kl.iter_mut().for_each(|k| *k /= n.max(1) as f64);
        self.reconstruction = rec / n.max(1) as f64;
        let bound = self.reconstruction + kl.iter().sum::<f64>();
        self.kl = kl;
        Ok(Nll::per_cell(bound, "nats per roll cell (−ELBO bound)"))
    }

    fn sample(&mut self, cx: &Context<'_>) -> Result<Samples> {
        let (vae, _) = trained(&mut self.model)?;
        let pieces = (0..cx.preset.samples)
            .map(|_| rolls_to_piece(&vae.sample(4, &mut self.rng, cx.device)?))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Samples::of(pieces))
    }

    fn notes(&self) -> serde_json::Value {
        let active = self.kl.iter().filter(|&&k| k > 0.01).count();
        serde_json::json!({
            "kl_per_dim": self.kl,
            "active_dims": active,
            "latent_dims": self.model.as_ref().map_or(0, |(_, c)| c.latent),
            "posterior_collapsed": active == 0,
            "reconstruction_nats_per_segment": self.reconstruction,
        })
    }
}
