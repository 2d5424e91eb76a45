//! Byte-pair encoding over REMI token ids (Fradet et al. 2023).
//!
//! Learned merges turn frequent pairs of tokens into new tokens, numbered from
//! the base vocabulary's size on. Decoding is exact: every BPE token expands
//! to a fixed sequence of base tokens. The merges are stored with a model (as
//! a `[n, 2]` u16 tensor, see `export`) and the engine expands them without
//! allocating.
//!
//! The learner is greedy and deterministic: each round merges the most
//! frequent adjacent pair (ties to the smallest pair), never across `Pad`,
//! `Bos` or `Eos`, and never into a token longer than [`MAX_TOKEN_LEN`] base
//! tokens. Because of that greediness, the merges learned for a vocabulary of
//! 1024 start with exactly those learned for 512: [`Bpe::truncated`].

use kantor_engine::vocab::{BOS_ID, EOS_ID, PAD_ID, VOCAB_SIZE};
use serde::{Deserialize, Serialize};

/// Longest expansion of one BPE token, in base tokens.
pub const MAX_TOKEN_LEN: usize = kantor_engine::bpe::MAX_EXPANSION;

/// Why a BPE table or token stream was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BpeError {
    /// A merge refers to a token that does not exist before it.
    #[error("merge {index} refers to token {token}, which is not defined before it")]
    BadMerge {
        /// Index of the merge.
        index: usize,
        /// The undefined token.
        token: u16,
    },
    /// A merge expands to more than [`MAX_TOKEN_LEN`] base tokens.
    #[error("merge {index} expands to {len} base tokens (at most {MAX_TOKEN_LEN})")]
    TooLong {
        /// Index of the merge.
        index: usize,
        /// Its expansion length.
        len: usize,
    },
    /// A token id beyond the vocabulary.
    #[error("token id {0} is outside the BPE vocabulary")]
    UnknownToken(u16),
    /// The table's base vocabulary is not the engine's.
    #[error("BPE table is for a base vocabulary of {0}, the engine's is {VOCAB_SIZE}")]
    BaseVocabulary(usize),
}

/// A learned BPE table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BpeFile", into = "BpeFile")]
pub struct Bpe {
    merges: Vec<[u16; 2]>,
    /// Base-token expansion of every token id (base tokens expand to themselves).
    expansions: Vec<Vec<u16>>,
}

#[derive(Serialize, Deserialize)]
struct BpeFile {
    base_vocab_size: usize,
    merges: Vec<[u16; 2]>,
}

impl TryFrom<BpeFile> for Bpe {
    type Error = BpeError;
    fn try_from(file: BpeFile) -> Result<Self, Self::Error> {
        if file.base_vocab_size != VOCAB_SIZE {
            return Err(BpeError::BaseVocabulary(file.base_vocab_size));
        }
        Bpe::from_merges(file.merges)
    }
}

impl From<Bpe> for BpeFile {
    fn from(bpe: Bpe) -> Self {
        BpeFile {
            base_vocab_size: VOCAB_SIZE,
            merges: bpe.merges,
        }
    }
}

fn mergeable(id: u16) -> bool {
    !matches!(id, PAD_ID | BOS_ID | EOS_ID)
}

impl Bpe {
    /// No merges: the base vocabulary.
    pub fn identity() -> Bpe {
        Bpe {
            merges: Vec::new(),
            expansions: (0..VOCAB_SIZE as u16).map(|id| vec![id]).collect(),
        }
    }

    /// A table from merges, checked: each merge may only use tokens defined before it.
    pub fn from_merges(merges: Vec<[u16; 2]>) -> Result<Bpe, BpeError> {
        let mut bpe = Bpe::identity();
        for (index, [a, b]) in merges.into_iter().enumerate() {
            let defined = bpe.expansions.len();
            for token in [a, b] {
                if usize::from(token) >= defined || !mergeable(token) {
                    return Err(BpeError::BadMerge { index, token });
                }
            }
            let mut expansion = bpe.expansions[usize::from(a)].clone();
            expansion.extend_from_slice(&bpe.expansions[usize::from(b)]);
            if expansion.len() > MAX_TOKEN_LEN {
                return Err(BpeError::TooLong {
                    index,
                    len: expansion.len(),
                });
            }
            bpe.merges.push([a, b]);
            bpe.expansions.push(expansion);
        }
        Ok(bpe)
    }

    /// Learn merges until the vocabulary has `vocab_size` tokens (or no pair
    /// occurs twice).
    pub fn train(sequences: &[Vec<u16>], vocab_size: usize) -> Bpe {
        let mut bpe = Bpe::identity();
        let mut seqs: Vec<Vec<u16>> = sequences.to_vec();
        let mut counts = vec![0u32; vocab_size * vocab_size];
        while bpe.vocab_size() < vocab_size {
            let v = bpe.vocab_size();
            counts[..v * vocab_size].fill(0);
            for s in &seqs {
                for w in s.windows(2) {
                    let (a, b) = (usize::from(w[0]), usize::from(w[1]));
                    if mergeable(w[0])
                        && mergeable(w[1])
                        && bpe.expansions[a].len() + bpe.expansions[b].len() <= MAX_TOKEN_LEN
                    {
                        counts[a * vocab_size + b] += 1;
                    }
                }
            }
            let (best, &count) = counts
                .iter()
                .enumerate()
                .max_by_key(|&(i, &c)| (c, std::cmp::Reverse(i)))
                .expect("counts is not empty");
            if count < 2 {
                break;
            }
            let pair = [(best / vocab_size) as u16, (best % vocab_size) as u16];
            let new = v as u16;
            for s in &mut seqs {
                merge_pair(s, pair, new);
            }
            let mut expansion = bpe.expansions[usize::from(pair[0])].clone();
            expansion.extend_from_slice(&bpe.expansions[usize::from(pair[1])]);
            bpe.merges.push(pair);
            bpe.expansions.push(expansion);
        }
        bpe
    }

    /// Total vocabulary size (base tokens plus merges).
    pub fn vocab_size(&self) -> usize {
        self.expansions.len()
    }

    /// The learned merges, in order.
    pub fn merges(&self) -> &[[u16; 2]] {
        &self.merges
    }

    /// The merges as the engine stores them: little-endian `u16` pairs.
    pub fn merge_bytes(&self) -> Vec<u8> {
        self.merges
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }

    /// The table with only its first merges, for a vocabulary of `vocab_size`.
    pub fn truncated(&self, vocab_size: usize) -> Bpe {
        let keep = vocab_size.saturating_sub(VOCAB_SIZE).min(self.merges.len());
        Bpe {
            merges: self.merges[..keep].to_vec(),
            expansions: self.expansions[..VOCAB_SIZE + keep].to_vec(),
        }
    }

    /// Apply the merges, in the order learned, to a base-token sequence.
    pub fn encode(&self, base: &[u16]) -> Vec<u16> {
        let mut seq = base.to_vec();
        let mut present = vec![false; self.vocab_size()];
        for &t in &seq {
            if let Some(p) = present.get_mut(usize::from(t)) {
                *p = true;
            }
        }
        for (i, &pair) in self.merges.iter().enumerate() {
            if present[usize::from(pair[0])] && present[usize::from(pair[1])] {
                let new = (VOCAB_SIZE + i) as u16;
                if merge_pair(&mut seq, pair, new) {
                    present[usize::from(new)] = true;
                }
            }
        }
        seq
    }

    /// Base tokens of one BPE token.
    pub fn expansion(&self, id: u16) -> Option<&[u16]> {
        self.expansions.get(usize::from(id)).map(Vec::as_slice)
    }

    /// Expand BPE tokens to base tokens; exact inverse of [`Bpe::encode`].
    pub fn decode(&self, ids: &[u16]) -> Result<Vec<u16>, BpeError> {
        let mut out = Vec::with_capacity(ids.len() * 2);
        for &id in ids {
            out.extend_from_slice(self.expansion(id).ok_or(BpeError::UnknownToken(id))?);
        }
        Ok(out)
    }
}

/// Replace non-overlapping occurrences of `pair`, left to right. True if any.
fn merge_pair(seq: &mut Vec<u16>, pair: [u16; 2], new: u16) -> bool {
    let mut write = 0;
    let mut read = 0;
    let mut merged = false;
    while read < seq.len() {
        if read + 1 < seq.len() && seq[read] == pair[0] && seq[read + 1] == pair[1] {
            seq[write] = new;
            read += 2;
            merged = true;
        } else {
            seq[write] = seq[read];
            read += 1;
        }
        write += 1;
    }
    seq.truncate(write);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn corpus() -> Vec<Vec<u16>> {
        // A toy language over base ids 10..20 with strong repeated patterns.
        let phrase = [10u16, 11, 12, 13, 10, 11, 14];
        (0..20)
            .map(|i| {
                let mut s = vec![BOS_ID];
                for k in 0..30 {
                    s.extend_from_slice(&phrase);
                    s.push(15 + ((i + k) % 5) as u16);
                }
                s.push(EOS_ID);
                s
            })
            .collect()
    }

    #[test]
    fn learns_frequent_pairs_and_decodes_exactly() {
        let data = corpus();
        let bpe = Bpe::train(&data, VOCAB_SIZE + 6);
        assert_eq!(bpe.vocab_size(), VOCAB_SIZE + 6);
        assert_eq!(bpe.merges()[0], [10, 11]); // the most frequent pair
        for s in &data {
            let encoded = bpe.encode(s);
            assert!(encoded.len() * 2 < s.len(), "compresses");
            assert_eq!(bpe.decode(&encoded).unwrap(), *s);
            assert_eq!(encoded.first(), Some(&BOS_ID));
        }
    }

    #[test]
    fn a_smaller_vocabulary_is_a_prefix_of_a_larger_one() {
        let data = corpus();
        let big = Bpe::train(&data, VOCAB_SIZE + 8);
        let small = Bpe::train(&data, VOCAB_SIZE + 3);
        assert_eq!(big.truncated(VOCAB_SIZE + 3), small);
    }

    #[test]
    fn rejects_bad_tables_and_unknown_tokens() {
        assert_eq!(
            Bpe::from_merges(vec![[3, VOCAB_SIZE as u16]]),
            Err(BpeError::BadMerge {
                index: 0,
                token: VOCAB_SIZE as u16
            })
        );
        assert!(matches!(
            Bpe::from_merges(vec![[BOS_ID, 3]]),
            Err(BpeError::BadMerge { .. })
        ));
        let mut merges = vec![[3u16, 3u16]];
        for i in 0..6 {
            let t = (VOCAB_SIZE + i) as u16;
            merges.push([t, t]);
        }
        assert!(matches!(
            Bpe::from_merges(merges),
            Err(BpeError::TooLong { .. })
        ));
        assert_eq!(
            Bpe::identity().decode(&[9999]),
            Err(BpeError::UnknownToken(9999))
        );
        let json = r#"{"base_vocab_size": 12, "merges": []}"#;
        assert!(serde_json::from_str::<Bpe>(json).is_err());
    }

    #[test]
    fn round_trips_through_json() {
        let bpe = Bpe::train(&corpus(), VOCAB_SIZE + 5);
        let json = serde_json::to_string(&bpe).unwrap();
        assert_eq!(serde_json::from_str::<Bpe>(&json).unwrap(), bpe);
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(seq in proptest::collection::vec(3u16..30, 0..300)) {
            let bpe = Bpe::train(&corpus(), VOCAB_SIZE + 10);
            prop_assert_eq!(bpe.decode(&bpe.encode(&seq)).unwrap(), seq);
        }
    }

    #[test]
    fn the_engine_encodes_as_the_trainer_does() {
        // The shipped student's merges over real chorales (the engine
        // re-encodes a bar-form repeat on the board).
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let model = std::fs::read(format!("{root}/firmware/model/student.safetensors")).unwrap();
        let bpe = crate::export::read_bpe(&model).unwrap();
        let merges = bpe.merge_bytes();
        let table = kantor_engine::bpe::BpeTable::new(&merges).unwrap();
        let dir = std::path::PathBuf::from(format!("{root}/data/bach-chorales-midi"));
        for name in [
            "bach_bwv1.6.mid",
            "bach_bwv103.6.mid",
            "bach_bwv190.7-inst.mid",
        ] {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            let piece = crate::midi::read_piece(&bytes, Default::default()).unwrap();
            let base = crate::remi::encode_ids(&piece);
            let mut in_place = base.clone();
            let len = table.encode_in_place(&mut in_place);
            let host = bpe.encode(&base);
            assert!(host.len() < base.len(), "{name}: merges apply");
            assert_eq!(in_place[..len], host[..], "{name}");
        }
    }
}
