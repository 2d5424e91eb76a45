//! `host-trainer tokenize`: show the tokens of MIDI files, or prove the round
//! trip MIDI → REMI → BPE → REMI → notes loses nothing beyond the grid.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kantor_engine::vocab::Token;

use crate::bpe::Bpe;
use crate::corpus::midi_files;
use crate::data::round_trip::{self, FileOutcome};
use crate::midi::{read_midi, MidiScore, ReadOptions};
use crate::remi;

/// Arguments of `host-trainer tokenize`.
#[derive(Debug, clap::Args)]
pub struct TokenizeArgs {
    /// MIDI files, or directories searched for .mid/.midi files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Encode, apply BPE, decode and compare the notes with the originals
    /// (quantised to the vocabulary's grid). Exit code 1 if any note is lost or changed.
    #[arg(long)]
    pub roundtrip: bool,
    /// BPE table (bpe.json of a training run). Default: learn one from the inputs.
    #[arg(long)]
    pub bpe: Option<PathBuf>,
    /// Vocabulary size of the BPE learned from the inputs.
    #[arg(long, default_value_t = 1024)]
    pub vocab_size: usize,
    /// Keep notes on the drum channel (10).
    #[arg(long)]
    pub drums: bool,
}

fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(midi_files(p)?);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn read(path: &Path, options: ReadOptions) -> Result<MidiScore, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    read_midi(&bytes, options).map_err(|e| e.to_string())
}

/// Run the command; returns the process exit code.
pub fn run(args: &TokenizeArgs) -> Result<i32> {
    let options = ReadOptions {
        include_drums: args.drums,
    };
    let files = expand_paths(&args.paths)?;
    let scores: Vec<(PathBuf, Result<MidiScore, String>)> = files
        .into_iter()
        .map(|f| (f.clone(), read(&f, options)))
        .collect();
    if !args.roundtrip {
        return Ok(print_tokens(&scores));
    }
    let bpe = match &args.bpe {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a BPE table", path.display()))?
        }
        None => {
            let pieces: Vec<Vec<u16>> = scores
                .iter()
                .filter_map(|(_, s)| s.as_ref().ok()?.to_piece().ok())
                .map(|p| remi::encode_ids(&p))
                .collect();
            Bpe::train(&pieces, args.vocab_size)
        }
    };
    Ok(print_round_trips(&scores, &bpe))
}

/// Print each file's REMI tokens; the exit code (1 if any file failed).
fn print_tokens(scores: &[(PathBuf, Result<MidiScore, String>)]) -> i32 {
    let mut failed = 0;
    for (path, score) in scores {
        match score
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|s| s.to_piece().map_err(|e| e.to_string()))
        {
            Ok(piece) => {
                let tokens: Vec<String> =
                    remi::encode(&piece).iter().map(Token::to_string).collect();
                println!("{}: {}", path.display(), tokens.join(" "));
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: {e}", path.display());
            }
        }
    }
    i32::from(failed > 0)
}

/// Round trip every file and print a line each and the totals; the exit
/// code (1 if any note was lost or changed, or a file was unreadable).
fn print_round_trips(scores: &[(PathBuf, Result<MidiScore, String>)], bpe: &Bpe) -> i32 {
    let (mut files, mut notes, mut mismatched, mut unreadable, mut tokens, mut bpe_tokens) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    for (path, score) in scores {
        files += 1;
        match round_trip::check(score, bpe) {
            FileOutcome::Checked(r) => {
                notes += r.notes;
                mismatched += r.mismatched;
                tokens += r.tokens;
                bpe_tokens += r.bpe_tokens;
                let status = if r.mismatched == 0 && r.decode_errors == 0 {
                    "ok"
                } else {
                    "MISMATCH"
                };
                print!(
                    "{status:8} {:>6} notes {:>7} tokens {:>7} bpe  {}",
                    r.notes,
                    r.tokens,
                    r.bpe_tokens,
                    path.display()
                );
                if r.mismatched > 0 || r.decode_errors > 0 {
                    print!(
                        "  ({} mismatched, {} decode errors; {})",
                        r.mismatched,
                        r.decode_errors,
                        r.first_difference.unwrap_or_default()
                    );
                    mismatched += r.decode_errors;
                }
                println!();
            }
            FileOutcome::Unreadable(e) => {
                unreadable += 1;
                println!("{:8} {}: {e}", "ERROR", path.display());
            }
        }
    }
    print!("{files} files, {notes} notes, {mismatched} mismatched");
    if unreadable > 0 {
        print!(", {unreadable} unreadable");
    }
    println!();
    if notes > 0 {
        println!(
            "tokens per note: {:.3} base, {:.3} with BPE ({} tokens)",
            tokens as f64 / notes as f64,
            bpe_tokens as f64 / notes as f64,
            bpe.vocab_size()
        );
    }
    i32::from(mismatched > 0 || unreadable > 0)
}
