//! The C door: `tools/c-example.sh` compiles `tools/c-example/generate.c`
//! with the system `cc` against the engine's static library (engine/ffi) and
//! runs it; its MIDI file must equal, byte for byte, the one the Rust example
//! writes for the same model, token count and seed.

use std::process::Command;

use kantor_tests::{repo_root, rust_example_midi, student_model};

fn c_example_midi(args: &[&str]) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.mid");
    let output = Command::new(repo_root().join("tools/c-example.sh"))
        .arg(student_model())
        .arg(&out)
        .args(args)
        .output()
        .expect("tools/c-example.sh runs");
    assert!(
        output.status.success(),
        "tools/c-example.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (std::fs::read(&out).unwrap(), stdout)
}

fn note_ons(midi: &[u8]) -> usize {
    let smf = midly::Smf::parse(midi).expect("a valid MIDI file");
    assert_eq!(smf.tracks.len(), 1);
    smf.tracks[0]
        .iter()
        .filter(|e| {
            matches!(e.kind, midly::TrackEventKind::Midi { message: midly::MidiMessage::NoteOn { vel, .. }, .. } if vel > 0)
        })
        .count()
}

#[test]
fn the_c_example_writes_the_rust_examples_midi_byte_for_byte() {
    for (tokens, seed) in [(400u32, 7u64), (250, 123_456_789_012)] {
        let reference = rust_example_midi(&student_model(), tokens, seed);
        let (c, stdout) = c_example_midi(&[&tokens.to_string(), &seed.to_string()]);
        assert!(
            stdout.contains(&format!("{} tokens (0 ill-formed)", tokens + 1)),
            "{stdout}"
        );
        if let Some(i) = c.iter().zip(&reference).position(|(a, b)| a != b) {
            panic!(
                "seed {seed}: C and Rust differ at byte {i}: C {:02x?}, Rust {:02x?}",
                &c[i..(i + 8).min(c.len())],
                &reference[i..(i + 8).min(reference.len())]
            );
        }
        assert_eq!(c.len(), reference.len(), "seed {seed}: lengths differ");
        assert!(
            note_ons(&c) > tokens as usize / 4,
            "seed {seed}: too few notes"
        );
    }
    // The defaults (600 tokens, seed 1) are the Rust example's too.
    let (c, _) = c_example_midi(&[]);
    assert_eq!(c, rust_example_midi(&student_model(), 600, 1));
}

#[test]
fn the_c_example_rejects_a_bad_model_and_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"not a model at all").unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        Command::new(repo_root().join("tools/c-example.sh"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = dir.path().join("out.mid");
    let output = run(&[bad.as_os_str(), out.as_os_str()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a valid Kantor model"), "{stderr}");
    assert!(!out.exists());
    let model = student_model();
    let output = run(&[model.as_os_str(), out.as_os_str(), "-3".as_ref()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!out.exists());
}
