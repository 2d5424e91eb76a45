//! Training: configuration, the candle models, the loop and what it keeps.
//!
//! * [`config`] — model and training configuration, presets.
//! * [`device`] — CPU or CUDA.
//! * [`model`] — the Transformer (and the study's LSTM) in candle.
//! * [`train`] — the training loop, with [`optimizer`], [`checkpoint`] and
//!   [`metrics`].

pub mod checkpoint;
pub mod config;
pub mod device;
pub mod metrics;
pub mod model;
pub mod optimizer;
pub mod train;
