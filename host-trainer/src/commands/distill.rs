//! `host-trainer distill`: train a small student on a teacher's soft targets
//! (KL divergence at a temperature, mixed with the hard-label loss), and
//! report the student's perplexity with and without distillation.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::CommonArgs;
use crate::checkpoint;
use crate::config::RunConfig;
use crate::run::{Run, RunDir};
use crate::train::{train, Teacher, TrainSummary};

/// Arguments of `host-trainer distill`.
#[derive(Debug, clap::Args)]
pub struct DistillArgs {
    /// The teacher's run directory.
    #[arg(long)]
    pub teacher: PathBuf,
    /// Student preset (its vocabulary and data follow the teacher).
    #[arg(long, default_value = "student")]
    pub preset: String,
    /// A TOML run configuration for the student instead of the preset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Student run directory.
    #[arg(long, default_value = "runs/distilled")]
    pub out: PathBuf,
    /// Softmax temperature of the soft targets.
    #[arg(long, default_value_t = 2.0)]
    pub temperature: f64,
    /// Weight of the distillation term (the rest weighs the hard labels).
    #[arg(long, default_value_t = 0.7)]
    pub alpha: f64,
    /// A run of the same student trained without distillation; default:
    /// train one in OUT/baseline with the same settings.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Override the number of optimizer steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Continue an interrupted distillation in --out.
    #[arg(long)]
    pub resume: bool,
    /// --device, --json, --quiet.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The comparison.
#[derive(Debug, Serialize)]
pub struct DistillReport {
    /// The distilled student.
    pub distilled: TrainSummary,
    /// Best validation perplexity of the student trained without distillation.
    pub baseline_val_ppl: f64,
    /// Best validation perplexity of the teacher.
    pub teacher_val_ppl: Option<f64>,
}

fn best_ppl(dir: &RunDir) -> Result<f64> {
    let path = dir.checkpoint();
    let (_, meta) = checkpoint::load(&path, &candle_core::Device::Cpu)?;
    let state = checkpoint::state_of(&meta, &path)?;
    Ok(state.best_val_loss.unwrap_or(f64::NAN).exp())
}

/// The student's configuration: `--config` or `--preset`, on the teacher's
/// vocabulary and data.
fn student_config(args: &DistillArgs, teacher_run: &Run) -> Result<RunConfig> {
    let mut config = match &args.config {
        Some(path) => RunConfig::load(path)?,
        None => RunConfig::preset(&args.preset)?,
    };
    config.model.vocab_size = teacher_run.config.model.vocab_size;
    config.data = teacher_run.config.data.clone();
    if let Some(s) = args.max_steps {
        config.train.max_steps = s;
    }
    config.validate()?;
    Ok(config)
}

/// Run the command.
pub fn run(args: &DistillArgs) -> Result<i32> {
    let device = args.common.device()?;
    let teacher_run = Run::open(&args.teacher)?;
    let config = student_config(args, &teacher_run)?;
    let corpus = teacher_run.corpus()?;
    let teacher = Teacher {
        model: teacher_run.model("best", &device)?,
        temperature: args.temperature,
        alpha: args.alpha,
    };
    eprintln!(
        "distilling {} into {}",
        args.teacher.display(),
        args.out.display()
    );
    let out = RunDir::new(&args.out);
    let start = out
        .clone()
        .start(args.resume, config.clone(), Some(teacher_run.bpe.clone()))?
        .with_max_steps(args.max_steps)?;
    let distilled = train(&corpus, start, &device, Some(&teacher), !args.common.quiet)?;
    if !args.common.json {
        println!("{distilled}");
    }

    let baseline_dir = args
        .baseline
        .as_ref()
        .map_or_else(|| out.baseline(), RunDir::new);
    if args.baseline.is_none() {
        let resume = baseline_dir.has_checkpoint();
        eprintln!(
            "training the same student without distillation in {}",
            baseline_dir.path().display()
        );
        let start = baseline_dir
            .clone()
            .start(resume, config, Some(teacher_run.bpe.clone()))?
            .with_max_steps(args.max_steps)?;
        let summary = train(&corpus, start, &device, None, !args.common.quiet)?;
        if !args.common.json {
            println!("{summary}");
        }
    }
    let report = DistillReport {
        baseline_val_ppl: best_ppl(&baseline_dir)?,
        teacher_val_ppl: best_ppl(&RunDir::new(&args.teacher)).ok(),
        distilled,
    };
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "student validation perplexity: {:.3} with distillation, {:.3} without{}",
            report.distilled.best_val_ppl,
            report.baseline_val_ppl,
            report
                .teacher_val_ppl
                .map_or(String::new(), |t| format!(" (teacher {t:.3})"))
        );
    }
    std::fs::write(out.distill_report(), serde_json::to_string_pretty(&report)?)?;
    crate::run::finish(
        &out,
        &device,
        &corpus,
        0,
        &crate::render::ListenArgs::default(),
    )?;
    Ok(0)
}
