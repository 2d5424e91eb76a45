//! # host-trainer
//!
//! The std side of Kantor. Reading order:
//!
//! * [`midi`] — Standard MIDI Files in and out (`midly`).
//! * [`piece`] — music on the vocabulary's grid; what everything converts to.
//! * [`remi`] — piece ⇄ REMI tokens (decoding through the engine).
//! * [`bpe`] — byte-pair encoding over REMI tokens.
//! * [`corpus`] — corpora, splits, transposition augmentation, windows.
//! * [`config`] — model and training configuration, presets.
//! * [`model`] — the Transformer in candle.
//! * [`train`] — the training loop (with [`optimizer`], [`checkpoint`], [`metrics`], [`plot`]).
//! * [`export`] — float weights → the engine's quantized file.
//! * [`render`] — a piece → WAV with a SoundFont (and [`plot::piano_roll`]).
//! * [`player`] — real-time playback to a MIDI port ([`midi_port`]) with MIDI clock.
//! * [`commands`] — the `host-trainer` subcommands.

pub mod bpe;
pub mod checkpoint;
pub mod commands;
pub mod config;
pub mod corpus;
pub mod device;
pub mod evaluate;
pub mod export;
pub mod fsutil;
pub mod generate;
pub mod metrics;
pub mod midi;
pub mod midi_port;
pub mod model;
pub mod optimizer;
pub mod piece;
pub mod player;
pub mod plot;
pub mod remi;
pub mod render;
pub mod run;
pub mod study;
pub mod train;
