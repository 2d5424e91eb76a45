//! The `host-trainer` binary as users run it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn host_trainer(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn roundtrip_reports_each_file_and_a_summary() {
    let (code, out, _) = host_trainer(&["tokenize", "--roundtrip", "tests/fixtures/music21-midi"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("ok ")).count(), 21);
    let summary = out.lines().find(|l| l.contains(" files, ")).unwrap();
    assert!(summary.starts_with("21 files, "), "{summary}");
    assert!(summary.ends_with(" notes, 0 mismatched"), "{summary}");
}

#[test]
fn roundtrip_fails_and_names_an_unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("tests/fixtures/music21-midi/test01.mid"),
        dir.path().join("good.mid"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.mid"),
        b"MThd\0\0\0\x06\0\x01\0\x02\x01",
    )
    .unwrap();
    let (code, out, _) = host_trainer(&["tokenize", "--roundtrip", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.lines()
            .any(|l| l.starts_with("ERROR") && l.contains("bad.mid")),
        "{out}"
    );
    assert!(
        out.contains("2 files, ") && out.contains("1 unreadable"),
        "{out}"
    );
}

#[test]
fn data_stats_reports_bpe_compression_for_512_and_1024() {
    let (code, out, err) = host_trainer(&[
        "data",
        "stats",
        "--corpus",
        "data/bach-chorales-midi",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    let train = &stats["splits"][0];
    assert_eq!(train["split"], "train");
    let base = train["tokens_per_note"].as_f64().unwrap();
    let bpe512 = train["bpe"][0]["tokens_per_note"].as_f64().unwrap();
    let bpe1024 = train["bpe"][1]["tokens_per_note"].as_f64().unwrap();
    assert_eq!(train["bpe"][1]["vocab_size"], 1024);
    assert!(
        base > bpe512 && bpe512 > bpe1024,
        "{base} {bpe512} {bpe1024}"
    );
    let files: u64 = stats["splits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["files"].as_u64().unwrap())
        .sum();
    assert_eq!(files, 430);
}

#[test]
fn a_missing_corpus_is_an_error_message_not_a_panic() {
    let (code, _, err) = host_trainer(&["data", "stats", "--corpus", "no/such/dir"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: ") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}
