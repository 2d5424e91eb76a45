//! What a corpus holds and how well BPE compresses it (`host-trainer data
//! stats`).

use std::collections::HashSet;

use kantor_engine::vocab::VOCAB_SIZE;
use serde::Serialize;

use crate::bpe::Bpe;
use crate::corpus::{base_sequences, Corpus, Split};

/// Figures of one split.
#[derive(Debug, Serialize)]
pub struct SplitStats {
    /// Split name.
    pub split: Split,
    /// Pieces.
    pub files: usize,
    /// Notes.
    pub notes: usize,
    /// Base REMI tokens.
    pub tokens: usize,
    /// Base tokens per note.
    pub tokens_per_note: f64,
    /// Per BPE vocabulary: tokens and tokens per note.
    pub bpe: Vec<BpeStats>,
}

/// Figures of one BPE vocabulary on one split.
#[derive(Debug, Serialize)]
pub struct BpeStats {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Tokens after BPE.
    pub tokens: usize,
    /// Tokens per note after BPE.
    pub tokens_per_note: f64,
    /// Base tokens per BPE token.
    pub compression: f64,
}

/// Vocabulary use over the whole corpus.
#[derive(Debug, Serialize)]
pub struct Coverage {
    /// Vocabulary size (base or BPE).
    pub vocab_size: usize,
    /// Distinct ids that occur.
    pub used: usize,
    /// `used / vocab_size`.
    pub fraction: f64,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// The corpus path.
    pub corpus: String,
    /// Files that could not be read, with the reason.
    pub unreadable: Vec<(String, String)>,
    /// Per split.
    pub splits: Vec<SplitStats>,
    /// Base vocabulary coverage, then one entry per BPE vocabulary.
    pub coverage: Vec<Coverage>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Compute the statistics.
pub fn stats(corpus: &Corpus, name: &str, vocab_sizes: &[usize]) -> Stats {
    let base: Vec<(Split, Vec<Vec<u16>>)> = Split::ALL
        .iter()
        .map(|&s| (s, base_sequences(corpus.split(s).iter().map(|e| &e.piece))))
        .collect();
    let largest = vocab_sizes.iter().copied().max().unwrap_or(VOCAB_SIZE);
    let learned = Bpe::train(&base[0].1, largest);
    let tables: Vec<Bpe> = vocab_sizes.iter().map(|&v| learned.truncated(v)).collect();

    let mut used_base = HashSet::new();
    let mut used_bpe: Vec<HashSet<u16>> = vec![HashSet::new(); tables.len()];
    let mut splits = Vec::new();
    for (split, seqs) in &base {
        let notes: usize = corpus
            .split(*split)
            .iter()
            .map(|e| e.piece.notes.len())
            .sum();
        let tokens: usize = seqs.iter().map(Vec::len).sum();
        used_base.extend(seqs.iter().flatten().copied());
        let bpe = tables
            .iter()
            .zip(&mut used_bpe)
            .map(|(table, used)| {
                let encoded: Vec<Vec<u16>> = seqs.iter().map(|s| table.encode(s)).collect();
                used.extend(encoded.iter().flatten().copied());
                let n: usize = encoded.iter().map(Vec::len).sum();
                BpeStats {
                    vocab_size: table.vocab_size(),
                    tokens: n,
                    tokens_per_note: ratio(n, notes),
                    compression: ratio(tokens, n),
                }
            })
            .collect();
        splits.push(SplitStats {
            split: *split,
            files: seqs.len(),
            notes,
            tokens,
            tokens_per_note: ratio(tokens, notes),
            bpe,
        });
    }
    let mut coverage = vec![Coverage {
        vocab_size: VOCAB_SIZE,
        used: used_base.len(),
        fraction: ratio(used_base.len(), VOCAB_SIZE),
    }];
    for (table, used) in tables.iter().zip(&used_bpe) {
        coverage.push(Coverage {
            vocab_size: table.vocab_size(),
            used: used.len(),
            fraction: ratio(used.len(), table.vocab_size()),
        });
    }
    Stats {
        corpus: name.to_string(),
        unreadable: corpus
            .failures
            .iter()
            .map(|f| (f.path.display().to_string(), f.error.clone()))
            .collect(),
        splits,
        coverage,
    }
}
