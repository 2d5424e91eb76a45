//! The `host-trainer` subcommands, one module each. `main.rs` parses the
//! command line (clap) and calls `run` here.

pub mod compare;
pub mod data;
pub mod distill;
pub mod eval;
pub mod export;
pub mod generate;
pub mod play;
pub mod render;
pub mod tokenize;
pub mod train;
