//! REMI encoding of a [`Piece`], and decoding back through the engine's decoder.
//!
//! The encoder writes exactly the grammar that
//! [`kantor_engine::decoder`] documents: per bar `Rest* Bar TimeSignature?
//! Tempo?`, then per onset `Position Tempo? (Voice? Pitch Velocity Duration)*`.
//! The first bar always states meter and tempo; `Voice` appears only when the
//! voice changes; runs of empty bars become `Rest` tokens. Decoding uses the
//! engine, so the host and the microcontroller read tokens the same way.

use kantor_engine::decoder::{DecodeError, Decoder, Event};
use kantor_engine::vocab::{
    duration_class, tempo_class, time_signature_index, velocity_bin, Token, MAX_REST_BARS,
};

use crate::piece::{MeterChange, Piece, TempoChange};

/// Encode a piece as base REMI tokens, `Bos … Eos`.
pub fn encode(piece: &Piece) -> Vec<Token> {
    let mut out = vec![Token::Bos];
    let mut notes = piece.notes.iter().peekable();
    let mut tempos = piece.tempos.iter().peekable();
    let mut voice = 0u8;
    let mut empty_bars = 0u32;
    for (index, bar) in piece.bars().enumerate() {
        let end = bar.end();
        let head_tempo = tempos.next_if(|t| t.tick <= bar.start).map(|t| t.tempo);
        let has_notes = notes.peek().is_some_and(|n| n.onset < end);
        let has_tempo = tempos.peek().is_some_and(|t| t.tick < end);
        if index > 0 && !bar.meter_changes && head_tempo.is_none() && !has_notes && !has_tempo {
            empty_bars += 1;
            continue;
        }
        while empty_bars > 0 {
            let n = empty_bars.min(u32::from(MAX_REST_BARS));
            out.push(Token::Rest(n as u8));
            empty_bars -= n;
        }
        out.push(Token::Bar);
        if bar.meter_changes {
            out.push(Token::TimeSignature(bar.meter));
        }
        if let Some(tempo) = head_tempo {
            out.push(Token::Tempo(tempo));
        }
        // Onsets inside the bar, in time order: a tempo change and/or notes.
        loop {
            let next_note = notes.peek().map(|n| n.onset).filter(|&t| t < end);
            let next_tempo = tempos.peek().map(|t| t.tick).filter(|&t| t < end);
            let Some(tick) = next_note.into_iter().chain(next_tempo).min() else {
                break;
            };
            out.push(Token::Position((tick - bar.start) as u8));
            if let Some(t) = tempos.next_if(|t| t.tick == tick) {
                out.push(Token::Tempo(t.tempo));
            }
            while let Some(n) = notes.next_if(|n| n.onset == tick) {
                if n.voice != voice {
                    out.push(Token::Voice(n.voice));
                    voice = n.voice;
                }
                out.push(Token::Pitch(n.pitch));
                out.push(Token::Velocity(velocity_bin(n.velocity)));
                out.push(Token::Duration(duration_class(n.duration)));
            }
        }
    }
    out.push(Token::Eos);
    out
}

/// Encode a piece as token ids.
pub fn encode_ids(piece: &Piece) -> Vec<u16> {
    encode(piece)
        .into_iter()
        .map(|t| t.id().expect("the encoder only makes in-range tokens"))
        .collect()
}

/// The outcome of decoding a token stream.
#[derive(Clone, Debug, Default)]
pub struct Decoded {
    /// The music.
    pub piece: Piece,
    /// Tokens that did not fit the grammar, with their index.
    pub errors: Vec<(usize, DecodeError)>,
    /// Number of tokens read.
    pub tokens: usize,
}

impl Decoded {
    /// Share of tokens that were ill-formed.
    pub fn error_rate(&self) -> f64 {
        if self.tokens == 0 {
            0.0
        } else {
            self.errors.len() as f64 / self.tokens as f64
        }
    }
}

/// Decode base token ids into a piece; ill-formed tokens are reported and skipped.
pub fn decode_ids(ids: &[u16]) -> Decoded {
    let mut decoder = Decoder::new();
    let mut notes = Vec::new();
    let mut tempos = Vec::new();
    let mut meters = Vec::new();
    let mut errors = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        match decoder.push_id(id) {
            Ok(Some(Event::Note(n))) => notes.push(n),
            Ok(Some(Event::Tempo {
                tick,
                micros_per_quarter,
            })) => tempos.push(TempoChange {
                tick,
                tempo: tempo_class(micros_per_quarter),
            }),
            Ok(Some(Event::TimeSignature { tick, signature })) => meters.push(MeterChange {
                tick,
                meter: time_signature_index(signature.numerator, signature.denominator)
                    .expect("the decoder only reports vocabulary meters"),
            }),
            Ok(Some(Event::End { .. })) | Ok(None) => {}
            Err(e) => errors.push((i, e)),
        }
    }
    Decoded {
        piece: Piece::new(notes, tempos, meters, Vec::new()),
        errors,
        tokens: ids.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::piece::{MeterChange, TempoChange};
    use kantor_engine::decoder::Note;
    use proptest::prelude::*;

    fn ids(tokens: &[Token]) -> Vec<u16> {
        tokens.iter().map(|t| t.id().unwrap()).collect()
    }

    #[test]
    fn encodes_the_documented_grammar() {
        let note = |onset, voice, pitch| Note {
            onset,
            voice,
            pitch,
            duration: 12,
            velocity: 90,
        };
        let piece = Piece::new(
            vec![
                note(0, 0, 72),
                note(0, 1, 60),
                note(12, 1, 62),
                note(48 * 3 + 6, 1, 64),
            ],
            vec![TempoChange { tick: 24, tempo: 3 }],
            vec![],
            vec![],
        );
        let tokens: Vec<String> = encode(&piece).iter().map(|t| t.to_string()).collect();
        assert_eq!(
            tokens.join(" "),
            "Bos Bar TimeSig_4/4 Tempo_120 \
             Position_0 Pitch_72 Velocity_90 Duration_12 Voice_1 Pitch_60 Velocity_90 Duration_12 \
             Position_12 Pitch_62 Velocity_90 Duration_12 Position_24 Tempo_46 \
             Rest_2 Bar Position_6 Pitch_64 Velocity_90 Duration_12 Eos"
        );
    }

    fn arb_piece() -> impl Strategy<Value = Piece> {
        let note = (0u32..2000, 0u8..16, 0u8..128, 0u8..64, 1u8..128).prop_map(
            |(onset, voice, pitch, d, v)| Note {
                onset,
                voice,
                pitch,
                duration: kantor_engine::vocab::duration_ticks(d),
                velocity: kantor_engine::vocab::velocity_value(velocity_bin(v)),
            },
        );
        let tempo = (0u32..2000, 0u8..39).prop_map(|(tick, tempo)| TempoChange { tick, tempo });
        let meter = (0u32..40, 0u8..28).prop_map(|(bar, meter)| MeterChange {
            tick: bar * 48,
            meter,
        });
        (
            proptest::collection::vec(note, 0..200),
            proptest::collection::vec(tempo, 0..8),
            proptest::collection::vec(meter, 0..6),
        )
            .prop_map(|(notes, tempos, meters)| {
                Piece::new(notes, tempos, crate::piece::align_meters(meters), vec![])
            })
    }

    proptest! {
        #[test]
        fn any_piece_survives_encode_then_decode(piece in arb_piece()) {
            let decoded = decode_ids(&encode_ids(&piece));
            prop_assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
            prop_assert_eq!(&decoded.piece.notes, &piece.notes);
            prop_assert_eq!(&decoded.piece.tempos, &piece.tempos);
            prop_assert_eq!(&decoded.piece.meters, &piece.meters);
        }

        #[test]
        fn any_token_soup_decodes_without_panicking(soup in proptest::collection::vec(0u16..600, 0..400)) {
            let decoded = decode_ids(&soup);
            prop_assert!(decoded.errors.len() <= soup.len());
        }
    }

    #[test]
    fn reports_ill_formed_tokens_with_their_index() {
        let decoded = decode_ids(&ids(&[
            Token::Bos,
            Token::Bar,
            Token::Velocity(3),
            Token::Position(0),
            Token::Pitch(60),
            Token::Velocity(3),
            Token::Duration(11),
        ]));
        assert_eq!(decoded.errors.len(), 1);
        assert_eq!(decoded.errors[0].0, 2);
        assert_eq!(decoded.piece.notes.len(), 1);
    }
}
