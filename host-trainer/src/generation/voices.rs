//! How many voices a piece is written in, as the training pieces are
//! counted ([`crate::form::piece_plan`]) so that a set of generated pieces
//! has the corpus's mix of four-part chorales, chorales with instrument
//! parts and single-part files. The engine's
//! [`Voicing`](kantor_engine::voicing::Voicing) enforces a count while
//! sampling.

use crate::piece::Piece;

/// The voices a piece is written in: its highest voice + 1 (voices are
/// numbered from 0 in the order of the file's parts); 0 without notes.
pub fn voice_count(piece: &Piece) -> u8 {
    piece
        .notes
        .iter()
        .map(|n| n.voice.saturating_add(1))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::piece::testing::note;

    #[test]
    fn counts_the_voices_by_the_highest() {
        let piece = |voices: &[u8]| {
            let notes = voices.iter().map(|&v| note(0, v, 60)).collect();
            Piece::new(notes, vec![], vec![], vec![])
        };
        assert_eq!(voice_count(&piece(&[0, 1, 2, 3])), 4);
        assert_eq!(voice_count(&piece(&[3, 0])), 4);
        assert_eq!(voice_count(&piece(&[0])), 1);
        assert_eq!(voice_count(&piece(&[])), 0);
    }

    /// The voicing's rules are the chorales' own: nearly every four-part
    /// training chorale passes them with not one token refused.
    #[test]
    fn the_chorales_keep_the_voicing_rules() {
        use crate::corpus::{Corpus, LoadOptions, Split};
        use kantor_engine::decoder::Decoder;
        use kantor_engine::voicing::Voicing;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/bach-chorales-midi");
        let corpus = Corpus::load(std::path::Path::new(dir), LoadOptions::default()).unwrap();
        let (mut four_part, mut kept) = (0, 0);
        for piece in corpus.pieces(Split::Train) {
            if voice_count(&piece) != 4 {
                continue;
            }
            let (mut decoder, mut voicing) = (Decoder::new(), Voicing::new(4));
            let mut refused = 0;
            for token in crate::remi::encode(&piece) {
                decoder.push(token).unwrap();
                if !voicing.push(token, decoder.now()) {
                    refused += 1;
                    voicing.follow(token, decoder.now());
                }
            }
            four_part += 1;
            kept += usize::from(refused == 0);
        }
        assert!(four_part > 250, "{four_part}");
        // 286 of 300 (2026-12-02).
        assert!(kept * 100 >= four_part * 90, "{kept} of {four_part}");
    }
}
