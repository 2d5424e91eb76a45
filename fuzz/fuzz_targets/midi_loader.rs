//! Any bytes → MIDI reader → grid → REMI → decoder: errors are fine, panics
//! and hangs are bugs, and whatever loads must round-trip through tokens.
#![no_main]

use host_trainer::midi::{read_midi, ReadOptions};
use host_trainer::remi;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = ReadOptions {
        include_drums: data.first().is_some_and(|b| b & 1 == 1),
    };
    if let Ok(score) = read_midi(data, options) {
        if let Ok(piece) = score.to_piece() {
            let decoded = remi::decode_ids(&remi::encode_ids(&piece));
            assert!(decoded.errors.is_empty());
            assert_eq!(decoded.piece.notes, piece.notes);
        }
    }
});
