//! Model and training configuration: presets, TOML files, validation.
//!
//! A run directory keeps its `config.toml` (a [`RunConfig`]); `--config FILE`
//! reads one, with `[model]`, `[train]` and `[data]` tables. Presets:
//!
//! | preset    | layers | heads (kv) | dim | hidden | context | params | what for |
//! |-----------|--------|------------|-----|--------|---------|--------|----------|
//! | `tiny`    | 2      | 4 (2)      | 64  | 128    | 128     | ≈0.1 M | tests and CI: seconds per epoch |
//! | `student` | 4      | 4 (2)      | 128 | 192    | 128     | ≈0.56 M| the microcontroller model: int8 ≤ 1 MB, KV ≤ 96 KB, ~100 tokens/s on a Cortex-M4 |
//! | `teacher` | 8      | 8 (8)      | 512 | 2048   | 512     | ≈34 M  | the published reference size, for distillation |
//!
//! `default` is the student trained directly on the chorales (the README's main job).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use kantor_engine::config::WeightFormat;
use kantor_engine::vocab::VOCAB_SIZE;
use serde::{Deserialize, Serialize};

/// Which network a [`ModelConfig`] describes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// The decoder-only Transformer the engine runs.
    #[default]
    Transformer,
    /// Stacked LSTM with self-attention over its outputs (the comparative
    /// study's recurrent baseline; `dim` is the LSTM width, `n_layers` its
    /// depth, `n_heads` the attention heads; not exportable to the engine).
    LstmAttention,
}

/// Shape of a next-token model (by default a decoder-only Transformer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The network.
    #[serde(default)]
    pub architecture: Architecture,
    /// Token ids: the base REMI vocabulary plus BPE merges.
    pub vocab_size: usize,
    /// Model width.
    pub dim: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention).
    pub n_kv_heads: usize,
    /// SwiGLU width.
    pub hidden_dim: usize,
    /// Context length (training windows and the engine's KV cache).
    pub context: usize,
    /// RoPE base.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f32,
    /// RMSNorm epsilon.
    #[serde(default = "default_norm_eps")]
    pub norm_eps: f32,
    /// Dropout on the embedding and the residual branches while training.
    #[serde(default = "default_dropout")]
    pub dropout: f32,
}

fn default_rope_theta() -> f32 {
    10_000.0
}
fn default_norm_eps() -> f32 {
    1e-5
}
fn default_dropout() -> f32 {
    0.1
}

/// Names of the presets.
pub const PRESETS: [&str; 4] = ["tiny", "student", "teacher", "default"];

impl ModelConfig {
    /// A named preset.
    pub fn preset(name: &str) -> Result<ModelConfig> {
        let base = ModelConfig {
            architecture: Architecture::Transformer,
            vocab_size: 512,
            dim: 128,
            n_layers: 4,
            n_heads: 4,
            n_kv_heads: 2,
            hidden_dim: 192,
            context: 128,
            rope_theta: default_rope_theta(),
            norm_eps: default_norm_eps(),
            dropout: default_dropout(),
        };
        Ok(match name {
            "tiny" => ModelConfig {
                dim: 64,
                n_layers: 2,
                hidden_dim: 128,
                dropout: 0.0,
                ..base
            },
            "student" | "default" => base,
            "teacher" => ModelConfig {
                dim: 512,
                n_layers: 8,
                n_heads: 8,
                n_kv_heads: 8,
                hidden_dim: 2048,
                context: 512,
                ..base
            },
            other => bail!(
                "unknown preset {other:?}; presets are {}",
                PRESETS.join(", ")
            ),
        })
    }

    /// Width of one head (the engine's definition).
    pub fn head_dim(&self) -> usize {
        self.to_engine(WeightFormat::F32).head_dim()
    }

    /// Width of the key (or value) projection (the engine's definition).
    pub fn kv_dim(&self) -> usize {
        self.to_engine(WeightFormat::F32).kv_dim()
    }

    /// Number of parameters.
    pub fn parameters(&self) -> usize {
        if self.architecture == Architecture::LstmAttention {
            let lstm = 8 * self.dim * self.dim + 8 * self.dim;
            return 2 * self.vocab_size * self.dim
                + self.n_layers * lstm
                + 4 * self.dim * self.dim
                + self.vocab_size;
        }
        self.to_engine(WeightFormat::F32).parameters()
    }

    /// Check that the sizes make a model for the engine's vocabulary, with a
    /// message saying what is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.vocab_size < VOCAB_SIZE || self.vocab_size > usize::from(u16::MAX) {
            bail!(
                "model.vocab_size {} must be between the base vocabulary ({VOCAB_SIZE}) and 65535",
                self.vocab_size
            );
        }
        self.validate_shape()
    }

    /// The checks that do not involve the REMI vocabulary (models over other
    /// token sets, such as the JSB raster benchmark, need only these).
    pub fn validate_shape(&self) -> Result<()> {
        let positive = [
            ("dim", self.dim),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("hidden_dim", self.hidden_dim),
            ("context", self.context),
        ];
        for (name, value) in positive {
            if value == 0 {
                bail!("model.{name} must be positive");
            }
        }
        if self.vocab_size < 2 || self.vocab_size > usize::from(u16::MAX) {
            bail!(
                "model.vocab_size ({}) must be between 2 and 65535",
                self.vocab_size
            );
        }
        // The relations between the sizes are the engine's to judge.
        self.to_engine(WeightFormat::F32).validate().map_err(|e| {
            anyhow!(
                "model (dim {}, n_heads {}, n_kv_heads {}, hidden_dim {}): {e}",
                self.dim,
                self.n_heads,
                self.n_kv_heads,
                self.hidden_dim
            )
        })?;
        let engine = &kantor_engine::config::MAX_LAYERS;
        if self.n_layers > *engine {
            bail!(
                "model.n_layers ({}) is over the engine's {engine}",
                self.n_layers
            );
        }
        if self.dim > kantor_engine::config::MAX_DIM
            || self.hidden_dim > kantor_engine::config::MAX_DIM
        {
            bail!(
                "model.dim and hidden_dim must be at most {}",
                kantor_engine::config::MAX_DIM
            );
        }
        if self.context < 8 || self.context > kantor_engine::config::MAX_CONTEXT {
            bail!(
                "model.context ({}) must be between 8 and {}",
                self.context,
                kantor_engine::config::MAX_CONTEXT
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("model.dropout ({}) must be in [0, 1)", self.dropout);
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            bail!("model.rope_theta must be a finite number above 1");
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            bail!("model.norm_eps must be positive");
        }
        Ok(())
    }

    /// The engine's view of this configuration, for a weight format.
    pub fn to_engine(&self, weights: WeightFormat) -> kantor_engine::config::ModelConfig {
        kantor_engine::config::ModelConfig {
            vocab_size: self.vocab_size,
            dim: self.dim,
            n_layers: self.n_layers,
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            hidden_dim: self.hidden_dim,
            context: self.context,
            rope_theta: self.rope_theta,
            norm_eps: self.norm_eps,
            weights,
        }
    }
}

/// How to train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Sequences per optimizer step (before accumulation).
    pub batch_size: usize,
    /// Micro-batches whose gradients are summed per step.
    pub accumulation: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_learning_rate: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// Optimizer steps in all (the cosine decay spans them).
    pub max_steps: usize,
    /// AdamW weight decay (matrices only).
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (0 = off).
    pub grad_clip: f64,
    /// Evaluate on the validation split every this many steps.
    pub eval_every: usize,
    /// Stop after this many evaluations without improvement (0 = never).
    pub patience: usize,
    /// Tokens between the starts of consecutive training windows (0 = context / 2).
    pub stride: usize,
    /// Transpose the training pieces by -N..=N semitones (0 = no augmentation).
    pub transpose: i32,
    /// Write a checkpoint every this many steps (and at every evaluation).
    pub checkpoint_every: usize,
    /// Seed of data order, dropout and initialisation.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            batch_size: 16,
            accumulation: 1,
            learning_rate: 3e-3,
            min_learning_rate: 3e-4,
            warmup_steps: 50,
            max_steps: 1500,
            weight_decay: 0.1,
            grad_clip: 1.0,
            eval_every: 100,
            patience: 5,
            stride: 0,
            transpose: 6,
            checkpoint_every: 50,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Tokens between the starts of training windows for a model of
    /// `context` positions: `stride`, or half the context where it is 0.
    pub fn window_stride(&self, context: usize) -> usize {
        match self.stride {
            0 => (context / 2).max(1),
            s => s,
        }
    }

    /// The training settings that go with a preset.
    pub fn preset(name: &str) -> TrainConfig {
        match name {
            "tiny" => TrainConfig {
                batch_size: 8,
                max_steps: 150,
                warmup_steps: 10,
                eval_every: 50,
                checkpoint_every: 25,
                ..TrainConfig::default()
            },
            "teacher" => TrainConfig {
                batch_size: 32,
                learning_rate: 6e-4,
                min_learning_rate: 6e-5,
                warmup_steps: 200,
                max_steps: 5000,
                eval_every: 250,
                checkpoint_every: 250,
                ..TrainConfig::default()
            },
            _ => TrainConfig::default(),
        }
    }

    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 || self.accumulation == 0 || self.max_steps == 0 {
            bail!("train.batch_size, accumulation and max_steps must be positive");
        }
        if self.eval_every == 0 || self.checkpoint_every == 0 {
            bail!("train.eval_every and checkpoint_every must be positive");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            bail!("train.learning_rate must be positive");
        }
        if !(0..=12).contains(&self.transpose) {
            bail!("train.transpose must be between 0 and 12 semitones");
        }
        Ok(())
    }
}

/// Where the data comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Directory of MIDI files, a MIDI file, or JSB Chorales JSON.
    pub corpus: std::path::PathBuf,
    /// Seed of the train/valid/test split of plain directories.
    pub split_seed: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            corpus: "data/bach-chorales-midi".into(),
            split_seed: 0,
        }
    }
}

/// Everything a run was started with (saved as `config.toml` in the run directory).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The model.
    pub model: ModelConfig,
    /// The training.
    #[serde(default)]
    pub train: TrainConfig,
    /// The data.
    #[serde(default)]
    pub data: DataConfig,
}

impl RunConfig {
    /// Preset model and training settings.
    pub fn preset(name: &str) -> Result<RunConfig> {
        Ok(RunConfig {
            model: ModelConfig::preset(name)?,
            train: TrainConfig::preset(name),
            data: DataConfig::default(),
        })
    }

    /// Read a TOML file.
    pub fn load(path: &Path) -> Result<RunConfig> {
        let config = Self::parse(path)?;
        config
            .validate()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(config)
    }

    /// Read a TOML file of a model over a vocabulary of its own (the JSB
    /// raster's): its shape and training checked, not the REMI vocabulary.
    pub fn load_raw(path: &Path) -> Result<RunConfig> {
        let config = Self::parse(path)?;
        config
            .model
            .validate_shape()
            .and_then(|()| config.train.validate())
            .with_context(|| format!("in {}", path.display()))?;
        Ok(config)
    }

    fn parse(path: &Path) -> Result<RunConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid run configuration", path.display()))
    }

    /// Write a TOML file.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::fsutil::write_atomic(path, toml::to_string_pretty(self)?.as_bytes())
    }

    /// Check model and training settings.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.train.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_the_teacher_has_the_published_size() {
        for p in PRESETS {
            RunConfig::preset(p).unwrap().validate().unwrap();
        }
        let teacher = ModelConfig::preset("teacher").unwrap().parameters();
        assert!((33_000_000..35_000_000).contains(&teacher), "{teacher}");
    }

    #[test]
    fn the_student_fits_the_microcontroller_budget() {
        let s = ModelConfig::preset("student").unwrap();
        let int8_bytes = s.parameters(); // one byte per weight, scales aside
        assert!(int8_bytes <= 1_000_000, "{int8_bytes}");
        let kv_bytes = s.n_layers * s.context * s.kv_dim() * 2; // int8 keys and values
        let kv_scales = s.n_layers * s.context * s.n_kv_heads * 2 * 4;
        assert!(
            kv_bytes + kv_scales <= 96 * 1024,
            "{}",
            kv_bytes + kv_scales
        );
    }

    #[test]
    fn impossible_sizes_are_clear_errors() {
        let mut c = ModelConfig::preset("tiny").unwrap();
        c.n_heads = 3;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("multiple of n_heads"), "{e}");
        let bad = "[model]\nvocab_size = 100\ndim = 64\nn_layers = 2\nn_heads = 4\nn_kv_heads = 2\nhidden_dim = 128\ncontext = 64\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, bad).unwrap();
        let e = format!("{:#}", RunConfig::load(&path).unwrap_err());
        assert!(e.contains("vocab_size"), "{e}");
        std::fs::write(&path, "[model]\ndimm = 3\n").unwrap();
        assert!(RunConfig::load(&path).is_err());
    }
}
