//! How many voices a generated piece is written for: the model's own choice,
//! a number the user gives, or one drawn from the training pieces (so that
//! a set of generated pieces has the corpus's mix of four-part chorales,
//! chorales with instrument parts and single-part files). The engine's
//! [`Voicing`] enforces it while sampling.

use anyhow::{bail, Result};
use kantor_engine::plan::PiecePlan;
use kantor_engine::vocab::NUM_VOICES;
use kantor_engine::voicing::Voicing;

use crate::piece::Piece;

/// The choice of voices, per piece.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Voices {
    /// The model chooses.
    Free,
    /// Every piece in this many voices.
    Fixed(u8),
    /// Each piece gets the voice count of a training piece drawn by its
    /// seed (the counts of all training pieces, in corpus order).
    Drawn(Vec<u8>),
}

/// What `--voices` says, before any training pieces are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoicesArg {
    /// `free`.
    Free,
    /// A number, 1–16.
    Fixed(u8),
    /// `train`: drawn from the training split.
    Train,
    /// `plan`: drawn from the model file's counts ([`kantor_engine::plan`]).
    Plan,
}

impl std::fmt::Display for VoicesArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VoicesArg::Free => write!(f, "free"),
            VoicesArg::Fixed(n) => write!(f, "{n}"),
            VoicesArg::Train => write!(f, "train"),
            VoicesArg::Plan => write!(f, "plan"),
        }
    }
}

impl std::str::FromStr for VoicesArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "free" => Ok(VoicesArg::Free),
            "train" => Ok(VoicesArg::Train),
            "plan" => Ok(VoicesArg::Plan),
            n => match n.parse::<u8>() {
                Ok(v) if (1..=NUM_VOICES as u8).contains(&v) => Ok(VoicesArg::Fixed(v)),
                _ => Err(format!(
                    "{n:?}: give free, train, plan or a number of voices from 1 to {NUM_VOICES}"
                )),
            },
        }
    }
}

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

impl Voices {
    /// Resolve `arg`; `train` reads the training pieces, `plan` takes the
    /// model file's counts (free if it has none).
    pub fn new(
        arg: VoicesArg,
        training: impl FnOnce() -> Result<Vec<Piece>>,
        plan: Option<&PiecePlan>,
    ) -> Result<Self> {
        Ok(match arg {
            VoicesArg::Plan => {
                let Some(plan) = plan else {
                    bail!("--voices plan needs a model file (--model)");
                };
                let counts: Vec<u8> = (1..=NUM_VOICES as u8)
                    .zip(plan.voice_counts)
                    .flat_map(|(voices, n)| std::iter::repeat_n(voices, n as usize))
                    .collect();
                if counts.is_empty() {
                    Voices::Free
                } else {
                    Voices::Drawn(counts)
                }
            }
            VoicesArg::Free => Voices::Free,
            VoicesArg::Fixed(n) => Voices::Fixed(n),
            VoicesArg::Train => {
                let counts: Vec<u8> = training()?
                    .iter()
                    .map(voice_count)
                    .filter(|&n| n > 0)
                    .collect();
                if counts.is_empty() {
                    bail!("--voices train: the training split has no notes");
                }
                Voices::Drawn(counts)
            }
        })
    }

    /// The voicing of the piece sampled with `seed`.
    pub fn voicing(&self, seed: u64) -> Voicing {
        match self {
            Voices::Free => Voicing::free(),
            Voices::Fixed(n) => Voicing::new(*n),
            Voices::Drawn(counts) => {
                let index = kantor_engine::plan::splitmix64(seed) % counts.len() as u64;
                Voicing::new(counts[index as usize])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kantor_engine::decoder::Note;

    fn piece(voices: &[u8]) -> Piece {
        let notes = voices
            .iter()
            .map(|&voice| Note {
                onset: 0,
                voice,
                pitch: 60,
                duration: 12,
                velocity: 90,
            })
            .collect();
        Piece::new(notes, vec![], vec![], vec![])
    }

    #[test]
    fn parses_free_train_and_numbers_and_refuses_the_rest() {
        assert_eq!("free".parse(), Ok(VoicesArg::Free));
        assert_eq!("train".parse(), Ok(VoicesArg::Train));
        assert_eq!("4".parse(), Ok(VoicesArg::Fixed(4)));
        for bad in ["0", "17", "four", ""] {
            assert!(bad.parse::<VoicesArg>().is_err(), "{bad}");
        }
    }

    #[test]
    fn draws_follow_the_training_counts() {
        // Three four-part pieces to one single-part one: about 3 in 4 draws are four.
        let training = vec![
            piece(&[0, 1, 2, 3]),
            piece(&[0]),
            piece(&[3, 0]),
            piece(&[0, 1, 2, 3]),
        ];
        assert_eq!(
            training.iter().map(voice_count).collect::<Vec<_>>(),
            [4, 1, 4, 4]
        );
        let voices = Voices::new(VoicesArg::Train, || Ok(training), None).unwrap();
        let fours = (0..400)
            .filter(|&s| voices.voicing(s).voices() == Some(4))
            .count();
        assert!((260..340).contains(&fours), "{fours}");
        assert_eq!(voices.voicing(7), voices.voicing(7));
        assert_eq!(Voices::Fixed(6).voicing(3).voices(), Some(6));
        assert_eq!(Voices::Free.voicing(3).voices(), None);
        let empty = Voices::new(VoicesArg::Train, || Ok(vec![piece(&[])]), None);
        assert!(empty.unwrap_err().to_string().contains("no notes"));
    }
}
