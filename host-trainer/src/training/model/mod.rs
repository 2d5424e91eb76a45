//! The decoder-only Transformer in candle: the same architecture the engine
//! runs (pre-norm RMSNorm, RoPE on half-split pairs, grouped-query causal
//! attention, SwiGLU, tied embedding and output), with the engine's tensor
//! names, so a `VarMap` exports without renaming; and [`lstm`], the
//! recurrent baseline of the comparative study, behind the same
//! [`LanguageModel`] trait.

pub mod lstm;

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

use crate::config::ModelConfig;

/// Dropout with a mask from a seeded generator, so that a resumed run
/// repeats the same masks (candle's CPU generator cannot be seeded).
#[derive(Clone, Debug)]
pub struct Dropout {
    /// Probability of dropping.
    pub p: f32,
}

/// What a forward pass is for.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Inference: no dropout.
    Eval,
    /// Training with dropout masks derived from this seed.
    Train {
        /// Seed of this step's masks.
        seed: u64,
    },
}

impl Dropout {
    /// Apply dropout (identity in [`Mode::Eval`]); `site` tells apart the
    /// places a model drops out, so each gets its own mask.
    pub fn forward(&self, x: &Tensor, mode: Mode, site: u64) -> Result<Tensor> {
        let Mode::Train { seed } = mode else {
            return Ok(x.clone());
        };
        if self.p <= 0.0 {
            return Ok(x.clone());
        }
        use rand::{Rng, SeedableRng};
        let mut rng =
            rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ site.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let keep = 1.0 / (1.0 - self.p);
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| {
                if rng.random::<f32>() < self.p {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape(), &Device::Cpu)?.to_device(x.device())?;
        x * mask
    }
}

/// RMSNorm with a learned gain.
#[derive(Clone, Debug)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(dim: usize, eps: f32, vb: VarBuilder) -> Result<Self> {
        Ok(RmsNorm {
            weight: vb.get_with_hints(dim, "weight", Init::Const(1.0))?,
            eps: f64::from(eps),
        })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean_square = x.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x.broadcast_div(&(mean_square + self.eps)?.sqrt()?)?;
        normed.broadcast_mul(&self.weight)
    }
}

fn linear(input: usize, output: usize, vb: VarBuilder) -> Result<candle_nn::Linear> {
    candle_nn::linear_no_bias(input, output, vb)
}

/// Rotate half-split pairs of the last dimension by the angles in `cos`/`sin` (`[T, hd/2]`).
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let rotated_1 = (x1.broadcast_mul(cos)? - x2.broadcast_mul(sin)?)?;
    let rotated_2 = (x1.broadcast_mul(sin)? + x2.broadcast_mul(cos)?)?;
    Tensor::cat(&[rotated_1, rotated_2], D::Minus1)
}

/// Cosines and sines of the RoPE angles for positions `0..len`, `[len, hd/2]`.
pub fn rope_tables(config: &ModelConfig, len: usize, device: &Device) -> Result<(Tensor, Tensor)> {
    let hd = config.head_dim();
    // The engine's formula (`kernels::rope_frequencies`), but with std's
    // `powf`, which differs from the engine's `libm::powf` in the last bit for
    // some exponents (e.g. theta 10000, head width 32, i = 10): the engine
    // matches candle to float rounding, not bit for bit. Calling the engine's
    // function here would change the trained weights of every seed, so the two
    // stay apart until checkpoints may change.
    let frequencies: Vec<f32> = (0..hd / 2)
        .map(|i| 1.0 / config.rope_theta.powf((2 * i) as f32 / hd as f32))
        .collect();
    let angles: Vec<f32> = (0..len)
        .flat_map(|p| frequencies.iter().map(move |f| p as f32 * f))
        .collect();
    let angles = Tensor::from_vec(angles, (len, hd / 2), device)?;
    Ok((angles.cos()?, angles.sin()?))
}

#[derive(Clone, Debug)]
struct Attention {
    wq: candle_nn::Linear,
    wk: candle_nn::Linear,
    wv: candle_nn::Linear,
    wo: candle_nn::Linear,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(c: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Attention {
            wq: linear(c.dim, c.dim, vb.pp("wq"))?,
            wk: linear(c.dim, c.kv_dim(), vb.pp("wk"))?,
            wv: linear(c.dim, c.kv_dim(), vb.pp("wv"))?,
            wo: linear(c.dim, c.dim, vb.pp("wo"))?,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim(),
        })
    }

    fn forward(&self, x: &Tensor, cos: &Tensor, sin: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let heads = |w: &candle_nn::Linear, n: usize| -> Result<Tensor> {
            w.forward(x)?
                .reshape((b, t, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = rope(&heads(&self.wq, self.n_heads)?, cos, sin)?;
        let k = rope(&heads(&self.wk, self.n_kv_heads)?, cos, sin)?;
        let v = heads(&self.wv, self.n_kv_heads)?;
        let (k, v) = (self.repeat_kv(k)?, self.repeat_kv(v)?);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(mask)?;
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let y =
            weights
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((b, t, self.n_heads * self.head_dim))?;
        self.wo.forward(&y)
    }

    /// `[B, KV, T, hd]` → `[B, H, T, hd]`: each key/value head serves `H / KV` query heads.
    fn repeat_kv(&self, x: Tensor) -> Result<Tensor> {
        let n_rep = self.n_heads / self.n_kv_heads;
        if n_rep == 1 {
            return Ok(x);
        }
        let (b, kv, t, hd) = x.dims4()?;
        x.unsqueeze(2)?
            .expand((b, kv, n_rep, t, hd))?
            .reshape((b, kv * n_rep, t, hd))
    }
}

#[derive(Clone, Debug)]
struct FeedForward {
    w1: candle_nn::Linear,
    w2: candle_nn::Linear,
    w3: candle_nn::Linear,
}

impl FeedForward {
    fn new(c: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        Ok(FeedForward {
            w1: linear(c.dim, c.hidden_dim, vb.pp("w1"))?,
            w2: linear(c.hidden_dim, c.dim, vb.pp("w2"))?,
            w3: linear(c.dim, c.hidden_dim, vb.pp("w3"))?,
        })
    }
}

impl Module for FeedForward {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = candle_nn::ops::silu(&self.w1.forward(x)?)?;
        self.w2.forward(&(gate * self.w3.forward(x)?)?)
    }
}

#[derive(Clone, Debug)]
struct Block {
    attention_norm: RmsNorm,
    attention: Attention,
    ffn_norm: RmsNorm,
    feed_forward: FeedForward,
}

/// A next-token model over token ids: what the training loop, evaluation,
/// distillation and generation work with.
pub trait LanguageModel {
    /// Logits `[B, T, vocab]` for token ids `[B, T]`.
    fn logits(&self, ids: &Tensor, mode: Mode) -> Result<Tensor>;
    /// The configuration it was built from.
    fn config(&self) -> &ModelConfig;
    /// Mean cross-entropy of predicting `targets` (`[B, T]`) from `ids`.
    fn loss(&self, ids: &Tensor, targets: &Tensor, mode: Mode) -> Result<Tensor> {
        let logits = self.logits(ids, mode)?;
        let (b, t, v) = logits.dims3()?;
        candle_nn::loss::cross_entropy(&logits.reshape((b * t, v))?, &targets.reshape(b * t)?)
    }
}

/// Build the model a configuration describes, its variables under `vb`.
pub fn build(config: &ModelConfig, vb: VarBuilder) -> Result<Box<dyn LanguageModel>> {
    Ok(match config.architecture {
        crate::config::Architecture::Transformer => Box::new(Transformer::new(config, vb)?),
        crate::config::Architecture::LstmAttention => {
            Box::new(lstm::LstmAttention::new(config, vb)?)
        }
    })
}

/// The model.
#[derive(Clone, Debug)]
pub struct Transformer {
    embedding: Tensor,
    blocks: Vec<Block>,
    norm: RmsNorm,
    dropout: Dropout,
    config: ModelConfig,
}

impl Transformer {
    /// Build (or load) the model's variables under `vb`.
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let embedding = vb.get_with_hints(
            (config.vocab_size, config.dim),
            "tok_embeddings.weight",
            Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        )?;
        let blocks = (0..config.n_layers)
            .map(|i| {
                let vb = vb.pp(format!("layers.{i}"));
                Ok(Block {
                    attention_norm: RmsNorm::new(
                        config.dim,
                        config.norm_eps,
                        vb.pp("attention_norm"),
                    )?,
                    attention: Attention::new(config, vb.pp("attention"))?,
                    ffn_norm: RmsNorm::new(config.dim, config.norm_eps, vb.pp("ffn_norm"))?,
                    feed_forward: FeedForward::new(config, vb.pp("feed_forward"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Transformer {
            embedding,
            blocks,
            norm: RmsNorm::new(config.dim, config.norm_eps, vb.pp("norm"))?,
            dropout: Dropout { p: config.dropout },
            config: config.clone(),
        })
    }

    /// Logits `[B, T, vocab]` for token ids `[B, T]` (T ≤ context).
    pub fn forward(&self, ids: &Tensor, mode: Mode) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let device = ids.device();
        let (cos, sin) = rope_tables(&self.config, t, device)?;
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), device)?;
        let flat = ids.flatten_all()?;
        let mut x = self
            .embedding
            .index_select(&flat, 0)?
            .reshape((b, t, self.config.dim))?;
        x = self.dropout.forward(&x, mode, 0)?;
        for (i, block) in self.blocks.iter().enumerate() {
            let site = 1 + 2 * i as u64;
            let h =
                block
                    .attention
                    .forward(&block.attention_norm.forward(&x)?, &cos, &sin, &mask)?;
            x = (x + self.dropout.forward(&h, mode, site)?)?;
            let h = block.feed_forward.forward(&block.ffn_norm.forward(&x)?)?;
            x = (x + self.dropout.forward(&h, mode, site + 1)?)?;
        }
        let x = self.norm.forward(&x)?;
        x.broadcast_matmul(&self.embedding.t()?)
    }
}

impl LanguageModel for Transformer {
    fn logits(&self, ids: &Tensor, mode: Mode) -> Result<Tensor> {
        self.forward(ids, mode)
    }

    fn config(&self) -> &ModelConfig {
        &self.config
    }
}

/// Token ids as a `[1, T]` tensor, or `[B, T]` from equal-length rows.
pub fn ids_tensor(rows: &[Vec<u16>], device: &Device) -> Result<Tensor> {
    let t = rows.first().map_or(0, Vec::len);
    let flat: Vec<u32> = rows.iter().flatten().map(|&v| u32::from(v)).collect();
    Tensor::from_vec(flat, (rows.len(), t), device)?.to_dtype(DType::U32)
}
