//! Checkpoints: model weights, optimizer moments and the loop's state in one
//! safetensors file, written atomically, so a killed run resumes losing nothing.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

/// Where the training loop stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps completed.
    pub step: usize,
    /// Best validation loss so far.
    pub best_val_loss: Option<f64>,
    /// Step of the best validation loss.
    pub best_step: usize,
    /// Evaluations since the best one (early stopping).
    pub evals_since_best: usize,
    /// Training time so far, seconds.
    pub elapsed_s: f64,
    /// Training tokens consumed so far.
    pub tokens_seen: u64,
    /// Early stopping ended the run.
    pub stopped_early: bool,
}

/// Save f32 tensors and string metadata to `path`, atomically.
pub fn save(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let mut buffers = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        buffers.push((name.clone(), t.dims().to_vec(), bytes));
    }
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            Ok((
                name.clone(),
                safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    shape.clone(),
                    bytes,
                )?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::serialize(views, Some(metadata))?;
    write_atomic(path, &bytes)
}

/// Tensors and metadata of a file written by [`save`].
pub fn load(
    path: &Path,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let file = safetensors::SafeTensors::deserialize(&bytes).with_context(|| {
        format!(
            "{} is not a valid checkpoint (corrupt or truncated)",
            path.display()
        )
    })?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)?;
    let mut tensors = HashMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            bail!(
                "{}: tensor {name} is {:?}, checkpoints hold f32",
                path.display(),
                view.dtype()
            );
        }
        let t = Tensor::from_raw_buffer(view.data(), DType::F32, view.shape(), device)?;
        tensors.insert(name, t);
    }
    Ok((tensors, meta.metadata().clone().unwrap_or_default()))
}

/// The training state stored in a checkpoint's metadata.
pub fn state_of(metadata: &HashMap<String, String>, path: &Path) -> Result<TrainState> {
    let json = metadata.get("train_state").with_context(|| {
        format!(
            "{} has no training state: not a training checkpoint",
            path.display()
        )
    })?;
    serde_json::from_str(json)
        .with_context(|| format!("{}: unreadable training state", path.display()))
}
