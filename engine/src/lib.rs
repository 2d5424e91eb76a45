//! # kantor-engine
//!
//! The `#![no_std]`, allocation-free inference core of Kantor: it reads a
//! model exported by `host-trainer` in place from a byte slice, runs a small
//! decoder-only Transformer with int8, f16 or f32 weights, samples tokens and
//! turns them into timed MIDI events. It runs bit-identically on a Cortex-M4F
//! and on desktop CPUs.
//!
//! Layout, one concept per module:
//!
//! * [`vocab`] — the REMI token vocabulary and its grid.
//! * [`decoder`] — token stream → notes, tempo and meter changes (streaming, grammar-checking).
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod bpe;
pub mod decoder;
pub mod vocab;
