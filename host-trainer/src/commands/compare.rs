//! `host-trainer compare`: the comparative study (see [`crate::study`]).

use std::path::PathBuf;

use anyhow::Result;

use super::CommonArgs;
use crate::study::compare::{markdown, run as run_study, StudyPreset};

/// Arguments of `host-trainer compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// `tiny` (minutes, for CI) or `full` (the README's table).
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// The JSB Chorales JSON (official split).
    #[arg(long, default_value = "data/jsb-chorales/Jsb16thSeparated.json")]
    pub jsb: PathBuf,
    /// Output directory: table.md, results.json, pitch-histograms.png, samples/, one run per token model.
    #[arg(long, default_value = "runs/compare")]
    pub out: PathBuf,
    /// Keep the families an earlier, killed run into the same `--out` finished.
    #[arg(long)]
    pub resume: bool,
    /// --device, --json, --quiet.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Run the command.
pub fn run(args: &CompareArgs) -> Result<i32> {
    let preset = StudyPreset::named(&args.preset)?;
    let device = args.common.device()?;
    let study = run_study(&args.jsb, &preset, &args.out, &device, args.resume)?;
    println!("{}", markdown(&study));
    println!("written to {}", args.out.display());
    Ok(0)
}
