//! Tests that span Kantor's crates live in `tests/tests/`; this library holds
//! what they share: where the bundled data is.

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The bundled Bach chorale MIDI files.
pub fn chorales_dir() -> PathBuf {
    repo_root().join("data/bach-chorales-midi")
}

/// The bundled JSB Chorales JSON (Coconet / Music Transformer form).
pub fn jsb_json() -> PathBuf {
    repo_root().join("data/jsb-chorales/Jsb16thSeparated.json")
}

/// MIDI files from another toolkit (music21's test files).
pub fn unseen_midi_dir() -> PathBuf {
    repo_root().join("tests/fixtures/music21-midi")
}
