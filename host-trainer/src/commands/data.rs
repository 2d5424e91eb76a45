//! `host-trainer data stats`: what a corpus holds and how well BPE compresses it.

use std::path::PathBuf;

use anyhow::Result;

use crate::corpus::{Corpus, LoadOptions};
use crate::data::stats::{stats, Stats};
use crate::midi::ReadOptions;

/// `host-trainer data …`
#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Files, notes, tokens, BPE compression and vocabulary coverage of a corpus.
    Stats(StatsArgs),
}

/// Arguments of `host-trainer data stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Directory of MIDI files, a MIDI file, or JSB Chorales JSON.
    #[arg(long, default_value = "data/bach-chorales-midi")]
    pub corpus: PathBuf,
    /// BPE vocabulary sizes to report (learned on the training split).
    #[arg(long, value_delimiter = ',', default_values_t = [512, 1024])]
    pub vocab_sizes: Vec<usize>,
    /// Seed of the train/valid/test split of plain directories.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep notes on the drum channel (10).
    #[arg(long)]
    pub drums: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Run `data …`.
pub fn run(command: &DataCommand) -> Result<i32> {
    let DataCommand::Stats(args) = command;
    let options = LoadOptions {
        midi: ReadOptions {
            include_drums: args.drums,
        },
        seed: args.seed,
    };
    let corpus = Corpus::load(&args.corpus, options)?;
    let report = stats(
        &corpus,
        &args.corpus.display().to_string(),
        &args.vocab_sizes,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(0)
}

/// The figures as a table.
fn print_table(report: &Stats) {
    println!("corpus: {}", report.corpus);
    for (path, error) in &report.unreadable {
        println!("unreadable: {path}: {error}");
    }
    let mut header = format!(
        "{:<6} {:>6} {:>8} {:>9} {:>9}",
        "split", "files", "notes", "tokens", "tok/note"
    );
    for b in &report.splits[0].bpe {
        header += &format!(
            " {:>11} {:>9}",
            format!("bpe{} tok", b.vocab_size),
            "tok/note"
        );
    }
    println!("{header}");
    for s in &report.splits {
        let mut line = format!(
            "{:<6} {:>6} {:>8} {:>9} {:>9.3}",
            s.split.name(),
            s.files,
            s.notes,
            s.tokens,
            s.tokens_per_note
        );
        for b in &s.bpe {
            line += &format!(" {:>11} {:>9.3}", b.tokens, b.tokens_per_note);
        }
        println!("{line}");
    }
    let coverage: Vec<String> = report
        .coverage
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let name = if i == 0 {
                "base".to_string()
            } else {
                format!("bpe{}", c.vocab_size)
            };
            format!(
                "{name} {}/{} ({:.1}%)",
                c.used,
                c.vocab_size,
                100.0 * c.fraction
            )
        })
        .collect();
    println!("vocabulary coverage: {}", coverage.join(", "));
    for b in &report.splits[0].bpe {
        println!(
            "BPE {}: {:.3} tokens per note on train ({:.2}x fewer tokens than base REMI)",
            b.vocab_size, b.tokens_per_note, b.compression
        );
    }
}
