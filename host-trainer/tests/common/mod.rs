//! Helpers the CLI tests share: run the `host-trainer` binary from the
//! repository root and check how it ended.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the bundled data and the shipped model are there).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `host-trainer` binary, to run in the repository root, with candle on
/// one thread: the test harness already runs a test per core, and on two
/// cores two training runs of two threads each spin against each other
/// (pipeline.rs took 134 s that way, 44 s with one thread per run).
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_host-trainer"));
    command.current_dir(repo()).env("RAYON_NUM_THREADS", "1");
    command
}

/// Run `host-trainer ARGS` in the repository root ([`command`]).
pub fn host_trainer(args: &[&str]) -> Output {
    command().args(args).output().unwrap()
}

/// Assert success; the standard output.
pub fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Assert a clear error (exit 2, an `error:` line, no panic); the standard error.
pub fn failure(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.lines().any(|l| l.starts_with("error: ")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}
