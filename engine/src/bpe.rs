//! BPE expansion without allocation.
//!
//! A model's vocabulary is the base REMI vocabulary followed by learned merges:
//! token `VOCAB_SIZE + i` stands for the pair `merges[i] = (a, b)`, each of
//! which is a base token or an earlier merge. The table is read in place from
//! the weights file (little-endian `u16` pairs) and validated once; expanding
//! a token then walks the pair tree with a fixed-size stack.

use crate::vocab::{Token, BOS_ID, EOS_ID, PAD_ID, VOCAB_SIZE};

/// Longest expansion of one BPE token, in base tokens.
pub const MAX_EXPANSION: usize = 32;

/// Why a merge table was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BpeError {
    /// The table's byte length is not a multiple of 4 (two `u16` per merge).
    Misaligned,
    /// More merges than token ids.
    TooManyMerges,
    /// A merge uses a token not defined before it, or a special token.
    BadMerge {
        /// Index of the merge.
        index: u16,
    },
    /// A merge expands to more than [`MAX_EXPANSION`] base tokens.
    TooLong {
        /// Index of the merge.
        index: u16,
    },
}

/// A validated merge table, borrowed from the weights file.
#[derive(Clone, Copy, Debug)]
pub struct BpeTable<'a> {
    merges: &'a [u8],
}

impl<'a> BpeTable<'a> {
    /// The empty table: the base vocabulary only.
    pub const fn empty() -> BpeTable<'static> {
        BpeTable { merges: &[] }
    }

    /// Validate a table of little-endian `u16` pairs.
    pub fn new(merges: &'a [u8]) -> Result<Self, BpeError> {
        if !merges.len().is_multiple_of(4) {
            return Err(BpeError::Misaligned);
        }
        let count = merges.len() / 4;
        if VOCAB_SIZE + count > usize::from(u16::MAX) {
            return Err(BpeError::TooManyMerges);
        }
        let table = BpeTable { merges };
        for index in 0..count {
            let Some((a, b)) = table.pair(index) else {
                return Err(BpeError::Misaligned);
            };
            let defined = VOCAB_SIZE + index;
            let usable =
                |t: u16| usize::from(t) < defined && !matches!(t, PAD_ID | BOS_ID | EOS_ID);
            if !usable(a) || !usable(b) {
                return Err(BpeError::BadMerge {
                    index: index as u16,
                });
            }
            // Both halves are valid already, so counting their leaves is bounded.
            let len = table.expand(a).count() + table.expand(b).count();
            if len > MAX_EXPANSION {
                return Err(BpeError::TooLong {
                    index: index as u16,
                });
            }
        }
        Ok(table)
    }

    /// Number of token ids (base tokens plus merges).
    pub fn vocab_size(&self) -> usize {
        VOCAB_SIZE + self.merges.len() / 4
    }

    fn pair(&self, index: usize) -> Option<(u16, u16)> {
        let bytes = self.merges.get(index * 4..index * 4 + 4)?;
        Some((
            u16::from_le_bytes([bytes[0], bytes[1]]),
            u16::from_le_bytes([bytes[2], bytes[3]]),
        ))
    }

    /// The base token ids a token id stands for, first to last. An id outside
    /// the vocabulary yields itself (and the decoder then rejects it).
    pub fn expand(&self, id: u16) -> Expansion<'a> {
        let mut stack = heapless::Vec::new();
        // Cannot fail: the stack is empty and has room for MAX_EXPANSION ids.
        let _ = stack.push(id);
        Expansion {
            table: BpeTable {
                merges: self.merges,
            },
            stack,
        }
    }

    /// The first base token id of `id`'s expansion (`expand(id).next()`,
    /// without the iterator): the left halves followed down. Each merge's
    /// halves precede it (checked in [`BpeTable::new`]), so this ends.
    pub fn first(&self, id: u16) -> u16 {
        let mut id = id;
        while let Some((a, _)) = usize::from(id)
            .checked_sub(VOCAB_SIZE)
            .and_then(|i| self.pair(i))
        {
            id = a;
        }
        id
    }

    /// BPE-encode the base tokens in `tokens` in place: apply every merge, in
    /// the order learned, to adjacent pairs from left to right (as the
    /// trainer's encoder does). Returns the encoded length; `tokens[..len]`
    /// holds the ids. Costs one pass over the tokens per merge.
    pub fn encode_in_place(&self, tokens: &mut [u16]) -> usize {
        // Which ids occur (ids past the set count as present): a merge of an
        // absent id cannot apply, and most merges are skipped so.
        let mut present = [0u32; 64];
        let mut mark = |id: u16| {
            if let Some(word) = present.get_mut(usize::from(id) / 32) {
                *word |= 1 << (id % 32);
            }
        };
        tokens.iter().for_each(|&id| mark(id));
        let occurs = |present: &[u32; 64], id: u16| {
            present
                .get(usize::from(id) / 32)
                .is_none_or(|word| word & (1 << (id % 32)) != 0)
        };
        let mut len = tokens.len();
        for index in 0..self.merges.len() / 4 {
            let Some((a, b)) = self.pair(index) else {
                break;
            };
            if !occurs(&present, a) || !occurs(&present, b) {
                continue;
            }
            // VOCAB_SIZE + index fits in u16: checked in `new`.
            let merged = (VOCAB_SIZE + index) as u16;
            let (mut read, mut write) = (0, 0);
            while read < len {
                let pair = read + 1 < len && tokens[read] == a && tokens[read + 1] == b;
                tokens[write] = if pair { merged } else { tokens[read] };
                read += if pair { 2 } else { 1 };
                write += 1;
            }
            if write < len {
                if let Some(word) = present.get_mut(usize::from(merged) / 32) {
                    *word |= 1 << (merged % 32);
                }
            }
            len = write;
        }
        len
    }

    /// The base tokens a token id stands for, as tokens (ids that are not
    /// tokens are skipped).
    pub fn expand_tokens(&self, id: u16) -> impl Iterator<Item = Token> + 'a {
        self.expand(id).filter_map(Token::from_id)
    }
}

/// Iterator over the base ids of one BPE token (see [`BpeTable::expand`]).
#[derive(Clone, Debug)]
pub struct Expansion<'a> {
    table: BpeTable<'a>,
    stack: heapless::Vec<u16, MAX_EXPANSION>,
}

impl Iterator for Expansion<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        loop {
            let id = self.stack.pop()?;
            let merge = usize::from(id).checked_sub(VOCAB_SIZE);
            match merge.and_then(|i| self.table.pair(i)) {
                Some((a, b)) => {
                    // Right first so that the left half comes out first. The
                    // table was validated, so the stack never overflows; if it
                    // did, the expansion would end early rather than panic.
                    if self.stack.push(b).is_err() || self.stack.push(a).is_err() {
                        self.stack.clear();
                        return None;
                    }
                }
                None => return Some(id),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(u16, u16)]) -> heapless::Vec<u8, 256> {
        let mut bytes = heapless::Vec::new();
        for &(a, b) in pairs {
            bytes.extend_from_slice(&a.to_le_bytes()).unwrap();
            bytes.extend_from_slice(&b.to_le_bytes()).unwrap();
        }
        bytes
    }

    #[test]
    fn expands_nested_merges_in_order() {
        let v = VOCAB_SIZE as u16;
        let bytes = table(&[(10, 11), (v, 12), (13, v + 1)]);
        let bpe = BpeTable::new(&bytes).unwrap();
        assert_eq!(bpe.vocab_size(), VOCAB_SIZE + 3);
        let mut out = heapless::Vec::<u16, 8>::new();
        out.extend(bpe.expand(v + 2));
        assert_eq!(&out[..], &[13, 10, 11, 12]);
        assert_eq!(bpe.expand(7).collect::<heapless::Vec<u16, 2>>(), [7]);
        // Unknown ids come out unchanged for the decoder to reject.
        assert_eq!(bpe.expand(v + 3).next(), Some(v + 3));
        for id in (0..v + 5).chain([u16::MAX]) {
            assert_eq!(Some(bpe.first(id)), bpe.expand(id).next(), "{id}");
        }
        assert_eq!(bpe.first(v + 2), 13);
        assert_eq!(bpe.first(v + 1), 10);
    }

    #[test]
    fn rejects_forward_references_specials_and_long_tokens() {
        let v = VOCAB_SIZE as u16;
        assert_eq!(
            BpeTable::new(&table(&[(10, v)])).unwrap_err(),
            BpeError::BadMerge { index: 0 }
        );
        assert_eq!(
            BpeTable::new(&table(&[(BOS_ID, 10)])).unwrap_err(),
            BpeError::BadMerge { index: 0 }
        );
        assert_eq!(BpeTable::new(&[1, 2, 3]).unwrap_err(), BpeError::Misaligned);
        let doubling: heapless::Vec<(u16, u16), 8> = [(10, 10)]
            .into_iter()
            .chain((0..6).map(|i| (v + i, v + i)))
            .collect();
        assert_eq!(
            BpeTable::new(&table(&doubling)).unwrap_err(),
            BpeError::TooLong { index: 5 }
        );
    }
}
