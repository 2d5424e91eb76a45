//! Tests that span crates live in `tests/tests/`.
