//! Any bytes → a BPE merge table and a token stream → the engine's expansion
//! and decoder: nonsense is reported, never a panic, and time only moves forward.
#![no_main]

use kantor_engine::bpe::BpeTable;
use kantor_engine::decoder::{Decoder, Event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = usize::from(data.first().copied().unwrap_or(0)) * 4;
    let (table, stream) = data.get(1..).unwrap_or(&[]).split_at(split.min(data.len().saturating_sub(1)));
    let bpe = BpeTable::new(table).unwrap_or(BpeTable::empty());
    let mut decoder = Decoder::new();
    let mut last_onset = 0;
    for pair in stream.chunks_exact(2) {
        let id = u16::from_le_bytes([pair[0], pair[1]]);
        for base in bpe.expand(id) {
            if let Ok(Some(Event::Note(n))) = decoder.push_id(base) {
                assert!(n.onset >= last_onset);
                assert!(n.duration >= 1);
                last_onset = n.onset;
            }
        }
    }
});
