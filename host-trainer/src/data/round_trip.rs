//! The tokenizer's round trip: MIDI → REMI → BPE → REMI → notes must lose
//! nothing beyond the vocabulary's grid (`host-trainer tokenize --roundtrip`).

use anyhow::Result;
use kantor_engine::decoder::Note;

use crate::bpe::Bpe;
use crate::midi::MidiScore;
use crate::remi;

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

/// Round trip a file as read: its figures, or why it could not be read.
pub fn check(score: &Result<MidiScore, String>, bpe: &Bpe) -> FileOutcome {
    match score {
        Ok(s) => round_trip(s, bpe).map_or_else(
            |e| FileOutcome::Unreadable(e.to_string()),
            FileOutcome::Checked,
        ),
        Err(e) => FileOutcome::Unreadable(e.clone()),
    }
}
