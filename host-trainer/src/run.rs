//! A training run on disk, and what is done with it after training: export
//! for the engine, perplexities float vs quantized, a sample MIDI file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::Device;
use serde::Serialize;

use crate::bpe::Bpe;
use crate::config::RunConfig;
use crate::corpus::{Corpus, LoadOptions};
use crate::evaluate::engine_loss;
use crate::export::{export, FloatWeights, Precision};
use crate::generate::{generate_engine, to_piece, GenerateOptions};
use crate::midi::{write_midi, ReadOptions};
use crate::model::LanguageModel;
use crate::piece::Piece;
use crate::train::{files, load_model, mean_loss, Dataset};

/// The exported int8 model of a run (what the engine and firmware load).
pub const MODEL_FILE: &str = "model.safetensors";
/// The exported f32 model of a run (the engine's reference path).
pub const MODEL_F32_FILE: &str = "model-f32.safetensors";
/// The sample a finished run leaves behind.
pub const SAMPLE_FILE: &str = "sample.mid";
/// The sample's audio (when a SoundFont is installed).
pub const SAMPLE_WAV_FILE: &str = "sample.wav";
/// The sample's piano roll.
pub const SAMPLE_PNG_FILE: &str = "sample.png";
/// Default int8 group size: 0, one scale per row (and per activation
/// vector). On the shipped student it costs +0.05 % perplexity against
/// groups of 64's +0.03 %, and saves the Cortex-M4 a float rescale per group.
pub const GROUP_SIZE: usize = 0;

/// A run directory with its configuration and BPE table.
#[derive(Clone, Debug)]
pub struct Run {
    /// The directory.
    pub dir: PathBuf,
    /// Its configuration.
    pub config: RunConfig,
    /// Its BPE table.
    pub bpe: Bpe,
}

impl Run {
    /// Open an existing run.
    pub fn open(dir: &Path) -> Result<Run> {
        if !dir.is_dir() {
            anyhow::bail!("run directory {} does not exist", dir.display());
        }
        let config = RunConfig::load(&dir.join(files::CONFIG))?;
        let bpe_path = dir.join(files::BPE);
        let text = std::fs::read_to_string(&bpe_path)
            .with_context(|| format!("reading {}", bpe_path.display()))?;
        let bpe = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a BPE table", bpe_path.display()))?;
        Ok(Run {
            dir: dir.to_path_buf(),
            config,
            bpe,
        })
    }

    /// The run's corpus, split as in training.
    pub fn corpus(&self) -> Result<Corpus> {
        Corpus::load(
            &self.config.data.corpus,
            LoadOptions {
                midi: ReadOptions::default(),
                seed: self.config.data.split_seed,
            },
        )
    }

    /// The run's data windows.
    pub fn dataset(&self, corpus: &Corpus) -> Result<Dataset> {
        Dataset::prepare(
            corpus,
            &self.config.model,
            &self.config.train,
            Some(self.bpe.clone()),
        )
    }

    /// A weights file of the run: `best` (default), `last`, or a path.
    pub fn weights_path(&self, which: &str) -> PathBuf {
        match which {
            "best" => self.dir.join(files::BEST),
            "last" => self.dir.join(files::CHECKPOINT),
            path => PathBuf::from(path),
        }
    }

    /// Load the candle model from a weights file of the run.
    pub fn model(&self, which: &str, device: &Device) -> Result<Box<dyn LanguageModel>> {
        let path = self.weights_path(which);
        if !path.exists() {
            anyhow::bail!(
                "{} does not exist (has the run evaluated yet?)",
                path.display()
            );
        }
        Ok(load_model(&self.config.model, &path, device)?.0)
    }

    /// Export a weights file of the run for the engine.
    pub fn export(&self, which: &str, precision: Precision) -> Result<Vec<u8>> {
        let path = self.weights_path(which);
        let (tensors, _) = crate::checkpoint::load(&path, &Device::Cpu)?;
        let names = crate::export::matrices(&self.config.model)
            .into_iter()
            .map(|(n, _, _)| format!("{n}.weight"))
            .chain(crate::export::norms(&self.config.model));
        let mut weights = FloatWeights::default();
        for name in names {
            let t = tensors
                .get(&name)
                .with_context(|| format!("{} lacks tensor {name}", path.display()))?;
            let one = FloatWeights::from_tensors([(&name, t)])?;
            weights.tensors.extend(one.tensors);
        }
        export(&weights, &self.config.model, &self.bpe, precision)
    }
}

/// Float and quantized validation figures of an export.
#[derive(Clone, Debug, Serialize)]
pub struct ExportReport {
    /// Validation perplexity of the float model (candle).
    pub float_val_ppl: f64,
    /// Validation perplexity of the exported model, computed by the engine.
    pub engine_val_ppl: f64,
    /// Relative difference.
    pub relative_change: f64,
    /// Size of the exported file.
    pub bytes: usize,
}

/// Export, save and measure weights of a run (`which`: best, last or a file).
pub fn export_and_measure(
    run: &Run,
    which: &str,
    dataset: &Dataset,
    precision: Precision,
    out: &Path,
    device: &Device,
) -> Result<ExportReport> {
    let bytes = run.export(which, precision)?;
    crate::fsutil::write_atomic(out, &bytes)?;
    let model = run.model(which, device)?;
    let float = mean_loss(
        model.as_ref(),
        &dataset.valid,
        run.config.train.batch_size,
        device,
    )?
    .exp();
    let engine = engine_loss(&bytes, &dataset.valid)?.exp();
    Ok(ExportReport {
        float_val_ppl: float,
        engine_val_ppl: engine,
        relative_change: engine / float - 1.0,
        bytes: bytes.len(),
    })
}

/// Generate a sample with the engine from an exported model, write it as
/// MIDI and return it.
pub fn write_sample(
    model_bytes: &[u8],
    bpe: &Bpe,
    options: &GenerateOptions,
    out: &Path,
) -> Result<Piece> {
    let tokens = generate_engine(model_bytes, &[], options)?;
    let decoded = to_piece(&tokens, bpe)?;
    crate::fsutil::write_atomic(out, &write_midi(&decoded.piece))?;
    Ok(decoded.piece)
}
