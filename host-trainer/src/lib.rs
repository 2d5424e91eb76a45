//! # host-trainer
//!
//! The std side of Kantor, in the order of the pipeline (each folder's
//! modules are also reachable from the crate root, `host_trainer::midi`):
//!
//! * [`data`] — [`midi`], [`piece`], [`remi`], [`bpe`], [`corpus`] and
//!   the corpus figures: MIDI → REMI + BPE tokens, splits and windows.
//! * [`training`] — [`config`], [`device`], [`model`] (candle), [`train`]
//!   (the loop, with [`optimizer`], [`checkpoint`], [`metrics`]).
//! * [`run`] — a run directory ([`run::RunDir`]) and what is done with a
//!   finished run: [`export`] for the engine, the sample; [`fsutil`].
//! * [`generation`] — [`generate`], [`evaluate`], [`features`], [`render`], [`plot`],
//!   [`player`] with [`midi_port`].
//! * [`study`] — the comparative study, one module per family.
//! * [`commands`] — the `host-trainer` subcommands (argument parsing and
//!   printing only).

pub mod commands;
pub mod data;
pub mod generation;
pub mod run;
pub mod study;
pub mod training;

pub use data::{bpe, corpus, midi, piece, remi};
pub use generation::{
    evaluate, features, form, generate, midi_port, plan, player, plot, render, voices,
};
pub use run::{export, fsutil};
pub use training::{checkpoint, config, device, metrics, model, optimizer, train};
