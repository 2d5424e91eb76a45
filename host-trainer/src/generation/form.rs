//! Bar form on the host side: which pieces repeat their opening, and after
//! how many bars — measured in the training pieces ([`repeat_length`]) and
//! counted, with their voices, into a [`PiecePlan`] ([`piece_plan`]) for the
//! model file (`export`) and for `eval --voices train --repeat train`
//! ([`crate::plan`]). The repeat itself is the engine's
//! ([`kantor_engine::form`]), the same on the board.

use kantor_engine::plan::{PiecePlan, MAX_REPEAT_BARS};

use crate::piece::Piece;

/// The bars of a piece's opening that are played again right after it
/// (0: through-composed, no repeat).
pub fn repeat_length(piece: &Piece) -> u32 {
    let bars: Vec<_> = piece.bars().collect();
    let notes_in = |from: usize, to: usize| -> Vec<(u32, u8, u8, u32)> {
        let (start, end) = (bars[from].start, bars.get(to).map_or(u32::MAX, |b| b.start));
        piece
            .notes
            .iter()
            .filter(|n| (start..end).contains(&n.onset))
            .map(|n| (n.onset - start, n.voice, n.pitch, n.duration))
            .collect()
    };
    (2..=bars.len() / 2)
        .rev()
        .find(|&k| {
            let first = notes_in(0, k);
            !first.is_empty() && first == notes_in(k, 2 * k)
        })
        .map_or(0, |k| k as u32)
}

/// How `pieces` (the training split) chose their voices and form, for the
/// model file: pieces per voice count and per repeated-opening length
/// (longer repeats counted as [`MAX_REPEAT_BARS`]).
pub fn piece_plan(pieces: &[Piece]) -> PiecePlan {
    let mut plan = PiecePlan::free();
    for piece in pieces {
        let voices = usize::from(crate::voices::voice_count(piece));
        if let Some(count) = voices
            .checked_sub(1)
            .and_then(|i| plan.voice_counts.get_mut(i))
        {
            *count += 1;
        }
        let bars = (repeat_length(piece) as usize).min(MAX_REPEAT_BARS);
        plan.repeat_bars[bars] += 1;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::piece::testing::chorale_like;

    fn piece(sopranos: &[u8]) -> Piece {
        chorale_like(sopranos, 2)
    }

    #[test]
    fn finds_the_longest_repeated_opening() {
        assert_eq!(repeat_length(&piece(&[60, 62, 64, 60, 62, 64, 70, 71])), 3);
        assert_eq!(repeat_length(&piece(&[60, 62, 60, 62, 60, 62, 60, 62])), 4);
        assert_eq!(repeat_length(&piece(&[60, 62, 64, 65, 67])), 0);
        assert_eq!(repeat_length(&piece(&[])), 0);
        // A bundled chorale in bar form: the four-bar Stollen twice.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/bach-chorales-midi");
        let bytes = std::fs::read(format!("{dir}/bach_bwv103.6.mid")).unwrap();
        let chorale = crate::midi::read_piece(&bytes, Default::default()).unwrap();
        assert_eq!(repeat_length(&chorale), 4);
    }
}
