//! Writing for a chosen number of voices.
//!
//! How many parts a piece has is a choice made once, at its first chord: a
//! four-part chorale, a chorale with instrument parts doubling it (up to
//! fifteen), or one merged part holding the chords. A model sampled with a
//! low temperature nearly always makes the commonest choice (four), so
//! generated pieces never show the corpus's mix. A [`Voicing`] lets the
//! caller make the choice (or draw it from the training pieces) and
//! constrains the piece to it, through the [`crate::grammar::Grammar`]'s
//! mask:
//!
//! * no note is given a voice of `voices` or above;
//! * the first onset of the piece is not left (by a `Position`, `Bar`,
//!   `Rest` or `Eos`) before a note in the top voice, `voices − 1`, has
//!   started: the opening chord sounds the whole ensemble, as in nearly all
//!   the chorales;
//! * at every onset each note is in a voice above the last one's (as the
//!   chorales are written: one note per voice, upwards), so an onset holds
//!   at most `voices` notes and the opening always reaches the top voice —
//!   a model that rarely writes twelve voices would otherwise stack notes
//!   in one voice without end; a single-voice piece (the merged-parts
//!   files) holds chords of up to four notes instead.
//!
//! The model chooses everything else, including which voices below the top
//! one to use. A new piece (`Bos` after `Eos`) starts the opening again.

use crate::vocab::{Token, NUM_VOICES};

/// The voices a piece is written for (see the [module documentation](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Voicing {
    /// Voices `0..voices` may sound; 0 = no constraint.
    voices: u8,
    /// The voice a `Pitch` without `Voice` goes to (as the decoder keeps it).
    voice: u8,
    /// The piece's first onset has not been left yet.
    opening: bool,
    /// The voice of the last note at the current onset.
    last: Option<u8>,
    /// Notes at the current onset.
    notes: u8,
}

impl Default for Voicing {
    fn default() -> Self {
        Self::free()
    }
}

/// Notes one voice may hold at an onset of a single-voice piece (the
/// merged-parts files hold the four parts in one voice).
const SINGLE_VOICE_CHORD: u8 = 4;

impl Voicing {
    /// No constraint: the model chooses.
    pub const fn free() -> Self {
        Voicing {
            voices: 0,
            voice: 0,
            opening: false,
            last: None,
            notes: 0,
        }
    }

    /// Pieces in `voices` voices (1 to [`NUM_VOICES`]; other values are
    /// clamped into that range).
    pub const fn new(voices: u8) -> Self {
        let voices = if voices == 0 {
            1
        } else if voices as usize > NUM_VOICES {
            NUM_VOICES as u8
        } else {
            voices
        };
        Voicing {
            voices,
            voice: 0,
            opening: true,
            last: None,
            notes: 0,
        }
    }

    /// The number of voices, or `None` when free.
    pub fn voices(&self) -> Option<u8> {
        (self.voices > 0).then_some(self.voices)
    }

    /// A later voice than the last note's at this onset (always, in a
    /// single-voice piece).
    fn climbs(&self, voice: u8) -> bool {
        self.voices == 1 || self.last.is_none_or(|last| voice > last)
    }

    /// Take `token` (one the decoder accepted). Returns false, changing
    /// nothing, if the voicing forbids it.
    pub fn push(&mut self, token: Token) -> bool {
        if self.voices == 0 {
            return true;
        }
        let top = self.voices - 1;
        match token {
            Token::Bos => *self = Voicing::new(self.voices),
            Token::Voice(v) if v > top || !self.climbs(v) => return false,
            Token::Voice(v) => self.voice = v,
            Token::Pitch(_) if !self.climbs(self.voice) => return false,
            Token::Pitch(_) if self.voices == 1 && self.notes >= SINGLE_VOICE_CHORD => {
                return false
            }
            Token::Pitch(_) => self.note(),
            Token::Position(_) | Token::Bar | Token::Rest(_) | Token::Eos => {
                match (self.opening, self.last) {
                    (true, Some(last)) if last < top => return false,
                    (true, None) => {} // the head, before the first note
                    _ => self.opening = false,
                }
                self.next_onset();
            }
            _ => {}
        }
        true
    }

    fn note(&mut self) {
        self.last = Some(self.voice);
        self.notes = self.notes.saturating_add(1);
    }

    fn next_onset(&mut self) {
        self.last = None;
        self.notes = 0;
    }

    /// Take `token` whether or not the voicing allows it (a prompt's token,
    /// or one sampled without the mask): a forbidden voice or note is taken
    /// as it is, and leaving the first onset ends the opening.
    pub fn follow(&mut self, token: Token) {
        if !self.push(token) {
            match token {
                Token::Voice(v) => self.voice = v,
                Token::Pitch(_) => self.note(),
                _ => {
                    self.opening = false;
                    self.next_onset();
                }
            }
        }
    }

    /// Would `tokens`, taken in order from the current state, all be allowed?
    pub fn accepts(&self, tokens: impl IntoIterator<Item = Token>) -> bool {
        let mut probe = *self;
        tokens.into_iter().all(|t| probe.push(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(voicing: &mut Voicing, tokens: &[Token]) -> bool {
        tokens.iter().all(|&t| voicing.push(t))
    }

    const HEAD: [Token; 3] = [Token::Bos, Token::Bar, Token::Position(0)];

    fn note(voice: u8) -> [Token; 4] {
        [
            Token::Voice(voice),
            Token::Pitch(60),
            Token::Velocity(20),
            Token::Duration(12),
        ]
    }

    #[test]
    fn free_allows_everything() {
        let mut v = Voicing::free();
        assert!(take(&mut v, &HEAD));
        assert!(take(&mut v, &note(15)));
        assert!(v.push(Token::Position(12)));
        assert_eq!(v.voices(), None);
    }

    #[test]
    fn the_opening_chord_must_reach_the_top_voice() {
        let mut v = Voicing::new(4);
        assert!(take(&mut v, &HEAD));
        // The first note goes to voice 0 without a Voice token.
        assert!(take(
            &mut v,
            &[Token::Pitch(72), Token::Velocity(20), Token::Duration(12)]
        ));
        assert!(!v.accepts([Token::Position(12)]), "only voice 0 sounds");
        assert!(!v.accepts([Token::Bar]) && !v.accepts([Token::Eos]));
        assert!(!v.accepts([Token::Rest(1)]));
        assert!(!v.accepts([Token::Pitch(64)]), "a second note in voice 0");
        assert!(take(&mut v, &note(2)));
        assert!(
            !v.accepts([Token::Position(12)]),
            "voice 3 is still missing"
        );
        assert!(!v.accepts([Token::Voice(1)]), "the opening climbs");
        assert!(!v.accepts([Token::Pitch(50)]), "a second note in voice 2");
        assert!(
            !v.accepts([Token::Voice(4)]),
            "voice 4 is beyond four voices"
        );
        assert!(take(&mut v, &note(3)));
        // The top voice sounds: the chord is complete, only time moves.
        assert!(!v.accepts([Token::Voice(1)]) && !v.accepts([Token::Pitch(55)]));
        assert!(v.push(Token::Position(12)));
        // After the opening, any voice below four, in any order, and time moves freely.
        assert!(take(&mut v, &note(1)));
        assert!(v.push(Token::Bar));
        assert!(!v.accepts([Token::Voice(4)]));
        assert!(v.accepts([Token::Eos]));
    }

    #[test]
    fn a_header_before_the_first_note_is_free_and_a_new_piece_opens_again() {
        let mut v = Voicing::new(2);
        assert!(take(
            &mut v,
            &[Token::Bos, Token::Rest(2), Token::Bar, Token::Position(6)]
        ));
        assert!(take(&mut v, &note(1)));
        assert!(take(
            &mut v,
            &[Token::Position(12), Token::Eos, Token::Bos, Token::Bar]
        ));
        assert!(take(&mut v, &[Token::Position(0), Token::Pitch(60)]));
        assert!(!v.accepts([Token::Velocity(1), Token::Duration(1), Token::Bar]));
    }

    #[test]
    fn one_voice_holds_chords_and_nothing_else() {
        let mut v = Voicing::new(1);
        assert!(take(&mut v, &HEAD));
        assert!(!v.accepts([Token::Voice(1)]));
        assert!(v.accepts([Token::Voice(0)]));
        assert!(take(
            &mut v,
            &[Token::Pitch(60), Token::Velocity(1), Token::Duration(1)]
        ));
        assert!(v.push(Token::Position(3)));
    }

    #[test]
    fn a_prompt_outside_the_voicing_is_followed() {
        let mut v = Voicing::new(2);
        for t in HEAD.into_iter().chain(note(5)) {
            v.follow(t);
        }
        v.follow(Token::Position(12));
        // The opening is over: time moves, but voices stay below two.
        assert!(v.accepts([Token::Bar, Token::Position(0)]));
        assert!(!v.accepts([Token::Voice(5)]));
    }

    #[test]
    fn out_of_range_counts_are_clamped() {
        assert_eq!(Voicing::new(0).voices(), Some(1));
        assert_eq!(Voicing::new(200).voices(), Some(NUM_VOICES as u8));
    }
}
