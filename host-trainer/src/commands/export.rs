//! `host-trainer export`: quantize a run's weights into the engine's file and
//! compare float and quantized validation perplexity (the quantized one
//! computed by the engine itself).

use std::path::PathBuf;

use anyhow::Result;

use super::CommonArgs;
use crate::export::Precision;
use crate::run::{export_and_measure, Run, GROUP_SIZE};

/// Arguments of `host-trainer export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The run directory.
    #[arg(long)]
    pub run: PathBuf,
    /// Weights to export: best, last, or a weights file.
    #[arg(long, default_value = "best")]
    pub weights: String,
    /// Weight format: int8, f16 or f32.
    #[arg(long, default_value = "int8")]
    pub precision: String,
    /// Inputs per int8 scale; 0 for one scale per row (the fastest on a Cortex-M4).
    #[arg(long, default_value_t = GROUP_SIZE)]
    pub group_size: usize,
    /// Output file (default RUN/model-PRECISION.safetensors).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// --device, --json, --quiet.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Run the command.
pub fn run(args: &ExportArgs) -> Result<i32> {
    let run = Run::open(&args.run)?;
    let precision = Precision::parse(&args.precision, args.group_size)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| run.dir.model_as(&args.precision));
    let device = args.common.device()?;
    let corpus = run.corpus()?;
    let dataset = run.dataset(&corpus)?;
    let report = export_and_measure(&run, &args.weights, &dataset, precision, &out, &device)?;
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "wrote {} ({} bytes, {})\nvalidation perplexity: float {:.4} (candle), {} {:.4} (engine), {:+.2}%",
            out.display(),
            report.bytes,
            args.precision,
            report.float_val_ppl,
            args.precision,
            report.engine_val_ppl,
            100.0 * report.relative_change
        );
    }
    Ok(0)
}
