//! The choices made once per piece, before its first note: how many voices
//! it is written for ([`crate::voicing`]) and how many opening bars it plays
//! again ([`crate::form`]). A model file carries how its training pieces
//! chose (`host-trainer export` counts them), so that every generator — the
//! board's, the host's — draws pieces with the corpus's mix: mostly
//! four-part chorales, some with instrument parts, about half in bar form.
//!
//! Metadata (both optional; a file without them leaves every choice to the
//! model):
//!
//! * `voice_counts`: 16 comma-separated counts, of training pieces in 1 to
//!   16 voices;
//! * `repeat_bars`: [`MAX_REPEAT_BARS`] + 1 counts, of training pieces that
//!   play 0 (through-composed) to [`MAX_REPEAT_BARS`] opening bars again.

use crate::config::ConfigError;
use crate::safetensors::SafeTensors;
use crate::vocab::NUM_VOICES;
use crate::voicing::Voicing;

/// Longest repeated opening a plan counts, in bars.
pub const MAX_REPEAT_BARS: usize = 16;

/// How the training pieces chose (see the [module documentation](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PiecePlan {
    /// Pieces in 1..=16 voices (index + 1); all zero: the model chooses.
    pub voice_counts: [u32; NUM_VOICES],
    /// Pieces repeating 0..=MAX_REPEAT_BARS bars; all zero: no repeats.
    pub repeat_bars: [u32; MAX_REPEAT_BARS + 1],
}

impl Default for PiecePlan {
    fn default() -> Self {
        Self::free()
    }
}

/// What one piece is to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PieceChoice {
    /// Its voices.
    pub voicing: Voicing,
    /// Opening bars it plays again (0: none).
    pub repeat_bars: u32,
}

impl PiecePlan {
    /// No counts: the model chooses the voices and nothing is repeated.
    pub const fn free() -> Self {
        PiecePlan {
            voice_counts: [0; NUM_VOICES],
            repeat_bars: [0; MAX_REPEAT_BARS + 1],
        }
    }

    /// Read the counts from a model file's metadata.
    pub fn from_metadata(file: &SafeTensors<'_>) -> Result<Self, ConfigError> {
        let mut plan = Self::free();
        if let Some(text) = file.metadata("voice_counts") {
            parse_counts(text, &mut plan.voice_counts)
                .ok_or(ConfigError::Invalid("voice_counts"))?;
        }
        if let Some(text) = file.metadata("repeat_bars") {
            parse_counts(text, &mut plan.repeat_bars).ok_or(ConfigError::Invalid("repeat_bars"))?;
        }
        Ok(plan)
    }

    /// The choice for piece number `piece` of a stream seeded with `seed`:
    /// each count drawn in proportion to the training pieces' (independent
    /// draws; the same seed and piece always choose the same).
    pub fn choose(&self, seed: u64, piece: u32) -> PieceChoice {
        let stream = seed ^ u64::from(piece).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let voices = draw(&self.voice_counts, splitmix64(stream));
        let repeat = draw(
            &self.repeat_bars,
            splitmix64(stream ^ 0x5851_f42d_4c95_7f2d),
        );
        PieceChoice {
            voicing: match voices {
                // Index i counts pieces in i + 1 voices (at most 16: fits u8).
                Some(i) => Voicing::new(i as u8 + 1),
                None => Voicing::free(),
            },
            repeat_bars: repeat.map_or(0, |bars| bars as u32),
        }
    }
}

/// Exactly `counts.len()` comma-separated integers with a sum that fits a
/// `u32` (all zero: the choice is left to the model).
fn parse_counts(text: &str, counts: &mut [u32]) -> Option<()> {
    let mut fields = text.split(',');
    for slot in counts.iter_mut() {
        *slot = fields.next()?.trim().parse().ok()?;
    }
    let total = counts.iter().try_fold(0u32, |sum, &c| sum.checked_add(c));
    (fields.next().is_none() && total.is_some()).then_some(())
}

/// An index drawn in proportion to `counts` (`None` if all are zero).
fn draw(counts: &[u32], random: u64) -> Option<usize> {
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    if total == 0 {
        return None;
    }
    let mut x = random % total;
    for (i, &c) in counts.iter().enumerate() {
        if x < u64::from(c) {
            return Some(i);
        }
        x -= u64::from(c);
    }
    None
}

/// A well-mixed 64-bit hash (splitmix64): neighbouring seeds give
/// unrelated draws.
pub fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_exactly_and_refuse_the_rest() {
        let mut c = [0u32; 3];
        assert_eq!(parse_counts("1, 2,3", &mut c), Some(()));
        assert_eq!(c, [1, 2, 3]);
        for bad in ["1,2", "1,2,3,4", "1,x,3", "", "1,-2,3", "4294967295,1,0"] {
            assert_eq!(parse_counts(bad, &mut c), None, "{bad:?}");
        }
    }

    #[test]
    fn choices_follow_the_counts() {
        let mut plan = PiecePlan::free();
        plan.voice_counts[3] = 3; // four voices
        plan.voice_counts[0] = 1; // one
        plan.repeat_bars[0] = 1;
        plan.repeat_bars[4] = 1;
        let choices: heapless::Vec<PieceChoice, 400> =
            (0..400).map(|p| plan.choose(7, p)).collect();
        let fours = choices
            .iter()
            .filter(|c| c.voicing.voices() == Some(4))
            .count();
        assert!((260..340).contains(&fours), "{fours}");
        assert!(choices
            .iter()
            .all(|c| matches!(c.voicing.voices(), Some(1 | 4))));
        let repeats = choices.iter().filter(|c| c.repeat_bars == 4).count();
        assert!((160..240).contains(&repeats), "{repeats}");
        assert!(choices.iter().all(|c| [0, 4].contains(&c.repeat_bars)));
        assert_eq!(plan.choose(7, 3), plan.choose(7, 3));
        let free = PiecePlan::free().choose(7, 3);
        assert_eq!((free.voicing, free.repeat_bars), (Voicing::free(), 0));
    }
}
