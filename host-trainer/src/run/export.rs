//! Export: float weights → the engine's file (safetensors, read in place).
//!
//! Post-training quantization is symmetric per (output row, group of
//! `group_size` inputs): `scale = max|w| / 127`, `q = round(w / scale)` — the
//! engine's own [`kantor_engine::kernels::quantize`], so host and device agree
//! on every byte. Norm gains stay f32. The file carries the configuration in
//! its metadata and the BPE merges as a `[n, 2]` u16 tensor; a run's file
//! also carries how its training pieces chose their voices and form
//! ([`kantor_engine::plan`]).

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use kantor_engine::config::{WeightFormat, FORMAT};
use kantor_engine::model::BPE_TENSOR;
use kantor_engine::plan::PiecePlan;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

use crate::bpe::Bpe;
use crate::config::ModelConfig;

/// Float weights by tensor name (the engine's names), row-major.
#[derive(Clone, Debug, Default)]
pub struct FloatWeights {
    /// name → (shape, values).
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl FloatWeights {
    /// Copy candle tensors (any device, any float dtype) to host f32.
    pub fn from_tensors<'a>(
        tensors: impl IntoIterator<Item = (&'a String, &'a Tensor)>,
    ) -> Result<Self> {
        let mut out = FloatWeights::default();
        for (name, t) in tensors {
            let shape = t.dims().to_vec();
            let values = t
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()
                .with_context(|| format!("reading tensor {name}"))?;
            out.tensors.insert(name.clone(), (shape, values));
        }
        Ok(out)
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<&[f32]> {
        let (s, v) = self
            .tensors
            .get(name)
            .with_context(|| format!("the model has no tensor {name}"))?;
        if s != shape {
            bail!("tensor {name} has shape {s:?}, the configuration needs {shape:?}");
        }
        Ok(v)
    }
}

/// Weight storage of an exported model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// f32 (the reference).
    F32,
    /// f16.
    F16,
    /// int8 with per-group scales.
    Int8 {
        /// Inputs per scale; 0 for one scale per row (and per activation vector).
        group_size: usize,
    },
}

impl Precision {
    /// The engine's name for it.
    pub fn format(self) -> WeightFormat {
        match self {
            Precision::F32 => WeightFormat::F32,
            Precision::F16 => WeightFormat::F16,
            Precision::Int8 { group_size } => WeightFormat::Int8 { group_size },
        }
    }

    /// Parse `f32`, `f16`, `int8`.
    pub fn parse(name: &str, group_size: usize) -> Result<Precision> {
        Ok(match name {
            "f32" => Precision::F32,
            "f16" => Precision::F16,
            "int8" => Precision::Int8 { group_size },
            other => bail!("unknown precision {other:?} (f32, f16 or int8)"),
        })
    }
}

/// The matrices of a model: (name, rows, cols).
pub fn matrices(config: &ModelConfig) -> Vec<(String, usize, usize)> {
    let (d, kv, h) = (config.dim, config.kv_dim(), config.hidden_dim);
    let mut out = vec![("tok_embeddings".to_string(), config.vocab_size, d)];
    for i in 0..config.n_layers {
        for (name, rows, cols) in [
            ("attention.wq", d, d),
            ("attention.wk", kv, d),
            ("attention.wv", kv, d),
            ("attention.wo", d, d),
            ("feed_forward.w1", h, d),
            ("feed_forward.w2", d, h),
            ("feed_forward.w3", h, d),
        ] {
            out.push((format!("layers.{i}.{name}"), rows, cols));
        }
    }
    out
}

/// The norm gains of a model.
pub fn norms(config: &ModelConfig) -> Vec<String> {
    let mut out: Vec<String> = (0..config.n_layers)
        .flat_map(|i| {
            [
                format!("layers.{i}.attention_norm.weight"),
                format!("layers.{i}.ffn_norm.weight"),
            ]
        })
        .collect();
    out.push("norm.weight".into());
    out
}

/// Quantize a `[rows, cols]` matrix: int8 values and `[rows, cols / group]` scales.
pub fn quantize_matrix(values: &[f32], cols: usize, group_size: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = vec![0i8; values.len()];
    let mut scales = vec![0.0f32; values.len() / group_size];
    for ((row, qrow), srow) in values
        .chunks(cols)
        .zip(q.chunks_mut(cols))
        .zip(scales.chunks_mut(cols / group_size))
    {
        kantor_engine::kernels::quantize(row, group_size, qrow, srow);
    }
    (q, scales)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A tensor of the file: name, dtype, shape, little-endian bytes.
type Buffer = (String, Dtype, Vec<usize>, Vec<u8>);

/// Build the engine's file (without a piece plan: the engine leaves voices
/// and form to the model).
pub fn export(
    weights: &FloatWeights,
    config: &ModelConfig,
    bpe: &Bpe,
    precision: Precision,
) -> Result<Vec<u8>> {
    export_with_plan(weights, config, bpe, precision, &PiecePlan::free())
}

/// Build the engine's file, with how the training pieces chose their voices
/// and form ([`kantor_engine::plan`]).
pub fn export_with_plan(
    weights: &FloatWeights,
    config: &ModelConfig,
    bpe: &Bpe,
    precision: Precision,
    plan: &PiecePlan,
) -> Result<Vec<u8>> {
    check_exportable(config, bpe, precision)?;
    let buffers = tensor_buffers(weights, config, bpe, precision)?;
    let views = buffers
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            Ok((name.clone(), TensorView::new(*dtype, shape.clone(), bytes)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut metadata = metadata(config, precision);
    let list = |counts: &[u32]| {
        counts
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    if *plan != PiecePlan::free() {
        metadata.insert("voice_counts".into(), list(&plan.voice_counts));
        metadata.insert("repeat_bars".into(), list(&plan.repeat_bars));
    }
    Ok(safetensors::serialize(views, Some(metadata))?)
}

/// An error where the configuration, the BPE table or the precision cannot
/// make an engine file.
fn check_exportable(config: &ModelConfig, bpe: &Bpe, precision: Precision) -> Result<()> {
    config.validate()?;
    if config.architecture != crate::config::Architecture::Transformer {
        bail!(
            "only Transformers export to the engine ({:?} does not)",
            config.architecture
        );
    }
    if bpe.vocab_size() != config.vocab_size {
        bail!(
            "the BPE table has {} tokens, the model {}",
            bpe.vocab_size(),
            config.vocab_size
        );
    }
    if let Precision::Int8 { group_size } = precision {
        if group_size != 0
            && (!group_size.is_multiple_of(4)
                || !config.dim.is_multiple_of(group_size)
                || !config.hidden_dim.is_multiple_of(group_size))
        {
            bail!(
                "group size {group_size} must be 0 (one scale per row) or a multiple of 4 dividing dim ({}) and hidden_dim ({})",
                config.dim,
                config.hidden_dim
            );
        }
    }
    Ok(())
}

/// Every tensor of the file, in order: the matrices (with their scales for
/// int8), the norm gains, the BPE merges.
fn tensor_buffers(
    weights: &FloatWeights,
    config: &ModelConfig,
    bpe: &Bpe,
    precision: Precision,
) -> Result<Vec<Buffer>> {
    let mut buffers: Vec<Buffer> = Vec::new();
    for (name, rows, cols) in matrices(config) {
        let values = weights.get(&format!("{name}.weight"), &[rows, cols])?;
        push_matrix(&mut buffers, &name, (rows, cols), values, precision);
    }
    for name in norms(config) {
        let values = weights.get(&name, &[config.dim])?;
        buffers.push((name, Dtype::F32, vec![config.dim], f32_bytes(values)));
    }
    buffers.push((
        BPE_TENSOR.into(),
        Dtype::U16,
        vec![bpe.merges().len(), 2],
        bpe.merge_bytes(),
    ));
    Ok(buffers)
}

/// Append matrix `name` (`[rows, cols]`) at `precision`: its weights, and
/// for int8 its scales after them.
fn push_matrix(
    buffers: &mut Vec<Buffer>,
    name: &str,
    (rows, cols): (usize, usize),
    values: &[f32],
    precision: Precision,
) {
    match precision {
        Precision::F32 => buffers.push((
            format!("{name}.weight"),
            Dtype::F32,
            vec![rows, cols],
            f32_bytes(values),
        )),
        Precision::F16 => buffers.push((
            format!("{name}.weight"),
            Dtype::F16,
            vec![rows, cols],
            values
                .iter()
                .flat_map(|&x| half::f16::from_f32(x).to_bits().to_le_bytes())
                .collect(),
        )),
        Precision::Int8 { .. } => {
            let group_size = precision.format().group_for(cols);
            let (q, scales) = quantize_matrix(values, cols, group_size);
            buffers.push((
                format!("{name}.weight"),
                Dtype::I8,
                vec![rows, cols],
                q.iter().map(|&v| v as u8).collect(),
            ));
            buffers.push((
                format!("{name}.scales"),
                Dtype::F32,
                vec![rows, cols / group_size],
                f32_bytes(&scales),
            ));
        }
    }
}

/// The file's metadata: the format, the configuration, the weight storage.
fn metadata(config: &ModelConfig, precision: Precision) -> HashMap<String, String> {
    let mut metadata = HashMap::new();
    let c = config;
    for (key, value) in [
        ("format", FORMAT.to_string()),
        ("vocab_size", c.vocab_size.to_string()),
        ("dim", c.dim.to_string()),
        ("n_layers", c.n_layers.to_string()),
        ("n_heads", c.n_heads.to_string()),
        ("n_kv_heads", c.n_kv_heads.to_string()),
        ("hidden_dim", c.hidden_dim.to_string()),
        ("context", c.context.to_string()),
        ("rope_theta", c.rope_theta.to_string()),
        ("norm_eps", c.norm_eps.to_string()),
    ] {
        metadata.insert(key.to_string(), value);
    }
    let (name, group) = match precision {
        Precision::F32 => ("f32", None),
        Precision::F16 => ("f16", None),
        Precision::Int8 { group_size } => ("int8", Some(group_size)),
    };
    metadata.insert("weights".into(), name.into());
    match group {
        Some(0) => drop(metadata.insert("group_size".into(), "row".into())),
        Some(g) => drop(metadata.insert("group_size".into(), g.to_string())),
        None => {}
    }
    metadata
}

/// The BPE table stored in an exported model file.
pub fn read_bpe(model_bytes: &[u8]) -> Result<Bpe> {
    let file =
        safetensors::SafeTensors::deserialize(model_bytes).context("not a safetensors file")?;
    let merges = match file.tensor(kantor_engine::model::BPE_TENSOR) {
        Ok(t) => t
            .data()
            .chunks_exact(4)
            .map(|b| {
                [
                    u16::from_le_bytes([b[0], b[1]]),
                    u16::from_le_bytes([b[2], b[3]]),
                ]
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    Ok(Bpe::from_merges(merges)?)
}
