#!/usr/bin/env bash
# Kantor's whole test suite, as CI runs it: formatting, lints, every crate's
# tests (including the cross-crate tests in tests/). Run tools/setup.sh first
# on a bare machine.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
