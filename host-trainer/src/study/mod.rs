//! The comparative study: model families beside the Transformer on one Bach
//! corpus, one split, one set of metrics (`host-trainer compare`).
//!
//! * [`crate::model::lstm`] — LSTM with attention over REMI+BPE tokens
//!   (a [`crate::model::LanguageModel`] trained by the trainer's own loop,
//!   like the Transformer);
//! * [`vae`] — recurrent VAE over piano-roll segments (GRU or MLP decoder,
//!   KL warm-up, free bits, KL per dimension);
//! * [`vqvae`] — VQ-VAE with a codebook and an autoregressive prior;
//! * [`gan`] — MuseGAN-style WGAN-GP over four-track rolls;
//! * [`diffusion`] — DDPM over piano-roll segments;
//! * [`raster`] — the JSB benchmark in the published setting;
//! * [`roll`] — piano rolls ⇄ pieces; [`fit`] — the shared training helper;
//!   [`time_conv`] — a convolution over time with correct gradients;
//! * [`family`] — each family behind one trait (train, NLL, sample, notes);
//! * [`compare`] — runs them all and writes the table.

pub mod compare;
pub mod diffusion;
pub mod family;
pub mod fit;
pub mod gan;
pub mod raster;
pub mod roll;
pub mod time_conv;
pub mod vae;
pub mod vqvae;
