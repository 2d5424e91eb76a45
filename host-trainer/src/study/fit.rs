//! The study's training helper for the non-token families: AdamW with
//! warm-up and cosine decay and gradient clipping (the trainer's own
//! optimizer), seeded mini-batches, timing.

use std::time::Instant;

use candle_core::{Device, Result, Tensor};
use candle_nn::VarMap;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::Distribution;

use crate::optimizer::{learning_rate, AdamW};

/// How long and how fast to train.
#[derive(Clone, Copy, Debug)]
pub struct FitOptions {
    /// Optimizer steps.
    pub steps: usize,
    /// Items per batch.
    pub batch: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Seed of batch order and noise.
    pub seed: u64,
}

/// What training took.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct FitReport {
    /// Steps taken.
    pub steps: usize,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Training items (segments or tokens) per second.
    pub items_per_s: f64,
    /// Mean loss over the last tenth of training.
    pub final_loss: f64,
}

/// Seeded batches of item indices, epoch after epoch.
pub struct Batches {
    order: Vec<usize>,
    next: usize,
    rng: ChaCha8Rng,
}

impl Batches {
    /// Batches over `n` items.
    pub fn new(n: usize, seed: u64) -> Self {
        let mut b = Batches {
            order: (0..n).collect(),
            next: n,
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        b.next = b.order.len();
        b
    }

    /// The next `size` indices.
    pub fn take(&mut self, size: usize) -> Vec<usize> {
        (0..size)
            .map(|_| {
                if self.next >= self.order.len() {
                    self.order.shuffle(&mut self.rng);
                    self.next = 0;
                }
                self.next += 1;
                self.order[self.next - 1]
            })
            .collect()
    }
}

/// Standard normal noise from a seeded generator (candle's CPU generator
/// cannot be seeded).
pub fn normal(shape: &[usize], rng: &mut ChaCha8Rng, device: &Device) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let dist = rand_distr::StandardNormal;
    let values: Vec<f32> = (0..n).map(|_| dist.sample(rng)).collect();
    Tensor::from_vec(values, shape, &Device::Cpu)?.to_device(device)
}

/// Uniform [0, 1) noise from a seeded generator.
pub fn uniform(shape: &[usize], rng: &mut ChaCha8Rng, device: &Device) -> Result<Tensor> {
    use rand::Rng;
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
    Tensor::from_vec(values, shape, &Device::Cpu)?.to_device(device)
}

/// Rows `indices` of `data` (first dimension).
pub fn rows(data: &Tensor, indices: &[usize]) -> Result<Tensor> {
    let idx = Tensor::from_vec(
        indices.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        indices.len(),
        data.device(),
    )?;
    data.index_select(&idx, 0)
}

/// Minimise `loss(batch, step, rng)` over the variables of `varmap`.
pub fn fit(
    varmap: &VarMap,
    items: usize,
    options: FitOptions,
    mut loss: impl FnMut(&[usize], usize, &mut ChaCha8Rng) -> Result<Tensor>,
) -> anyhow::Result<FitReport> {
    let vars: Vec<(String, candle_core::Var)> = {
        let data = varmap.data().lock().expect("varmap lock");
        data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let mut optimizer = AdamW::new(vars, 0.01)?;
    let mut batches = Batches::new(items, options.seed);
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x5EED);
    let start = Instant::now();
    let mut recent = Vec::new();
    for step in 0..options.steps {
        let batch = batches.take(options.batch);
        let l = loss(&batch, step, &mut rng)?;
        let value = f64::from(l.to_scalar::<f32>()?);
        if !value.is_finite() {
            anyhow::bail!("training diverged at step {step} (loss {value})");
        }
        let mut grads = Vec::new();
        optimizer.accumulate(&mut grads, &l.backward()?)?;
        let norm = AdamW::grad_norm(&grads)?;
        let scale = if norm > 1.0 { 1.0 / norm } else { 1.0 };
        let warmup = (options.steps / 20).max(1);
        let lr = learning_rate(
            step,
            warmup,
            options.steps,
            options.learning_rate,
            options.learning_rate / 10.0,
        );
        optimizer.step(&grads, lr, scale)?;
        if step >= options.steps - options.steps.div_ceil(10) {
            recent.push(value);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(FitReport {
        steps: options.steps,
        seconds,
        items_per_s: (options.steps * options.batch) as f64 / seconds.max(1e-9),
        final_loss: recent.iter().sum::<f64>() / recent.len().max(1) as f64,
    })
}
