//! Bar form: the opening section of a piece played again, as a repeat sign
//! would (A A B). About half of the chorales are in bar form: their first
//! section (the Stollen, mostly four bars) is written out twice before the
//! rest (the Abgesang). The student does not learn to copy a hundred tokens
//! back, so a generated piece never repeats itself; with a [`Form`] the
//! generation loop plays the model's own first `bars` bars again, token for
//! token, when the model starts bar `bars`, and the model writes on from
//! there (it sees the repeat in its context). Which pieces repeat, and after
//! how many bars, can be drawn from the training pieces
//! ([`repeat_length`]).

use kantor_engine::vocab::Token;

use crate::bpe::Bpe;
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

/// The base tokens that play the first `bars` bars of `base` (a piece from
/// its `Bos`, through at least its bar `bars - 1`) again: each bar from its
/// `Bar` token, without the piece's opening meter and tempo, with the first
/// note's voice made explicit (the piece started in voice 0 without saying
/// so). `None` if `base` holds fewer bars or is not made of base tokens.
pub fn replay(base: &[u16], bars: u32) -> Option<Vec<u16>> {
    let mut segment = Vec::new();
    let mut bar = 0u32; // bars started so far
    let mut voiced = false;
    for &id in base {
        let token = Token::from_id(id)?;
        match token {
            Token::Bar => bar += 1,
            Token::Rest(n) => bar += u32::from(n),
            _ => {}
        }
        if bar > bars || (bar == bars && matches!(token, Token::Rest(_))) {
            return Some(segment);
        }
        match token {
            Token::Bos | Token::Eos => {}
            Token::TimeSignature(_) | Token::Tempo(_) if bar == 1 => {}
            Token::Pitch(_) if !voiced => {
                voiced = true;
                segment.extend([Token::Voice(0).id()?, id]);
            }
            Token::Voice(_) => {
                voiced = true;
                segment.push(id);
            }
            _ if bar > 0 => segment.push(id),
            _ => {}
        }
    }
    (bar == bars).then_some(segment)
}

/// Where a sampled token starts bar `bars` (the repeat's cue): the number of
/// its base tokens that come before that `Bar`, or `None` if it does not
/// start it. `started` is how many bars the piece had before the token.
pub fn cue(expansion: &[u16], started: u32, bars: u32) -> Option<usize> {
    let mut bar = started;
    for (i, &id) in expansion.iter().enumerate() {
        match Token::from_id(id) {
            Some(Token::Bar) => bar += 1,
            Some(Token::Rest(n)) => bar += u32::from(n),
            _ => {}
        }
        if bar > bars {
            return Some(i);
        }
    }
    None
}

/// [`replay`], BPE-encoded.
pub fn replay_ids(bpe: &Bpe, base: &[u16], bars: u32) -> Option<Vec<u16>> {
    replay(base, bars).map(|segment| bpe.encode(&segment))
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
}

impl std::str::FromStr for RepeatArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(RepeatArg::None),
            "train" => Ok(RepeatArg::Train),
            n => match n.parse::<u32>() {
                Ok(bars) if (1..=64).contains(&bars) => Ok(RepeatArg::Bars(bars)),
                _ => Err(format!(
                    "{n:?}: give none, train or a number of bars from 1 to 64"
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
    /// Resolve `arg`; `train` reads the training pieces.
    pub fn new(
        arg: RepeatArg,
        training: impl FnOnce() -> anyhow::Result<Vec<Piece>>,
    ) -> anyhow::Result<Self> {
        Ok(match arg {
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
                let index = crate::voices::splitmix64(seed ^ 0x5851_f42d_4c95_7f2d);
                lengths[(index % lengths.len() as u64) as usize]
            }
        }
    }

    /// How it reads in a report: `none`, `4` or `train`.
    pub fn name(&self) -> String {
        match self {
            Repeats::None => "none".into(),
            Repeats::Bars(n) => n.to_string(),
            Repeats::Drawn(_) => "train".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remi;
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
    fn a_replay_is_the_opening_bars_with_the_voice_said_and_no_head() {
        let original = piece(&[60, 62, 64]);
        let mut base = remi::encode_ids(&original);
        base.pop(); // Eos
        let replayed = replay(&base, 2).unwrap();
        let tokens: Vec<Token> = replayed
            .iter()
            .map(|&id| Token::from_id(id).unwrap())
            .collect();
        assert_eq!(
            tokens[..3],
            [Token::Bar, Token::Position(0), Token::Voice(0)]
        );
        assert!(!tokens
            .iter()
            .any(|t| matches!(t, Token::Bos | Token::TimeSignature(_) | Token::Tempo(_))));
        assert_eq!(tokens.iter().filter(|t| **t == Token::Bar).count(), 2);
        // Played after the piece's first three bars, the replay decodes to
        // bars 0–1 again, in bars 3–4.
        let mut stream = base.clone();
        stream.extend(&replayed);
        let decoded = remi::decode_ids(&stream);
        assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
        let again: Vec<Note> = decoded
            .piece
            .notes
            .iter()
            .filter(|n| n.onset >= 144)
            .copied()
            .collect();
        let first: Vec<Note> = original
            .notes
            .iter()
            .filter(|n| n.onset < 96)
            .copied()
            .collect();
        assert_eq!(again.len(), first.len());
        for (a, f) in again.iter().zip(&first) {
            assert_eq!(
                (a.onset - 144, a.voice, a.pitch),
                (f.onset, f.voice, f.pitch)
            );
        }
        assert_eq!(replay(&base, 4), None, "only three bars");
        assert_eq!(replay(&[9999], 1), None);
    }

    #[test]
    fn the_cue_is_the_bar_token_that_starts_the_bar_after_the_section() {
        let bar = Token::Bar.id().unwrap();
        let duration = Token::Duration(12).id().unwrap();
        let position = Token::Position(0).id().unwrap();
        assert_eq!(cue(&[duration, bar, position], 4, 4), Some(1));
        assert_eq!(cue(&[bar], 3, 4), None, "starts bar 3 (the section's last)");
        assert_eq!(cue(&[duration], 4, 4), None);
        assert_eq!(cue(&[Token::Rest(2).id().unwrap(), bar], 3, 4), Some(0));
    }

    #[test]
    fn repeat_choices_parse_and_draw_from_the_training_pieces() {
        assert_eq!("none".parse(), Ok(RepeatArg::None));
        assert_eq!("train".parse(), Ok(RepeatArg::Train));
        assert_eq!("4".parse(), Ok(RepeatArg::Bars(4)));
        assert!("0".parse::<RepeatArg>().is_err() && "x".parse::<RepeatArg>().is_err());
        let training = vec![piece(&[60, 62, 60, 62, 70]), piece(&[60, 62, 64, 65])];
        let repeats = Repeats::new(RepeatArg::Train, || Ok(training)).unwrap();
        assert_eq!(repeats, Repeats::Drawn(vec![2, 0]));
        let twos = (0..400).filter(|&s| repeats.bars(s) == 2).count();
        assert!((160..240).contains(&twos), "{twos}");
        assert!((0..400).all(|s| [0, 2].contains(&repeats.bars(s))));
        assert_eq!(Repeats::Bars(3).bars(9), 3);
        assert_eq!(Repeats::None.bars(9), 0);
    }
}
