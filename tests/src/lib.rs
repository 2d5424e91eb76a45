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

pub mod browser;

/// The model the firmware ships (int8 student).
pub fn student_model() -> PathBuf {
    repo_root().join("firmware/model/student.safetensors")
}

/// Run the engine's desktop example,
/// `cargo run --release -p kantor-engine --example generate -- MODEL OUT.mid TOKENS SEED`,
/// and return the MIDI file it wrote (the reference for the C and web doors).
pub fn rust_example_midi(model: &std::path::Path, tokens: u32, seed: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("rust.mid");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(repo_root())
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "kantor-engine",
            "--example",
            "generate",
            "--",
        ])
        .arg(model)
        .arg(&out)
        .arg(tokens.to_string())
        .arg(seed.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the Rust example failed");
    std::fs::read(&out).expect("the Rust example wrote its MIDI file")
}
