//! MuseGAN's hybrid generator (shared + per-track latents) against a critic
//! over four-track (SATB) two-bar rolls, WGAN-GP.

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{count, trained, Context, Family, Samples, Trained};
use crate::study::fit::FitReport;
use crate::study::gan::{self, GanConfig, Generator};
use crate::study::roll::{tracks_tensor, tracks_to_piece};

/// The GAN family (untrained by default).
#[derive(Default)]
pub struct GanFamily {
    model: Option<(Generator, FitReport)>,
}

impl Family for GanFamily {
    fn name(&self) -> &'static str {
        "musegan-wgan-gp"
    }

    fn describe(&self) -> &'static str {
        "MuseGAN-style WGAN-GP"
    }

    fn train(&mut self, cx: &Context<'_>) -> Result<Trained> {
        let p = cx.preset;
        let tracks = tracks_tensor(&cx.rolls()?.train_segments, cx.device)?;
        let config = GanConfig {
            z_shared: 32,
            z_track: 16,
            hidden: 2 * p.width,
            critic_steps: 5,
            penalty: 10.0,
        };
        let (generator, g_vars, report) =
            gan::train(config, &tracks, p.gan_steps, p.batch, 1e-3, 19)?;
        self.model = Some((generator, report));
        // The generator's parameters: the critic is a training device.
        Ok(Trained::of_fit(count(&g_vars), &report))
    }

    fn sample(&mut self, cx: &Context<'_>) -> Result<Samples> {
        let (generator, _) = trained(&mut self.model)?;
        let mut rng = ChaCha8Rng::seed_from_u64(29);
        let pieces = (0..cx.preset.samples)
            .map(|_| tracks_to_piece(&generator.sample(4, &mut rng, cx.device)?, 0.5))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Samples::of(pieces))
    }

    fn notes(&self) -> serde_json::Value {
        match &self.model {
            Some((_, report)) => {
                serde_json::json!({ "critic_wasserstein_estimate": report.final_loss, "parameters_counted": "generator" })
            }
            None => serde_json::Value::Null,
        }
    }
}
