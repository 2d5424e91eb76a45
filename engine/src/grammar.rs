//! Grammar-constrained decoding: mask every token whose expansion the
//! decoder would reject, so that sampled output is always playable.

use crate::bpe::BpeTable;
use crate::decoder::Decoder;

/// Set the logit of every ill-formed next token to −∞. Returns how many
/// tokens stay allowed (never 0 for a decoder in a reachable state).
pub fn mask_ill_formed(logits: &mut [f32], decoder: &Decoder, bpe: &BpeTable<'_>) -> usize {
    let mut allowed = 0;
    for (id, logit) in logits.iter_mut().enumerate() {
        let ok = u16::try_from(id).is_ok_and(|id| {
            decoder.accepts(
                bpe.expand(id)
                    .map(crate::vocab::Token::from_id)
                    .map_while(|t| t),
            )
        });
        if ok {
            allowed += 1;
        } else {
            *logit = f32::NEG_INFINITY;
        }
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::{Token, VOCAB_SIZE};

    #[test]
    fn only_well_formed_continuations_stay() {
        let mut decoder = Decoder::new();
        for t in [Token::Bos, Token::Bar, Token::Position(0), Token::Pitch(60)] {
            decoder.push(t).unwrap();
        }
        let mut logits = [0.0f32; VOCAB_SIZE];
        let allowed = mask_ill_formed(&mut logits, &decoder, &BpeTable::empty());
        // After a Pitch only a Velocity fits.
        assert_eq!(allowed, crate::vocab::NUM_VELOCITIES);
        for (id, l) in logits.iter().enumerate() {
            let is_velocity = matches!(Token::from_id(id as u16), Some(Token::Velocity(_)));
            assert_eq!(l.is_finite(), is_velocity);
        }
    }
}
