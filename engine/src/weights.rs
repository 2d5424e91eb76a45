//! Typed views of the weight tensors, borrowed from the file.
//!
//! Tensor names (shared with `host-trainer`'s candle model):
//!
//! ```text
//! tok_embeddings.weight                      [vocab, dim]   (also the output layer: tied)
//! layers.{i}.attention_norm.weight           [dim]          f32
//! layers.{i}.attention.wq.weight             [dim, dim]
//! layers.{i}.attention.wk.weight             [kv_dim, dim]
//! layers.{i}.attention.wv.weight             [kv_dim, dim]
//! layers.{i}.attention.wo.weight             [dim, dim]
//! layers.{i}.ffn_norm.weight                 [dim]          f32
//! layers.{i}.feed_forward.w1.weight          [hidden, dim]  (gate)
//! layers.{i}.feed_forward.w3.weight          [hidden, dim]  (up)
//! layers.{i}.feed_forward.w2.weight          [dim, hidden]  (down)
//! norm.weight                                [dim]          f32
//! ```
//!
//! Matrices are `[out, in]`, in the file's weight format; int8 matrices have a
//! companion `….scales` f32 tensor `[out, in / group_size]` (`[out, 1]` with
//! one scale per row).

use core::fmt::Write as _;

use crate::config::{ModelConfig, WeightFormat, MAX_LAYERS};
use crate::safetensors::{Dtype, SafeTensors, TensorView};

/// Which tensor a loading problem concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorName {
    /// The layer, for per-layer tensors.
    pub layer: Option<u8>,
    /// The name within the layer (or the whole name).
    pub name: &'static str,
}

/// What is wrong with a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorProblem {
    /// Not in the file.
    Missing,
    /// Stored with another element type than the model's format needs.
    Dtype {
        /// The needed type.
        expected: Dtype,
        /// The type in the file.
        found: Dtype,
    },
    /// Its shape does not match the configuration.
    Shape,
    /// The `int8_layout` metadata is unknown, or does not fit the tensor
    /// ([`Int8Layout::Interleaved4`] needs one scale per row, rows in fours
    /// and columns in eights).
    Layout,
}

/// A weights-loading error: which tensor, and what is wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorError {
    /// The tensor.
    pub tensor: TensorName,
    /// The problem.
    pub problem: TensorProblem,
}

/// A vector of f32 stored little-endian in the file (not necessarily aligned).
#[derive(Clone, Copy, Debug)]
pub struct F32Bytes<'a>(pub &'a [u8]);

impl<'a> F32Bytes<'a> {
    /// The values in order.
    pub fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// The order of an int8 matrix's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Layout {
    /// Row after row: `[rows, cols]`, as `host-trainer export` writes it.
    Rows,
    /// Blocks of four rows whose 4-byte words alternate: row `4b + i`'s word
    /// `j` (columns `4j..4j + 4`) is at byte `4b·cols + 16j + 4i`. One 8-byte
    /// load then fetches a word of two rows: the Cortex-M4 kernel's order,
    /// written into the image by the firmware's build (metadata
    /// `int8_layout` = `rows4`; the layer matrices only, never the
    /// embedding). See [`interleave_rows4`].
    Interleaved4,
}

/// Reorder the int8 matrix `rows` (`[n, cols]` row after row, `n` a multiple
/// of 4) into `out` in [`Int8Layout::Interleaved4`] order. Returns `false`,
/// writing nothing, if the sizes do not fit.
pub fn interleave_rows4(rows: &[u8], cols: usize, out: &mut [u8]) -> bool {
    if cols == 0
        || !cols.is_multiple_of(4)
        || rows.len() != out.len()
        || !rows.len().is_multiple_of(4 * cols)
    {
        return false;
    }
    for (block, dst) in rows
        .chunks_exact(4 * cols)
        .zip(out.chunks_exact_mut(4 * cols))
    {
        for (i, row) in block.chunks_exact(cols).enumerate() {
            for (j, word) in row.chunks_exact(4).enumerate() {
                dst[16 * j + 4 * i..][..4].copy_from_slice(word);
            }
        }
    }
    true
}

/// The bytes of a weight matrix, by format.
#[derive(Clone, Copy, Debug)]
pub enum MatrixData<'a> {
    /// f32, row-major.
    F32(&'a [u8]),
    /// f16, row-major.
    F16(&'a [u8]),
    /// int8, row-major, with per-(row, group) f32 scales.
    Int8 {
        /// The quantized weights.
        weights: &'a [u8],
        /// `[rows, cols / group_size]` scales.
        scales: F32Bytes<'a>,
        /// Inputs per scale (the row's width for per-row scales).
        group_size: usize,
        /// The order of the weights.
        layout: Int8Layout,
    },
}

/// A `[rows, cols]` weight matrix (`y = W x` maps `cols` inputs to `rows` outputs).
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    /// Outputs.
    pub rows: usize,
    /// Inputs.
    pub cols: usize,
    /// The data.
    pub data: MatrixData<'a>,
}

impl<'a> Matrix<'a> {
    /// Rows `start..end` as a matrix of their own (`None` if out of range).
    pub fn rows(&self, start: usize, end: usize) -> Option<Matrix<'a>> {
        if start > end || end > self.rows {
            return None;
        }
        let (c, n) = (self.cols, end - start);
        let data = match self.data {
            MatrixData::F32(b) => MatrixData::F32(b.get(start * c * 4..end * c * 4)?),
            MatrixData::F16(b) => MatrixData::F16(b.get(start * c * 2..end * c * 2)?),
            MatrixData::Int8 {
                weights,
                scales,
                group_size,
                layout,
            } => {
                // Interleaved blocks of four rows split only between blocks.
                if layout == Int8Layout::Interleaved4
                    && !(start.is_multiple_of(4) && end.is_multiple_of(4))
                {
                    return None;
                }
                let g = c / group_size.max(1) * 4;
                MatrixData::Int8 {
                    weights: weights.get(start * c..end * c)?,
                    scales: F32Bytes(scales.0.get(start * g..end * g)?),
                    group_size,
                    layout,
                }
            }
        };
        Some(Matrix {
            rows: n,
            cols: c,
            data,
        })
    }
}

/// The weights of one Transformer block.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a> {
    /// RMSNorm before attention.
    pub attention_norm: F32Bytes<'a>,
    /// Query projection.
    pub wq: Matrix<'a>,
    /// Key projection.
    pub wk: Matrix<'a>,
    /// Value projection.
    pub wv: Matrix<'a>,
    /// Output projection.
    pub wo: Matrix<'a>,
    /// RMSNorm before the feed-forward layer.
    pub ffn_norm: F32Bytes<'a>,
    /// SwiGLU gate.
    pub w1: Matrix<'a>,
    /// SwiGLU down projection.
    pub w2: Matrix<'a>,
    /// SwiGLU up projection.
    pub w3: Matrix<'a>,
}

/// All the weights of a model.
#[derive(Clone, Debug)]
pub struct Weights<'a> {
    /// Token embedding, also the output layer.
    pub embedding: Matrix<'a>,
    /// The blocks.
    pub layers: heapless::Vec<Layer<'a>, MAX_LAYERS>,
    /// Final RMSNorm.
    pub norm: F32Bytes<'a>,
}

struct Loader<'f, 'a> {
    file: &'f SafeTensors<'a>,
    config: &'f ModelConfig,
}

impl<'a> Loader<'_, 'a> {
    fn get(&self, layer: Option<u8>, name: &'static str) -> Result<TensorView<'a>, TensorError> {
        let mut full = heapless::String::<64>::new();
        let fits = match layer {
            Some(i) => write!(full, "layers.{i}.{name}"),
            None => full.push_str(name).map_err(|_| core::fmt::Error),
        };
        let error = |problem| TensorError {
            tensor: TensorName { layer, name },
            problem,
        };
        if fits.is_err() {
            return Err(error(TensorProblem::Missing));
        }
        self.file.tensor(&full).ok_or(error(TensorProblem::Missing))
    }

    fn check(
        &self,
        view: &TensorView<'a>,
        layer: Option<u8>,
        name: &'static str,
        dtype: Dtype,
        dims: &[usize],
    ) -> Result<(), TensorError> {
        let error = |problem| TensorError {
            tensor: TensorName { layer, name },
            problem,
        };
        if view.dtype != dtype {
            return Err(error(TensorProblem::Dtype {
                expected: dtype,
                found: view.dtype,
            }));
        }
        if view.shape.dims() != dims {
            return Err(error(TensorProblem::Shape));
        }
        Ok(())
    }

    fn vector(&self, layer: Option<u8>, name: &'static str) -> Result<F32Bytes<'a>, TensorError> {
        let view = self.get(layer, name)?;
        self.check(&view, layer, name, Dtype::F32, &[self.config.dim])?;
        Ok(F32Bytes(view.data))
    }

    fn matrix(
        &self,
        layer: Option<u8>,
        name: &'static str,
        scales: &'static str,
        rows: usize,
        cols: usize,
    ) -> Result<Matrix<'a>, TensorError> {
        let view = self.get(layer, name)?;
        let data = match self.config.weights {
            WeightFormat::F32 => {
                self.check(&view, layer, name, Dtype::F32, &[rows, cols])?;
                MatrixData::F32(view.data)
            }
            WeightFormat::F16 => {
                self.check(&view, layer, name, Dtype::F16, &[rows, cols])?;
                MatrixData::F16(view.data)
            }
            format @ WeightFormat::Int8 { .. } => {
                let group_size = format.group_for(cols);
                self.check(&view, layer, name, Dtype::I8, &[rows, cols])?;
                let s = self.get(layer, scales)?;
                self.check(&s, layer, scales, Dtype::F32, &[rows, cols / group_size])?;
                let layout = match (layer, self.file.metadata("int8_layout")) {
                    (_, None | Some("rows")) | (None, Some("rows4")) => Int8Layout::Rows,
                    (Some(_), Some("rows4"))
                        if group_size == cols
                            && rows.is_multiple_of(4)
                            && cols.is_multiple_of(8) =>
                    {
                        Int8Layout::Interleaved4
                    }
                    _ => {
                        return Err(TensorError {
                            tensor: TensorName { layer, name },
                            problem: TensorProblem::Layout,
                        })
                    }
                };
                MatrixData::Int8 {
                    weights: view.data,
                    scales: F32Bytes(s.data),
                    group_size,
                    layout,
                }
            }
        };
        Ok(Matrix { rows, cols, data })
    }
}

impl<'a> Weights<'a> {
    /// Resolve and check every tensor the configuration needs.
    pub fn load(file: &SafeTensors<'a>, config: &ModelConfig) -> Result<Self, TensorError> {
        let l = Loader { file, config };
        let (dim, kv, hidden) = (config.dim, config.kv_dim(), config.hidden_dim);
        let mut layers = heapless::Vec::new();
        for i in 0..config.n_layers.min(MAX_LAYERS) {
            let i = Some(i as u8);
            let layer = Layer {
                attention_norm: l.vector(i, "attention_norm.weight")?,
                wq: l.matrix(i, "attention.wq.weight", "attention.wq.scales", dim, dim)?,
                wk: l.matrix(i, "attention.wk.weight", "attention.wk.scales", kv, dim)?,
                wv: l.matrix(i, "attention.wv.weight", "attention.wv.scales", kv, dim)?,
                wo: l.matrix(i, "attention.wo.weight", "attention.wo.scales", dim, dim)?,
                ffn_norm: l.vector(i, "ffn_norm.weight")?,
                w1: l.matrix(
                    i,
                    "feed_forward.w1.weight",
                    "feed_forward.w1.scales",
                    hidden,
                    dim,
                )?,
                w2: l.matrix(
                    i,
                    "feed_forward.w2.weight",
                    "feed_forward.w2.scales",
                    dim,
                    hidden,
                )?,
                w3: l.matrix(
                    i,
                    "feed_forward.w3.weight",
                    "feed_forward.w3.scales",
                    hidden,
                    dim,
                )?,
            };
            // Capacity is MAX_LAYERS and the loop stops there.
            let _ = layers.push(layer);
        }
        Ok(Weights {
            embedding: l.matrix(
                None,
                "tok_embeddings.weight",
                "tok_embeddings.scales",
                config.vocab_size,
                dim,
            )?,
            layers,
            norm: l.vector(None, "norm.weight")?,
        })
    }
}
