//! A convolutional denoiser over piano-roll segments with a DDPM schedule.

use anyhow::Result;
use candle_core::DType;
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{count, trained, Context, Family, Samples, Trained};
use crate::study::diffusion::{Denoiser, DiffusionConfig};
use crate::study::fit::{rows, FitReport};
use crate::study::roll::{rolls_to_piece, STEPS};

/// The diffusion family (untrained by default).
#[derive(Default)]
pub struct DiffusionFamily {
    model: Option<(Denoiser, DiffusionConfig, FitReport)>,
}

impl Family for DiffusionFamily {
    fn name(&self) -> &'static str {
        "diffusion-ddpm"
    }

    fn describe(&self) -> &'static str {
        "diffusion"
    }

    fn train(&mut self, cx: &Context<'_>) -> Result<Trained> {
        let r = cx.rolls()?;
        let varmap = VarMap::new();
        let config = DiffusionConfig {
            hidden: cx.preset.width,
            timesteps: cx.preset.timesteps,
        };
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, cx.device);
        let model = Denoiser::new(config, vb)?;
        let report = cx.fit_rolls(&varmap, 31, |batch, _, rng| {
            model.loss(&rows(&r.train, batch)?, rng)
        })?;
        self.model = Some((model, config, report));
        Ok(Trained::of_fit(count(&varmap), &report))
    }

    fn sample(&mut self, cx: &Context<'_>) -> Result<Samples> {
        let (model, _, _) = trained(&mut self.model)?;
        let mut rng = ChaCha8Rng::seed_from_u64(37);
        let pieces = (0..cx.preset.samples)
            .map(|_| rolls_to_piece(&model.sample(4, STEPS, &mut rng, cx.device)?))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Samples::of(pieces))
    }

    fn notes(&self) -> serde_json::Value {
        match &self.model {
            Some((_, config, report)) => {
                serde_json::json!({ "final_noise_mse": report.final_loss, "timesteps": config.timesteps })
            }
            None => serde_json::Value::Null,
        }
    }
}
