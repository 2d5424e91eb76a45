//! Each generated piece's plan — how many voices it is written for and how
//! many opening bars it plays again — as `generate` and `eval` are asked for
//! it: left to the model, fixed, or drawn per piece from counts of training
//! pieces. Drawn plans go through the engine's [`PiecePlan::choose`], the
//! draw the board makes, whether the counts come from the model file
//! (`plan`) or from the corpus's training split (`train`).

use anyhow::{bail, Result};
use kantor_engine::plan::{PieceChoice, PiecePlan};
use kantor_engine::vocab::NUM_VOICES;
use kantor_engine::voicing::Voicing;

use crate::piece::Piece;

/// One of `--voices` or `--repeat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanArg {
    /// Left to the model (`--voices free`, `--repeat none`).
    Off,
    /// This many voices, or bars played again.
    Fixed(u32),
    /// Drawn per piece from the training split's counts (`train`).
    Train,
    /// Drawn per piece from the model file's counts, as the board does
    /// (`plan`).
    Plan,
}

impl PlanArg {
    /// The words of the command line (`off` is `free` or `none`).
    pub fn words(self, off: &str) -> String {
        match self {
            PlanArg::Off => off.to_string(),
            PlanArg::Fixed(n) => n.to_string(),
            PlanArg::Train => "train".to_string(),
            PlanArg::Plan => "plan".to_string(),
        }
    }

    fn parse(s: &str, off: &str, max: u32, unit: &str) -> Result<Self, String> {
        match s {
            "train" => Ok(PlanArg::Train),
            "plan" => Ok(PlanArg::Plan),
            _ if s == off => Ok(PlanArg::Off),
            n => match n.parse::<u32>() {
                Ok(v) if (1..=max).contains(&v) => Ok(PlanArg::Fixed(v)),
                _ => Err(format!(
                    "{n:?}: give {off}, train, plan or a number of {unit} from 1 to {max}"
                )),
            },
        }
    }
}

/// `--voices`: free, train, plan or a number of voices, 1–16.
pub fn parse_voices(s: &str) -> Result<PlanArg, String> {
    PlanArg::parse(s, "free", NUM_VOICES as u32, "voices")
}

/// `--repeat`: none, train, plan or a number of bars, 1–64.
pub fn parse_repeat(s: &str) -> Result<PlanArg, String> {
    PlanArg::parse(s, "none", 64, "bars")
}

/// Where one of the two choices comes from, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    Model,
    Fixed(u32),
    Drawn(PiecePlan),
}

/// The plans of a set of pieces: [`Planner::choose`] gives the piece
/// sampled with a seed its voices and bar form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planner {
    voices: Source,
    repeat: Source,
}

impl Planner {
    /// Resolve `--voices` and `--repeat`: `train` counts the training pieces
    /// (read once, only if asked for), `plan` takes the model file's counts.
    pub fn new(
        (voices, repeat): (PlanArg, PlanArg),
        training: impl FnOnce() -> Result<Vec<Piece>>,
        model_plan: Option<&PiecePlan>,
    ) -> Result<Self> {
        let mut training = Some(training);
        let mut counted: Option<PiecePlan> = None;
        let mut resolve = |arg: PlanArg, flag: &str| -> Result<Source> {
            Ok(match arg {
                PlanArg::Off => Source::Model,
                PlanArg::Fixed(n) => Source::Fixed(n),
                PlanArg::Plan => match model_plan {
                    Some(plan) => Source::Drawn(*plan),
                    None => bail!("{flag} plan needs a model file (--model)"),
                },
                PlanArg::Train => {
                    if counted.is_none() {
                        let pieces = training.take().map_or_else(|| Ok(Vec::new()), |f| f())?;
                        counted = Some(crate::form::piece_plan(&pieces));
                    }
                    let plan = counted.unwrap_or_else(PiecePlan::free);
                    if plan.voice_counts.iter().all(|&n| n == 0) {
                        bail!("{flag} train: the training split has no notes");
                    }
                    Source::Drawn(plan)
                }
            })
        };
        Ok(Planner {
            voices: resolve(voices, "--voices")?,
            repeat: resolve(repeat, "--repeat")?,
        })
    }

    /// Voices and bar form of the piece sampled with `seed`: a drawn choice
    /// is the one the engine's generator makes for the first piece of a
    /// stream with that seed.
    pub fn choose(&self, seed: u64) -> PieceChoice {
        let drawn = |plan: &PiecePlan| plan.choose(seed, 0);
        PieceChoice {
            voicing: match &self.voices {
                Source::Model => Voicing::free(),
                // At most 16 (parse_voices).
                Source::Fixed(n) => Voicing::new(*n as u8),
                Source::Drawn(plan) => drawn(plan).voicing,
            },
            repeat_bars: match &self.repeat {
                Source::Model => 0,
                Source::Fixed(n) => *n,
                Source::Drawn(plan) => drawn(plan).repeat_bars,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::piece::testing::chorale_like;

    #[test]
    fn parses_the_words_and_numbers_and_refuses_the_rest() {
        assert_eq!(parse_voices("free"), Ok(PlanArg::Off));
        assert_eq!(parse_voices("train"), Ok(PlanArg::Train));
        assert_eq!(parse_voices("plan"), Ok(PlanArg::Plan));
        assert_eq!(parse_voices("4"), Ok(PlanArg::Fixed(4)));
        assert_eq!(parse_repeat("none"), Ok(PlanArg::Off));
        assert_eq!(parse_repeat("64"), Ok(PlanArg::Fixed(64)));
        for bad in ["0", "17", "four", "", "none"] {
            assert!(parse_voices(bad).is_err(), "{bad}");
        }
        for bad in ["0", "65", "free", "x"] {
            assert!(parse_repeat(bad).is_err(), "{bad}");
        }
        assert_eq!(PlanArg::Off.words("none"), "none");
        assert_eq!(PlanArg::Fixed(6).words("free"), "6");
    }

    #[test]
    fn train_draws_follow_the_training_pieces_as_the_engine_draws() {
        // Three four-part pieces to one in two parts; two of four repeat
        // their first two bars.
        let training = vec![
            chorale_like(&[60, 62, 60, 62, 70], 4),
            chorale_like(&[60, 62, 64, 65], 2),
            chorale_like(&[60, 62, 60, 62, 70], 4),
            chorale_like(&[60, 62, 64, 65], 4),
        ];
        let counts = crate::form::piece_plan(&training);
        let planner =
            Planner::new((PlanArg::Train, PlanArg::Train), || Ok(training), None).unwrap();
        // The same draw as the engine's generator with these counts.
        assert_eq!(
            planner,
            Planner::new(
                (PlanArg::Plan, PlanArg::Plan),
                || unreachable!(),
                Some(&counts)
            )
            .unwrap()
        );
        assert!((0..400).all(|seed| planner.choose(seed) == counts.choose(seed, 0)));
        let choices: Vec<PieceChoice> = (0..400).map(|seed| planner.choose(seed)).collect();
        let fours = choices
            .iter()
            .filter(|c| c.voicing.voices() == Some(4))
            .count();
        assert!((260..340).contains(&fours), "{fours}");
        let repeats = choices.iter().filter(|c| c.repeat_bars == 2).count();
        assert!((160..240).contains(&repeats), "{repeats}");
        assert!(choices.iter().all(|c| [0, 2].contains(&c.repeat_bars)));
        assert_eq!(planner.choose(7), planner.choose(7));
    }

    #[test]
    fn fixed_and_model_choices_and_clear_errors() {
        let fixed = Planner::new(
            (PlanArg::Fixed(6), PlanArg::Fixed(3)),
            || unreachable!(),
            None,
        )
        .unwrap()
        .choose(3);
        assert_eq!((fixed.voicing.voices(), fixed.repeat_bars), (Some(6), 3));
        let free = Planner::new((PlanArg::Off, PlanArg::Off), || unreachable!(), None)
            .unwrap()
            .choose(3);
        assert_eq!((free.voicing, free.repeat_bars), (Voicing::free(), 0));
        let no_model = Planner::new((PlanArg::Off, PlanArg::Plan), || Ok(vec![]), None);
        assert!(no_model
            .unwrap_err()
            .to_string()
            .contains("--repeat plan needs a model file"));
        let empty = Planner::new((PlanArg::Train, PlanArg::Off), || Ok(vec![]), None);
        assert!(empty.unwrap_err().to_string().contains("no notes"));
    }
}
