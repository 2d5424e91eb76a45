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
//!   at most `voices` notes — a model that rarely writes twelve voices would
//!   otherwise stack notes in one voice without end; a single-voice piece
//!   (the merged-parts files) holds chords of up to four notes instead;
//! * in two voices or more the voices are **legato**, as the chorales'
//!   are: a voice that still sounds at an onset takes no new note there
//!   (no voice holds two notes), every voice that has fallen silent gets a
//!   note before the onset is left, and the next onset comes no later than
//!   the first voice's note ends (no voice falls silent) — unless all the
//!   voices end together, which allows a rest for all. Without this rule
//!   pieces planned for eight voices sounded 4.2 to 7.5 of them on average
//!   (six seeds of the shipped student; with it 7.7 to 8.0), and a third of
//!   the four-part pieces let a voice overlap itself or drop out for a
//!   moment; 286 of the 300 four-part training chorales keep it with not
//!   one token refused.
//!
//! The model chooses everything else: the notes, how long they last, when
//! the voices move, when the piece ends. A new piece (`Bos` after `Eos`)
//! starts the opening again.

use crate::decoder::Decoder;
use crate::vocab::{duration_ticks, Token, NUM_VOICES};

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
    /// A `Position` started the current onset (not only a `Bar` or `Rest`).
    at_onset: bool,
    /// Tick of the current onset.
    onset: u32,
    /// A `Rest` was taken and its `Bar` has not come yet.
    rest: bool,
    /// Tick at which each voice's last note ends (pieces of two voices or
    /// more: the voices are legato).
    until: [u32; NUM_VOICES],
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
        Self::with_voices(0)
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
        Self::with_voices(voices)
    }

    const fn with_voices(voices: u8) -> Self {
        Voicing {
            voices,
            voice: 0,
            opening: voices > 0,
            last: None,
            notes: 0,
            at_onset: false,
            onset: 0,
            rest: false,
            until: [0; NUM_VOICES],
        }
    }

    /// The number of voices, or `None` when free.
    pub fn voices(&self) -> Option<u8> {
        (self.voices > 0).then_some(self.voices)
    }

    /// The part of the state that decides which tokens it allows next, with
    /// the note ends counted from the current onset: two voicings with
    /// equal keys, under decoders with equal
    /// [`grammar_key`](crate::decoder::Decoder::grammar_key)s, allow exactly
    /// the same tokens. [`crate::grammar::TokenMask`] remembers masks by it.
    pub fn key(&self) -> Voicing {
        let mut key = *self;
        key.onset = 0;
        if self.legato() {
            key.notes = 0; // counted for single-voice chords only
        }
        for (i, end) in key.until.iter_mut().enumerate() {
            *end = if i < usize::from(self.voices) {
                end.saturating_sub(self.onset)
            } else {
                0
            };
        }
        key
    }

    /// Do the voices sound legato (two voices or more)?
    fn legato(&self) -> bool {
        self.voices >= 2
    }

    /// The voices that are constrained, with when each one's note ends.
    fn ends(&self) -> &[u32] {
        self.until.get(..usize::from(self.voices)).unwrap_or(&[])
    }

    /// Does voice `u` sound at the current onset?
    fn sounds(&self, u: u8) -> bool {
        self.until
            .get(usize::from(u))
            .is_some_and(|&end| end > self.onset)
    }

    /// A later voice than the last note's at this onset (always, in a
    /// single-voice piece).
    fn climbs(&self, voice: u8) -> bool {
        self.voices == 1 || self.last.is_none_or(|last| voice > last)
    }

    /// At the head of the opening: no note of the first onset yet (what
    /// comes before it is free).
    fn at_head(&self) -> bool {
        self.opening && self.last.is_none()
    }

    /// A single-voice piece holds all the notes it may at this onset.
    fn chord_full(&self) -> bool {
        self.voices == 1 && self.notes >= SINGLE_VOICE_CHORD
    }

    /// May `voice` start a note here? In a legato piece only if it is
    /// silent, and only if no silent voice below it would be passed over
    /// (an onset climbs, so it could not be filled later).
    fn may_enter(&self, voice: u8) -> bool {
        let first = self.last.map_or(0, |l| l.saturating_add(1));
        !self.legato() || (!self.sounds(voice) && (first..voice).all(|u| self.sounds(u)))
    }

    /// May a legato piece move on from here, by `token`, to tick `now` (or
    /// end)? Only once every voice sounds at the onset being left, and then only
    /// to a time no voice has ended before (none falls silent), or, where
    /// all the voices end together, to their end or later (a rest for all).
    /// After a `Rest`, the bar that follows it is free: the rest required
    /// the voices to end together.
    fn may_move(&self, token: Token, now: u32) -> bool {
        let ends = self.ends();
        let complete = !self.at_onset || ends.iter().all(|&end| end > self.onset);
        let (first, last) = ends
            .iter()
            .fold((u32::MAX, 0), |(lo, hi), &e| (lo.min(e), hi.max(e)));
        let together = first == last;
        complete
            && match token {
                Token::Rest(_) => together,
                Token::Bar if self.rest => true,
                Token::Position(_) | Token::Bar => now <= first || (together && now >= last),
                _ => true,
            }
    }

    /// Would [`Voicing::push`] take `token` (one the decoder accepted, with
    /// `now` the decoder's time after it)? Changes nothing.
    pub fn allows(&self, token: Token, now: u32) -> bool {
        if self.voices == 0 {
            return true;
        }
        let top = self.voices - 1;
        match token {
            // A `Voice` only where a note may follow it.
            Token::Voice(v) => {
                v <= top && self.climbs(v) && self.may_enter(v) && !self.chord_full()
            }
            Token::Pitch(_) => {
                self.climbs(self.voice) && self.may_enter(self.voice) && !self.chord_full()
            }
            Token::Position(_) | Token::Bar | Token::Rest(_) | Token::Eos => {
                // Leaving an onset: past the opening's head, the opening
                // must have reached the top voice, and a legato piece moves
                // only where no voice falls silent.
                let opening_complete = !self.opening || self.last.is_none_or(|last| last >= top);
                self.at_head()
                    || (opening_complete && (!self.legato() || self.may_move(token, now)))
            }
            _ => true,
        }
    }

    /// Take `token` (one the decoder accepted), with `now` the decoder's
    /// time after it. Returns false, changing nothing, if the voicing
    /// forbids it.
    pub fn push(&mut self, token: Token, now: u32) -> bool {
        if !self.allows(token, now) {
            return false;
        }
        if self.voices == 0 {
            return true;
        }
        match token {
            Token::Bos => *self = Voicing::new(self.voices),
            Token::Voice(v) => self.voice = v,
            Token::Pitch(_) => self.note(),
            Token::Duration(d) => self.hold(now, d),
            Token::Position(_) | Token::Bar | Token::Rest(_) | Token::Eos => {
                if !self.at_head() {
                    self.opening = false;
                }
                self.next_onset(token, now);
            }
            _ => {}
        }
        true
    }

    fn note(&mut self) {
        self.last = Some(self.voice);
        self.notes = self.notes.saturating_add(1);
    }

    /// The note just completed (in `self.voice`, at `now`) lasts `class`.
    fn hold(&mut self, now: u32, class: u8) {
        if let Some(end) = self.until.get_mut(usize::from(self.voice)) {
            *end = now.saturating_add(duration_ticks(class));
        }
    }

    fn next_onset(&mut self, token: Token, now: u32) {
        self.last = None;
        self.notes = 0;
        self.at_onset = matches!(token, Token::Position(_));
        self.rest = matches!(token, Token::Rest(_));
        self.onset = now;
    }

    /// Take `token` whether or not the voicing allows it (a prompt's token,
    /// or one sampled without the mask): a forbidden voice or note is taken
    /// as it is, and leaving the first onset ends the opening.
    pub fn follow(&mut self, token: Token, now: u32) {
        if !self.push(token, now) {
            match token {
                Token::Voice(v) => self.voice = v,
                Token::Pitch(_) => self.note(),
                _ => {
                    self.opening = false;
                    self.next_onset(token, now);
                }
            }
        }
    }

    /// Would `tokens`, decoded in order by (a copy of) `decoder` from the
    /// current state, all be well-formed and allowed?
    pub fn accepts(&self, decoder: &Decoder, tokens: impl IntoIterator<Item = Token>) -> bool {
        let (mut decoder, mut probe) = (*decoder, *self);
        tokens
            .into_iter()
            .all(|t| decoder.push(t).is_ok() && probe.push(t, decoder.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder and a voicing, fed together.
    struct Stream {
        decoder: Decoder,
        voicing: Voicing,
    }

    impl Stream {
        fn new(voicing: Voicing) -> Self {
            Stream {
                decoder: Decoder::new(),
                voicing,
            }
        }

        fn take(&mut self, tokens: &[Token]) -> bool {
            tokens
                .iter()
                .all(|&t| self.decoder.push(t).is_ok() && self.voicing.push(t, self.decoder.now()))
        }

        fn accepts(&self, tokens: &[Token]) -> bool {
            self.voicing.accepts(&self.decoder, tokens.iter().copied())
        }
    }

    const HEAD: [Token; 3] = [Token::Bos, Token::Bar, Token::Position(0)];

    /// The duration class of `ticks` grid ticks.
    fn lasting(ticks: u32) -> Token {
        Token::Duration((0..64).find(|&c| duration_ticks(c) == ticks).unwrap())
    }

    /// A note in `voice` lasting `ticks` (12: a quarter).
    fn note(voice: u8, ticks: u32) -> [Token; 4] {
        [
            Token::Voice(voice),
            Token::Pitch(60),
            Token::Velocity(20),
            lasting(ticks),
        ]
    }

    fn chord(s: &mut Stream, voices: core::ops::Range<u8>, ticks: u32) -> bool {
        voices.into_iter().all(|v| s.take(&note(v, ticks)))
    }

    #[test]
    fn free_allows_everything() {
        let mut s = Stream::new(Voicing::free());
        assert!(s.take(&HEAD));
        assert!(s.take(&note(15, 12)));
        assert!(s.take(&[Token::Position(1)]));
        assert!(s.take(&note(15, 1)));
        assert_eq!(s.voicing.voices(), None);
    }

    #[test]
    fn the_opening_chord_sounds_every_voice_upwards() {
        let mut s = Stream::new(Voicing::new(4));
        assert!(s.take(&HEAD));
        // The first note goes to voice 0 without a Voice token.
        assert!(s.take(&[Token::Pitch(72), Token::Velocity(20), lasting(12)]));
        assert!(!s.accepts(&[Token::Position(12)]), "only voice 0 sounds");
        assert!(!s.accepts(&[Token::Bar]) && !s.accepts(&[Token::Eos]));
        assert!(!s.accepts(&[Token::Rest(1)]));
        assert!(!s.accepts(&[Token::Pitch(64)]), "a second note in voice 0");
        assert!(!s.accepts(&note(2, 12)), "voice 1 would be passed over");
        assert!(!s.accepts(&note(4, 12)), "voice 4 is beyond four voices");
        assert!(chord(&mut s, 1..3, 12));
        assert!(
            !s.accepts(&[Token::Position(12)]),
            "voice 3 is still missing"
        );
        assert!(!s.accepts(&note(1, 12)), "the chord climbs");
        assert!(s.take(&note(3, 12)));
        // The chord is complete: only time moves.
        assert!(!s.accepts(&note(1, 12)) && !s.accepts(&[Token::Pitch(55)]));
        assert!(s.take(&[Token::Position(12)]));
        assert!(chord(&mut s, 0..4, 12));
        assert!(s.accepts(&[Token::Eos]));
    }

    #[test]
    fn voices_are_legato_no_overlaps_and_no_gaps() {
        let mut s = Stream::new(Voicing::new(2));
        assert!(s.take(&HEAD));
        // Voice 0 a half note, voice 1 a quarter.
        assert!(s.take(&note(0, 24)) && s.take(&note(1, 12)));
        // Time may not pass voice 1's end: it would fall silent.
        assert!(!s.accepts(&[Token::Position(18)]));
        assert!(s.accepts(&[Token::Position(6)]), "an onset before it");
        assert!(s.take(&[Token::Position(12)]));
        // There voice 0 still sounds (no second note over it); voice 1 must go on.
        assert!(!s.accepts(&note(0, 12)));
        assert!(!s.accepts(&[Token::Position(18)]), "voice 1 is silent here");
        assert!(!s.accepts(&[Token::Bar]));
        assert!(s.take(&note(1, 12)));
        // Both end at 24 together: on to 24, or a rest for both beyond it.
        assert!(s.accepts(&[Token::Position(24)]));
        assert!(s.accepts(&[Token::Position(36)]), "a rest for all");
        assert!(s.accepts(&[Token::Rest(1), Token::Bar, Token::Position(6)]));
        assert!(s.take(&[Token::Bar, Token::Position(0)]));
        assert!(chord(&mut s, 0..2, 12));
        // Different ends: no rest.
        assert!(s.take(&[Token::Position(12)]));
        assert!(s.take(&note(0, 24)) && s.take(&note(1, 12)));
        assert!(!s.accepts(&[Token::Rest(1)]));
        assert!(!s.accepts(&[Token::Position(30)]));
    }

    #[test]
    fn a_header_before_the_first_note_is_free_and_a_new_piece_opens_again() {
        let mut s = Stream::new(Voicing::new(2));
        assert!(s.take(&[Token::Bos, Token::Rest(2), Token::Bar, Token::Position(6)]));
        assert!(chord(&mut s, 0..2, 12));
        assert!(s.take(&[Token::Eos, Token::Bos, Token::Bar]));
        assert!(s.take(&[Token::Position(0), Token::Pitch(60)]));
        assert!(!s.accepts(&[Token::Velocity(1), lasting(12), Token::Bar]));
    }

    #[test]
    fn one_voice_holds_chords_and_nothing_else() {
        let mut s = Stream::new(Voicing::new(1));
        assert!(s.take(&HEAD));
        assert!(!s.accepts(&[Token::Voice(1)]));
        assert!(s.accepts(&[Token::Voice(0)]));
        for pitch in [60, 64, 67, 72] {
            assert!(s.take(&[Token::Pitch(pitch), Token::Velocity(1), lasting(24)]));
        }
        assert!(!s.accepts(&[Token::Pitch(76)]), "four notes at most");
        // Not legato: time moves freely, and notes overlap.
        assert!(s.take(&[Token::Position(3)]));
        assert!(s.take(&[Token::Pitch(62), Token::Velocity(1), lasting(1)]));
        assert!(s.accepts(&[Token::Position(40)]));
    }

    #[test]
    fn a_prompt_outside_the_voicing_is_followed() {
        let mut v = Voicing::new(2);
        let mut d = Decoder::new();
        for t in HEAD.into_iter().chain(note(5, 12)) {
            d.push(t).unwrap();
            v.follow(t, d.now());
        }
        d.push(Token::Position(12)).unwrap();
        v.follow(Token::Position(12), d.now());
        // The opening is over; voices stay below two, and both must sound.
        assert!(!v.accepts(&d, note(5, 12)));
        assert!(v.accepts(&d, note(0, 12).into_iter().chain(note(1, 12))));
        assert!(!v.accepts(&d, note(0, 12).into_iter().chain([Token::Position(18)])));
    }

    #[test]
    fn keys_count_the_ends_from_the_onset() {
        let mut a = Stream::new(Voicing::new(2));
        assert!(a.take(&HEAD) && chord(&mut a, 0..2, 12));
        assert!(a.take(&[Token::Position(12)]) && chord(&mut a, 0..2, 12));
        let mut b = Stream::new(Voicing::new(2));
        assert!(b.take(&HEAD) && chord(&mut b, 0..2, 12));
        assert!(b.take(&[Token::Position(12)]) && chord(&mut b, 0..2, 12));
        assert!(b.take(&[Token::Position(24)]) && chord(&mut b, 0..2, 12));
        assert_ne!(a.voicing, b.voicing);
        assert_eq!(a.voicing.key(), b.voicing.key());
        assert!(!b.accepts(&note(0, 12)));
        assert!(b.take(&[Token::Position(30)]));
        assert_ne!(a.voicing.key(), b.voicing.key());
    }

    #[test]
    fn out_of_range_counts_are_clamped() {
        assert_eq!(Voicing::new(0).voices(), Some(1));
        assert_eq!(Voicing::new(200).voices(), Some(NUM_VOICES as u8));
    }

    /// `allows` is `push`'s verdict, a refused `push` changes nothing, and
    /// there is always a next token: along random walks of free, 1-, 2-, 4-
    /// and 8-voice pieces every base token the decoder accepts is asked both
    /// ways. (It found a dead end: a `Voice` after a single voice's full
    /// chord, where no `Pitch` may follow.)
    #[test]
    fn allows_is_what_push_would_do() {
        for voices in [0u8, 1, 2, 4, 8] {
            let voicing = match voices {
                0 => Voicing::free(),
                n => Voicing::new(n),
            };
            let mut s = Stream::new(voicing);
            let mut seed = 7 + u32::from(voices);
            let (mut refused, mut taken) = (0, 0);
            for _ in 0..2000 {
                let mut allowed = [0u16; crate::vocab::VOCAB_SIZE];
                let mut n = 0;
                for id in 0..crate::vocab::VOCAB_SIZE as u16 {
                    let Some(token) = Token::from_id(id) else {
                        continue;
                    };
                    let mut decoder = s.decoder;
                    if decoder.push(token).is_err() {
                        continue;
                    }
                    let now = decoder.now();
                    let asked = s.voicing.allows(token, now);
                    let mut pushed = s.voicing;
                    assert_eq!(asked, pushed.push(token, now), "{token:?} after {taken}");
                    if asked {
                        allowed[n] = id;
                        n += 1;
                    } else {
                        assert_eq!(pushed, s.voicing, "a refused {token:?} changed the voicing");
                        refused += 1;
                    }
                }
                let (decoder, voicing) = (s.decoder, s.voicing);
                assert!(n > 0, "a dead end after {taken}: {decoder:?} {voicing:?}");
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let token = Token::from_id(allowed[(seed >> 8) as usize % n]).unwrap();
                assert!(s.take(&[token]));
                taken += 1;
            }
            assert_eq!(taken, 2000);
            assert_eq!(
                refused > 1000,
                voices > 0,
                "{refused} refusals in {voices} voices"
            );
        }
    }
}
