//! The data: MIDI in and out, music on the grid, REMI + BPE tokens,
//! corpora and their splits, and what they hold.
//!
//! * [`midi`] — Standard MIDI Files in and out (`midly`).
//! * [`piece`] — music on the vocabulary's grid; what everything converts to.
//! * [`remi`] — piece ⇄ REMI tokens (decoding through the engine).
//! * [`bpe`] — byte-pair encoding over REMI tokens.
//! * [`corpus`] — corpora, splits, transposition augmentation, windows.
//! * [`stats`] — a corpus's figures; [`round_trip`] — the tokenizer's
//!   lossless round trip.

pub mod bpe;
pub mod corpus;
pub mod midi;
pub mod piece;
pub mod remi;
pub mod round_trip;
pub mod stats;
