//! `host-trainer jsb`: the JSB Chorales benchmark in its published setting
//! (16th-note grid, SATB raster, note-wise NLL on the official validation
//! split; see [`crate::study::raster`]), trained as long as a run needs: the
//! trainer's own loop, with evaluations, best weights, checkpoints and
//! `--resume`. Writes `jsb.json` into the run directory.

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::Serialize;

use super::CommonArgs;
use crate::config::RunConfig;
use crate::device;
use crate::run::RunDir;
use crate::study::raster::{self, PUBLISHED};
use crate::train::{load_model, TrainSummary, Trainer};

/// Arguments of `host-trainer jsb`.
#[derive(Debug, clap::Args)]
pub struct JsbArgs {
    /// A TOML run configuration ([model], [train], [data]: `corpus` is the JSB JSON).
    #[arg(long, default_value = "host-trainer/configs/jsb-raster.toml")]
    pub config: PathBuf,
    /// Run directory.
    #[arg(long, default_value = "runs/jsb")]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Override the number of optimizer steps (resuming: extend a finished run).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// --device, --json, --quiet.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// What `jsb` measured (`jsb.json`).
#[derive(Clone, Debug, Serialize)]
pub struct JsbReport {
    /// Note-wise NLL of the validation chorales, each from its start (the published setting).
    pub valid_nll: f64,
    /// The same on the test chorales.
    pub test_nll: f64,
    /// Validation tokens scored (four per 16th-note step).
    pub valid_tokens: usize,
    /// Validation NLL over side-by-side windows of `context` tokens, each
    /// starting cold (what `compare`'s short benchmark reports).
    pub valid_nll_windows: f64,
    /// Context of the model, in tokens (four per 16th-note step).
    pub context: usize,
    /// The training run.
    pub training: TrainSummary,
}

/// Run the command.
pub fn run(args: &JsbArgs) -> Result<i32> {
    let config = RunConfig::load_raw(&args.config)?;
    if config.model.vocab_size != raster::VOCAB {
        bail!(
            "{}: model.vocab_size must be {} (the raster vocabulary: Bos, rest and pitches {}–{})",
            args.config.display(),
            raster::VOCAB,
            raster::LOW,
            raster::HIGH
        );
    }
    let start = RunDir::new(&args.out)
        .start_raw(args.resume, config)?
        .with_max_steps(args.max_steps)?;
    let config = start.config.clone();
    let device = args.common.device()?;
    let splits = raster::load(&config.data.corpus, config.train.transpose)?;
    let stride = config.train.window_stride(config.model.context);
    let data = raster::dataset(&splits, config.model.context, stride)?;
    eprintln!(
        "training {} ({} parameters) on {} ({} train chorales with transpositions / {} valid / {} test) on {}",
        args.out.display(),
        config.model.parameters(),
        config.data.corpus.display(),
        splits.train.len(),
        splits.valid.len(),
        splits.test.len(),
        device::name(&device)
    );
    let training = Trainer::with_data(data, start, &device, None, !args.common.quiet)?.run()?;
    let (model, _) = load_model(&config.model, &RunDir::new(&args.out).best(), &device)?;
    let valid = raster::chorale_nll(model.as_ref(), &splits.valid, &device)?;
    let report = JsbReport {
        valid_nll: valid.mean(),
        test_nll: raster::chorale_nll(model.as_ref(), &splits.test, &device)?.mean(),
        valid_tokens: valid.tokens,
        // The trainer measured the best weights on these windows when it kept them.
        valid_nll_windows: training.best_val_loss,
        context: config.model.context,
        training,
    };
    crate::fsutil::write_atomic(
        &args.out.join("jsb.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(0)
}

fn print_report(r: &JsbReport) {
    let t = &r.training;
    println!("{t}");
    println!(
        "JSB Chorales, note-wise NLL (best weights, step {}; {} parameters):",
        t.best_step, t.parameters
    );
    println!(
        "  valid {:.3}  (each chorale from its start; context {} tokens)",
        r.valid_nll, r.context
    );
    println!("  test  {:.3}", r.test_nll);
    println!(
        "  valid {:.3}  (side-by-side windows, as `compare`)",
        r.valid_nll_windows
    );
    println!("published (valid):");
    for (name, nll) in PUBLISHED {
        println!("  {nll:.3}  {name}");
    }
}
