//! Grammar-constrained decoding: mask every token whose expansion the
//! decoder would reject, so that sampled output is always playable, and
//! every token a chosen [`Voicing`] forbids.
//!
//! Checking a token replays its BPE expansion through the decoder, a few
//! hundred instructions, so checking the whole vocabulary each step costs
//! more than sampling. The decoder visits few distinct states (what it
//! expects next, the meter, the position in the bar, the voicing's
//! opening), so [`TokenMask`]
//! remembers the allowed set of the last [`TokenMask::ENTRIES`] states and
//! most steps only copy a bit set.

use crate::bpe::BpeTable;
use crate::decoder::{Decoder, Event};
use crate::session::{Session, SessionError};
use crate::vocab::{Token, VOCAB_SIZE};
use crate::voicing::Voicing;

/// Set the logit of every ill-formed next token to −∞. Returns how many
/// tokens stay allowed (never 0 for a decoder in a reachable state).
pub fn mask_ill_formed(logits: &mut [f32], decoder: &Decoder, bpe: &BpeTable<'_>) -> usize {
    mask_disallowed(logits, decoder, &Voicing::free(), bpe)
}

/// [`mask_ill_formed`], and mask what `voicing` forbids as well.
pub fn mask_disallowed(
    logits: &mut [f32],
    decoder: &Decoder,
    voicing: &Voicing,
    bpe: &BpeTable<'_>,
) -> usize {
    let mut allowed = 0;
    for (id, logit) in logits.iter_mut().enumerate() {
        if well_formed(decoder, voicing, bpe, id) {
            allowed += 1;
        } else {
            *logit = f32::NEG_INFINITY;
        }
    }
    allowed
}

fn well_formed(decoder: &Decoder, voicing: &Voicing, bpe: &BpeTable<'_>, id: usize) -> bool {
    let Ok(id) = u16::try_from(id) else {
        return false;
    };
    if usize::from(id) < VOCAB_SIZE {
        // A base token: the voicing is asked, not copied and changed.
        let mut decoder = *decoder;
        return Token::from_id(id).is_some_and(|token| {
            decoder.push(token).is_ok() && voicing.allows(token, decoder.now())
        });
    }
    let (mut decoder, mut voicing) = (*decoder, *voicing);
    bpe.expand(id).all(|base| match Token::from_id(base) {
        Some(token) => decoder.push(token).is_ok() && voicing.push(token, decoder.now()),
        None => false,
    })
}

/// Words of a remembered token set: room for vocabularies of up to 1024 ids
/// (larger ones are checked token by token every step).
const WORDS: usize = 32;

/// The allowed next tokens of recent decoder states, as bit sets.
#[derive(Clone, Debug)]
pub struct TokenMask {
    keys: [Option<(Decoder, Voicing)>; Self::ENTRIES],
    sets: [[u32; WORDS]; Self::ENTRIES],
    next: usize,
    misses: u32,
}

impl Default for TokenMask {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenMask {
    /// States remembered (the oldest is replaced first).
    pub const ENTRIES: usize = 32;

    /// Nothing remembered yet.
    pub const fn new() -> Self {
        TokenMask {
            keys: [None; Self::ENTRIES],
            sets: [[0; WORDS]; Self::ENTRIES],
            next: 0,
            misses: 0,
        }
    }

    /// The allowed set of `decoder`'s and `voicing`'s state over a
    /// vocabulary of `vocab` ids (bit `id % 32` of word `id / 32`), or `None`
    /// where the vocabulary is too large to remember.
    pub fn allowed(
        &mut self,
        decoder: &Decoder,
        voicing: &Voicing,
        bpe: &BpeTable<'_>,
        vocab: usize,
    ) -> Option<&[u32]> {
        let words = vocab.div_ceil(32);
        if words > WORDS {
            return None;
        }
        let key = (decoder.grammar_key(), voicing.key());
        let slot = match self.keys.iter().position(|k| *k == Some(key)) {
            Some(slot) => slot,
            None => {
                let slot = self.next;
                self.next = (self.next + 1) % Self::ENTRIES;
                self.misses = self.misses.saturating_add(1);
                let set = &mut self.sets[slot];
                set.fill(0);
                // Base tokens first: a merged token whose first base token
                // may not come next is rejected without being expanded.
                let base = vocab.min(VOCAB_SIZE);
                for id in 0..base {
                    if well_formed(decoder, voicing, bpe, id) {
                        set[id / 32] |= 1 << (id % 32);
                    }
                }
                for id in base..vocab {
                    let first = usize::from(bpe.first(id as u16));
                    let may_start = first < base && set[first / 32] & (1 << (first % 32)) != 0;
                    if may_start && well_formed(decoder, voicing, bpe, id) {
                        set[id / 32] |= 1 << (id % 32);
                    }
                }
                self.keys[slot] = Some(key);
                slot
            }
        };
        self.sets.get(slot).map(|s| &s[..words])
    }

    /// How often a state's set had to be computed.
    pub fn misses(&self) -> u32 {
        self.misses
    }

    /// [`mask_disallowed`], remembering the answer: the same logits, the
    /// same count.
    pub fn mask(
        &mut self,
        logits: &mut [f32],
        decoder: &Decoder,
        voicing: &Voicing,
        bpe: &BpeTable<'_>,
    ) -> usize {
        match self.allowed(decoder, voicing, bpe, logits.len()) {
            Some(set) => apply(set, logits),
            None => mask_disallowed(logits, decoder, voicing, bpe),
        }
    }
}

/// Set every logit outside `set` to −∞; returns how many are inside.
pub fn apply(set: &[u32], logits: &mut [f32]) -> usize {
    let mut allowed = 0;
    for (chunk, &word) in logits.chunks_mut(32).zip(set) {
        if word == u32::MAX {
            allowed += chunk.len();
            continue;
        }
        for (i, l) in chunk.iter_mut().enumerate() {
            if word & (1 << i) != 0 {
                allowed += 1;
            } else {
                *l = f32::NEG_INFINITY;
            }
        }
    }
    allowed
}

/// The grammar's half of a token step, the one every generation loop
/// shares (the [`crate::generator::Generator`], the host's engine and candle
/// paths, the firmware's profile): the decoder state, the voicing, the masks
/// remembered for them and whether ill-formed tokens are masked at all.
///
/// A step is: the logits of what may follow are masked ([`Grammar::mask`]
/// on logits from anywhere, or [`Grammar::forward`], which does not even
/// compute the masked ones), a token is sampled, and [`Grammar::accept`]
/// decodes it.
#[derive(Clone, Debug)]
pub struct Grammar {
    decoder: Decoder,
    voicing: Voicing,
    masks: TokenMask,
    constrained: bool,
}

/// What a token did when [`Grammar::accept`] decoded it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Every base token of its expansion was well-formed.
    pub well_formed: bool,
    /// Bars it started (`Bar` tokens, and the bars a `Rest` skips).
    pub bars: u32,
    /// It holds `Eos`.
    pub end: bool,
}

impl Grammar {
    /// A grammar at the start of a stream; `constrained` masks ill-formed
    /// tokens (otherwise [`Grammar::mask`] leaves logits as they are).
    pub const fn new(constrained: bool) -> Self {
        Grammar {
            decoder: Decoder::new(),
            voicing: Voicing::free(),
            masks: TokenMask::new(),
            constrained,
        }
    }

    /// The same grammar, writing for `voicing` (enforced by the mask, so
    /// only when constrained).
    pub const fn with_voicing(mut self, voicing: Voicing) -> Self {
        self.voicing = voicing;
        self
    }

    /// Write for `voicing` from the next token on (a new piece's `Bos`
    /// starts its opening).
    pub fn set_voicing(&mut self, voicing: Voicing) {
        self.voicing = voicing;
    }

    /// The voicing (its state follows the tokens accepted).
    pub fn voicing(&self) -> &Voicing {
        &self.voicing
    }

    /// Whether ill-formed tokens are masked.
    pub fn constrained(&self) -> bool {
        self.constrained
    }

    /// The decoder (its clock is the musical time of the last token).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The remembered masks (for their statistics).
    pub fn masks(&self) -> &TokenMask {
        &self.masks
    }

    /// The allowed next tokens as a bit set over a vocabulary of `vocab`
    /// ids, for [`Session::forward_masked`]: `None` when unconstrained or
    /// when the vocabulary is too large to remember.
    pub fn allowed(&mut self, bpe: &BpeTable<'_>, vocab: usize) -> Option<&[u32]> {
        if !self.constrained {
            return None;
        }
        self.masks.allowed(&self.decoder, &self.voicing, bpe, vocab)
    }

    /// Set the logits of the tokens that may not come next to −∞ (when
    /// constrained); returns how many stay.
    pub fn mask(&mut self, logits: &mut [f32], bpe: &BpeTable<'_>) -> usize {
        if !self.constrained {
            return logits.len();
        }
        self.masks.mask(logits, &self.decoder, &self.voicing, bpe)
    }

    /// Run `session` on `token` (accepted already) and return the logits
    /// of the next, masked: the output rows of the tokens that may not
    /// follow are not computed at all where the vocabulary is small enough
    /// to remember.
    pub fn forward<'s>(
        &mut self,
        session: &'s mut Session<'_, '_>,
        token: u16,
    ) -> Result<&'s mut [f32], SessionError> {
        let model = session.model();
        let vocab = model.config.vocab_size;
        match self.allowed(&model.bpe, vocab) {
            Some(set) => session.forward_masked(token, Some(set)),
            None => {
                // Unconstrained, or a vocabulary too large to remember.
                let logits = session.forward(token)?;
                if self.constrained {
                    mask_disallowed(logits, &self.decoder, &self.voicing, &model.bpe);
                }
                Ok(logits)
            }
        }
    }

    /// Decode `id`: expand its BPE and push every base token through the
    /// decoder, handing each event to `on_event`. An ill-formed base token
    /// is skipped (with any half-built note).
    pub fn accept(
        &mut self,
        id: u16,
        bpe: &BpeTable<'_>,
        mut on_event: impl FnMut(&Event),
    ) -> Accepted {
        let mut accepted = Accepted {
            well_formed: true,
            ..Accepted::default()
        };
        for base in bpe.expand(id) {
            match Token::from_id(base) {
                Some(Token::Bar) => accepted.bars += 1,
                Some(Token::Rest(n)) => accepted.bars += u32::from(n),
                Some(Token::Eos) => accepted.end = true,
                _ => {}
            }
            match self.decoder.push_id(base) {
                Ok(event) => {
                    if let Some(token) = Token::from_id(base) {
                        self.voicing.follow(token, self.decoder.now());
                    }
                    if let Some(event) = event {
                        on_event(&event);
                    }
                }
                Err(_) => accepted.well_formed = false,
            }
        }
        accepted
    }
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

    /// Walk the grammar by always taking a pseudo-random allowed token,
    /// comparing the remembered mask with a fresh one at every step; returns
    /// the notes, the ticks where pieces ended and how many times a set had
    /// to be computed.
    fn random_walk(
        voicing: Voicing,
        steps: usize,
    ) -> (
        heapless::Vec<crate::decoder::Note, 2048>,
        heapless::Vec<u32, 256>,
        u32,
    ) {
        let bpe = BpeTable::empty();
        let mut grammar = Grammar::new(true).with_voicing(voicing);
        let (mut notes, mut ends) = (heapless::Vec::new(), heapless::Vec::new());
        let mut seed = 7u32;
        for step in 0..steps {
            let mut fresh = [0.0f32; VOCAB_SIZE];
            let n = mask_disallowed(&mut fresh, grammar.decoder(), grammar.voicing(), &bpe);
            let mut cached = [0.0f32; VOCAB_SIZE];
            assert_eq!(grammar.mask(&mut cached, &bpe), n, "step {step}");
            assert_eq!(
                cached.map(f32::to_bits),
                fresh.map(f32::to_bits),
                "step {step}"
            );
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let allowed: heapless::Vec<u16, VOCAB_SIZE> = (0..VOCAB_SIZE as u16)
                .filter(|&i| fresh[usize::from(i)].is_finite())
                .collect();
            let id = allowed[(seed >> 8) as usize % allowed.len()];
            let accepted = grammar.accept(id, &bpe, |event| match event {
                crate::decoder::Event::Note(note) => {
                    let _ = notes.push(*note);
                }
                crate::decoder::Event::End { tick } => {
                    let _ = ends.push(*tick);
                }
                _ => {}
            });
            assert!(accepted.well_formed, "step {step}");
        }
        (notes, ends, grammar.masks().misses())
    }

    #[test]
    fn remembered_masks_equal_fresh_ones_along_a_random_walk() {
        let (notes, _, misses) = random_walk(Voicing::free(), 3000);
        assert!(notes.iter().any(|n| n.voice >= 3));
        // Most steps are answered from memory.
        assert!(misses < 1000, "{misses}");
    }

    #[test]
    fn a_voicing_holds_along_a_random_walk() {
        let (notes, ends, misses) = random_walk(Voicing::new(3), 3000);
        assert!(notes.len() > 20, "{}", notes.len());
        assert!(notes.iter().all(|n| n.voice < 3));
        // The first onset sounds the top voice.
        let first = notes[0].onset;
        assert!(notes.iter().any(|n| n.onset == first && n.voice == 2));
        // Every onset climbs: one note per voice, upwards.
        for pair in notes.windows(2) {
            if pair[0].onset == pair[1].onset {
                assert!(pair[1].voice > pair[0].voice, "{pair:?}");
            }
        }
        // Legato: at every onset each voice sounds exactly one note of the
        // piece (a piece's last notes may sound on into the next).
        // (The walk stops in the middle of its last onset.)
        let piece = |tick: u32| ends.iter().filter(|&&end| end <= tick).count();
        let last = notes.last().map_or(0, |n| n.onset);
        for n in notes.iter().filter(|n| n.onset < last) {
            for voice in 0..3 {
                let sounding = notes
                    .iter()
                    .filter(|m| m.voice == voice && piece(m.onset) == piece(n.onset))
                    .filter(|m| (m.onset..m.onset + m.duration).contains(&n.onset))
                    .count();
                assert_eq!(sounding, 1, "voice {voice} at {n:?}");
            }
        }
        // (A random walk visits far more states than a model does; the
        // board's grammar cost is measured in QEMU.)
        assert!(misses < 3000, "{misses}");
    }
}
