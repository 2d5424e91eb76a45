//! The model's hyper-parameters, read from the weights file's metadata.
//!
//! `host-trainer export` writes these string keys into the safetensors
//! `__metadata__`: `format` (= [`FORMAT`]), `vocab_size`, `dim`, `n_layers`,
//! `n_heads`, `n_kv_heads`, `hidden_dim`, `context`, `rope_theta`,
//! `norm_eps`, `weights` (`f32`, `f16` or `int8`) and, for int8, `group_size`
//! (a number, or `row` for one scale per row). An int8 file may also say
//! `int8_layout`: `rows` (the default) or `rows4`, the layer matrices in the
//! Cortex-M4 kernel's order ([`crate::weights::Int8Layout`]; the firmware's
//! build writes it).

use crate::safetensors::SafeTensors;

/// Value of the `format` metadata key of a Kantor model file.
pub const FORMAT: &str = "kantor-1";
/// Most layers a model may have.
pub const MAX_LAYERS: usize = 16;
/// Largest model width (and hidden width) accepted.
pub const MAX_DIM: usize = 16384;
/// Longest context accepted.
pub const MAX_CONTEXT: usize = 1 << 16;

/// How the weight matrices are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightFormat {
    /// 32-bit floats: the reference path.
    F32,
    /// IEEE half floats.
    F16,
    /// int8 with one f32 scale per `group_size` consecutive inputs of each
    /// output row, or (`group_size` 0, metadata `"row"`) one scale per row:
    /// a row's dot product is then one integer sum with one rescale, and the
    /// activations are quantized with one scale per vector.
    Int8 {
        /// Inputs per scale; 0 for one scale per row.
        group_size: usize,
    },
}

impl WeightFormat {
    /// Inputs per scale of a matrix with `cols` inputs (int8; `cols` itself
    /// for per-row scales), or 0 for the float formats.
    pub fn group_for(self, cols: usize) -> usize {
        match self {
            WeightFormat::Int8 { group_size: 0 } => cols,
            WeightFormat::Int8 { group_size } => group_size,
            _ => 0,
        }
    }
}

/// A decoder-only Transformer's shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelConfig {
    /// Token ids (base REMI tokens plus BPE merges).
    pub vocab_size: usize,
    /// Model width.
    pub dim: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention; divides `n_heads`).
    pub n_kv_heads: usize,
    /// Width of the SwiGLU feed-forward layer.
    pub hidden_dim: usize,
    /// Positions the model was trained on (the KV cache's capacity).
    pub context: usize,
    /// RoPE base.
    pub rope_theta: f32,
    /// RMSNorm epsilon.
    pub norm_eps: f32,
    /// Storage of the weight matrices.
    pub weights: WeightFormat,
}

/// Why a configuration is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The `format` key is missing or not [`FORMAT`].
    NotAKantorModel,
    /// A metadata key is missing.
    Missing(&'static str),
    /// A metadata value does not parse or is out of range.
    Invalid(&'static str),
    /// `n_heads` is not a multiple of `n_kv_heads`, or `dim` of `n_heads`.
    Heads,
    /// The head width is not a multiple of 4 (RoPE rotates pairs; the
    /// int8 kernels take four values at a time).
    HeadDim,
    /// `group_size` is not a multiple of 4 dividing `dim` and `hidden_dim`
    /// (or, per row, `dim` or `hidden_dim` is not a multiple of 4).
    GroupSize,
}

impl ModelConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.dim / self.n_heads
    }

    /// Width of all key (or value) heads together.
    pub fn kv_dim(&self) -> usize {
        self.head_dim() * self.n_kv_heads
    }

    /// Parameters (weights) of a model of this shape: the tied embedding,
    /// per layer two norms, Q and O, K and V, the three feed-forward
    /// matrices, and the final norm.
    pub fn parameters(&self) -> usize {
        let per_layer = 2 * self.dim
            + 2 * self.dim * self.dim
            + 2 * self.kv_dim() * self.dim
            + 3 * self.dim * self.hidden_dim;
        self.vocab_size * self.dim + self.n_layers * per_layer + self.dim
    }

    /// Read and validate the configuration from a file's metadata.
    pub fn from_metadata(file: &SafeTensors<'_>) -> Result<Self, ConfigError> {
        if file.metadata("format") != Some(FORMAT) {
            return Err(ConfigError::NotAKantorModel);
        }
        let text = |key: &'static str| file.metadata(key).ok_or(ConfigError::Missing(key));
        let size = |key: &'static str, max: usize| -> Result<usize, ConfigError> {
            text(key)?
                .parse::<usize>()
                .ok()
                .filter(|&v| v > 0 && v <= max)
                .ok_or(ConfigError::Invalid(key))
        };
        let real = |key: &'static str| -> Result<f32, ConfigError> {
            text(key)?
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or(ConfigError::Invalid(key))
        };
        let weights = match text("weights")? {
            "f32" => WeightFormat::F32,
            "f16" => WeightFormat::F16,
            "int8" => WeightFormat::Int8 {
                group_size: match text("group_size")? {
                    "row" => 0,
                    _ => size("group_size", MAX_DIM)?,
                },
            },
            _ => return Err(ConfigError::Invalid("weights")),
        };
        let config = ModelConfig {
            vocab_size: size("vocab_size", usize::from(u16::MAX))?,
            dim: size("dim", MAX_DIM)?,
            n_layers: size("n_layers", MAX_LAYERS)?,
            n_heads: size("n_heads", MAX_DIM)?,
            n_kv_heads: size("n_kv_heads", MAX_DIM)?,
            hidden_dim: size("hidden_dim", MAX_DIM)?,
            context: size("context", MAX_CONTEXT)?,
            rope_theta: real("rope_theta")?,
            norm_eps: real("norm_eps")?,
            weights,
        };
        config.validate()?;
        Ok(config)
    }

    /// Check the relations between the sizes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.n_heads == 0
            || self.n_kv_heads == 0
            || !self.dim.is_multiple_of(self.n_heads)
            || !self.n_heads.is_multiple_of(self.n_kv_heads)
        {
            return Err(ConfigError::Heads);
        }
        if !self.head_dim().is_multiple_of(4) {
            return Err(ConfigError::HeadDim);
        }
        // Keep every buffer size far from overflowing a 32-bit usize.
        let cache = self
            .n_layers
            .checked_mul(self.context)
            .and_then(|v| v.checked_mul(self.kv_dim()));
        if cache.is_none_or(|v| v > 1 << 26) {
            return Err(ConfigError::Invalid("context"));
        }
        if self
            .vocab_size
            .checked_mul(self.dim)
            .is_none_or(|v| v > 1 << 28)
        {
            return Err(ConfigError::Invalid("vocab_size"));
        }
        if let WeightFormat::Int8 { group_size } = self.weights {
            // Per row (0): each row is one group, as wide as the matrix.
            let (gd, gh) = match group_size {
                0 => (self.dim, self.hidden_dim),
                g => (g, g),
            };
            if !gd.is_multiple_of(4)
                || !gh.is_multiple_of(4)
                || !self.dim.is_multiple_of(gd)
                || !self.hidden_dim.is_multiple_of(gh)
            {
                return Err(ConfigError::GroupSize);
            }
        }
        Ok(())
    }
}
