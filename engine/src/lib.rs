//! # kantor-engine
//!
//! The `#![no_std]`, allocation-free inference core of Kantor: it reads a
//! model exported by `host-trainer` in place from a byte slice, runs a small
//! decoder-only Transformer with int8, f16 or f32 weights, samples tokens and
//! turns them into timed MIDI messages. It runs bit-identically on a
//! Cortex-M4F and on desktop CPUs.
//!
//! Reading order, one concept per module:
//!
//! * [`vocab`] — the REMI token vocabulary and its grid.
//! * [`decoder`] — token stream → notes, tempo and meter (streaming, grammar-checking).
//! * [`bpe`] — BPE token → base tokens, without allocation.
//! * [`safetensors`] — in-place reader of the weights file (over `json`, a
//!   no-alloc JSON cursor).
//! * [`config`], [`weights`], [`model`] — what the file holds; [`plan`] —
//!   how its training pieces chose their voices and form.
//! * [`kernels`] — matmuls (int8, f16, f32), RMSNorm, SwiGLU, RoPE, softmax.
//! * [`kv_cache`] — the static KV cache with attention sinks and sliding.
//! * [`session`] — memory, run state and the forward pass.
//! * [`sampler`] — temperature, top-k, top-p; [`grammar`] — masking ill-formed tokens;
//!   [`voicing`] — writing for a chosen number of voices; [`form`] — the
//!   opening bars played again.
//! * [`stream`] — notes → timed note-on/note-off messages.
//! * [`generator`] — all of the above driven together.
//! * [`error`] — what every error type above says (`Display`, `Error`).
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod bpe;
pub mod config;
pub mod decoder;
pub mod error;
pub mod form;
pub mod generator;
pub mod grammar;
mod json;
pub mod kernels;
pub mod kv_cache;
pub mod model;
pub mod plan;
pub mod safetensors;
pub mod sampler;
pub mod session;
pub mod stream;
pub mod vocab;
pub mod voicing;
pub mod weights;
