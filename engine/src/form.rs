//! Bar form: a piece's opening bars played again (A A B).
//!
//! About half of the chorales are in bar form: their first section (the
//! Stollen, mostly four bars) is written out twice before the rest (the
//! Abgesang). A small model does not learn to copy a hundred tokens back, so
//! its pieces never repeat themselves. A [`Repeat`] does what a repeat sign
//! does: it records the base tokens of the piece's first `bars` bars as they
//! are generated, and when the model starts bar `bars` it hands out the
//! recording again (BPE-encoded, as the model was trained to read it), one
//! token per step, in place of sampled tokens. The model then writes on
//! with the repeat in its context.
//!
//! A piece that has repeated its opening does not end before its third
//! section is as long as the first ([`Repeat::may_end`]): without that rule
//! the model, having just heard the Stollen's closing cadence twice, mostly
//! ends the piece there (5 of 8 seeds of the shipped student at four bars).
//!
//! The replay is the opening's tokens from its `Bar`, without the piece's
//! opening meter and tempo, with the first note's voice made explicit (a
//! piece starts in voice 0 without saying so), and ends with the `Bar` that
//! starts the bar after it. If the opening does not fit
//! in [`REPEAT_CAPACITY`] base tokens, the piece is not repeated.

use crate::bpe::{BpeTable, MAX_EXPANSION};
use crate::vocab::Token;

/// Base tokens of opening a [`Repeat`] holds (four bars of four voices in
/// quarter notes take about 280).
pub const REPEAT_CAPACITY: usize = 1024;

/// Where a [`Repeat`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Recording the opening until the model starts bar `bars`.
    Recording,
    /// Handing out the base tokens that the cue token held before its
    /// `Bar` (`prefix[next..len]`): they end the opening's last bar.
    Prefix { next: usize },
    /// Handing out `recorded[next..len]`, BPE-encoded.
    Replaying { next: usize },
    /// Nothing (more) to do in this piece.
    Done,
}

/// The bar-form repeat of one piece (see the [module documentation](self)).
#[derive(Clone, Debug)]
pub struct Repeat {
    bars: u32,
    started: u32,
    voiced: bool,
    /// The opening has reached its first `Position` (its head is over).
    positioned: bool,
    replayed: bool,
    phase: Phase,
    prefix: [u16; MAX_EXPANSION],
    prefix_len: usize,
    recorded: [u16; REPEAT_CAPACITY],
    len: usize,
}

impl Default for Repeat {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Repeat {
    /// Repeat the first `bars` bars of the piece that starts next (0: no
    /// repeat).
    pub const fn new(bars: u32) -> Self {
        Repeat {
            bars,
            started: 0,
            voiced: false,
            positioned: false,
            replayed: false,
            phase: if bars == 0 {
                Phase::Done
            } else {
                Phase::Recording
            },
            prefix: [0; MAX_EXPANSION],
            prefix_len: 0,
            recorded: [0; REPEAT_CAPACITY],
            len: 0,
        }
    }

    /// The bars repeated (0: none).
    pub fn bars(&self) -> u32 {
        self.bars
    }

    /// May the piece end here? Not after its repeat until it has started
    /// three times the repeated bars (A A B, B at least as long as A); the
    /// generation loop masks `Eos` while this is false.
    pub fn may_end(&self) -> bool {
        !self.replayed || self.started > self.bars.saturating_mul(3)
    }

    /// True once the repeat is over, was never asked for, or did not fit.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Follow a base token of the stream (prompt, sampled or replayed).
    pub fn follow(&mut self, token: Token) {
        match token {
            Token::Bar => self.started = self.started.saturating_add(1),
            Token::Rest(n) => self.started = self.started.saturating_add(u32::from(n)),
            _ => {}
        }
        let recording = matches!(self.phase, Phase::Recording | Phase::Prefix { .. });
        if !recording || self.started == 0 || self.started > self.bars {
            return;
        }
        let Some(id) = token.id() else {
            return;
        };
        match token {
            Token::Bos | Token::Eos => {}
            // The piece's opening meter and tempo, not a change inside its first bar.
            Token::TimeSignature(_) | Token::Tempo(_) if self.started == 1 && !self.positioned => {}
            Token::Position(_) => {
                self.positioned = true;
                self.record(id);
            }
            Token::Pitch(_) if !self.voiced => {
                self.voiced = true;
                if let Some(voice) = Token::Voice(0).id() {
                    self.record(voice);
                }
                self.record(id);
            }
            Token::Voice(_) => {
                self.voiced = true;
                self.record(id);
            }
            _ => self.record(id),
        }
    }

    fn record(&mut self, id: u16) {
        match self.recorded.get_mut(self.len) {
            Some(slot) => {
                *slot = id;
                self.len += 1;
            }
            // Too long an opening: no repeat for this piece.
            None => self.phase = Phase::Done,
        }
    }

    /// Is a sampled token (its base tokens) the cue, the `Bar` that starts
    /// bar `bars`? If so the repeat begins: the token is dropped and
    /// [`Repeat::next`] hands out what replaces it.
    pub fn cue(&mut self, expansion: impl IntoIterator<Item = u16>) -> bool {
        if self.phase != Phase::Recording {
            return false;
        }
        let mut bar = self.started;
        for (prefix_len, id) in expansion.into_iter().enumerate() {
            match Token::from_id(id) {
                Some(Token::Bar) => bar = bar.saturating_add(1),
                Some(Token::Rest(n)) => bar = bar.saturating_add(u32::from(n)),
                _ => {}
            }
            if bar > self.bars {
                self.prefix_len = prefix_len;
                self.phase = Phase::Prefix { next: 0 };
                return true;
            }
            match self.prefix.get_mut(prefix_len) {
                Some(slot) => *slot = id,
                None => return false,
            }
        }
        false
    }

    /// The next token to feed instead of sampling one, if the repeat is
    /// being played; `bpe` encodes the recording when the replay begins.
    pub fn next(&mut self, bpe: &BpeTable<'_>) -> Option<u16> {
        loop {
            match self.phase {
                Phase::Recording | Phase::Done => return None,
                Phase::Prefix { next } => {
                    match self.prefix.get(next).filter(|_| next < self.prefix_len) {
                        Some(&id) => {
                            self.phase = Phase::Prefix { next: next + 1 };
                            return Some(id);
                        }
                        None => {
                            // The opening is complete: it ends where the cue
                            // started the next bar, so the replay does too
                            // (the model goes on from a bar line, as after
                            // the cue, and cannot add to the replay's last
                            // chord). Then encode it, once.
                            if let Some(bar) = Token::Bar.id() {
                                self.record(bar);
                            }
                            let recorded = self.recorded.get_mut(..self.len).unwrap_or(&mut []);
                            self.len = bpe.encode_in_place(recorded);
                            self.phase = Phase::Replaying { next: 0 };
                            self.replayed = true;
                        }
                    }
                }
                Phase::Replaying { next } => {
                    match self.recorded.get(next).filter(|_| next < self.len) {
                        Some(&id) => {
                            self.phase = Phase::Replaying { next: next + 1 };
                            return Some(id);
                        }
                        None => self.phase = Phase::Done,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(tokens: &[Token]) -> heapless::Vec<u16, 256> {
        tokens.iter().map(|t| t.id().unwrap()).collect()
    }

    fn chord(pitch: u8, explicit_first_voice: bool) -> heapless::Vec<Token, 16> {
        let mut tokens = heapless::Vec::new();
        for voice in 0..2u8 {
            if voice > 0 || explicit_first_voice {
                tokens.push(Token::Voice(voice)).unwrap();
            }
            for t in [
                Token::Pitch(pitch - 12 * voice),
                Token::Velocity(20),
                Token::Duration(12),
            ] {
                tokens.push(t).unwrap();
            }
        }
        tokens
    }

    /// A piece of `bars` one-chord bars after its head.
    fn piece(bars: u8) -> heapless::Vec<Token, 256> {
        let mut tokens: heapless::Vec<Token, 256> = heapless::Vec::new();
        tokens.extend([
            Token::Bos,
            Token::Bar,
            Token::TimeSignature(0),
            Token::Tempo(3),
        ]);
        for bar in 0..bars {
            if bar > 0 {
                tokens.push(Token::Bar).unwrap();
            }
            tokens.push(Token::Position(0)).unwrap();
            tokens.extend(chord(60 + bar, bar > 0));
        }
        tokens
    }

    #[test]
    fn a_tempo_change_inside_the_opening_is_replayed() {
        // Bar 0: a chord, then a tempo change at an onset without notes.
        let mut repeat = Repeat::new(1);
        let mut opening: heapless::Vec<Token, 64> = heapless::Vec::new();
        opening.extend(piece(1));
        opening.extend([Token::Position(6), Token::Tempo(9), Token::Position(12)]);
        opening.extend(chord(64, true));
        for &t in &opening {
            repeat.follow(t);
        }
        assert!(repeat.cue(ids(&[Token::Bar])));
        let mut fed: heapless::Vec<Token, 64> = heapless::Vec::new();
        while let Some(id) = repeat.next(&BpeTable::empty()) {
            fed.push(Token::from_id(id).unwrap()).unwrap();
        }
        // Without the head's meter and tempo, with the change.
        assert!(!fed.contains(&Token::Tempo(3)) && !fed.contains(&Token::TimeSignature(0)));
        let change = [Token::Position(6), Token::Tempo(9), Token::Position(12)];
        assert!(fed.windows(3).any(|w| w == change), "{fed:?}");
        // Well-formed after the opening (it was not: the change's tempo was
        // dropped, leaving an onset without content).
        let mut decoder = crate::decoder::Decoder::new();
        for &t in &opening {
            decoder.push(t).unwrap();
        }
        assert!(decoder.accepts(fed.iter().copied()), "{fed:?}");
    }

    #[test]
    fn replays_the_opening_bars_at_the_cue_then_stops() {
        let bpe = BpeTable::empty();
        let mut repeat = Repeat::new(2);
        // The last note's Duration comes with the cue.
        let opening = piece(2);
        for &t in &opening[..opening.len() - 1] {
            repeat.follow(t);
        }
        assert!(!repeat.cue(ids(&[Token::Duration(12), Token::Position(12)])));
        // "Duration Bar Position": the Duration still ends bar 1, the rest is dropped.
        let cue = ids(&[Token::Duration(12), Token::Bar, Token::Position(0)]);
        assert!(repeat.cue(cue.iter().copied()));
        let mut fed: heapless::Vec<u16, 256> = heapless::Vec::new();
        while let Some(id) = repeat.next(&bpe) {
            repeat.follow(Token::from_id(id).unwrap());
            fed.push(id).unwrap();
        }
        assert!(repeat.is_done());
        // Two bars repeated: the piece may end from its seventh bar on
        // (the replay started the fifth).
        assert!(!repeat.may_end());
        for bar in 6..=7 {
            repeat.follow(Token::Bar);
            assert_eq!(repeat.may_end(), bar == 7, "bar {bar}");
        }
        // The cue's Duration, then the opening from its Bar, voice 0 said.
        let head = ids(&[
            Token::Duration(12),
            Token::Bar,
            Token::Position(0),
            Token::Voice(0),
        ]);
        assert_eq!(fed[..4], head[..]);
        let bar = Token::Bar.id().unwrap();
        assert_eq!(
            fed.iter().filter(|&&id| id == bar).count(),
            3,
            "two bars replayed, and the next one started"
        );
        let mut opening = ids(&chord(61, true)[..]);
        opening.insert(0, Token::Position(0).id().unwrap()).unwrap();
        opening.push(bar).unwrap();
        assert!(
            fed.ends_with(&opening),
            "the second bar as written, then a Bar"
        );
        assert!(!fed.contains(&Token::Tempo(3).id().unwrap()), "no head");
        assert_eq!(repeat.next(&bpe), None);
        assert!(!repeat.cue(cue.iter().copied()), "once per piece");
    }

    #[test]
    fn a_replay_is_bpe_encoded() {
        // One merge: Velocity(20) Duration(12) → 415 + 0.
        let [a, b] = [
            Token::Velocity(20).id().unwrap(),
            Token::Duration(12).id().unwrap(),
        ];
        let mut bytes = [0u8; 4];
        bytes[..2].copy_from_slice(&a.to_le_bytes());
        bytes[2..].copy_from_slice(&b.to_le_bytes());
        let bpe = BpeTable::new(&bytes).unwrap();
        let merged = crate::vocab::VOCAB_SIZE as u16;
        let mut repeat = Repeat::new(1);
        for &t in &piece(1) {
            repeat.follow(t);
        }
        assert!(repeat.cue(ids(&[Token::Bar])));
        let mut fed: heapless::Vec<u16, 64> = heapless::Vec::new();
        while let Some(id) = repeat.next(&bpe) {
            fed.push(id).unwrap();
        }
        // Bar Position Voice(0) Pitch [Vel Dur] Voice(1) Pitch [Vel Dur] Bar
        assert_eq!(fed.len(), 9, "{fed:?}");
        assert_eq!(fed.iter().filter(|&&id| id == merged).count(), 2);
    }

    #[test]
    fn no_repeat_asked_none_given_and_an_opening_too_long_is_not_repeated() {
        let bpe = BpeTable::empty();
        let mut none = Repeat::new(0);
        assert!(none.is_done() && !none.cue(ids(&[Token::Bar])) && none.next(&bpe).is_none());
        let mut long = Repeat::new(2);
        long.follow(Token::Bos);
        long.follow(Token::Bar);
        long.follow(Token::Position(0));
        for _ in 0..REPEAT_CAPACITY {
            long.follow(Token::Pitch(60));
        }
        assert!(long.is_done());
        assert!(!long.cue(ids(&[Token::Bar, Token::Bar])));
    }

    #[test]
    fn encoding_in_place_applies_merges_in_order() {
        // Merges: (10, 11) → 415, (415, 12) → 416.
        let mut bytes = [0u8; 8];
        for (i, v) in [10u16, 11, 415, 12].iter().enumerate() {
            bytes[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
        }
        let bpe = BpeTable::new(&bytes).unwrap();
        let mut tokens = [10, 11, 12, 10, 11, 10, 12];
        let len = bpe.encode_in_place(&mut tokens);
        assert_eq!(tokens[..len], [416, 415, 10, 12]);
        let expanded: heapless::Vec<u16, 16> = tokens[..len]
            .iter()
            .flat_map(|&id| bpe.expand(id))
            .collect();
        assert_eq!(expanded[..], [10, 11, 12, 10, 11, 10, 12]);
    }
}
