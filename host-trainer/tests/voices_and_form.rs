//! `--voices` and `--repeat`: pieces written for a chosen number of voices
//! and in bar form (`generate`), and both drawn from the training pieces
//! (`eval`), with the shipped student; and the errors a bad choice gets.

mod common;

use common::{failure, host_trainer, ok, repo};
use host_trainer::piece::Piece;
use host_trainer::voices::voice_count;

const MODEL: &str = "firmware/model/student.safetensors";

fn generate(voices: &str, seed: &str, out: &std::path::Path) -> Piece {
    generate_with(&["--voices", voices, "--seed", seed, "--bars", "4"], out)
}

fn generate_with(args: &[&str], out: &std::path::Path) -> Piece {
    let mut all = vec![
        "generate",
        "--model",
        MODEL,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    all.extend(args);
    ok(&host_trainer(&all));
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
fn a_piece_in_bar_form_plays_its_opening_again() {
    let dir = tempfile::tempdir().unwrap();
    for seed in ["1", "2"] {
        let out = dir.path().join("form.mid");
        let piece = generate_with(&["--repeat", "3", "--bars", "9", "--seed", seed], &out);
        // (The model may end the piece at the repeat's last cadence.)
        let mut bars: Vec<u32> = piece.bars().map(|b| b.start).collect();
        assert!(bars.len() >= 6, "seed {seed}: {} bars", bars.len());
        bars.push(u32::MAX);
        let notes = |from: usize, to: usize| -> Vec<(u32, u8, u8, u32)> {
            piece
                .notes
                .iter()
                .filter(|n| (bars[from]..bars[to]).contains(&n.onset))
                .map(|n| (n.onset - bars[from], n.voice, n.pitch, n.duration))
                .collect()
        };
        assert!(!notes(0, 3).is_empty());
        assert_eq!(
            notes(0, 3),
            notes(3, 6),
            "seed {seed}: bars 3-5 repeat bars 0-2"
        );
        assert_eq!(host_trainer::form::repeat_length(&piece), 3, "seed {seed}");
    }
}

#[test]
fn by_default_a_piece_is_planned_as_the_board_plans_it_unless_prompted() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(repo().join(MODEL)).unwrap();
    let plan = kantor_engine::model::Model::from_bytes(&bytes)
        .unwrap()
        .plan;
    let mut voice_counts = std::collections::BTreeSet::new();
    for seed in 1..=6u64 {
        let out = dir.path().join("planned.mid");
        let piece = generate_with(&["--seed", &seed.to_string(), "--bars", "4"], &out);
        let expected = plan.choose(seed, 0).voicing.voices().unwrap();
        assert_eq!(voice_count(&piece), expected, "seed {seed}");
        voice_counts.insert(expected);
    }
    assert!(voice_counts.contains(&4), "{voice_counts:?}");
    // A prompt has chosen already: a one-voice prompt is continued freely.
    let prompt = dir.path().join("one-voice.mid");
    let one = generate_with(&["--voices", "1", "--seed", "5", "--bars", "2"], &prompt);
    assert_eq!(voice_count(&one), 1);
    let out = dir.path().join("continued.mid");
    let continued = generate_with(
        &[
            "--prompt",
            prompt.to_str().unwrap(),
            "--bars",
            "2",
            "--seed",
            "1",
        ],
        &out,
    );
    assert!(continued.notes.len() > one.notes.len());
}

#[test]
fn eval_draws_voice_counts_from_the_training_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let eval = |plan: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "eval",
            "--model",
            MODEL,
            "--samples",
            "24",
            "--bars",
            "8",
            "--json",
            "--quiet",
            "--out",
            dir.path().to_str().unwrap(),
        ];
        args.extend(plan);
        serde_json::from_str(&ok(&host_trainer(&args))).unwrap()
    };
    let (free, train) = (eval(&["--voices", "free"]), eval(&["--voices", "train"]));
    assert_eq!(free["sampler"]["voices"], "free");
    assert_eq!(train["sampler"]["voices"], "train");
    // The training split is not all four-part: drawn pieces are not either,
    // and their polyphony spreads as the test chorales' does (the model's
    // own choice is a spike at four).
    let polyphony = |r: &serde_json::Value| {
        let features = r["overlap"]["features"].as_array().unwrap();
        let f = features
            .iter()
            .find(|f| f["feature"] == "polyphony")
            .unwrap();
        f["overlap"].as_f64().unwrap()
    };
    assert!(
        polyphony(&train) > polyphony(&free) + 0.15,
        "{} vs {}",
        polyphony(&train),
        polyphony(&free)
    );
    // About half the training chorales are in bar form: drawn repeats lift
    // the 8-note repetition far above the model's own.
    let planned = eval(&["--voices", "plan", "--repeat", "plan"]);
    assert_eq!(planned["sampler"]["voices"], "plan");
    assert_eq!(planned["sampler"]["repeat"], "plan");
    let form = eval(&["--repeat", "train"]);
    assert_eq!(form["sampler"]["repeat"], "train");
    let eight = |r: &serde_json::Value| r["generated"]["ngram_repetition"][2].as_f64().unwrap();
    assert!(
        eight(&form) > eight(&free) + 0.03,
        "{} vs {}",
        eight(&form),
        eight(&free)
    );
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
            "free, train, plan or a number",
        ),
    ] {
        let err = failure(&host_trainer(&args));
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
