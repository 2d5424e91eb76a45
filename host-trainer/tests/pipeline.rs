//! The trainer end to end, as a user runs it: train the tiny preset on the
//! bundled chorales, export, generate, evaluate; kill a run and resume it;
//! bad input gives clear errors.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

mod common;
use common::*;

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
}

#[test]
fn tiny_model_trains_exports_generates_and_evaluates() {
    assert!(
        host_trainer::render::installed_soundfont().is_some(),
        "no General MIDI SoundFont installed for sample.wav: run tools/setup.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("tiny");
    let run_s = run.to_str().unwrap();
    let out = ok(&host_trainer(&[
        "train", "--preset", "tiny", "--out", run_s, "--quiet",
    ]));
    for file in [
        "config.toml",
        "bpe.json",
        "checkpoint.safetensors",
        "best.safetensors",
        "metrics.jsonl",
        "loss.png",
        "model.safetensors",
        "sample.mid",
        "sample.png",
        "sample.wav",
    ] {
        assert!(run.join(file).exists(), "{file} missing\n{out}");
    }
    assert!(out.contains("int8 (engine)"), "{out}");
    let wav = hound::WavReader::open(run.join("sample.wav")).unwrap();
    assert_eq!((wav.spec().sample_rate, wav.spec().channels), (44_100, 2));
    assert!(
        wav.duration() > 44_100,
        "the sample lasts more than a second"
    );

    // Export reports float vs quantized perplexity; int8 stays within 3%.
    let report = json(&host_trainer(&["export", "--run", run_s, "--json"]));
    let (float, engine) = (
        report["float_val_ppl"].as_f64().unwrap(),
        report["engine_val_ppl"].as_f64().unwrap(),
    );
    assert!((engine / float - 1.0).abs() < 0.03, "{float} vs {engine}");

    // Generate from the exported model, continuing a chorale prompt.
    let generated = dir.path().join("continued.mid");
    let prompt = repo().join("data/bach-chorales-midi/bach_bwv10.7.mid");
    let model = run.join("model.safetensors");
    let text = ok(&host_trainer(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        prompt.to_str().unwrap(),
        "--prompt-bars",
        "4",
        "--bars",
        "4",
        "--seed",
        "3",
        "--out",
        generated.to_str().unwrap(),
    ]));
    assert!(text.contains("0 ill-formed"), "{text}");
    let piece =
        host_trainer::midi::read_piece(&std::fs::read(&generated).unwrap(), Default::default())
            .unwrap();
    let original =
        host_trainer::midi::read_piece(&std::fs::read(&prompt).unwrap(), Default::default())
            .unwrap();
    let prompt_end = original.bars().nth(4).unwrap().start;
    let prompt_notes: Vec<_> = original
        .notes
        .iter()
        .filter(|n| n.onset < prompt_end)
        .collect();
    let last_prompt_onset = prompt_notes.last().unwrap().onset;
    for n in &prompt_notes {
        assert!(piece.notes.contains(n), "the prompt is kept: {n:?} missing");
    }
    let before_last =
        |notes: &[&kantor_engine::decoder::Note]| -> Vec<kantor_engine::decoder::Note> {
            notes
                .iter()
                .filter(|n| n.onset < last_prompt_onset)
                .map(|n| **n)
                .collect()
        };
    let output: Vec<_> = piece.notes.iter().collect();
    assert_eq!(
        before_last(&output),
        before_last(&prompt_notes),
        "nothing is inserted into the prompt"
    );
    assert!(
        piece.notes.iter().any(|n| n.onset > last_prompt_onset),
        "and it is continued"
    );

    // Evaluation: the tiny model beats a unigram model of the tokens by a clear margin.
    let eval = json(&host_trainer(&[
        "eval",
        "--run",
        run_s,
        "--samples",
        "2",
        "--bars",
        "4",
        "--json",
    ]));
    let ppl = eval["float_perplexity"].as_f64().unwrap();
    let train_log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(train_log.lines().count() >= 150);
    let summary_line = out
        .lines()
        .find(|l| l.contains("unigram baseline perplexity"))
        .unwrap();
    let unigram: f64 = summary_line
        .split("unigram baseline perplexity ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ppl < 0.6 * unigram, "perplexity {ppl} vs unigram {unigram}");
    assert_eq!(eval["generated"]["pieces"], 2);
    assert_eq!(eval["generated"]["ill_formed_rate"], 0.0);
    assert!(eval["generated"]["notes"].as_u64().unwrap() > 0);
    assert!(Path::new(eval["pitch_histogram_png"].as_str().unwrap()).exists());
    // Per note: the same NLL spread over the notes of the predicted tokens
    // (BPE-512 on the chorales: between one and four tokens per note).
    let (tokens, notes) = (
        eval["tokens"].as_f64().unwrap(),
        eval["notes"].as_f64().unwrap(),
    );
    assert!(
        tokens / notes > 1.0 && tokens / notes < 4.0,
        "{tokens} tokens, {notes} notes"
    );
    let per_note = eval["float_nats_per_note"].as_f64().unwrap();
    assert!((per_note - ppl.ln() * tokens / notes).abs() < 1e-9 * per_note);
    let engine_per_note = eval["engine_nats_per_note"].as_f64().unwrap();
    assert!(
        (engine_per_note / per_note - 1.0).abs() < 0.05,
        "{engine_per_note} vs {per_note}"
    );
    // The pieces are compared with the held-out test chorales, feature by feature.
    assert_eq!(eval["reference_split"], "test");
    assert!(eval["reference"]["pieces"].as_u64().unwrap() >= 24);
    let features = eval["overlap"]["features"].as_array().unwrap();
    assert_eq!(features.len(), 10);
    let areas: Vec<f64> = features
        .iter()
        .map(|f| f["overlap"].as_f64().unwrap())
        .collect();
    assert!(areas.iter().all(|a| (0.0..=1.0).contains(a)), "{areas:?}");
    let mean = eval["overlap"]["mean"].as_f64().unwrap();
    assert!((mean - areas.iter().sum::<f64>() / 10.0).abs() < 1e-12);
    let refused = host_trainer(&["eval", "--run", run_s, "--reference", "train"]);
    assert!(
        failure(&refused).contains("held-out"),
        "{}",
        failure(&refused)
    );

    // Candle generation from the checkpoint works too.
    let from_run = dir.path().join("from-run.mid");
    ok(&host_trainer(&[
        "generate",
        "--run",
        run_s,
        "--bars",
        "2",
        "--out",
        from_run.to_str().unwrap(),
    ]));
    assert!(from_run.exists());
}

fn eval_steps(metrics: &str) -> (Vec<u64>, Vec<u64>) {
    let mut train = Vec::new();
    let mut eval = Vec::new();
    for line in metrics.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let step = v["step"].as_u64().unwrap();
        match v["kind"].as_str().unwrap() {
            "train" => train.push(step),
            _ => eval.push(step),
        }
    }
    (train, eval)
}

#[test]
fn a_killed_run_resumes_to_the_same_step_count_without_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("killed");
    let run_s = run.to_str().unwrap();
    let mut child = command()
        .args([
            "train",
            "--preset",
            "tiny",
            "--out",
            run_s,
            "--quiet",
            "--no-export",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for a checkpoint past the first evaluation, then kill -9.
    let start = Instant::now();
    loop {
        let steps =
            std::fs::read_to_string(run.join("metrics.jsonl")).map_or(0, |m| m.lines().count());
        if steps > 60 && run.join("checkpoint.safetensors").exists() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "training never got going"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let (steps_before, _) = eval_steps(&before);
    assert!(*steps_before.last().unwrap() < 150);

    let out = ok(&host_trainer(&[
        "train",
        "--resume",
        "--out",
        run_s,
        "--quiet",
        "--no-export",
    ]));
    assert!(out.contains("trained 150 steps"), "{out}");
    let after = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let (train, eval) = eval_steps(&after);
    assert_eq!(
        train,
        (1..=150).collect::<Vec<u64>>(),
        "every step once, no gap"
    );
    assert_eq!(eval, vec![50, 100, 150]);
    assert!(run.join("loss.png").exists());
    // Resuming a finished run changes nothing.
    ok(&host_trainer(&[
        "train",
        "--resume",
        "--out",
        run_s,
        "--quiet",
        "--no-export",
    ]));
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.jsonl")).unwrap(),
        after
    );
    // Extending it trains on: --max-steps 200 adds steps 151–200.
    let out = ok(&host_trainer(&[
        "train",
        "--resume",
        "--max-steps",
        "200",
        "--out",
        run_s,
        "--quiet",
        "--no-export",
    ]));
    assert!(out.contains("trained 200 steps"), "{out}");
    let (train, eval) = eval_steps(&std::fs::read_to_string(run.join("metrics.jsonl")).unwrap());
    assert_eq!(train, (1..=200).collect::<Vec<u64>>());
    assert_eq!(eval, vec![50, 100, 150, 200]);
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    // Resume with nothing to resume.
    let err = failure(&host_trainer(&[
        "train",
        "--resume",
        "--out",
        &d("none"),
        "--quiet",
    ]));
    assert!(
        err.contains("config.toml") || err.contains("no checkpoint"),
        "{err}"
    );

    // A configuration with impossible sizes.
    std::fs::write(d("bad.toml"), "[model]\nvocab_size = 512\ndim = 100\nn_layers = 2\nn_heads = 3\nn_kv_heads = 1\nhidden_dim = 64\ncontext = 64\n").unwrap();
    let err = failure(&host_trainer(&[
        "train",
        "--config",
        &d("bad.toml"),
        "--out",
        &d("x"),
        "--quiet",
    ]));
    assert!(err.contains("multiple of n_heads"), "{err}");

    // An empty corpus.
    std::fs::create_dir(d("empty")).unwrap();
    let err = failure(&host_trainer(&[
        "train",
        "--preset",
        "tiny",
        "--corpus",
        &d("empty"),
        "--out",
        &d("y"),
        "--quiet",
    ]));
    assert!(err.contains("no MIDI files"), "{err}");

    // A corrupt checkpoint and a corrupt exported model.
    std::fs::create_dir(d("corrupt")).unwrap();
    std::fs::write(d("corrupt/config.toml"), toml_of_tiny()).unwrap();
    std::fs::write(
        d("corrupt/bpe.json"),
        r#"{"base_vocab_size": 415, "merges": []}"#,
    )
    .unwrap();
    std::fs::write(
        d("corrupt/checkpoint.safetensors"),
        b"\x10\0\0\0\0\0\0\0{\"a\":",
    )
    .unwrap();
    let err = failure(&host_trainer(&[
        "train",
        "--resume",
        "--out",
        &d("corrupt"),
        "--quiet",
    ]));
    assert!(err.contains("not a valid checkpoint"), "{err}");
    std::fs::write(d("model.safetensors"), b"not a model at all").unwrap();
    let err = failure(&host_trainer(&[
        "generate",
        "--model",
        &d("model.safetensors"),
        "--out",
        &d("o.mid"),
    ]));
    assert!(err.contains("safetensors"), "{err}");
    // A missing checkpoint for generation.
    let err = failure(&host_trainer(&[
        "generate",
        "--run",
        &d("none"),
        "--out",
        &d("o.mid"),
    ]));
    assert!(err.contains("does not exist"), "{err}");
}

fn toml_of_tiny() -> String {
    let c = host_trainer::config::RunConfig::preset("tiny").unwrap();
    let mut c = c;
    c.model.vocab_size = kantor_engine::vocab::VOCAB_SIZE;
    toml::to_string(&c).unwrap()
}

#[test]
fn the_comparative_study_runs_end_to_end_with_a_row_per_family() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("compare");
    let text = ok(&host_trainer(&[
        "compare",
        "--preset",
        "tiny",
        "--out",
        out.to_str().unwrap(),
    ]));
    let study: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let families: Vec<&str> = study["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["family"].as_str().unwrap())
        .collect();
    assert_eq!(
        families,
        [
            "transformer",
            "lstm-attention",
            "vae-gru-decoder",
            "vae-mlp-decoder",
            "vq-vae",
            "musegan-wgan-gp",
            "diffusion-ddpm"
        ]
    );
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    for f in &families {
        assert!(
            table.contains(&format!("| {f} |")),
            "{f} missing from the table"
        );
    }
    assert!(text.contains("JSB Chorales, published setting"), "{text}");
    for f in study["families"].as_array().unwrap() {
        // Every family's samples are playable MIDI with notes.
        let samples = f["samples"].as_array().unwrap();
        assert!(!samples.is_empty());
        for s in samples {
            let piece = host_trainer::midi::read_piece(
                &std::fs::read(s.as_str().unwrap()).unwrap(),
                Default::default(),
            )
            .unwrap();
            assert!(!piece.notes.is_empty(), "{} has no notes", s);
        }
    }
    let by = |name: &str| {
        study["families"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["family"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by("vae-gru-decoder")["notes"]["kl_per_dim"]
            .as_array()
            .unwrap()
            .len(),
        16
    );
    assert!(by("vae-mlp-decoder")["notes"]["active_dims"].is_u64());
    let used = by("vq-vae")["notes"]["codebook_used"].as_f64().unwrap();
    assert!(used > 0.0 && used <= 1.0);
    assert!(
        by("vq-vae")["notes"]["codebook_perplexity"]
            .as_f64()
            .unwrap()
            >= 1.0
    );
    assert!(study["jsb_benchmark"]["valid_nll"].as_f64().unwrap() > 0.0);
    assert!(out.join("pitch-histograms.png").exists());

    // A study killed during its last family resumes without retraining the others.
    std::fs::remove_file(out.join("results/diffusion-ddpm.json")).unwrap();
    let resumed = host_trainer(&[
        "compare",
        "--preset",
        "tiny",
        "--resume",
        "--out",
        out.to_str().unwrap(),
    ]);
    ok(&resumed);
    let log = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(log.matches("(resumed from").count(), 7, "{log}");
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(again["families"][0], study["families"][0]);
    assert_eq!(again["families"][6]["family"], "diffusion-ddpm");
    assert_eq!(again["jsb_benchmark"], study["jsb_benchmark"]);
    // … but not into a study of another preset.
    let err = failure(&host_trainer(&[
        "compare",
        "--preset",
        "full",
        "--resume",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(err.contains("another study"), "{err}");
}

#[test]
fn distillation_reports_the_student_with_and_without_the_teacher() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("teacher");
    let student = dir.path().join("student");
    ok(&host_trainer(&[
        "train",
        "--preset",
        "tiny",
        "--max-steps",
        "60",
        "--out",
        teacher.to_str().unwrap(),
        "--quiet",
        "--no-export",
    ]));
    let out = ok(&host_trainer(&[
        "distill",
        "--teacher",
        teacher.to_str().unwrap(),
        "--preset",
        "tiny",
        "--max-steps",
        "30",
        "--out",
        student.to_str().unwrap(),
        "--quiet",
    ]));
    let line = out
        .lines()
        .find(|l| l.starts_with("student validation perplexity:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("with distillation") && line.contains("without"),
        "{line}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(student.join("distill.json")).unwrap())
            .unwrap();
    let with = report["distilled"]["best_val_ppl"].as_f64().unwrap();
    let without = report["baseline_val_ppl"].as_f64().unwrap();
    assert!(with.is_finite() && without.is_finite() && with > 1.0 && without > 1.0);
    assert!(
        student.join("model.safetensors").exists(),
        "the distilled student is exported"
    );
    assert!(student.join("baseline/checkpoint.safetensors").exists());
}
