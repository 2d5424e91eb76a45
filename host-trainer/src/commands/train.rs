//! `host-trainer train`: train a model on a corpus, then export it for the
//! engine and leave a sample in the run directory: MIDI, its piano roll and
//! — when a SoundFont is installed — its audio.

use std::path::PathBuf;

use anyhow::Result;
use kantor_engine::sampler::SamplerConfig;

use crate::config::RunConfig;
use crate::corpus::{Corpus, LoadOptions};
use crate::device::{self, DeviceChoice};
use crate::export::Precision;
use crate::generate::GenerateOptions;
use crate::midi::ReadOptions;
use crate::run::{export_and_measure, write_sample, RunDir, GROUP_SIZE};
use crate::train::{train, TrainSummary};

use super::render::ListenArgs;

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
    /// Where to train.
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceChoice,
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
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// The sample's audio and piano roll (default: sample.wav, sample.png in the run directory).
    #[command(flatten)]
    pub listen: ListenArgs,
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
    // Resuming, the run's own configuration wins; only the device and display may differ.
    let start = RunDir::new(&out).start(args.resume, config, None)?;
    let config = &start.config;
    if !args.no_export {
        args.listen.check()?;
    }
    let device = device::select(args.device)?;
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
    let summary = train(&corpus, start, &device, None, !args.quiet)?;
    report(&summary);
    if !args.no_export {
        finish(&RunDir::new(&out), &device, &corpus, 0, &args.listen)?;
    }
    Ok(0)
}

/// Print a training summary.
pub fn report(s: &TrainSummary) {
    println!(
        "trained {} steps{} on {}: best validation loss {:.4} (perplexity {:.3}) at step {}; unigram baseline perplexity {:.2}; {:.0} tokens/s; {:.0} s",
        s.steps,
        if s.stopped_early { " (early stop)" } else { "" },
        s.device,
        s.best_val_loss,
        s.best_val_ppl,
        s.best_step,
        s.unigram_val_ppl,
        s.tokens_per_s,
        s.elapsed_s
    );
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
    let options = GenerateOptions {
        sampler: SamplerConfig::default(),
        seed,
        bars: 16,
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
