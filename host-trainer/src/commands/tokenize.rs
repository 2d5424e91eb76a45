//! `host-trainer tokenize`: show the tokens of MIDI files, or prove the round
//! trip MIDI → REMI → BPE → REMI → notes loses nothing beyond the grid.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kantor_engine::decoder::Note;
use kantor_engine::vocab::Token;

use crate::bpe::Bpe;
use crate::corpus::midi_files;
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

/// What happened to one file.
#[derive(Debug)]
pub enum FileOutcome {
    /// Read and round-tripped.
    Checked(RoundTrip),
    /// Could not be read.
    Unreadable(String),
}

/// Round-trip figures of one file.
#[derive(Debug, Default)]
pub struct RoundTrip {
    /// Notes in the file (after the reader's documented repairs).
    pub notes: usize,
    /// Notes lost or changed beyond the grid.
    pub mismatched: usize,
    /// Base REMI tokens.
    pub tokens: usize,
    /// Tokens after BPE.
    pub bpe_tokens: usize,
    /// Tokens the decoder rejected (0 for a correct tokenizer).
    pub decode_errors: usize,
    /// First difference, for the report.
    pub first_difference: Option<String>,
}

/// Round trip one score: returns per-file figures.
pub fn round_trip(score: &MidiScore, bpe: &Bpe) -> Result<RoundTrip> {
    let mut expected: Vec<Note> = score
        .notes
        .iter()
        .map(|n| score.quantise_note(n))
        .collect::<Result<_, _>>()?;
    let piece = score.to_piece()?;
    let base = remi::encode_ids(&piece);
    let compressed = bpe.encode(&base);
    let expanded = bpe.decode(&compressed)?;
    let decoded = remi::decode_ids(&expanded);
    let mut got = decoded.piece.notes;
    sort_notes(&mut expected);
    sort_notes(&mut got);
    let (missing, extra) = multiset_difference(&expected, &got);
    let mut first_difference = missing
        .first()
        .map(|n| format!("lost {n:?}"))
        .or_else(|| extra.first().map(|n| format!("gained {n:?}")));
    if expanded != base && first_difference.is_none() {
        first_difference = Some("BPE decode differs from the base tokens".into());
    }
    Ok(RoundTrip {
        notes: expected.len(),
        mismatched: missing.len().max(extra.len()) + usize::from(expanded != base),
        tokens: base.len(),
        bpe_tokens: compressed.len(),
        decode_errors: decoded.errors.len(),
        first_difference,
    })
}

fn sort_notes(notes: &mut [Note]) {
    notes.sort_unstable_by_key(|n| (n.onset, n.voice, n.pitch, n.duration, n.velocity));
}

/// Elements of `a` not matched in `b`, and of `b` not matched in `a` (both sorted).
fn multiset_difference(a: &[Note], b: &[Note]) -> (Vec<Note>, Vec<Note>) {
    let key = |n: &Note| (n.onset, n.voice, n.pitch, n.duration, n.velocity);
    let (mut i, mut j) = (0, 0);
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if key(x) == key(y) => {
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if key(x) < key(y) => {
                only_a.push(*x);
                i += 1;
            }
            (Some(_), Some(y)) => {
                only_b.push(*y);
                j += 1;
            }
            (Some(x), None) => {
                only_a.push(*x);
                i += 1;
            }
            (None, Some(y)) => {
                only_b.push(*y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (only_a, only_b)
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
        let mut failed = 0;
        for (path, score) in &scores {
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
        return Ok(i32::from(failed > 0));
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

    let (mut files, mut notes, mut mismatched, mut unreadable, mut tokens, mut bpe_tokens) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    for (path, score) in &scores {
        files += 1;
        let outcome = match score {
            Ok(s) => round_trip(s, &bpe).map_or_else(
                |e| FileOutcome::Unreadable(e.to_string()),
                FileOutcome::Checked,
            ),
            Err(e) => FileOutcome::Unreadable(e.clone()),
        };
        match outcome {
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
    Ok(i32::from(mismatched > 0 || unreadable > 0))
}
