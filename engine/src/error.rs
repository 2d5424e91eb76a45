//! What the engine's errors say: `Display` and [`core::error::Error`] for
//! every error type, in one place.
//!
//! Each message names one problem; an error that wraps another (a
//! [`LoadError`]) says what failed and gives the wrapped error as its
//! [`source`](core::error::Error::source), so that a caller printing the
//! chain (`anyhow`'s `{:#}`) reads "not a valid safetensors file: the
//! header is not valid JSON at byte 12".

use core::error::Error;
use core::fmt::{self, Display, Formatter};

use crate::bpe::{BpeError, MAX_EXPANSION};
use crate::config::ConfigError;
use crate::decoder::DecodeError;
use crate::model::LoadError;
use crate::safetensors::{FormatError, MAX_HEADER, MAX_RANK, MAX_TENSORS};
use crate::session::SessionError;
use crate::weights::{TensorError, TensorProblem};

impl Display for FormatError {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match *self {
            FormatError::TooShort => write!(f, "the file is shorter than 8 bytes"),
            FormatError::HeaderLength { declared } => write!(
                f,
                "the header length {declared} runs past the end of the file or over {MAX_HEADER} bytes"
            ),
            FormatError::Json { offset } => {
                write!(f, "the header is not the expected JSON at byte {offset}")
            }
            FormatError::UnknownDtype { tensor } => {
                write!(f, "tensor entry {tensor} has an unknown dtype")
            }
            FormatError::MissingField { tensor } => write!(
                f,
                "tensor entry {tensor} lacks dtype, shape or data_offsets"
            ),
            FormatError::BadShape { tensor } => write!(
                f,
                "tensor entry {tensor} has a shape of rank over {MAX_RANK} or too many elements"
            ),
            FormatError::OffsetsOutOfBounds { tensor } => write!(
                f,
                "tensor entry {tensor} has offsets reversed or past the end of the data"
            ),
            FormatError::SizeMismatch { tensor } => write!(
                f,
                "tensor entry {tensor} spans another number of bytes than its dtype and shape"
            ),
            FormatError::Overlap { first, second } => {
                write!(f, "tensor entries {first} and {second} share bytes")
            }
            FormatError::Gap => write!(f, "the tensors do not cover the data exactly"),
            FormatError::DuplicateName { tensor } => {
                write!(f, "tensor entry {tensor} repeats an earlier name")
            }
            FormatError::TooManyTensors => write!(f, "more than {MAX_TENSORS} tensors"),
        }
    }
}

impl Error for FormatError {}

impl Display for ConfigError {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::NotAKantorModel => write!(f, "not a Kantor model (no format metadata)"),
            ConfigError::Missing(key) => write!(f, "the metadata lacks {key}"),
            ConfigError::Invalid(key) => write!(f, "{key} does not parse or is out of range"),
            ConfigError::Heads => write!(
                f,
                "n_heads is not a multiple of n_kv_heads, or dim not a multiple of n_heads"
            ),
            ConfigError::HeadDim => write!(f, "the head width is not a multiple of 4"),
            ConfigError::GroupSize => write!(
                f,
                "group_size is not a multiple of 4 dividing dim and hidden_dim"
            ),
        }
    }
}

impl Error for ConfigError {}

impl Display for BpeError {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match *self {
            BpeError::Misaligned => write!(f, "the table's length is not a multiple of 4 bytes"),
            BpeError::TooManyMerges => write!(f, "more merges than token ids"),
            BpeError::BadMerge { index } => write!(
                f,
                "merge {index} uses a special token or one not defined before it"
            ),
            BpeError::TooLong { index } => write!(
                f,
                "merge {index} expands to more than {MAX_EXPANSION} base tokens"
            ),
        }
    }
}

impl Error for BpeError {}

impl Display for TensorProblem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match *self {
            TensorProblem::Missing => write!(f, "missing"),
            TensorProblem::Dtype { expected, found } => {
                write!(f, "stored as {found:?}, expected {expected:?}")
            }
            TensorProblem::Shape => write!(f, "its shape does not match the configuration"),
            TensorProblem::Layout => write!(
                f,
                "its int8_layout is unknown or does not fit it (rows4 needs one scale per row, rows in fours and columns in eights)"
            ),
        }
    }
}

impl Display for TensorError {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let TensorError { tensor, problem } = self;
        match tensor.layer {
            Some(l) => write!(f, "tensor layers.{l}.{}: {problem}", tensor.name),
            None => write!(f, "tensor {}: {problem}", tensor.name),
        }
    }
}

impl Error for TensorError {}

impl Display for LoadError {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Format(_) => write!(f, "not a valid safetensors file"),
            LoadError::Config(_) => write!(f, "bad model configuration"),
            LoadError::Tensor(_) => write!(f, "bad weight tensor"),
            LoadError::Bpe(_) => write!(f, "bad BPE table"),
            LoadError::VocabMismatch { config, bpe } => write!(
                f,
                "the configuration says {config} tokens, the BPE table defines {bpe}"
            ),
        }
    }
}

impl Error for LoadError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            LoadError::Format(e) => Some(e),
            LoadError::Config(e) => Some(e),
            LoadError::Tensor(e) => Some(e),
            LoadError::Bpe(e) => Some(e),
            LoadError::VocabMismatch { .. } => None,
        }
    }
}

impl Display for SessionError {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match *self {
            SessionError::MemoryTooSmall { needed, given } if given < needed => write!(
                f,
                "the session needs up to {needed} bytes of memory, {given} given"
            ),
            SessionError::MemoryTooSmall { needed, given } => write!(
                f,
                "the session's buffers (up to {needed} bytes) do not fit in the regions given \
                 ({given} bytes in all, but some buffer is larger than any region's room)"
            ),
            SessionError::TooManySinks => write!(
                f,
                "too many attention sinks: they must leave half the context for sliding"
            ),
            SessionError::TokenOutOfRange(id) => {
                write!(f, "token id {id} is outside the model's vocabulary")
            }
        }
    }
}

impl Error for SessionError {}

impl Error for DecodeError {}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;
    use crate::weights::TensorName;

    #[test]
    fn load_errors_name_their_cause() {
        let e = LoadError::Format(FormatError::Json { offset: 12 });
        assert_eq!(e.to_string(), "not a valid safetensors file");
        let cause = e.source().expect("a cause");
        assert_eq!(
            cause.to_string(),
            "the header is not the expected JSON at byte 12"
        );
        let e = LoadError::Tensor(TensorError {
            tensor: TensorName {
                layer: Some(3),
                name: "attention.wq.weight",
            },
            problem: TensorProblem::Shape,
        });
        assert_eq!(
            e.source().unwrap().to_string(),
            "tensor layers.3.attention.wq.weight: its shape does not match the configuration"
        );
        assert!(LoadError::VocabMismatch { config: 1, bpe: 2 }
            .source()
            .is_none());
    }
}
