//! VQ-VAE over two-bar piano-roll segments (van den Oord et al. 2017).
//!
//! The same convolution + bidirectional GRU encoder as the VAE, pooled to
//! one latent vector per half bar; each vector snaps to its nearest codebook
//! entry (straight-through gradients, codebook and commitment losses); a GRU
//! decoder reads the codes back into a roll. A discrete bottleneck cannot
//! collapse the way a Gaussian posterior does. Codebook use (share of codes
//! used, perplexity of their distribution) is reported, and a small
//! autoregressive prior over code sequences (the study's LSTM) makes it a
//! generator.

use candle_core::{Result, Tensor, D};
use candle_nn::rnn::{GRUConfig, RNN};
use candle_nn::{Module, VarBuilder};

use super::roll::{PITCHES, STEPS};
use super::vae::{bce_with_logits, SegmentEncoder};

/// Roll steps per latent (a half bar).
pub const STEPS_PER_CODE: usize = 8;
/// Latents per segment.
pub const CODES: usize = STEPS / STEPS_PER_CODE;

/// Sizes.
#[derive(Clone, Copy, Debug)]
pub struct VqConfig {
    /// Codebook entries.
    pub codes: usize,
    /// Code vector width.
    pub dim: usize,
    /// Encoder/decoder width.
    pub hidden: usize,
    /// Weight of the commitment loss.
    pub commitment: f64,
}

/// The VQ-VAE.
pub struct VqVae {
    encoder: SegmentEncoder,
    project: candle_nn::Linear,
    codebook: Tensor,
    decoder: candle_nn::GRU,
    out: candle_nn::Linear,
    config: VqConfig,
}

/// Loss parts of a batch.
pub struct VqLoss {
    /// Reconstruction (binary cross-entropy, nats per segment).
    pub reconstruction: Tensor,
    /// Codebook + β·commitment.
    pub vq: Tensor,
    /// The codes chosen, `[B, CODES]`.
    pub codes: Tensor,
}

impl VqVae {
    /// Build the variables under `vb`.
    pub fn new(config: VqConfig, vb: VarBuilder) -> Result<Self> {
        let h = config.hidden;
        Ok(VqVae {
            encoder: SegmentEncoder::new(h, vb.pp("enc"))?,
            project: candle_nn::linear(2 * h, config.dim, vb.pp("project"))?,
            codebook: vb.get_with_hints(
                (config.codes, config.dim),
                "codebook",
                candle_nn::Init::Uniform {
                    lo: -1.0 / config.codes as f64,
                    up: 1.0 / config.codes as f64,
                },
            )?,
            decoder: candle_nn::gru(config.dim, h, GRUConfig::default(), vb.pp("dec.gru"))?,
            out: candle_nn::linear(h, PITCHES, vb.pp("dec.out"))?,
            config,
        })
    }

    /// Continuous latents `[B, CODES, dim]`.
    fn encode(&self, rolls: &Tensor) -> Result<Tensor> {
        let features = self.encoder.forward(rolls)?; // [B, T, 2h]
        let (b, t, f) = features.dims3()?;
        let pooled = features
            .reshape((b, t / STEPS_PER_CODE, STEPS_PER_CODE, f))?
            .mean(2)?;
        self.project.forward(&pooled)
    }

    /// Nearest codebook entry of each latent: indices `[B, CODES]`.
    pub fn quantize(&self, latents: &Tensor) -> Result<Tensor> {
        let (b, l, d) = latents.dims3()?;
        let flat = latents.reshape((b * l, d))?;
        let distances = (flat
            .sqr()?
            .sum_keepdim(1)?
            .broadcast_add(&self.codebook.sqr()?.sum(1)?.unsqueeze(0)?)?
            - (flat.matmul(&self.codebook.t()?)? * 2.0)?)?;
        distances.argmin(D::Minus1)?.reshape((b, l))
    }

    /// Logits `[B, T, P]` from code vectors `[B, CODES, dim]`.
    fn decode_vectors(&self, vectors: &Tensor) -> Result<Tensor> {
        let (b, l, d) = vectors.dims3()?;
        let upsampled = vectors
            .unsqueeze(2)?
            .expand((b, l, STEPS_PER_CODE, d))?
            .reshape((b, l * STEPS_PER_CODE, d))?
            .contiguous()?;
        let states = self.decoder.seq(&upsampled)?;
        self.out.forward(&super::vae::stack_states(&states)?)
    }

    /// Logits of rolls from code indices `[B, CODES]`.
    pub fn decode_codes(&self, codes: &Tensor) -> Result<Tensor> {
        let (b, l) = codes.dims2()?;
        let vectors = self
            .codebook
            .index_select(&codes.flatten_all()?, 0)?
            .reshape((b, l, self.config.dim))?;
        self.decode_vectors(&vectors)
    }

    /// The losses of a batch.
    pub fn loss(&self, rolls: &Tensor) -> Result<VqLoss> {
        let latents = self.encode(rolls)?;
        let codes = self.quantize(&latents)?;
        let (b, l) = codes.dims2()?;
        let quantized = self
            .codebook
            .index_select(&codes.flatten_all()?, 0)?
            .reshape((b, l, self.config.dim))?;
        // Straight-through: the decoder sees the code, the encoder gets its gradient.
        let straight = (&latents + (&quantized - &latents)?.detach())?;
        let logits = self.decode_vectors(&straight)?;
        let reconstruction = bce_with_logits(&logits, rolls)?.sum((1, 2))?.mean(0)?;
        let codebook_loss = (quantized.clone() - latents.detach())?.sqr()?.mean_all()?;
        let commitment = (latents - quantized.detach())?.sqr()?.mean_all()?;
        Ok(VqLoss {
            reconstruction,
            vq: (codebook_loss + (commitment * self.config.commitment)?)?,
            codes,
        })
    }

    /// Continuous latents of rolls, flattened to `[B·CODES, dim]`.
    pub fn latents(&self, rolls: &Tensor) -> Result<Tensor> {
        let l = self.encode(rolls)?;
        let (b, c, d) = l.dims3()?;
        l.reshape((b * c, d))
    }

    /// Codes of rolls (for training the prior and measuring codebook use).
    pub fn codes_of(&self, rolls: &Tensor) -> Result<Tensor> {
        self.quantize(&self.encode(rolls)?)
    }
}

/// Dead-code restarts: codebook entries no latent chose since the last
/// restart take the value of a random current latent (a standard remedy for
/// codebook collapse). `codebook` is the variable behind [`VqVae`]'s codebook.
pub fn restart_dead_codes(
    codebook: &candle_core::Var,
    used: &[bool],
    latents: &Tensor,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Result<usize> {
    use rand::Rng;
    let n = latents.dim(0)?;
    let mut rows: Vec<Tensor> = Vec::with_capacity(used.len());
    let mut restarted = 0;
    for (i, &u) in used.iter().enumerate() {
        if u || n == 0 {
            rows.push(codebook.as_tensor().get(i)?);
        } else {
            rows.push(latents.get(rng.random_range(0..n))?.detach());
            restarted += 1;
        }
    }
    codebook.set(&Tensor::stack(&rows, 0)?)?;
    Ok(restarted)
}

/// Codebook use: (share of codes used, perplexity of the code distribution).
pub fn codebook_usage(codes: &[u32], size: usize) -> (f64, f64) {
    let mut counts = vec![0usize; size];
    for &c in codes {
        if let Some(n) = counts.get_mut(c as usize) {
            *n += 1;
        }
    }
    let total = codes.len().max(1) as f64;
    let used = counts.iter().filter(|&&n| n > 0).count();
    let entropy: f64 = counts
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = n as f64 / total;
            -p * p.ln()
        })
        .sum();
    (used as f64 / size as f64, entropy.exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_codes_and_their_spread() {
        let (share, perplexity) = codebook_usage(&[0, 1, 2, 3], 8);
        assert_eq!(share, 0.5);
        assert!((perplexity - 4.0).abs() < 1e-9);
        let (share, perplexity) = codebook_usage(&[5, 5, 5], 8);
        assert_eq!(share, 1.0 / 8.0);
        assert!((perplexity - 1.0).abs() < 1e-9);
    }
}
