//! Generation and evaluation: sampling with the engine's token step,
//! measuring models and music, and hearing and seeing the result.
//!
//! * [`generate`] — generation with the engine or candle; [`plan`] — each
//!   piece's voices and bar form as asked for; [`voices`] — how many voices
//!   a piece is written in; [`form`] — bar form, the opening section played
//!   again.
//! * [`evaluate`] — perplexity and the metrics of generated music;
//!   [`features`] — per-piece features and the overlap of two sets on them.
//! * [`render`] — a piece → WAV with a SoundFont; [`plot`] — loss curves,
//!   piano rolls, histograms.
//! * [`player`] — real-time playback to a MIDI port ([`midi_port`]) with
//!   MIDI clock.

pub mod evaluate;
pub mod features;
pub mod form;
pub mod generate;
pub mod midi_port;
pub mod plan;
pub mod player;
pub mod plot;
pub mod render;
pub mod voices;
