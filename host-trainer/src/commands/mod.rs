//! The `host-trainer` subcommands, one module each. `main.rs` parses the
//! command line (clap) and calls `run` here.

pub mod compare;
pub mod data;
pub mod distill;
pub mod eval;
pub mod export;
pub mod generate;
pub mod jsb;
pub mod play;
pub mod render;
pub mod tokenize;
pub mod train;

use anyhow::Result;
use candle_core::Device;

use crate::device::{self, DeviceChoice};

/// The flags the commands that train, measure or generate share
/// (flattened into each one's arguments).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct CommonArgs {
    /// Where candle runs (training, float perplexity, candle generation).
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceChoice,
    /// Print the command's report as JSON instead of its text (export and
    /// eval: the figures; train and distill: the summary, in place of its
    /// line, the export's and sample's lines still following; generate and
    /// compare print no report: their results are files).
    #[arg(long)]
    pub json: bool,
    /// No progress bar (train and distill; the others show none).
    #[arg(long)]
    pub quiet: bool,
}

impl CommonArgs {
    /// The device `--device` names.
    pub fn device(&self) -> Result<Device> {
        device::select(self.device)
    }
}
