//! # host-trainer
//!
//! The std side of Kantor. Reading order:
//!
//! * [`midi`] — Standard MIDI Files in and out (`midly`).
//! * [`piece`] — music on the vocabulary's grid; what everything converts to.
//! * [`remi`] — piece ⇄ REMI tokens (decoding through the engine).
//! * [`bpe`] — byte-pair encoding over REMI tokens.
//! * [`corpus`] — corpora, splits, transposition augmentation, windows.
//! * [`commands`] — the `host-trainer` subcommands.

pub mod bpe;
pub mod commands;
pub mod corpus;
pub mod midi;
pub mod piece;
pub mod remi;
