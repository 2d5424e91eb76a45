//! Measuring models and music.
//!
//! * Perplexity of held-out windows, computed by candle (float checkpoints)
//!   or by the engine itself (exported, possibly quantized, models).
//! * Metrics of generated pieces (Huang & Yang 2020; Mogren 2016; Yang &
//!   Lerch 2020): n-gram repetition of the melodic lines, compression ratio
//!   of the token stream, pitch histogram distance to the training data,
//!   pitch-class entropy, scale consistency, polyphony, empty-beat rate and
//!   the share of ill-formed tokens.

use anyhow::Result;
use kantor_engine::model::Model;
use kantor_engine::session::{Session, SessionOptions};
use kantor_engine::vocab::TICKS_PER_QUARTER;
use serde::Serialize;

use crate::piece::Piece;

/// Mean cross-entropy (nats/token) of an exported model on `windows` of
/// `context + 1` tokens, computed by the engine one token at a time.
pub fn engine_loss(model_bytes: &[u8], windows: &[Vec<u16>]) -> Result<f64> {
    let model = Model::from_bytes(model_bytes)?;
    let options = SessionOptions::for_model(&model);
    let mut memory = vec![0u8; Session::memory_required(&model, options)];
    let mut session = Session::new(&model, options, &mut memory)?;
    let (mut nll, mut n) = (0.0f64, 0usize);
    for w in windows {
        session.reset();
        for pair in w.windows(2) {
            let logits = session.forward(pair[0])?;
            nll -= log_softmax_at(logits, usize::from(pair[1]));
            n += 1;
        }
    }
    Ok(nll / n.max(1) as f64)
}

/// Notes among the targets of `windows` (every token but each window's
/// first): the `Pitch` tokens in the BPE expansions. Dividing a window set's
/// total NLL by it gives nats per note, which compares across vocabularies
/// and tokenizations.
pub fn target_notes(windows: &[Vec<u16>], bpe: &crate::bpe::Bpe) -> usize {
    use kantor_engine::vocab::{Token, TokenKind};
    windows
        .iter()
        .flat_map(|w| w.iter().skip(1))
        .filter_map(|&id| bpe.expansion(id))
        .flatten()
        .filter(|&&base| Token::from_id(base).is_some_and(|t| t.kind() == TokenKind::Pitch))
        .count()
}

fn log_softmax_at(logits: &[f32], index: usize) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let sum: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
    logits
        .get(index)
        .map_or(f64::NEG_INFINITY, |&v| v as f64 - max - sum.ln())
}

/// Metrics of a set of pieces.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct MusicMetrics {
    /// Pieces measured.
    pub pieces: usize,
    /// Notes in them.
    pub notes: usize,
    /// Share of pitch n-grams (per voice, n = 2, 4, 8, 16) that repeat an earlier one in the piece.
    pub ngram_repetition: [f64; 4],
    /// Unique / total REMI token n-grams (n = 2, 4, 8, 16): low means repetitive.
    pub compression_ratio: [f64; 4],
    /// Pitch-class entropy in bits (0–log2 12 ≈ 3.58).
    pub pitch_class_entropy: f64,
    /// Share of notes in the best-fitting major or minor scale, per piece.
    pub scale_consistency: f64,
    /// Mean number of notes sounding, over sixteenth-note steps where any sounds.
    pub polyphony: f64,
    /// Share of beats (quarter notes) inside the piece with no note sounding.
    pub empty_beat_rate: f64,
    /// Share of decoded tokens that were ill-formed (when tokens are known).
    pub ill_formed_rate: f64,
    /// Pitch distribution (128 bins, sums to 1).
    pub pitch_histogram: Vec<f64>,
}

/// The n of the n-gram metrics.
pub const NGRAM_SIZES: [usize; 4] = [2, 4, 8, 16];

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Share of n-grams of `seq` that occurred earlier in it.
pub fn repetition(seq: &[u16], n: usize) -> Option<f64> {
    if seq.len() < n || n == 0 {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    let mut repeats = 0usize;
    let total = seq.len() - n + 1;
    for w in seq.windows(n) {
        if !seen.insert(w) {
            repeats += 1;
        }
    }
    Some(repeats as f64 / total as f64)
}

/// Pitch distribution of pieces (sums to 1; zeros if no notes).
pub fn pitch_histogram(pieces: &[Piece]) -> Vec<f64> {
    let mut h = vec![0.0f64; 128];
    let mut n = 0.0;
    for note in pieces.iter().flat_map(|p| &p.notes) {
        h[usize::from(note.pitch & 0x7f)] += 1.0;
        n += 1.0;
    }
    if n > 0.0 {
        h.iter_mut().for_each(|v| *v /= n);
    }
    h
}

/// Jensen–Shannon divergence (bits, 0–1) between two distributions.
pub fn js_divergence(p: &[f64], q: &[f64]) -> f64 {
    let kl = |a: &[f64], b: &[f64]| -> f64 {
        a.iter()
            .zip(b)
            .filter(|(x, _)| **x > 0.0)
            .map(|(x, y)| x * (x / y).log2())
            .sum()
    };
    let m: Vec<f64> = p.iter().zip(q).map(|(a, b)| 0.5 * (a + b)).collect();
    0.5 * kl(p, &m) + 0.5 * kl(q, &m)
}

const MAJOR: [u8; 7] = [0, 2, 4, 5, 7, 9, 11];
const MINOR: [u8; 7] = [0, 2, 3, 5, 7, 8, 10]; // natural minor

/// Share of a piece's notes in its best-fitting major or (natural) minor scale.
pub(crate) fn scale_consistency(piece: &Piece) -> Option<f64> {
    if piece.notes.is_empty() {
        return None;
    }
    let mut best = 0usize;
    for root in 0..12u8 {
        for scale in [MAJOR, MINOR] {
            let in_scale = piece
                .notes
                .iter()
                .filter(|n| scale.contains(&((n.pitch + 12 - root) % 12)))
                .count();
            best = best.max(in_scale);
        }
    }
    Some(best as f64 / piece.notes.len() as f64)
}

/// Sounding-note counts per 16th step over the piece's span.
fn occupancy(piece: &Piece) -> Vec<u32> {
    let step = TICKS_PER_QUARTER / 4;
    let end = piece.end_tick().div_ceil(step) as usize;
    let mut counts = vec![0u32; end];
    for n in &piece.notes {
        let a = (n.onset / step) as usize;
        let b = (n.onset + n.duration).div_ceil(step) as usize;
        for c in counts.iter_mut().take(b.min(end)).skip(a) {
            *c += 1;
        }
    }
    counts
}

/// The pitches of each voice of `piece`, in order (voices 0–15, the empty ones left out).
pub(crate) fn voice_lines(piece: &Piece) -> Vec<Vec<u16>> {
    (0..16u8)
        .map(|v| {
            piece
                .notes
                .iter()
                .filter(|x| x.voice == v)
                .map(|x| u16::from(x.pitch))
                .collect::<Vec<u16>>()
        })
        .filter(|line| !line.is_empty())
        .collect()
}

/// Measure pieces. `token_streams` (base REMI ids per piece) and
/// `ill_formed` (rejected tokens) are optional.
pub fn music_metrics(
    pieces: &[Piece],
    token_streams: &[Vec<u16>],
    ill_formed: usize,
) -> MusicMetrics {
    let mut m = MusicMetrics {
        pieces: pieces.len(),
        notes: pieces.iter().map(|p| p.notes.len()).sum(),
        ..MusicMetrics::default()
    };
    for (i, &n) in NGRAM_SIZES.iter().enumerate() {
        let reps: Vec<f64> = pieces
            .iter()
            .flat_map(voice_lines)
            .filter_map(|line| repetition(&line, n))
            .collect();
        m.ngram_repetition[i] = mean(&reps);
        let ratios: Vec<f64> = token_streams
            .iter()
            .filter_map(|s| repetition(s, n).map(|r| 1.0 - r))
            .collect();
        m.compression_ratio[i] = mean(&ratios);
    }
    m.pitch_class_entropy = pitch_class_entropy(pieces);
    m.scale_consistency = mean(
        &pieces
            .iter()
            .filter_map(scale_consistency)
            .collect::<Vec<_>>(),
    );
    (m.polyphony, m.empty_beat_rate) = density(pieces);
    let tokens: usize = token_streams.iter().map(Vec::len).sum();
    m.ill_formed_rate = if tokens > 0 {
        ill_formed as f64 / tokens as f64
    } else {
        0.0
    };
    m.pitch_histogram = pitch_histogram(pieces);
    m
}

/// Pitch-class entropy in bits (0 with no notes).
pub(crate) fn pitch_class_entropy(pieces: &[Piece]) -> f64 {
    let mut classes = [0.0f64; 12];
    for n in pieces.iter().flat_map(|p| &p.notes) {
        classes[usize::from(n.pitch % 12)] += 1.0;
    }
    let total: f64 = classes.iter().sum();
    if total > 0.0 {
        -classes
            .iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| (c / total) * (c / total).log2())
            .sum::<f64>()
    } else {
        0.0
    }
}

/// (mean notes sounding where any sound, share of silent beats).
pub(crate) fn density(pieces: &[Piece]) -> (f64, f64) {
    let (mut sounding, mut busy, mut empty_beats, mut beats) = (0u64, 0u64, 0usize, 0usize);
    for p in pieces {
        let occ = occupancy(p);
        for &c in &occ {
            if c > 0 {
                sounding += u64::from(c);
                busy += 1;
            }
        }
        for beat in occ.chunks(4) {
            beats += 1;
            empty_beats += usize::from(beat.iter().all(|&c| c == 0));
        }
    }
    let polyphony = if busy > 0 {
        sounding as f64 / busy as f64
    } else {
        0.0
    };
    let empty = if beats > 0 {
        empty_beats as f64 / beats as f64
    } else {
        0.0
    };
    (polyphony, empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kantor_engine::decoder::Note;

    fn piece(notes: &[(u32, u8, u32, u8)]) -> Piece {
        Piece::new(
            notes
                .iter()
                .map(|&(onset, pitch, duration, voice)| Note {
                    onset,
                    voice,
                    pitch,
                    duration,
                    velocity: 90,
                })
                .collect(),
            vec![],
            vec![],
            vec![],
        )
    }

    #[test]
    fn repetition_counts_earlier_ngrams() {
        assert_eq!(repetition(&[1, 2, 1, 2, 1, 2], 2), Some(3.0 / 5.0));
        assert_eq!(repetition(&[1, 2, 3, 4], 2), Some(0.0));
        assert_eq!(repetition(&[1], 2), None);
    }

    #[test]
    fn a_c_major_scale_is_consistent_and_fills_its_beats() {
        let notes: Vec<(u32, u8, u32, u8)> = [60u8, 62, 64, 65, 67, 69, 71, 72]
            .iter()
            .enumerate()
            .map(|(i, &p)| (i as u32 * 12, p, 12, 0))
            .collect();
        let m = music_metrics(&[piece(&notes)], &[], 0);
        assert!((m.scale_consistency - 1.0).abs() < 1e-12);
        assert!((m.polyphony - 1.0).abs() < 1e-12);
        assert_eq!(m.empty_beat_rate, 0.0);
        // 7 distinct pitch classes, C twice: entropy a little under log2(7).
        assert!(m.pitch_class_entropy > 2.7 && m.pitch_class_entropy < 7f64.log2());
    }

    #[test]
    fn silence_and_chords_show_in_polyphony_and_empty_beats() {
        let m = music_metrics(
            &[piece(&[
                (0, 60, 12, 0),
                (0, 64, 12, 1),
                (0, 67, 12, 2),
                (36, 60, 12, 0),
            ])],
            &[],
            0,
        );
        // Four 16th steps with three notes, four with one.
        assert!((m.polyphony - 2.0).abs() < 1e-12, "{}", m.polyphony);
        assert!(
            (m.empty_beat_rate - 0.5).abs() < 1e-12,
            "{}",
            m.empty_beat_rate
        );
    }

    #[test]
    fn js_divergence_is_zero_for_equal_and_one_for_disjoint() {
        assert!(js_divergence(&[0.5, 0.5, 0.0], &[0.5, 0.5, 0.0]).abs() < 1e-12);
        assert!((js_divergence(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
    }
}
