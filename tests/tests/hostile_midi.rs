//! Hostile MIDI: corrupted real files never panic or hang; they load or fail
//! with an error. (The cargo-fuzz target `midi_loader` explores further.)

use host_trainer::corpus::midi_files;
use host_trainer::midi::{read_midi, ReadOptions};
use host_trainer::remi;
use kantor_tests::chorales_dir;
use proptest::prelude::*;

fn seed_file() -> Vec<u8> {
    let files = midi_files(&chorales_dir()).unwrap();
    std::fs::read(&files[3]).unwrap()
}

fn load_and_encode(bytes: &[u8]) {
    if let Ok(score) = read_midi(
        bytes,
        ReadOptions {
            include_drums: true,
        },
    ) {
        if let Ok(piece) = score.to_piece() {
            let ids = remi::encode_ids(&piece);
            let decoded = remi::decode_ids(&ids);
            assert!(decoded.errors.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn flipped_bytes_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..20)) {
        let mut bytes = seed_file();
        for (i, b) in flips {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        load_and_encode(&bytes);
    }

    #[test]
    fn truncations_are_errors(cut in 14usize..4000) {
        let bytes = seed_file();
        prop_assume!(cut < bytes.len());
        prop_assert!(read_midi(&bytes[..cut], ReadOptions::default()).is_err());
    }
}
