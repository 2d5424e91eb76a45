//! Corpora: where pieces come from, how they are split, augmented and windowed.
//!
//! A corpus is a directory of MIDI files (searched recursively), one MIDI file,
//! or the JSB Chorales JSON. It is split into train / validation / test
//! **before** any augmentation:
//!
//! * JSB Chorales: the official 229 / 76 / 77 split of the file;
//! * a directory with `train/`, `valid/` and `test/` subdirectories: those;
//! * any other directory: by a hash of each file name and the seed, 80/10/10,
//!   so a file keeps its split when others are added.
//!
//! Files that cannot be read are reported (with the reason) and skipped; the
//! rest of the corpus loads.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::bpe::Bpe;
use crate::midi::{read_piece, ReadOptions};
use crate::piece::{from_voice_lines, satb_voices, Piece};
use crate::remi;

/// One of the three splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training data.
    Train,
    /// Validation data (early stopping, model selection).
    Valid,
    /// Held-out test data.
    Test,
}

impl Split {
    /// All splits in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];
    /// The split's name.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }
}

/// A piece with the name it came from.
#[derive(Clone, Debug)]
pub struct Entry {
    /// File name (or `jsb/train/12` for JSON corpora).
    pub name: String,
    /// The music.
    pub piece: Piece,
}

/// A file that could not be read.
#[derive(Clone, Debug)]
pub struct LoadFailure {
    /// The file.
    pub path: PathBuf,
    /// Why, in words.
    pub error: String,
}

/// A loaded, split corpus.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    /// Training pieces.
    pub train: Vec<Entry>,
    /// Validation pieces.
    pub valid: Vec<Entry>,
    /// Test pieces.
    pub test: Vec<Entry>,
    /// Files that could not be read.
    pub failures: Vec<LoadFailure>,
}

/// How to load a corpus.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// MIDI reading options.
    pub midi: ReadOptions,
    /// Seed of the hash split of plain directories.
    pub seed: u64,
}

impl Corpus {
    /// The entries of one split.
    pub fn split(&self, split: Split) -> &[Entry] {
        match split {
            Split::Train => &self.train,
            Split::Valid => &self.valid,
            Split::Test => &self.test,
        }
    }

    /// The pieces of one split.
    pub fn pieces(&self, split: Split) -> Vec<Piece> {
        self.split(split).iter().map(|e| e.piece.clone()).collect()
    }

    /// Number of pieces over all splits.
    pub fn len(&self) -> usize {
        self.train.len() + self.valid.len() + self.test.len()
    }

    /// True if no piece loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Load a corpus from a directory, a MIDI file or a JSB JSON file.
    pub fn load(path: &Path, options: LoadOptions) -> Result<Corpus> {
        let corpus = if path.is_dir() {
            load_directory(path, options)?
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            load_jsb(path)?
        } else if path.is_file() {
            let mut corpus = Corpus::default();
            match load_midi_file(path, options.midi) {
                Ok(entry) => corpus.train.push(entry),
                Err(e) => corpus.failures.push(e),
            }
            corpus
        } else {
            bail!("corpus {} does not exist", path.display());
        };
        let with_notes = corpus
            .train
            .iter()
            .chain(&corpus.valid)
            .chain(&corpus.test)
            .filter(|e| !e.piece.notes.is_empty())
            .count();
        if with_notes == 0 {
            bail!(
                "corpus {} has no piece with notes ({} files could not be read)",
                path.display(),
                corpus.failures.len()
            );
        }
        Ok(corpus)
    }
}

/// Every `.mid`/`.midi` file under `dir`, sorted.
pub fn midi_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if is_midi(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn is_midi(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("mid") || e.eq_ignore_ascii_case("midi"))
}

fn load_midi_file(path: &Path, options: ReadOptions) -> Result<Entry, LoadFailure> {
    let fail = |error: String| LoadFailure {
        path: path.to_path_buf(),
        error,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let piece = read_piece(&bytes, options).map_err(|e| fail(e.to_string()))?;
    Ok(Entry {
        name: path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        piece,
    })
}

fn load_directory(dir: &Path, options: LoadOptions) -> Result<Corpus> {
    let mut corpus = Corpus::default();
    let presplit = ["train", "valid", "test"].map(|s| dir.join(s));
    if presplit.iter().all(|d| d.is_dir()) {
        for (split, sub) in Split::ALL.into_iter().zip(&presplit) {
            for path in midi_files(sub)? {
                match load_midi_file(&path, options.midi) {
                    Ok(entry) => corpus.push(split, entry),
                    Err(e) => corpus.failures.push(e),
                }
            }
        }
        return Ok(corpus);
    }
    let files = midi_files(dir)?;
    if files.is_empty() {
        bail!("no MIDI files (.mid, .midi) under {}", dir.display());
    }
    for path in files {
        match load_midi_file(&path, options.midi) {
            Ok(entry) => {
                let split = hash_split(&entry.name, options.seed);
                corpus.push(split, entry);
            }
            Err(e) => corpus.failures.push(e),
        }
    }
    Ok(corpus)
}

impl Corpus {
    fn push(&mut self, split: Split, entry: Entry) {
        match split {
            Split::Train => self.train.push(entry),
            Split::Valid => self.valid.push(entry),
            Split::Test => self.test.push(entry),
        }
    }
}

/// 80/10/10 by an FNV-1a hash of the name and the seed.
pub fn hash_split(name: &str, seed: u64) -> Split {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    match (h >> 32) % 10 {
        0 => Split::Valid,
        1 => Split::Test,
        _ => Split::Train,
    }
}

/// Grid ticks per JSB step (a 16th note).
pub const JSB_STEP_TICKS: u32 = 3;
/// Velocity given to JSB notes (the data has none).
pub const JSB_VELOCITY: u8 = 90;

/// Load the JSB Chorales JSON (`{"train": [...], "valid": [...], "test": [...]}`).
pub fn load_jsb(path: &Path) -> Result<Corpus> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let data: std::collections::HashMap<String, Vec<Vec<Vec<f64>>>> = serde_json::from_str(&text)
        .with_context(|| {
            format!(
                "{} is not JSB Chorales JSON ({{\"train\"|\"valid\"|\"test\": [chorale [step [pitch]]]}})",
                path.display()
            )
        })?;
    let mut corpus = Corpus::default();
    for split in Split::ALL {
        let Some(chorales) = data.get(split.name()) else {
            bail!("{} has no \"{}\" split", path.display(), split.name());
        };
        for (i, steps) in chorales.iter().enumerate() {
            let piece = jsb_piece(steps)
                .with_context(|| format!("{}: {} chorale {i}", path.display(), split.name()))?;
            corpus.push(
                split,
                Entry {
                    name: format!("jsb/{}/{i}", split.name()),
                    piece,
                },
            );
        }
    }
    Ok(corpus)
}

/// One JSB chorale → a piece. Steps of exactly four entries are
/// (soprano, alto, tenor, bass) with -1 for silence (`Jsb16thSeparated`);
/// otherwise the sounding pitches are ranked high to low. Equal consecutive
/// pitches in a voice become one note (the data cannot tell held from repeated).
pub fn jsb_piece(steps: &[Vec<f64>]) -> Result<Piece> {
    let separated = steps.iter().all(|s| s.len() == 4);
    let mut voices: Vec<Vec<Option<u8>>> =
        (0..4).map(|_| Vec::with_capacity(steps.len())).collect();
    for (t, step) in steps.iter().enumerate() {
        let mut pitches: Vec<Option<u8>> = Vec::with_capacity(4);
        for &p in step {
            if p.is_nan() || p < 0.0 {
                pitches.push(None);
            } else if p <= 127.0 && p.fract() == 0.0 {
                pitches.push(Some(p as u8));
            } else {
                bail!("step {t}: {p} is not a MIDI pitch");
            }
        }
        if !separated {
            pitches.retain(Option::is_some);
            pitches.sort_by(|a, b| b.cmp(a));
        }
        if pitches.len() > 4 {
            bail!("step {t} has {} voices; JSB has four", pitches.len());
        }
        pitches.resize(4, None);
        for (v, p) in pitches.into_iter().enumerate() {
            voices[v].push(p);
        }
    }
    Ok(from_voice_lines(
        &voices,
        JSB_STEP_TICKS,
        JSB_VELOCITY,
        satb_voices(),
    ))
}

/// Transposition augmentation: the piece moved by every shift in `shifts`
/// (e.g. -6..=6) that keeps all its pitches inside `range`. The unshifted
/// piece is included when 0 is in `shifts`.
pub fn transpositions(
    piece: &Piece,
    shifts: std::ops::RangeInclusive<i32>,
    range: std::ops::RangeInclusive<u8>,
) -> Vec<Piece> {
    shifts
        .filter_map(|s| piece.transposed(s, range.clone()))
        .collect()
}

/// Base REMI ids of each piece.
pub fn base_sequences<'a>(pieces: impl IntoIterator<Item = &'a Piece>) -> Vec<Vec<u16>> {
    pieces.into_iter().map(remi::encode_ids).collect()
}

/// BPE ids of each piece.
pub fn bpe_sequences<'a>(pieces: impl IntoIterator<Item = &'a Piece>, bpe: &Bpe) -> Vec<Vec<u16>> {
    pieces
        .into_iter()
        .map(|p| bpe.encode(&remi::encode_ids(p)))
        .collect()
}

/// Fixed-length training windows of `len` tokens, taken every `stride` tokens
/// from the pieces laid end to end (each is `Bos … Eos`). A final partial
/// window is dropped.
pub fn windows(sequences: &[Vec<u16>], len: usize, stride: usize) -> Vec<Vec<u16>> {
    let stream: Vec<u16> = sequences.iter().flatten().copied().collect();
    if len == 0 || stride == 0 || stream.len() < len {
        return Vec::new();
    }
    (0..=stream.len() - len)
        .step_by(stride)
        .map(|start| stream[start..start + len].to_vec())
        .collect()
}

/// `items` in an order fixed by `seed`.
pub fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut out = items.to_vec();
    out.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::piece::PITCH_RANGE;

    #[test]
    fn jsb_steps_become_notes_per_voice() {
        let steps = vec![
            vec![74.0, 70.0, 65.0, 58.0],
            vec![74.0, 70.0, 65.0, 58.0],
            vec![75.0, -1.0, 58.0, 55.0],
        ];
        let piece = jsb_piece(&steps).unwrap();
        let soprano: Vec<_> = piece
            .notes
            .iter()
            .filter(|n| n.voice == 0)
            .map(|n| (n.onset, n.pitch, n.duration))
            .collect();
        assert_eq!(soprano, vec![(0, 74, 6), (6, 75, 3)]);
        assert_eq!(piece.notes.iter().filter(|n| n.voice == 1).count(), 1);
        assert!(jsb_piece(&[vec![200.0, 1.0, 2.0, 3.0]]).is_err());
    }

    #[test]
    fn transposition_keeps_pitches_in_range() {
        let steps = vec![vec![70.0, 65.0, 60.0, 50.0]];
        let piece = jsb_piece(&steps).unwrap();
        assert_eq!(transpositions(&piece, -6..=6, PITCH_RANGE).len(), 13);
        let narrow = transpositions(&piece, -6..=6, 48..=72);
        // Shifts -2..=2 keep 50..70 inside 48..72.
        assert_eq!(narrow.len(), 5);
        assert!(narrow.iter().all(|p| p.pitch_range().unwrap().0 >= 48));
    }

    #[test]
    fn windows_cover_the_stream_with_the_stride() {
        let seqs = vec![vec![1, 2, 3, 4], vec![5, 6, 7]];
        assert_eq!(
            windows(&seqs, 3, 2),
            vec![vec![1, 2, 3], vec![3, 4, 5], vec![5, 6, 7]]
        );
        assert!(windows(&seqs, 8, 1).is_empty());
        assert!(windows(&seqs, 3, 0).is_empty());
    }

    #[test]
    fn hash_split_is_stable_and_roughly_80_10_10() {
        let names: Vec<String> = (0..2000).map(|i| format!("piece{i}.mid")).collect();
        let train = names
            .iter()
            .filter(|n| hash_split(n, 7) == Split::Train)
            .count();
        assert!((1500..1700).contains(&train), "{train}");
        assert_eq!(hash_split("a.mid", 7), hash_split("a.mid", 7));
        assert_eq!(shuffled(&names, 3), shuffled(&names, 3));
        assert_ne!(shuffled(&names, 3), shuffled(&names, 4));
    }
}
