//! A training run on disk ([`RunDir`]: its files, open, create, resume),
//! and what is done with it after training ([`finish`]): export for the
//! engine ([`export`]), perplexities float vs quantized, a sample.

pub mod export;
pub mod fsutil;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use serde::Serialize;

use crate::bpe::Bpe;
use crate::config::RunConfig;
use crate::corpus::{Corpus, LoadOptions};
use crate::evaluate::engine_loss;
use crate::export::{export_with_plan, FloatWeights, Precision};
use crate::generate::{generate_engine, to_piece, GenerateOptions};
use crate::midi::{write_midi, ReadOptions};
use crate::model::LanguageModel;
use crate::piece::Piece;
use crate::render::ListenArgs;
use crate::train::{load_model, mean_loss, Dataset};
use kantor_engine::sampler::SamplerConfig;

/// Default int8 group size: 0, one scale per row (and per activation
/// vector). On the shipped student it costs +0.05 % perplexity against
/// groups of 64's +0.03 %, and saves the Cortex-M4 a float rescale per group.
pub const GROUP_SIZE: usize = 0;

/// A run directory: the one place that knows the name of every file of a
/// run, and how a run is opened, created and resumed.
///
/// ```text
/// config.toml             the run's configuration (a RunConfig)
/// bpe.json                its BPE table
/// checkpoint.safetensors  weights, AdamW moments and loop state
/// best.safetensors        the weights with the best validation loss
/// metrics.jsonl           one JSON object per step or evaluation
/// loss.png                the loss curve
/// model.safetensors       the int8 export (engine, firmware)
/// model-f32.safetensors   the f32 export
/// model-PRECISION.safetensors  `host-trainer export`
/// export.json             float vs quantized perplexity
/// sample.mid/.png/.wav    the sample, its piano roll and its audio
/// distill.json, baseline/ a distilled run: the comparison, the student
///                         trained without the teacher
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// The run directory at `path` (nothing is read or created).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// `config.toml`.
    pub fn config(&self) -> PathBuf {
        self.file("config.toml")
    }

    /// `bpe.json`.
    pub fn bpe(&self) -> PathBuf {
        self.file("bpe.json")
    }

    /// `checkpoint.safetensors`: the latest checkpoint.
    pub fn checkpoint(&self) -> PathBuf {
        self.file("checkpoint.safetensors")
    }

    /// `best.safetensors`: the best weights by validation loss.
    pub fn best(&self) -> PathBuf {
        self.file("best.safetensors")
    }

    /// `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.file("metrics.jsonl")
    }

    /// `loss.png`: the loss curve.
    pub fn loss_png(&self) -> PathBuf {
        self.file("loss.png")
    }

    /// `model.safetensors`: the int8 export (what the engine and firmware load).
    pub fn model(&self) -> PathBuf {
        self.file("model.safetensors")
    }

    /// `model-f32.safetensors`: the f32 export (the engine's reference path).
    pub fn model_f32(&self) -> PathBuf {
        self.file("model-f32.safetensors")
    }

    /// `model-PRECISION.safetensors`: what `host-trainer export` writes.
    pub fn model_as(&self, precision: &str) -> PathBuf {
        self.file(&format!("model-{precision}.safetensors"))
    }

    /// `export.json`: float vs quantized perplexity of the export.
    pub fn export_report(&self) -> PathBuf {
        self.file("export.json")
    }

    /// `sample.mid`: the sample a finished run leaves behind.
    pub fn sample(&self) -> PathBuf {
        self.file("sample.mid")
    }

    /// `sample.wav`: the sample's audio (when a SoundFont is installed).
    pub fn sample_wav(&self) -> PathBuf {
        self.file("sample.wav")
    }

    /// `sample.png`: the sample's piano roll.
    pub fn sample_png(&self) -> PathBuf {
        self.file("sample.png")
    }

    /// `distill.json`: a distilled run's comparison with and without the teacher.
    pub fn distill_report(&self) -> PathBuf {
        self.file("distill.json")
    }

    /// `baseline/`: a distilled run's student trained without the teacher.
    pub fn baseline(&self) -> RunDir {
        RunDir::new(self.file("baseline"))
    }

    /// Whether a training run has checkpointed here.
    pub fn has_checkpoint(&self) -> bool {
        self.checkpoint().exists()
    }

    /// Open an existing run: its configuration and BPE table.
    pub fn open(&self) -> Result<Run> {
        if !self.path.is_dir() {
            bail!("run directory {} does not exist", self.path.display());
        }
        Ok(Run {
            config: RunConfig::load(&self.config())?,
            bpe: self.load_bpe()?,
            dir: self.clone(),
        })
    }

    fn load_bpe(&self) -> Result<Bpe> {
        let path = self.bpe();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a BPE table", path.display()))
    }

    /// Create the directory of a new run and write its configuration and
    /// BPE table (if it has one).
    pub fn create(&self, config: &RunConfig, bpe: Option<&Bpe>) -> Result<()> {
        std::fs::create_dir_all(&self.path)
            .with_context(|| format!("creating {}", self.path.display()))?;
        config.save(&self.config())?;
        match bpe {
            Some(bpe) => {
                crate::fsutil::write_atomic(&self.bpe(), serde_json::to_string(bpe)?.as_bytes())
            }
            None => Ok(()),
        }
    }

    /// Where a training run here starts. Resuming, the run's own
    /// configuration and BPE table (the directory must hold a checkpoint);
    /// otherwise `config` and `bpe` (the directory must hold none, so that
    /// no run is overwritten).
    pub fn start(self, resume: bool, config: RunConfig, bpe: Option<Bpe>) -> Result<Start> {
        self.check_start(resume)?;
        let (config, bpe) = if resume {
            let run = self.open()?;
            (run.config, Some(run.bpe))
        } else {
            config.validate()?;
            (config, bpe)
        };
        Ok(Start {
            dir: self,
            config,
            bpe,
            resume,
        })
    }

    /// Where a run over a vocabulary of its own (no BPE table, such as the
    /// JSB raster's) starts: as [`RunDir::start`], the model's shape checked
    /// without the REMI vocabulary (by [`RunConfig::load_raw`], which read
    /// `config`).
    pub fn start_raw(self, resume: bool, config: RunConfig) -> Result<Start> {
        self.check_start(resume)?;
        let config = if resume {
            RunConfig::load_raw(&self.config())?
        } else {
            config
        };
        Ok(Start {
            dir: self,
            config,
            bpe: None,
            resume,
        })
    }

    /// A resumed run needs a checkpoint; a new one must not overwrite one.
    fn check_start(&self, resume: bool) -> Result<()> {
        match (resume, self.has_checkpoint()) {
            (true, false) => bail!("{} has no checkpoint to resume", self.path.display()),
            (false, true) => bail!(
                "{} already holds a training run; pass --resume to continue it or choose another --out",
                self.path.display()
            ),
            _ => Ok(()),
        }
    }
}

/// What a training run starts from: [`RunDir::start`] made it.
#[derive(Clone, Debug)]
pub struct Start {
    /// The run directory.
    pub dir: RunDir,
    /// The configuration (the run's own when resuming).
    pub config: RunConfig,
    /// The BPE table (learned on the training split when `None`).
    pub bpe: Option<Bpe>,
    /// Continue the checkpoint in `dir`.
    pub resume: bool,
}

impl Start {
    /// Train for `max_steps` in all, if given. Resuming, this lengthens (or
    /// shortens) the run and is written to its configuration: the cosine
    /// decay then spans the new length, so a finished run extended this way
    /// restarts warm, at the learning rate the longer schedule has at its
    /// step. Early stopping still counts from the run's best evaluation,
    /// which a warm restart's first evaluations seldom beat: set
    /// `patience = 0` in the run's `config.toml` to train the whole length.
    pub fn with_max_steps(mut self, max_steps: Option<usize>) -> Result<Start> {
        let Some(steps) = max_steps else {
            return Ok(self);
        };
        if steps == 0 {
            bail!("--max-steps must be positive");
        }
        if self.resume && self.config.train.max_steps != steps {
            eprintln!(
                "{}: max_steps {} → {steps}",
                self.dir.path().display(),
                self.config.train.max_steps
            );
            self.config.train.max_steps = steps;
            self.config.save(&self.dir.config())?;
        }
        self.config.train.max_steps = steps;
        Ok(self)
    }
}

/// A run directory with its configuration and BPE table.
#[derive(Clone, Debug)]
pub struct Run {
    /// The directory.
    pub dir: RunDir,
    /// Its configuration.
    pub config: RunConfig,
    /// Its BPE table.
    pub bpe: Bpe,
}

impl Run {
    /// Open an existing run ([`RunDir::open`]).
    pub fn open(dir: &Path) -> Result<Run> {
        RunDir::new(dir).open()
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
            "best" => self.dir.best(),
            "last" => self.dir.checkpoint(),
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
        let plan = crate::form::piece_plan(&self.corpus()?.pieces(crate::corpus::Split::Train));
        export_with_plan(&weights, &self.config.model, &self.bpe, precision, &plan)
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

/// After training: export int8 and f32 models, compare perplexities, write a
/// sample (MIDI, piano roll, and audio when a SoundFont is there).
pub fn finish(
    dir: &RunDir,
    device: &candle_core::Device,
    corpus: &Corpus,
    seed: u64,
    listen: &ListenArgs,
) -> Result<()> {
    let run = dir.open()?;
    let dataset = run.dataset(corpus)?;
    let int8 = export_and_measure(
        &run,
        "best",
        &dataset,
        Precision::Int8 {
            group_size: GROUP_SIZE,
        },
        &dir.model(),
        device,
    )?;
    println!(
        "exported {} ({} bytes): validation perplexity {:.3} float (candle) vs {:.3} int8 (engine), {:+.2}%",
        dir.model().display(),
        int8.bytes,
        int8.float_val_ppl,
        int8.engine_val_ppl,
        100.0 * int8.relative_change
    );
    let f32_bytes = run.export("best", Precision::F32)?;
    crate::fsutil::write_atomic(&dir.model_f32(), &f32_bytes)?;
    let model = std::fs::read(dir.model())?;
    // The sample's voices and form drawn as the board draws them.
    let choice = kantor_engine::model::Model::from_bytes(&model)?
        .plan
        .choose(seed, 0);
    let options = GenerateOptions {
        sampler: SamplerConfig::default(),
        seed,
        bars: 16,
        voicing: choice.voicing,
        repeat_bars: choice.repeat_bars,
        ..GenerateOptions::default()
    };
    std::fs::write(dir.export_report(), serde_json::to_string_pretty(&int8)?)?;
    let piece = write_sample(&model, &run.bpe, &options, &dir.sample())?;
    println!(
        "wrote {} ({} notes, 16 bars, seed {seed})",
        dir.sample().display(),
        piece.notes.len()
    );
    if piece.notes.is_empty() {
        println!("the sample has no notes: no piano roll or audio written");
    } else {
        let title = format!("{} sample (seed {seed})", dir.path().display());
        listen.write_sample(&piece, &title, &dir.sample_wav(), &dir.sample_png())?;
    }
    Ok(())
}
