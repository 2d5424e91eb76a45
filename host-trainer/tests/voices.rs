//! `--voices`: pieces written for a chosen number of voices (`generate`), and
//! voice counts drawn from the training pieces (`eval`), with the shipped
//! student; and the errors a bad choice gets.

mod common;

use common::{failure, host_trainer, ok, repo};
use host_trainer::piece::Piece;
use host_trainer::voices::voice_count;

const MODEL: &str = "firmware/model/student.safetensors";

fn generate(voices: &str, seed: &str, out: &std::path::Path) -> Piece {
    ok(&host_trainer(&[
        "generate",
        "--model",
        MODEL,
        "--voices",
        voices,
        "--seed",
        seed,
        "--bars",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]));
    host_trainer::midi::read_piece(&std::fs::read(out).unwrap(), Default::default()).unwrap()
}

#[test]
fn generated_pieces_keep_to_the_voices_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    for (voices, seed) in [(6u8, "1"), (6, "2"), (8, "3"), (2, "4")] {
        let piece = generate(&voices.to_string(), seed, &dir.path().join("v.mid"));
        assert!(piece.notes.len() > 8, "{voices} voices, seed {seed}");
        // The opening chord sounds the top voice; no note goes above it.
        // (Read back, voices are numbered by the file's parts in order.)
        assert_eq!(voice_count(&piece), voices, "seed {seed}");
        let first = piece.notes[0].onset;
        assert!(
            piece
                .notes
                .iter()
                .any(|n| n.onset == first && n.voice == voices - 1),
            "{voices} voices, seed {seed}: the opening chord lacks the top voice"
        );
    }
    // One voice: the chords are in one part.
    let one = generate("1", "5", &dir.path().join("one.mid"));
    assert_eq!(voice_count(&one), 1);
    let first = one.notes[0].onset;
    assert!(
        one.notes.iter().filter(|n| n.onset == first).count() > 1,
        "{:?}",
        &one.notes[..4]
    );
}

#[test]
fn eval_draws_voice_counts_from_the_training_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let eval = |voices: &str| -> serde_json::Value {
        let out = ok(&host_trainer(&[
            "eval",
            "--model",
            MODEL,
            "--voices",
            voices,
            "--samples",
            "24",
            "--bars",
            "4",
            "--json",
            "--quiet",
            "--out",
            dir.path().to_str().unwrap(),
        ]));
        serde_json::from_str(&out).unwrap()
    };
    let (free, train) = (eval("free"), eval("train"));
    assert_eq!(free["sampler"]["voices"], "free");
    assert_eq!(train["sampler"]["voices"], "train");
    // The training split is not all four-part: drawn pieces are not either.
    let polyphony = |r: &serde_json::Value| r["generated"]["polyphony"].as_f64().unwrap();
    assert!(
        (polyphony(&train) - 4.0).abs() > 0.05,
        "{}",
        polyphony(&train)
    );
    assert!((polyphony(&free) - polyphony(&train)).abs() > 0.05);
}

#[test]
fn a_bad_voice_choice_is_a_clear_error() {
    let out = repo().join("target/never-written.mid");
    let out = out.to_str().unwrap();
    for (args, says) in [
        (
            vec!["generate", "--model", MODEL, "--voices", "0", "--out", out],
            "from 1 to 16",
        ),
        (
            vec!["generate", "--model", MODEL, "--voices", "17", "--out", out],
            "from 1 to 16",
        ),
        (
            vec![
                "generate", "--model", MODEL, "--voices", "train", "--out", out,
            ],
            "is for eval",
        ),
        (
            vec![
                "generate",
                "--model",
                MODEL,
                "--voices",
                "4",
                "--unconstrained",
                "--out",
                out,
            ],
            "cannot be used with",
        ),
        (
            vec!["eval", "--model", MODEL, "--voices", "many"],
            "free, train or a number",
        ),
    ] {
        let err = failure(&host_trainer(&args));
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
