//! `host-trainer jsb` end to end on the bundled JSB Chorales JSON: train a
//! tiny raster model, measure it, extend the finished run with `--resume
//! --max-steps`; and the errors a bad configuration or file gets.

mod common;

use common::{failure, host_trainer, ok, repo};

/// A tiny raster model: one layer of 32, a context of 32 tokens (8 steps).
fn tiny_config(dir: &std::path::Path, vocab_size: usize, corpus: &std::path::Path) -> String {
    let text = format!(
        r#"
[model]
vocab_size = {vocab_size}
dim = 32
n_layers = 1
n_heads = 2
n_kv_heads = 2
hidden_dim = 64
context = 32
dropout = 0.0

[train]
batch_size = 8
learning_rate = 0.003
min_learning_rate = 0.0003
warmup_steps = 5
max_steps = 200
eval_every = 50
patience = 0
checkpoint_every = 50

[data]
corpus = "{}"
"#,
        corpus.display()
    );
    let path = dir.join(format!("jsb-{vocab_size}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn train_steps(run: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "train")
        .map(|v| v["step"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_tiny_raster_model_learns_and_a_finished_run_extends() {
    let dir = tempfile::tempdir().unwrap();
    let jsb = repo().join("data/jsb-chorales/Jsb16thSeparated.json");
    let config = tiny_config(dir.path(), 60, &jsb);
    let run = dir.path().join("jsb");
    let run_s = run.to_str().unwrap();
    let out = ok(&host_trainer(&[
        "jsb", "--config", &config, "--out", run_s, "--quiet", "--json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let valid = report["valid_nll"].as_f64().unwrap();
    // Better than the token frequencies alone, and measured on the whole
    // validation split: 76 chorales, four tokens per 16th-note step.
    let unigram = report["training"]["unigram_val_ppl"].as_f64().unwrap().ln();
    assert!(valid < unigram - 0.5, "{report}");
    assert_eq!(report["valid_tokens"].as_u64(), Some(4 * 18_408));
    assert!(report["test_nll"].as_f64().unwrap() < unigram - 0.5);
    assert_eq!(report["training"]["steps"].as_u64(), Some(200));
    assert!(run.join("jsb.json").exists() && run.join("best.safetensors").exists());
    assert!(
        !run.join("bpe.json").exists(),
        "a raster run has no BPE table"
    );
    assert_eq!(train_steps(&run), (1..=200).collect::<Vec<u64>>());

    // Extend the finished run: twenty more steps, none repeated.
    let out = ok(&host_trainer(&[
        "jsb",
        "--out",
        run_s,
        "--resume",
        "--max-steps",
        "220",
        "--quiet",
    ]));
    assert!(out.contains("trained 220 steps"), "{out}");
    assert_eq!(train_steps(&run), (1..=220).collect::<Vec<u64>>());
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(saved.contains("max_steps = 220"), "{saved}");
}

#[test]
fn a_bad_configuration_or_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // `host-trainer jsb` with a tiny configuration over `corpus` (a
    // vocabulary of `vocab_size`) into a fresh directory: its error.
    let error = |vocab_size: usize, corpus: &std::path::Path, extra: &[&str]| {
        let config = tiny_config(dir.path(), vocab_size, corpus);
        let out = tempfile::tempdir_in(dir.path()).unwrap();
        let mut args = vec!["jsb", "--config", &config, "--quiet", "--out"];
        args.push(out.path().to_str().unwrap());
        args.extend_from_slice(extra);
        failure(&host_trainer(&args))
    };
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let jsb = repo().join("data/jsb-chorales/Jsb16thSeparated.json");

    let err = error(512, &jsb, &[]);
    assert!(err.contains("vocab_size must be 60"), "{err}");

    let no_test = file(
        "no-test.json",
        r#"{"train": [[[60, 55, 52, 48]]], "valid": []}"#,
    );
    let err = error(60, &no_test, &[]);
    assert!(err.contains("has no test split"), "{err}");

    let high = file(
        "high.json",
        r#"{"train": [[[60, 55, 52, 48]]], "valid": [[[60, 55, 52, 48]], [[99, 55, 52, 48]]], "test": []}"#,
    );
    let err = error(60, &high, &[]);
    assert!(
        err.contains("valid chorale 1 has a pitch outside 30–87"),
        "{err}"
    );

    let not_json = file("chorales.json", "MThd");
    let err = error(60, &not_json, &[]);
    assert!(err.contains("is not JSB Chorales JSON"), "{err}");

    let err = error(60, &jsb, &["--resume"]);
    assert!(err.contains("no checkpoint to resume"), "{err}");
}
