//! A MuseGAN-style GAN (Dong et al. 2018) over four-track (SATB) two-bar
//! piano rolls of the JSB chorales, `[tracks, 2 bars × 16 steps, pitches]`,
//! trained as a WGAN-GP (Gulrajani et al. 2017).
//!
//! The generator is MuseGAN's *hybrid* model: a shared latent drives a
//! shared trunk (what the voices have in common: harmony, rhythm) and each
//! track adds its own latent through a private head. The critic encodes each
//! track with shared weights, then judges the four together.
//!
//! The gradient penalty needs the gradient of the critic with respect to its
//! input to stay differentiable: candle keeps it so when
//! `CANDLE_GRAD_DO_NOT_DETACH` is set for the training thread (see [`train`]).

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{Module, VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::fit::{normal, rows, uniform, Batches, FitReport};
use super::roll::{PITCHES, STEPS, TRACKS};
use crate::optimizer::AdamW;

/// Sizes and training settings.
#[derive(Clone, Copy, Debug)]
pub struct GanConfig {
    /// Shared latent width.
    pub z_shared: usize,
    /// Per-track latent width.
    pub z_track: usize,
    /// Hidden width of generator and critic.
    pub hidden: usize,
    /// Critic updates per generator update.
    pub critic_steps: usize,
    /// Weight of the gradient penalty.
    pub penalty: f64,
}

fn leaky(x: &Tensor) -> Result<Tensor> {
    x.maximum(&(x * 0.2)?)
}

/// The generator.
pub struct Generator {
    shared: candle_nn::Linear,
    tracks: Vec<(candle_nn::Linear, candle_nn::Linear)>,
    config: GanConfig,
}

impl Generator {
    fn new(config: GanConfig, vb: VarBuilder) -> Result<Self> {
        let h = config.hidden;
        let tracks = (0..TRACKS)
            .map(|k| {
                let vb = vb.pp(format!("track{k}"));
                Ok((
                    candle_nn::linear(h + config.z_track, h, vb.pp("hidden"))?,
                    candle_nn::linear(h, STEPS * PITCHES, vb.pp("out"))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Generator {
            shared: candle_nn::linear(config.z_shared, h, vb.pp("shared"))?,
            tracks,
            config,
        })
    }

    /// Probabilities `[B, TRACKS, STEPS, PITCHES]` for latents.
    fn forward(&self, z_shared: &Tensor, z_tracks: &Tensor) -> Result<Tensor> {
        let b = z_shared.dim(0)?;
        let trunk = leaky(&self.shared.forward(z_shared)?)?;
        let tracks = self
            .tracks
            .iter()
            .enumerate()
            .map(|(k, (hidden, out))| {
                let zk = z_tracks.narrow(1, k, 1)?.squeeze(1)?;
                let h = leaky(&hidden.forward(&Tensor::cat(&[&trunk, &zk], 1)?)?)?;
                candle_nn::ops::sigmoid(&out.forward(&h)?)?.reshape((b, 1, STEPS, PITCHES))
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&tracks, 1)
    }

    /// Sample `n` four-track segments (probabilities).
    pub fn sample(&self, n: usize, rng: &mut ChaCha8Rng, device: &Device) -> Result<Tensor> {
        let zs = normal(&[n, self.config.z_shared], rng, device)?;
        let zt = normal(&[n, TRACKS, self.config.z_track], rng, device)?;
        self.forward(&zs, &zt)
    }
}

/// The critic.
struct Critic {
    track: candle_nn::Linear,
    joint: candle_nn::Linear,
    out: candle_nn::Linear,
}

impl Critic {
    fn new(config: GanConfig, vb: VarBuilder) -> Result<Self> {
        let h = config.hidden;
        Ok(Critic {
            track: candle_nn::linear(STEPS * PITCHES, h, vb.pp("track"))?,
            joint: candle_nn::linear(TRACKS * h, h, vb.pp("joint"))?,
            out: candle_nn::linear(h, 1, vb.pp("out"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b = x.dim(0)?;
        let per_track = leaky(
            &self
                .track
                .forward(&x.reshape((b, TRACKS, STEPS * PITCHES))?)?,
        )?;
        let joint = leaky(&self.joint.forward(&per_track.reshape((b, ()))?)?)?;
        self.out.forward(&joint)?.squeeze(1)
    }
}

fn vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().expect("varmap lock");
    data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Train on `data` (`[N, TRACKS, STEPS, PITCHES]`, 0/1) for `steps` generator
/// updates. Returns the generator, the final critic estimate of the
/// Wasserstein distance (as `final_loss`) and timing. Runs on its own
/// thread so that candle keeps gradients differentiable there only.
pub fn train(
    config: GanConfig,
    data: &Tensor,
    steps: usize,
    batch: usize,
    learning_rate: f64,
    seed: u64,
) -> anyhow::Result<(Generator, VarMap, FitReport)> {
    let data = data.clone();
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                // Read once per thread by candle: this thread keeps the
                // gradient graph (needed for the penalty's double backward).
                std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1");
                let result = train_here(config, &data, steps, batch, learning_rate, seed);
                std::env::remove_var("CANDLE_GRAD_DO_NOT_DETACH");
                result
            })
            .join()
            .map_err(|_| anyhow::anyhow!("GAN training thread panicked"))?
    })
}

fn train_here(
    config: GanConfig,
    data: &Tensor,
    steps: usize,
    batch: usize,
    learning_rate: f64,
    seed: u64,
) -> anyhow::Result<(Generator, VarMap, FitReport)> {
    let device = data.device().clone();
    let (g_vars, c_vars) = (VarMap::new(), VarMap::new());
    let generator = Generator::new(
        config,
        VarBuilder::from_varmap(&g_vars, DType::F32, &device),
    )?;
    let critic = Critic::new(
        config,
        VarBuilder::from_varmap(&c_vars, DType::F32, &device),
    )?;
    let mut g_opt = AdamW::new(vars(&g_vars), 0.0)?;
    let mut c_opt = AdamW::new(vars(&c_vars), 0.0)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut batches = Batches::new(data.dim(0)?, seed);
    let start = std::time::Instant::now();
    let mut distance = 0.0f64;
    for _ in 0..steps {
        for _ in 0..config.critic_steps {
            let real = rows(data, &batches.take(batch))?;
            let fake = generator.sample(batch, &mut rng, &device)?.detach();
            let eps = uniform(&[batch, 1, 1, 1], &mut rng, &device)?;
            let mixed = (real.broadcast_mul(&eps)? + fake.broadcast_mul(&(1.0 - &eps)?)?)?;
            let mixed = Var::from_tensor(&mixed.detach())?;
            let grad = critic
                .forward(mixed.as_tensor())?
                .sum_all()?
                .backward()?
                .get(mixed.as_tensor())
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no gradient for the penalty"))?;
            let norm = (grad.reshape((batch, ()))?.sqr()?.sum(1)? + 1e-12)?.sqrt()?;
            let penalty = (norm - 1.0)?.sqr()?.mean_all()?;
            let w = (critic.forward(&real)?.mean_all()? - critic.forward(&fake)?.mean_all()?)?;
            distance = f64::from(w.to_scalar::<f32>()?);
            let loss = ((penalty * config.penalty)? - w)?;
            let mut grads = Vec::new();
            c_opt.accumulate(&mut grads, &loss.backward()?)?;
            c_opt.step(&grads, learning_rate, 1.0)?;
        }
        let fake = generator.sample(batch, &mut rng, &device)?;
        let loss = critic.forward(&fake)?.mean_all()?.neg()?;
        let mut grads = Vec::new();
        g_opt.accumulate(&mut grads, &loss.backward()?)?;
        g_opt.step(&grads, learning_rate, 1.0)?;
        if !distance.is_finite() {
            anyhow::bail!("GAN training diverged");
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let report = FitReport {
        steps,
        seconds,
        items_per_s: (steps * batch * (config.critic_steps + 1)) as f64 / seconds.max(1e-9),
        final_loss: distance,
    };
    Ok((generator, g_vars, report))
}
