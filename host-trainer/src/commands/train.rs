//! `host-trainer train`: train a model on a corpus, then export it for the
//! engine and leave a sample in the run directory: MIDI, its piano roll and
//! — when a SoundFont is installed — its audio.

use std::path::PathBuf;

use anyhow::Result;

use super::CommonArgs;
use crate::config::RunConfig;
use crate::corpus::{Corpus, LoadOptions};
use crate::device;
use crate::midi::ReadOptions;
use crate::render::ListenArgs;
use crate::run::{finish, RunDir};
use crate::train::train;

/// Arguments of `host-trainer train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Model and training preset: tiny, student, teacher or default (the student on the chorales).
    #[arg(long, default_value = "default")]
    pub preset: String,
    /// A TOML run configuration ([model], [train], [data]); overrides the preset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Corpus: a directory of MIDI files, a MIDI file, or JSB Chorales JSON.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Run directory (default runs/PRESET).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Override the number of optimizer steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Override the seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the BPE vocabulary size (512 or 1024, or any size above the base vocabulary).
    #[arg(long)]
    pub vocab_size: Option<usize>,
    /// Skip exporting and writing a sample.
    #[arg(long)]
    pub no_export: bool,
    /// The sample's audio and piano roll (default: sample.wav, sample.png in the run directory).
    #[command(flatten)]
    pub listen: ListenArgs,
    /// --device, --json, --quiet.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Run the command.
pub fn run(args: &TrainArgs) -> Result<i32> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&args.preset));
    let mut config = match &args.config {
        Some(path) => RunConfig::load(path)?,
        None => RunConfig::preset(&args.preset)?,
    };
    if let Some(c) = &args.corpus {
        config.data.corpus = c.clone();
    }
    if let Some(s) = args.max_steps {
        config.train.max_steps = s;
    }
    if let Some(s) = args.seed {
        config.train.seed = s;
    }
    if let Some(v) = args.vocab_size {
        config.model.vocab_size = v;
    }
    // Resuming, the run's own configuration wins; only the device, the
    // display and the length (--max-steps) may differ.
    let start = RunDir::new(&out)
        .start(args.resume, config, None)?
        .with_max_steps(args.max_steps)?;
    let config = &start.config;
    if !args.no_export {
        args.listen.check()?;
    }
    let device = args.common.device()?;
    let corpus = Corpus::load(
        &config.data.corpus,
        LoadOptions {
            midi: ReadOptions::default(),
            seed: config.data.split_seed,
        },
    )?;
    for f in &corpus.failures {
        eprintln!("skipped {}: {}", f.path.display(), f.error);
    }
    eprintln!(
        "training {} ({} parameters) on {} ({} train / {} valid / {} test pieces) on {}",
        out.display(),
        config.model.parameters(),
        config.data.corpus.display(),
        corpus.train.len(),
        corpus.valid.len(),
        corpus.test.len(),
        device::name(&device)
    );
    let summary = train(&corpus, start, &device, None, !args.common.quiet)?;
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{summary}");
    }
    if !args.no_export {
        finish(&RunDir::new(&out), &device, &corpus, 0, &args.listen)?;
    }
    Ok(0)
}
