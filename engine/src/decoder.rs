//! Streaming decoder: base REMI tokens in, timed musical events out.
//!
//! The decoder is a small state machine (a few words, `Copy`) that enforces
//! the grammar the trainer's encoder produces:
//!
//! ```text
//! piece    := Bos? bar* Eos?
//! bar      := Rest* Bar TimeSignature? Tempo? group*
//! group    := Position Tempo? note*            (positions strictly increase)
//! note     := Voice? Pitch Velocity Duration
//! ```
//!
//! Nonsense never panics: a token that does not fit is reported as a
//! [`DecodeError`] and discarded together with any half-built note; the
//! decoder stays usable and the next well-formed token continues the piece.
//! The same machine answers "would this token be well-formed here?"
//! ([`Decoder::accepts`]), which is what grammar-constrained sampling masks with.

use crate::vocab::{
    duration_ticks, tempo_micros, velocity_value, TimeSignature, Token, DEFAULT_TIME_SIGNATURE,
    TIME_SIGNATURES,
};

/// A decoded note. Times are in grid ticks ([`crate::vocab::TICKS_PER_QUARTER`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Note {
    /// Onset, in grid ticks from the start of the stream.
    pub onset: u32,
    /// Voice (0–15).
    pub voice: u8,
    /// MIDI pitch.
    pub pitch: u8,
    /// Length in grid ticks (at least 1).
    pub duration: u32,
    /// MIDI velocity (the middle of the token's bin).
    pub velocity: u8,
}

/// What a token produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete note.
    Note(Note),
    /// The tempo changes at `tick`.
    Tempo {
        /// Grid tick of the change.
        tick: u32,
        /// New tempo in microseconds per quarter note.
        micros_per_quarter: u32,
    },
    /// The meter changes at `tick` (always a bar start).
    TimeSignature {
        /// Grid tick of the change.
        tick: u32,
        /// New meter.
        signature: TimeSignature,
    },
    /// The piece ended (`Eos`); `tick` is the end of its last bar.
    End {
        /// Grid tick at which the piece ends.
        tick: u32,
    },
}

/// What the decoder was waiting for when a token did not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// The first `Bar` (or `Rest`) of a piece.
    FirstBar,
    /// `Rest` or `Bar` after a `Rest`.
    BarAfterRest,
    /// Something that can follow a bar head: meter, tempo, a position, a new bar.
    BarContent,
    /// A tempo or a note at the position just given.
    PositionContent,
    /// More notes, a later position or a new bar.
    NoteOrTime,
    /// A `Pitch` after a `Voice`.
    Pitch,
    /// The `Velocity` of the note being built.
    Velocity,
    /// The `Duration` of the note being built.
    Duration,
    /// `Bos` after the end of a piece.
    NewPiece,
}

/// Why a token was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The id is not a base token of the vocabulary.
    UnknownId(u16),
    /// The token is not allowed in this place of the grammar.
    Unexpected {
        /// The rejected token.
        token: Token,
        /// What would have fitted.
        expected: Expected,
    },
    /// A `Position` at or beyond the end of the current bar.
    PositionOutsideBar {
        /// The rejected position.
        position: u8,
        /// Length of the current bar in grid ticks.
        bar_ticks: u32,
    },
    /// A `Position` that does not move forward in the bar.
    PositionNotAfter {
        /// The rejected position.
        position: u8,
        /// The current position.
        current: u8,
    },
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            DecodeError::UnknownId(id) => write!(f, "token id {id} is not in the vocabulary"),
            DecodeError::Unexpected { token, expected } => {
                write!(f, "unexpected {token} (expected {expected:?})")
            }
            DecodeError::PositionOutsideBar {
                position,
                bar_ticks,
            } => write!(
                f,
                "position {position} is outside a bar of {bar_ticks} ticks"
            ),
            DecodeError::PositionNotAfter { position, current } => {
                write!(
                    f,
                    "position {position} does not come after position {current}"
                )
            }
        }
    }
}

/// Where in the grammar the decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing of this piece seen yet (or only `Bos`).
    Start,
    /// After one or more `Rest` tokens.
    Resting,
    /// Right after `Bar`; flags say whether meter and tempo were given.
    BarHead { meter: bool, tempo: bool },
    /// Right after `Position`.
    AtPosition,
    /// After `Position Tempo`.
    AtPositionTempo,
    /// After a complete note.
    AfterNote,
    /// After `Voice`.
    AfterVoice,
    /// After `Pitch`.
    NotePitch { pitch: u8 },
    /// After `Pitch Velocity`.
    NoteVelocity { pitch: u8, velocity: u8 },
    /// After `Eos`.
    Ended,
}

/// The streaming REMI decoder. See the [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoder {
    phase: Phase,
    /// Tick at which the current piece starts.
    origin: u32,
    /// Start of the current bar (meaningful once a `Bar` was seen).
    bar_start: u32,
    bar_ticks: u32,
    bar_seen: bool,
    position: Option<u8>,
    pending_rest: u32,
    voice: u8,
    /// A `Bos` opened the current piece.
    opened: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder at the start of a piece, at tick 0, in 4/4.
    pub const fn new() -> Self {
        Decoder {
            phase: Phase::Start,
            origin: 0,
            bar_start: 0,
            bar_ticks: TIME_SIGNATURES[DEFAULT_TIME_SIGNATURE as usize].bar_ticks(),
            bar_seen: false,
            position: None,
            pending_rest: 0,
            voice: 0,
            opened: false,
        }
    }

    /// Grid tick at which the current bar starts.
    pub fn bar_start(&self) -> u32 {
        self.bar_start
    }

    /// Grid tick at which the current bar ends.
    pub fn bar_end(&self) -> u32 {
        self.bar_start.saturating_add(self.bar_ticks)
    }

    /// The current time in grid ticks (bar start plus position).
    pub fn now(&self) -> u32 {
        self.bar_start
            .saturating_add(u32::from(self.position.unwrap_or(0)))
    }

    /// True between a `Pitch` and its `Duration`.
    pub fn in_note(&self) -> bool {
        matches!(
            self.phase,
            Phase::AfterVoice | Phase::NotePitch { .. } | Phase::NoteVelocity { .. }
        )
    }

    /// Decode one token id.
    pub fn push_id(&mut self, id: u16) -> Result<Option<Event>, DecodeError> {
        match Token::from_id(id) {
            Some(token) => self.push(token),
            None => {
                self.abandon_note();
                Err(DecodeError::UnknownId(id))
            }
        }
    }

    /// The part of the state that decides which tokens are well-formed next:
    /// two decoders with equal keys accept exactly the same token sequences
    /// (times, the voice and the pitch and velocity of a half-built note do
    /// not matter). [`crate::grammar::TokenMask`] remembers masks by it.
    pub fn grammar_key(&self) -> Decoder {
        let phase = match self.phase {
            Phase::NotePitch { .. } => Phase::NotePitch { pitch: 0 },
            Phase::NoteVelocity { .. } => Phase::NoteVelocity {
                pitch: 0,
                velocity: 0,
            },
            p => p,
        };
        Decoder {
            phase,
            origin: 0,
            bar_start: 0,
            bar_ticks: self.bar_ticks,
            bar_seen: false,
            position: self.position,
            pending_rest: 0,
            voice: 0,
            opened: self.opened,
        }
    }

    /// Would `tokens`, pushed in order from the current state, all be well-formed?
    pub fn accepts(&self, tokens: impl IntoIterator<Item = Token>) -> bool {
        let mut probe = *self;
        tokens.into_iter().all(|t| probe.push(t).is_ok())
    }

    /// Decode one token. On error the token (and any half-built note) is discarded.
    pub fn push(&mut self, token: Token) -> Result<Option<Event>, DecodeError> {
        let result = self.apply(token);
        if result.is_err() {
            self.abandon_note();
        }
        result
    }

    fn abandon_note(&mut self) {
        if self.in_note() {
            self.phase = Phase::AfterNote;
        }
    }

    fn unexpected(&self, token: Token) -> DecodeError {
        let expected = match self.phase {
            Phase::Start => Expected::FirstBar,
            Phase::Resting => Expected::BarAfterRest,
            Phase::BarHead { .. } => Expected::BarContent,
            Phase::AtPosition => Expected::PositionContent,
            Phase::AtPositionTempo | Phase::AfterNote => Expected::NoteOrTime,
            Phase::AfterVoice => Expected::Pitch,
            Phase::NotePitch { .. } => Expected::Velocity,
            Phase::NoteVelocity { .. } => Expected::Duration,
            Phase::Ended => Expected::NewPiece,
        };
        DecodeError::Unexpected { token, expected }
    }

    fn apply(&mut self, token: Token) -> Result<Option<Event>, DecodeError> {
        use Phase::*;
        let phase = self.phase;
        // Tokens that may close a bar or piece are allowed wherever a note is complete.
        let between_notes = matches!(phase, BarHead { .. } | AtPositionTempo | AfterNote);
        match token {
            Token::Bos => self.bos(token),
            Token::Eos if between_notes => {
                self.phase = Ended;
                Ok(Some(Event::End {
                    tick: self.bar_end(),
                }))
            }
            Token::Rest(n) if between_notes || matches!(phase, Start | Resting) => {
                if n == 0 {
                    return Err(self.unexpected(token));
                }
                self.pending_rest = self.pending_rest.saturating_add(u32::from(n));
                self.phase = Resting;
                Ok(None)
            }
            Token::Bar if between_notes || matches!(phase, Start | Resting) => {
                self.bar();
                Ok(None)
            }
            Token::TimeSignature(i) => self.time_signature(token, i),
            Token::Tempo(i) => self.tempo(token, i),
            Token::Position(p) if between_notes => self.position(p),
            Token::Voice(v) if matches!(phase, AtPosition | AtPositionTempo | AfterNote) => {
                self.voice = v;
                self.phase = AfterVoice;
                Ok(None)
            }
            Token::Pitch(pitch)
                if matches!(phase, AtPosition | AtPositionTempo | AfterNote | AfterVoice) =>
            {
                self.phase = NotePitch { pitch };
                Ok(None)
            }
            Token::Velocity(velocity) => match phase {
                NotePitch { pitch } => {
                    self.phase = NoteVelocity { pitch, velocity };
                    Ok(None)
                }
                _ => Err(self.unexpected(token)),
            },
            Token::Duration(d) => match phase {
                NoteVelocity { pitch, velocity } => {
                    self.phase = AfterNote;
                    Ok(Some(Event::Note(Note {
                        onset: self.now(),
                        voice: self.voice,
                        pitch,
                        duration: duration_ticks(d),
                        velocity: velocity_value(velocity),
                    })))
                }
                _ => Err(self.unexpected(token)),
            },
            _ => Err(self.unexpected(token)),
        }
    }

    /// `Bos`: opens the stream, or a new piece after `Eos` (at the end of
    /// the last bar).
    fn bos(&mut self, token: Token) -> Result<Option<Event>, DecodeError> {
        match self.phase {
            Phase::Start if !self.opened => {
                self.opened = true;
                Ok(None)
            }
            Phase::Ended => {
                let origin = self.bar_end();
                *self = Decoder::new();
                self.origin = origin;
                self.bar_start = origin;
                self.opened = true;
                Ok(None)
            }
            _ => Err(self.unexpected(token)),
        }
    }

    /// `Bar`: a bar starts after the current one and the rests pending.
    fn bar(&mut self) {
        let skipped = self.bar_ticks.saturating_mul(self.pending_rest);
        self.bar_start = if self.bar_seen {
            self.bar_end().saturating_add(skipped)
        } else {
            self.origin.saturating_add(skipped)
        };
        self.bar_seen = true;
        self.pending_rest = 0;
        self.position = None;
        self.phase = Phase::BarHead {
            meter: false,
            tempo: false,
        };
    }

    /// `TimeSignature`: first in a bar's head.
    fn time_signature(&mut self, token: Token, i: u8) -> Result<Option<Event>, DecodeError> {
        match (self.phase, TIME_SIGNATURES.get(usize::from(i))) {
            (
                Phase::BarHead {
                    meter: false,
                    tempo: false,
                },
                Some(&signature),
            ) => {
                self.bar_ticks = signature.bar_ticks();
                self.phase = Phase::BarHead {
                    meter: true,
                    tempo: false,
                };
                Ok(Some(Event::TimeSignature {
                    tick: self.bar_start,
                    signature,
                }))
            }
            _ => Err(self.unexpected(token)),
        }
    }

    /// `Tempo`: once in a bar's head, or once at a position.
    fn tempo(&mut self, token: Token, i: u8) -> Result<Option<Event>, DecodeError> {
        let next = match self.phase {
            Phase::BarHead {
                meter,
                tempo: false,
            } => Phase::BarHead { meter, tempo: true },
            Phase::AtPosition => Phase::AtPositionTempo,
            _ => return Err(self.unexpected(token)),
        };
        self.phase = next;
        Ok(Some(Event::Tempo {
            tick: self.now(),
            micros_per_quarter: tempo_micros(i),
        }))
    }

    /// `Position`: inside the bar, after the current position.
    fn position(&mut self, p: u8) -> Result<Option<Event>, DecodeError> {
        if u32::from(p) >= self.bar_ticks {
            return Err(DecodeError::PositionOutsideBar {
                position: p,
                bar_ticks: self.bar_ticks,
            });
        }
        if let Some(current) = self.position {
            if p <= current {
                return Err(DecodeError::PositionNotAfter {
                    position: p,
                    current,
                });
            }
        }
        self.position = Some(p);
        self.phase = Phase::AtPosition;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::{duration_class, velocity_bin};

    fn note(pitch: u8, ticks: u32) -> [Token; 3] {
        [
            Token::Pitch(pitch),
            Token::Velocity(velocity_bin(90)),
            Token::Duration(duration_class(ticks)),
        ]
    }

    fn decode(tokens: &[Token]) -> (heapless::Vec<Event, 64>, usize) {
        let mut d = Decoder::new();
        let mut events = heapless::Vec::new();
        let mut errors = 0;
        for &t in tokens {
            match d.push(t) {
                Ok(Some(e)) => events.push(e).unwrap(),
                Ok(None) => {}
                Err(_) => errors += 1,
            }
        }
        (events, errors)
    }

    fn notes(events: &[Event]) -> heapless::Vec<Note, 64> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Note(n) => Some(*n),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn decodes_bars_positions_voices_and_rests() {
        let mut tokens = heapless::Vec::<Token, 64>::new();
        tokens.extend([Token::Bos, Token::Bar, Token::TimeSignature(6)]); // 3/4
        tokens.extend([Token::Tempo(20), Token::Position(0), Token::Voice(1)]);
        tokens.extend(note(67, 12));
        tokens.extend([Token::Voice(3)]);
        tokens.extend(note(48, 36));
        tokens.extend([Token::Position(24)]);
        tokens.extend(note(60, 6));
        tokens.extend([Token::Rest(2), Token::Bar, Token::Position(3)]);
        tokens.extend(note(62, 3));
        tokens.push(Token::Eos).unwrap();
        let (events, errors) = decode(&tokens);
        assert_eq!(errors, 0);
        let n = notes(&events);
        let expect = |onset, voice, pitch, duration| Note {
            onset,
            voice,
            pitch,
            duration,
            velocity: 90,
        };
        assert_eq!(
            &n[..],
            &[
                expect(0, 1, 67, 12),
                expect(0, 3, 48, 36),
                expect(24, 3, 60, 6),
                // bar 0 is 36 ticks long, two empty bars follow: bar 3 starts at 108.
                expect(108 + 3, 3, 62, 3),
            ]
        );
        assert_eq!(
            events[0],
            Event::TimeSignature {
                tick: 0,
                signature: TimeSignature {
                    numerator: 3,
                    denominator: 4
                }
            }
        );
        assert_eq!(events.last(), Some(&Event::End { tick: 144 }));
    }

    #[test]
    fn a_new_piece_starts_after_the_last_bar_of_the_previous() {
        let mut tokens = heapless::Vec::<Token, 32>::new();
        tokens.extend([Token::Bar, Token::Position(0)]);
        tokens.extend(note(60, 12));
        tokens.extend([Token::Eos, Token::Bos, Token::Bar, Token::Position(0)]);
        tokens.extend(note(62, 12));
        let (events, errors) = decode(&tokens);
        assert_eq!(errors, 0);
        let n = notes(&events);
        assert_eq!((n[0].onset, n[1].onset), (0, 48));
        assert_eq!(n[1].voice, 0);
    }

    #[test]
    fn rejects_ill_formed_tokens_and_recovers() {
        let mut d = Decoder::new();
        assert!(matches!(
            d.push(Token::Pitch(60)),
            Err(DecodeError::Unexpected {
                expected: Expected::FirstBar,
                ..
            })
        ));
        d.push(Token::Bar).unwrap();
        // A note needs a position first.
        assert!(d.push(Token::Pitch(60)).is_err());
        assert_eq!(
            d.push(Token::Position(48)),
            Err(DecodeError::PositionOutsideBar {
                position: 48,
                bar_ticks: 48
            })
        );
        d.push(Token::Position(12)).unwrap();
        // An empty position is not REMI: a note or tempo must follow.
        assert!(d.push(Token::Position(13)).is_err());
        d.push(Token::Pitch(60)).unwrap();
        // A bar in the middle of a note: rejected, the half note dropped.
        assert!(d.push(Token::Bar).is_err());
        assert!(d.push(Token::Velocity(3)).is_err());
        assert_eq!(
            d.push(Token::Position(12)),
            Err(DecodeError::PositionNotAfter {
                position: 12,
                current: 12
            })
        );
        d.push(Token::Pitch(64)).unwrap();
        d.push(Token::Velocity(3)).unwrap();
        let e = d.push(Token::Duration(2)).unwrap();
        assert!(matches!(
            e,
            Some(Event::Note(Note {
                pitch: 64,
                onset: 12,
                ..
            }))
        ));
        assert_eq!(d.push_id(9999), Err(DecodeError::UnknownId(9999)));
        assert!(d.push(Token::Pad).is_err());
        assert!(d.push(Token::Bos).is_err());
        assert!(d.push(Token::TimeSignature(3)).is_err()); // not at a bar head
        let mut fresh = Decoder::new();
        fresh.push(Token::Bos).unwrap();
        assert!(fresh.push(Token::Bos).is_err()); // one Bos per piece
        d.push(Token::Eos).unwrap();
        assert!(d.push(Token::Bar).is_err()); // only Bos after the end
    }

    #[test]
    fn accepts_does_not_change_the_state() {
        let mut d = Decoder::new();
        d.push(Token::Bar).unwrap();
        let before = d;
        assert!(d.accepts([Token::Position(0), Token::Pitch(1), Token::Velocity(0)]));
        assert!(!d.accepts([Token::Velocity(0)]));
        assert_eq!(d, before);
    }

    #[test]
    fn time_saturates_instead_of_overflowing() {
        let mut d = Decoder::new();
        d.push(Token::Bar).unwrap();
        d.bar_start = u32::MAX - 100;
        let _ = d.push(Token::Rest(8));
        d.push(Token::Bar).unwrap();
        assert_eq!(d.bar_start(), u32::MAX);
        d.push(Token::Position(5)).unwrap();
        assert_eq!(d.now(), u32::MAX);
    }
}
