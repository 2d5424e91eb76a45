//! A small denoising diffusion model (DDPM, Ho et al. 2020) over two-bar
//! piano-roll segments, for completeness.
//!
//! Rolls are mapped to {−1, 1}; a linear β schedule over `timesteps` steps
//! noises them; a convolutional denoiser conditioned on a sinusoidal
//! timestep embedding predicts the noise (ε-prediction, mean-squared error).
//! Sampling runs the ancestral chain from pure noise and thresholds at 0.

use candle_core::{Device, Result, Tensor};
use candle_nn::{Module, VarBuilder};
use rand_chacha::ChaCha8Rng;

use super::fit::normal;
use super::roll::PITCHES;
use super::time_conv::TimeConv;

/// Sizes and schedule.
#[derive(Clone, Copy, Debug)]
pub struct DiffusionConfig {
    /// Denoiser width.
    pub hidden: usize,
    /// Diffusion steps.
    pub timesteps: usize,
}

/// The noise schedule.
pub struct Schedule {
    betas: Vec<f64>,
    alpha_bars: Vec<f64>,
}

impl Schedule {
    /// Linear β from 1e-4 to 0.02 (rescaled to the number of steps).
    pub fn linear(steps: usize) -> Self {
        let scale = 1000.0 / steps as f64;
        let (lo, hi) = (1e-4 * scale, (0.02 * scale).min(0.5));
        let betas: Vec<f64> = (0..steps)
            .map(|i| lo + (hi - lo) * i as f64 / (steps.max(2) - 1) as f64)
            .collect();
        let mut product = 1.0;
        let alpha_bars = betas
            .iter()
            .map(|b| {
                product *= 1.0 - b;
                product
            })
            .collect();
        Schedule { betas, alpha_bars }
    }
}

/// The denoiser.
pub struct Denoiser {
    time: candle_nn::Linear,
    conv_in: TimeConv,
    conv_mid: TimeConv,
    conv_out: TimeConv,
    skip: Tensor,
    config: DiffusionConfig,
    schedule: Schedule,
}

const TIME_FEATURES: usize = 32;

fn timestep_features(t: &[usize], device: &Device) -> Result<Tensor> {
    let mut data = Vec::with_capacity(t.len() * TIME_FEATURES);
    for &step in t {
        for i in 0..TIME_FEATURES / 2 {
            let freq = (-(i as f64) * (10_000f64).ln() / (TIME_FEATURES / 2) as f64).exp();
            data.push((step as f64 * freq).sin() as f32);
            data.push((step as f64 * freq).cos() as f32);
        }
    }
    Tensor::from_vec(data, (t.len(), TIME_FEATURES), device)
}

impl Denoiser {
    /// Build the variables under `vb`.
    pub fn new(config: DiffusionConfig, vb: VarBuilder) -> Result<Self> {
        let h = config.hidden;
        let conv = |i, o, vb| TimeConv::new(i, o, 3, vb);
        Ok(Denoiser {
            time: candle_nn::linear(TIME_FEATURES, h, vb.pp("time"))?,
            conv_in: conv(PITCHES, h, vb.pp("conv_in"))?,
            conv_mid: conv(h, h, vb.pp("conv_mid"))?,
            conv_out: conv(h, PITCHES, vb.pp("conv_out"))?,
            // A scaled copy of the input: at high noise the best prediction
            // of the noise is nearly the input itself.
            skip: vb.get_with_hints(1, "skip", candle_nn::Init::Const(1.0))?,
            config,
            schedule: Schedule::linear(config.timesteps),
        })
    }

    /// Predicted noise `[B, T, P]` of noisy rolls `[B, T, P]` at steps `t`.
    fn predict(&self, x: &Tensor, t: &[usize]) -> Result<Tensor> {
        let temb = self
            .time
            .forward(&timestep_features(t, x.device())?)?
            .unsqueeze(1)?; // [B, 1, H]
        let h = self.conv_in.forward(x)?;
        let h = (h.broadcast_add(&temb)?).relu()?;
        let h = (self.conv_mid.forward(&h)? + &h)?.relu()?;
        self.conv_out.forward(&h)? + x.broadcast_mul(&self.skip)?
    }

    /// The training loss of rolls `[B, T, P]` (0/1): noise at random steps, predict it.
    pub fn loss(&self, rolls: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        use rand::Rng;
        let b = rolls.dim(0)?;
        let x0 = ((rolls * 2.0)? - 1.0)?;
        let t: Vec<usize> = (0..b)
            .map(|_| rng.random_range(0..self.config.timesteps))
            .collect();
        let (a, s): (Vec<f32>, Vec<f32>) = t
            .iter()
            .map(|&i| {
                let ab = self.schedule.alpha_bars[i];
                (ab.sqrt() as f32, (1.0 - ab).sqrt() as f32)
            })
            .unzip();
        let a = Tensor::from_vec(a, (b, 1, 1), rolls.device())?;
        let s = Tensor::from_vec(s, (b, 1, 1), rolls.device())?;
        let noise = normal(rolls.dims(), rng, rolls.device())?;
        let noisy = (x0.broadcast_mul(&a)? + noise.broadcast_mul(&s)?)?;
        (self.predict(&noisy, &t)? - noise)?.sqr()?.mean_all()
    }

    /// Sample `n` rolls `[n, steps, P]` of 0/1 by the ancestral chain.
    pub fn sample(
        &self,
        n: usize,
        steps: usize,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Result<Tensor> {
        let mut x = normal(&[n, steps, PITCHES], rng, device)?;
        for t in (0..self.config.timesteps).rev() {
            let beta = self.schedule.betas[t];
            let alpha_bar = self.schedule.alpha_bars[t];
            let eps = self.predict(&x, &vec![t; n])?;
            let mean = ((&x - (eps * (beta / (1.0 - alpha_bar).sqrt()))?)? / (1.0 - beta).sqrt())?;
            x = if t > 0 {
                (mean + (normal(&[n, steps, PITCHES], rng, device)? * beta.sqrt())?)?
            } else {
                mean
            };
        }
        x.gt(0.0)?.to_dtype(candle_core::DType::F32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::fit::{fit, rows, FitOptions};
    use candle_core::DType;
    use candle_nn::VarMap;
    use rand::SeedableRng;

    #[test]
    fn learns_to_predict_the_noise() {
        let device = Device::Cpu;
        // Sparse random rolls, like chorales: a few notes per step.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let data = super::super::fit::uniform(&[64, 32, PITCHES], &mut rng, &device)
            .unwrap()
            .lt(0.06)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let varmap = VarMap::new();
        let model = Denoiser::new(
            DiffusionConfig {
                hidden: 32,
                timesteps: 50,
            },
            VarBuilder::from_varmap(&varmap, DType::F32, &device),
        )
        .unwrap();
        let options = FitOptions {
            steps: 200,
            batch: 16,
            learning_rate: 5e-3,
            seed: 1,
        };
        let report = fit(&varmap, 64, options, |batch, _, rng| {
            model.loss(&rows(&data, batch)?, rng)
        })
        .unwrap();
        assert!(report.final_loss < 0.5, "noise MSE {}", report.final_loss);
    }
}
