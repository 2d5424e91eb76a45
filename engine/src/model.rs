//! A model: configuration, weights and BPE table, read in place from the
//! bytes `host-trainer export` writes (flash, mmap, `include_bytes!`).

use crate::bpe::{BpeError, BpeTable};
use crate::config::{ConfigError, ModelConfig};
use crate::plan::PiecePlan;
use crate::safetensors::{Dtype, FormatError, SafeTensors};
use crate::weights::{TensorError, TensorName, TensorProblem, Weights};

/// Name of the BPE merge table tensor (`[n, 2]` u16).
pub const BPE_TENSOR: &str = "bpe.merges";

/// Why a model file could not be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Not a valid safetensors file.
    Format(FormatError),
    /// Bad or missing configuration metadata.
    Config(ConfigError),
    /// A weight tensor is missing or does not match the configuration.
    Tensor(TensorError),
    /// The BPE table is invalid.
    Bpe(BpeError),
    /// The configuration's vocabulary differs from the BPE table's.
    VocabMismatch {
        /// `vocab_size` in the metadata.
        config: usize,
        /// Base tokens plus merges.
        bpe: usize,
    },
}

impl From<FormatError> for LoadError {
    fn from(e: FormatError) -> Self {
        LoadError::Format(e)
    }
}

/// A loaded, validated model.
#[derive(Clone, Debug)]
pub struct Model<'a> {
    /// Shape and formats.
    pub config: ModelConfig,
    /// The weights, borrowed from the file.
    pub weights: Weights<'a>,
    /// The BPE merges, borrowed from the file.
    pub bpe: BpeTable<'a>,
    /// How the training pieces chose voices and form (free if the file
    /// does not say).
    pub plan: PiecePlan,
}

impl<'a> Model<'a> {
    /// Parse and validate a model file. Nothing is copied.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, LoadError> {
        let file = SafeTensors::parse(bytes)?;
        let config = ModelConfig::from_metadata(&file).map_err(LoadError::Config)?;
        let plan = PiecePlan::from_metadata(&file).map_err(LoadError::Config)?;
        let bpe = match file.tensor(BPE_TENSOR) {
            None => BpeTable::empty(),
            Some(t) => {
                let error = |problem| {
                    LoadError::Tensor(TensorError {
                        tensor: TensorName {
                            layer: None,
                            name: BPE_TENSOR,
                        },
                        problem,
                    })
                };
                if t.dtype != Dtype::U16 {
                    return Err(error(TensorProblem::Dtype {
                        expected: Dtype::U16,
                        found: t.dtype,
                    }));
                }
                if t.shape.dims().len() != 2 || t.shape.dims().get(1) != Some(&2) {
                    return Err(error(TensorProblem::Shape));
                }
                BpeTable::new(t.data).map_err(LoadError::Bpe)?
            }
        };
        if bpe.vocab_size() != config.vocab_size {
            return Err(LoadError::VocabMismatch {
                config: config.vocab_size,
                bpe: bpe.vocab_size(),
            });
        }
        let weights = Weights::load(&file, &config).map_err(LoadError::Tensor)?;
        Ok(Model {
            config,
            weights,
            bpe,
            plan,
        })
    }

    /// Parameters (weights) in the model.
    pub fn parameters(&self) -> usize {
        self.config.parameters()
    }
}
