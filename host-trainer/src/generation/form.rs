//! Bar form on the host side: which pieces repeat their opening, and after
//! how many bars — measured in the training pieces ([`repeat_length`]) and
//! drawn from them for `eval --repeat train`, or counted for the model file
//! (`export`). The repeat itself is the engine's ([`kantor_engine::form`]),
//! the same on the board.

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

/// What `--repeat` says: `none`, a number of bars, or `train` (drawn from
/// the training split).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepeatArg {
    /// No repeat.
    None,
    /// Every piece repeats this many opening bars.
    Bars(u32),
    /// Each piece repeats as a training piece drawn by its seed does.
    Train,
    /// Drawn from the model file's counts ([`kantor_engine::plan`]).
    Plan,
}

impl std::fmt::Display for RepeatArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepeatArg::None => write!(f, "none"),
            RepeatArg::Bars(n) => write!(f, "{n}"),
            RepeatArg::Train => write!(f, "train"),
            RepeatArg::Plan => write!(f, "plan"),
        }
    }
}

impl std::str::FromStr for RepeatArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(RepeatArg::None),
            "train" => Ok(RepeatArg::Train),
            "plan" => Ok(RepeatArg::Plan),
            n => match n.parse::<u32>() {
                Ok(bars) if (1..=64).contains(&bars) => Ok(RepeatArg::Bars(bars)),
                _ => Err(format!(
                    "{n:?}: give none, train, plan or a number of bars from 1 to 64"
                )),
            },
        }
    }
}

/// The repeat of each piece.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repeats {
    /// No piece repeats.
    None,
    /// Every piece repeats this many bars.
    Bars(u32),
    /// The [`repeat_length`] of every training piece (0 for most).
    Drawn(Vec<u32>),
}

impl Repeats {
    /// Resolve `arg`; `train` reads the training pieces, `plan` takes the
    /// model file's counts (no repeats if it has none).
    pub fn new(
        arg: RepeatArg,
        training: impl FnOnce() -> anyhow::Result<Vec<Piece>>,
        plan: Option<&PiecePlan>,
    ) -> anyhow::Result<Self> {
        Ok(match arg {
            RepeatArg::Plan => {
                let Some(plan) = plan else {
                    anyhow::bail!("--repeat plan needs a model file (--model)");
                };
                let lengths: Vec<u32> = (0u32..)
                    .zip(plan.repeat_bars)
                    .flat_map(|(bars, n)| std::iter::repeat_n(bars, n as usize))
                    .collect();
                if lengths.iter().all(|&bars| bars == 0) {
                    Repeats::None
                } else {
                    Repeats::Drawn(lengths)
                }
            }
            RepeatArg::None => Repeats::None,
            RepeatArg::Bars(n) => Repeats::Bars(n),
            RepeatArg::Train => {
                let lengths: Vec<u32> = training()?.iter().map(repeat_length).collect();
                if lengths.is_empty() {
                    anyhow::bail!("--repeat train: the training split is empty");
                }
                Repeats::Drawn(lengths)
            }
        })
    }

    /// The bars the piece sampled with `seed` repeats (0: none).
    pub fn bars(&self, seed: u64) -> u32 {
        match self {
            Repeats::None => 0,
            Repeats::Bars(n) => *n,
            Repeats::Drawn(lengths) => {
                // Drawn independently of the voices (another stream of the same seed).
                let index = kantor_engine::plan::splitmix64(seed ^ 0x5851_f42d_4c95_7f2d);
                lengths[(index % lengths.len() as u64) as usize]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kantor_engine::decoder::Note;

    fn note(onset: u32, voice: u8, pitch: u8) -> Note {
        Note {
            onset,
            voice,
            pitch,
            duration: 12,
            velocity: 90,
        }
    }

    /// Bars of four quarter-note chords in two voices, `pitches[bar]` the soprano.
    fn piece(sopranos: &[u8]) -> Piece {
        let notes = sopranos
            .iter()
            .enumerate()
            .flat_map(|(bar, &p)| {
                (0..4u32).flat_map(move |beat| {
                    let onset = bar as u32 * 48 + beat * 12;
                    [note(onset, 0, p + beat as u8), note(onset, 1, p - 12)]
                })
            })
            .collect();
        Piece::new(notes, vec![], vec![], vec![])
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

    #[test]
    fn repeat_choices_parse_and_draw_from_the_training_pieces() {
        assert_eq!("none".parse(), Ok(RepeatArg::None));
        assert_eq!("train".parse(), Ok(RepeatArg::Train));
        assert_eq!("4".parse(), Ok(RepeatArg::Bars(4)));
        assert!("0".parse::<RepeatArg>().is_err() && "x".parse::<RepeatArg>().is_err());
        let training = vec![piece(&[60, 62, 60, 62, 70]), piece(&[60, 62, 64, 65])];
        let repeats = Repeats::new(RepeatArg::Train, || Ok(training), None).unwrap();
        assert_eq!(repeats, Repeats::Drawn(vec![2, 0]));
        let twos = (0..400).filter(|&s| repeats.bars(s) == 2).count();
        assert!((160..240).contains(&twos), "{twos}");
        assert!((0..400).all(|s| [0, 2].contains(&repeats.bars(s))));
        assert_eq!(Repeats::Bars(3).bars(9), 3);
        assert_eq!(Repeats::None.bars(9), 0);
    }
}
