//! Recurrent VAE over two-bar piano-roll segments.
//!
//! Encoder: a 1-D convolution over time, then a bidirectional GRU whose final
//! states give the posterior mean and log-variance. Decoder, two kinds:
//!
//! * `Gru` — autoregressive: at each step it sees the latent and the
//!   previous roll step (teacher forcing). Strong enough to ignore the
//!   latent: the setting in which recurrent VAEs' posteriors collapse.
//! * `Mlp` — non-recurrent: the whole segment from the latent alone, the
//!   documented fix for collapse (the decoder has nothing else to go on).
//!
//! Training uses KL warm-up (β from 0 to 1) and free bits (each latent
//! dimension's KL counts at least `free_bits` nats), and reports the KL per
//! dimension on validation data: dimensions under 0.01 nats are collapsed.

use candle_core::{Result, Tensor, D};
use candle_nn::rnn::{GRUConfig, RNN};
use candle_nn::{Module, VarBuilder};
use rand_chacha::ChaCha8Rng;

use super::fit::normal;
use super::roll::{PITCHES, STEPS};
use super::time_conv::TimeConv;

/// Which decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    /// Autoregressive GRU (collapse-prone).
    Gru,
    /// Non-recurrent MLP.
    Mlp,
}

/// Sizes.
#[derive(Clone, Copy, Debug)]
pub struct VaeConfig {
    /// Latent dimensions.
    pub latent: usize,
    /// Encoder/decoder width.
    pub hidden: usize,
    /// Decoder kind.
    pub decoder: DecoderKind,
    /// Steps over which β rises from 0 to 1.
    pub warmup_steps: usize,
    /// Minimum KL per latent dimension (nats).
    pub free_bits: f64,
}

/// GRU states as `[B, T, H]` (candle's `GRU::states_to_tensor` concatenates
/// them along one axis instead).
pub fn stack_states(states: &[candle_nn::rnn::GRUState]) -> Result<Tensor> {
    let h: Vec<Tensor> = states.iter().map(|s| s.h().clone()).collect();
    Tensor::stack(&h, 1)
}

/// Convolution + bidirectional GRU encoder to a sequence of features.
pub struct SegmentEncoder {
    conv: TimeConv,
    forward_gru: candle_nn::GRU,
    backward_gru: candle_nn::GRU,
}

impl SegmentEncoder {
    /// An encoder of width `hidden`.
    pub fn new(hidden: usize, vb: VarBuilder) -> Result<Self> {
        let conv = TimeConv::new(PITCHES, hidden, 3, vb.pp("conv"))?;
        Ok(SegmentEncoder {
            conv,
            forward_gru: candle_nn::gru(
                hidden,
                hidden,
                GRUConfig::default(),
                vb.pp("gru_forward"),
            )?,
            backward_gru: candle_nn::gru(
                hidden,
                hidden,
                GRUConfig::default(),
                vb.pp("gru_backward"),
            )?,
        })
    }

    /// Per-step features `[B, T, 2·hidden]` of rolls `[B, T, P]`.
    pub fn forward(&self, rolls: &Tensor) -> Result<Tensor> {
        let h = self.conv.forward(rolls)?.relu()?.contiguous()?;
        let t = h.dim(1)?;
        let reverse = Tensor::from_vec((0..t as u32).rev().collect::<Vec<u32>>(), t, h.device())?;
        let fwd = stack_states(&self.forward_gru.seq(&h)?)?;
        let bwd_rev = stack_states(&self.backward_gru.seq(&h.index_select(&reverse, 1)?)?)?;
        let bwd = bwd_rev.index_select(&reverse, 1)?;
        Tensor::cat(&[fwd, bwd], D::Minus1)
    }
}

/// The VAE.
pub struct Vae {
    encoder: SegmentEncoder,
    mu: candle_nn::Linear,
    logvar: candle_nn::Linear,
    decoder: Decoder,
    config: VaeConfig,
}

enum Decoder {
    Gru {
        init: candle_nn::Linear,
        gru: candle_nn::GRU,
        out: candle_nn::Linear,
    },
    Mlp {
        hidden: candle_nn::Linear,
        out: candle_nn::Linear,
    },
}

/// Loss parts of a batch.
pub struct VaeLoss {
    /// Reconstruction (binary cross-entropy, nats per segment).
    pub reconstruction: Tensor,
    /// KL per latent dimension, averaged over the batch `[latent]`.
    pub kl_per_dim: Tensor,
}

impl Vae {
    /// Build the variables under `vb`.
    pub fn new(config: VaeConfig, vb: VarBuilder) -> Result<Self> {
        let h = config.hidden;
        let decoder = match config.decoder {
            DecoderKind::Gru => Decoder::Gru {
                init: candle_nn::linear(config.latent, h, vb.pp("dec.init"))?,
                gru: candle_nn::gru(
                    config.latent + PITCHES,
                    h,
                    GRUConfig::default(),
                    vb.pp("dec.gru"),
                )?,
                out: candle_nn::linear(h, PITCHES, vb.pp("dec.out"))?,
            },
            DecoderKind::Mlp => Decoder::Mlp {
                hidden: candle_nn::linear(config.latent, 2 * h, vb.pp("dec.hidden"))?,
                out: candle_nn::linear(2 * h, STEPS * PITCHES, vb.pp("dec.out"))?,
            },
        };
        Ok(Vae {
            encoder: SegmentEncoder::new(h, vb.pp("enc"))?,
            mu: candle_nn::linear(2 * h, config.latent, vb.pp("mu"))?,
            logvar: candle_nn::linear(2 * h, config.latent, vb.pp("logvar"))?,
            decoder,
            config,
        })
    }

    /// Posterior mean and log-variance of rolls `[B, T, P]`.
    pub fn encode(&self, rolls: &Tensor) -> Result<(Tensor, Tensor)> {
        let features = self.encoder.forward(rolls)?;
        let t = features.dim(1)?;
        let h = self.config.hidden;
        // Last forward state and first backward state summarise the segment.
        let summary = Tensor::cat(
            &[
                features.narrow(1, t - 1, 1)?.narrow(2, 0, h)?,
                features.narrow(1, 0, 1)?.narrow(2, h, h)?,
            ],
            D::Minus1,
        )?
        .squeeze(1)?;
        Ok((
            self.mu.forward(&summary)?,
            self.logvar.forward(&summary)?.clamp(-10.0, 10.0)?,
        ))
    }

    /// Logits `[B, T, P]` of rolls given latents `[B, latent]` (and, for the
    /// GRU decoder, the rolls it is teacher-forced on).
    pub fn decode(&self, z: &Tensor, teacher: &Tensor) -> Result<Tensor> {
        match &self.decoder {
            Decoder::Mlp { hidden, out } => {
                let b = z.dim(0)?;
                out.forward(&hidden.forward(z)?.relu()?)?
                    .reshape((b, STEPS, PITCHES))
            }
            Decoder::Gru { init, gru, out } => {
                let (b, t, p) = teacher.dims3()?;
                let previous = Tensor::cat(
                    &[
                        Tensor::zeros((b, 1, p), teacher.dtype(), teacher.device())?,
                        teacher.narrow(1, 0, t - 1)?,
                    ],
                    1,
                )?;
                let zs = z.unsqueeze(1)?.expand((b, t, self.config.latent))?;
                let input = Tensor::cat(&[zs, previous], D::Minus1)?.contiguous()?;
                let state = candle_nn::rnn::GRUState {
                    h: init.forward(z)?.tanh()?,
                };
                let states = gru.seq_init(&input, &state)?;
                out.forward(&stack_states(&states)?)
            }
        }
    }

    /// Reconstruction and KL of a batch (with a sampled latent).
    pub fn loss(&self, rolls: &Tensor, rng: &mut ChaCha8Rng) -> Result<VaeLoss> {
        let (mu, logvar) = self.encode(rolls)?;
        let eps = normal(mu.dims(), rng, mu.device())?;
        let z = (&mu + (eps * (&logvar * 0.5)?.exp()?)?)?;
        let logits = self.decode(&z, rolls)?;
        let reconstruction = bce_with_logits(&logits, rolls)?.sum((1, 2))?.mean(0)?;
        let kl = ((((mu.sqr()? + logvar.exp()?)? - 1.0)? - &logvar)? * 0.5)?;
        Ok(VaeLoss {
            reconstruction,
            kl_per_dim: kl.mean(0)?,
        })
    }

    /// The training objective at `step`: reconstruction + β·Σ max(KL_d, free bits).
    pub fn objective(&self, parts: &VaeLoss, step: usize) -> Result<Tensor> {
        let beta = ((step + 1) as f64 / self.config.warmup_steps.max(1) as f64).min(1.0);
        let kl = parts
            .kl_per_dim
            .clamp(self.config.free_bits, f64::INFINITY)?
            .sum_all()?;
        parts.reconstruction.clone() + (kl * beta)?
    }

    /// Sample segments: `[n, T, P]` of 0/1.
    pub fn sample(
        &self,
        n: usize,
        rng: &mut ChaCha8Rng,
        device: &candle_core::Device,
    ) -> Result<Tensor> {
        let z = normal(&[n, self.config.latent], rng, device)?;
        match &self.decoder {
            Decoder::Mlp { .. } => {
                let probs = candle_nn::ops::sigmoid(&self.decode(
                    &z,
                    &Tensor::zeros((n, STEPS, PITCHES), candle_core::DType::F32, device)?,
                )?)?;
                bernoulli(&probs, rng)
            }
            Decoder::Gru { init, gru, out } => {
                let mut state = candle_nn::rnn::GRUState {
                    h: init.forward(&z)?.tanh()?,
                };
                let mut previous = Tensor::zeros((n, PITCHES), candle_core::DType::F32, device)?;
                let mut steps = Vec::with_capacity(STEPS);
                for _ in 0..STEPS {
                    let input = Tensor::cat(&[&z, &previous], D::Minus1)?;
                    state = gru.step(&input, &state)?;
                    let probs = candle_nn::ops::sigmoid(&out.forward(state.h())?)?;
                    previous = bernoulli(&probs, rng)?;
                    steps.push(previous.unsqueeze(1)?);
                }
                Tensor::cat(&steps, 1)
            }
        }
    }
}

/// Binary cross-entropy of logits against 0/1 targets, elementwise.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    // max(x, 0) − x·y + log(1 + e^(−|x|)), stable for any x.
    let relu = logits.relu()?;
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (relu - (logits * targets)?)? + softplus
}

/// Sample 0/1 cells with the given probabilities.
pub fn bernoulli(probs: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let u = super::fit::uniform(probs.dims(), rng, probs.device())?;
    u.lt(probs)?.to_dtype(candle_core::DType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use rand::SeedableRng;

    #[test]
    fn shapes_and_sampling() {
        for decoder in [DecoderKind::Gru, DecoderKind::Mlp] {
            let varmap = candle_nn::VarMap::new();
            let config = VaeConfig {
                latent: 4,
                hidden: 8,
                decoder,
                warmup_steps: 10,
                free_bits: 0.1,
            };
            let vae = Vae::new(
                config,
                VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
            )
            .unwrap();
            let x = Tensor::zeros((3, STEPS, PITCHES), DType::F32, &Device::Cpu).unwrap();
            let features = vae.encoder.forward(&x).unwrap();
            assert_eq!(features.dims(), &[3, STEPS, 16]);
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let parts = vae.loss(&x, &mut rng).unwrap();
            assert_eq!(parts.kl_per_dim.dims(), &[4]);
            let sample = vae.sample(2, &mut rng, &Device::Cpu).unwrap();
            assert_eq!(sample.dims(), &[2, STEPS, PITCHES]);
        }
    }
}
