//! # kantor-ffi
//!
//! The Kantor engine for apps that are not written in Rust: a C ABI, built as
//! a static library (`libkantor_ffi.a`, also for Cortex-M) and a shared
//! library, declared in `include/kantor.h`; the same functions are the
//! exports of the WebAssembly module the web page runs (`web/`).
//!
//! The app gives the model bytes and the memory, as with the engine's Rust
//! API; nothing is allocated:
//!
//! ```c
//! size_t size;
//! kantor_memory_required(model, model_len, &size);
//! void *memory = malloc(size);                       /* or a static buffer */
//! KantorGenerator *g;
//! kantor_generator_new(model, model_len, memory, size, &g);
//! KantorSampling s;
//! kantor_sampling_default(&s);
//! s.seed = 7;
//! kantor_set_sampling(g, &s);                        /* before the first token */
//! for (int i = 0; i < 600; i++) {
//!     uint16_t token;
//!     kantor_step(g, &token);
//!     KantorMessage m[16];
//!     size_t n;
//!     do { kantor_pop_messages(g, m, 16, &n); /* play m[0..n] */ } while (n == 16);
//! }
//! ```
//!
//! Every function returns a [`KantorStatus`]: null pointers, short buffers,
//! bad models, out-of-range arguments and calls out of order are codes, and
//! no panic unwinds across the boundary ([`guard`]). The generator produces
//! exactly what the engine's [`Generator`](kantor_engine::generator::Generator)
//! does with the same model, sampling and seed: the notes the desktop example
//! and the firmware play.
//!
//! Without the default `std` feature the crate is `#![no_std]` (Cortex-M,
//! WebAssembly) and has its own panic handler on those targets.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod abi;
mod guard;
mod handle;

use core::ffi::{c_char, c_void};
use core::slice;

pub use abi::*;
pub use handle::KantorGenerator;

/// Bytes the model file takes, as a slice.
///
/// # Safety
/// `model` points to `len` readable bytes that stay unchanged while in use.
unsafe fn model_bytes<'a>(model: *const u8, len: usize) -> &'a [u8] {
    // SAFETY: by the caller's contract.
    unsafe { slice::from_raw_parts(model, len) }
}

/// Writes `value` to a non-null, possibly unaligned output pointer.
///
/// # Safety
/// `out` points to writable memory of a `T`'s size.
unsafe fn put<T>(out: *mut T, value: T) {
    // SAFETY: by the caller's contract.
    unsafe { out.write_unaligned(value) }
}

/// A static, NUL-terminated English description of `status` (never null).
#[no_mangle]
pub extern "C" fn kantor_status_message(status: KantorStatus) -> *const c_char {
    abi::status_message(status)
}

/// Writes the default sampling to `out`: the engine's defaults (temperature
/// 0.8, top-k 50, top-p 0.95), seed 1, constrained.
///
/// # Safety
/// `out` is null or points to writable memory for a `KantorSampling`.
#[no_mangle]
pub unsafe extern "C" fn kantor_sampling_default(out: *mut KantorSampling) -> KantorStatus {
    if out.is_null() {
        return KANTOR_ERROR_NULL;
    }
    // SAFETY: non-null, writable by the contract.
    unsafe { put(out, handle::default_sampling()) };
    KANTOR_OK
}

/// Checks the model and writes to `out_size` the bytes of memory a generator
/// for it needs (whatever the memory's alignment).
///
/// # Safety
/// `model` is null or points to `model_len` readable bytes; `out_size` is
/// null or writable.
#[no_mangle]
pub unsafe extern "C" fn kantor_memory_required(
    model: *const u8,
    model_len: usize,
    out_size: *mut usize,
) -> KantorStatus {
    if model.is_null() || out_size.is_null() {
        return KANTOR_ERROR_NULL;
    }
    guard::catch(|| {
        // SAFETY: by the contract.
        let bytes = unsafe { model_bytes(model, model_len) };
        match handle::load(bytes) {
            Ok(m) => {
                // SAFETY: non-null, writable by the contract.
                unsafe { put(out_size, handle::memory_required(&m)) };
                KANTOR_OK
            }
            Err(code) => code,
        }
    })
}

/// Makes a generator for `model` inside `memory` (any alignment; at least
/// what [`kantor_memory_required`] says) and writes its handle to
/// `out_generator`. The generator starts with the default sampling.
///
/// Nothing needs freeing: the generator lives in `memory`. Calling this
/// again on the same memory starts afresh (earlier handles into it become
/// invalid).
///
/// # Safety
/// `model` points to `model_len` readable bytes and `memory` to `memory_len`
/// writable bytes that do not overlap; both stay valid, and the model
/// unchanged, for as long as the generator is used. `out_generator` is null
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn kantor_generator_new(
    model: *const u8,
    model_len: usize,
    memory: *mut c_void,
    memory_len: usize,
    out_generator: *mut *mut KantorGenerator,
) -> KantorStatus {
    if model.is_null() || memory.is_null() || out_generator.is_null() {
        return KANTOR_ERROR_NULL;
    }
    guard::catch(|| {
        // SAFETY: by the contract: valid, disjoint and outliving the generator.
        let created = unsafe {
            handle::create(
                model_bytes(model, model_len),
                slice::from_raw_parts_mut(memory.cast::<u8>(), memory_len),
            )
        };
        match created {
            Ok(g) => {
                // SAFETY: non-null, writable by the contract.
                unsafe { put(out_generator, g) };
                KANTOR_OK
            }
            Err(code) => code,
        }
    })
}

/// Sets temperature (finite, ≥ 0), top-k, top-p (in \[0, 1\]), seed and
/// grammar constraint. Only before the first token is fed or generated
/// (else [`KANTOR_ERROR_BAD_STATE`]).
///
/// # Safety
/// `generator` is null or a handle from [`kantor_generator_new`];
/// `sampling` is null or readable.
#[no_mangle]
pub unsafe extern "C" fn kantor_set_sampling(
    generator: *mut KantorGenerator,
    sampling: *const KantorSampling,
) -> KantorStatus {
    if sampling.is_null() {
        return KANTOR_ERROR_NULL;
    }
    // SAFETY: readable by the contract.
    let sampling = unsafe { sampling.read_unaligned() };
    // SAFETY: by the contract.
    guard::catch(|| unsafe { handle::with(generator, |g| g.set_sampling(&sampling)) })
}

/// Feeds `count` prompt tokens (each below the model's vocabulary size, all
/// checked before any is fed).
///
/// # Safety
/// `generator` is null or a handle from [`kantor_generator_new`]; `tokens`
/// is null or points to `count` readable `uint16_t`.
#[no_mangle]
pub unsafe extern "C" fn kantor_feed(
    generator: *mut KantorGenerator,
    tokens: *const u16,
    count: usize,
) -> KantorStatus {
    if tokens.is_null() {
        return KANTOR_ERROR_NULL;
    }
    guard::catch(|| {
        // SAFETY: `count` readable values by the contract, read unaligned.
        let ids = (0..count).map(|i| unsafe { tokens.add(i).read_unaligned() });
        // SAFETY: by the contract.
        unsafe { handle::with(generator, |g| g.feed(ids)) }
    })
}

/// Samples the next token, feeds it back and decodes it (starting with `Bos`
/// if nothing was fed); writes it to `out_token`.
///
/// # Safety
/// `generator` is null or a handle from [`kantor_generator_new`];
/// `out_token` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn kantor_step(
    generator: *mut KantorGenerator,
    out_token: *mut u16,
) -> KantorStatus {
    if out_token.is_null() {
        return KANTOR_ERROR_NULL;
    }
    guard::catch(|| {
        // SAFETY: by the contract.
        unsafe {
            handle::with(generator, |g| match g.step() {
                Ok(token) => {
                    put(out_token, token);
                    KANTOR_OK
                }
                Err(code) => code,
            })
        }
    })
}

/// Moves up to `capacity` (≥ 1) due messages, in time order, into `out` and
/// writes how many to `out_count` (0: none due yet). Call again while it
/// fills the array.
///
/// # Safety
/// `generator` is null or a handle from [`kantor_generator_new`]; `out` is
/// null or points to `capacity` writable `KantorMessage`; `out_count` is
/// null or writable.
#[no_mangle]
pub unsafe extern "C" fn kantor_pop_messages(
    generator: *mut KantorGenerator,
    out: *mut KantorMessage,
    capacity: usize,
    out_count: *mut usize,
) -> KantorStatus {
    if out.is_null() || out_count.is_null() {
        return KANTOR_ERROR_NULL;
    }
    if capacity == 0 {
        return KANTOR_ERROR_BUFFER_TOO_SMALL;
    }
    guard::catch(|| {
        // SAFETY: by the contract.
        unsafe {
            handle::with(generator, |g| {
                let mut n = 0;
                while n < capacity {
                    let Some(m) = g.pop() else { break };
                    put(out.add(n), m);
                    n += 1;
                }
                put(out_count, n);
                KANTOR_OK
            })
        }
    })
}

/// Releases every pending message (the last notes' note-offs): call at the
/// end of a piece, then pop them.
///
/// # Safety
/// `generator` is null or a handle from [`kantor_generator_new`].
#[no_mangle]
pub unsafe extern "C" fn kantor_finish(generator: *mut KantorGenerator) -> KantorStatus {
    // SAFETY: by the contract.
    guard::catch(|| unsafe { handle::with(generator, |g| g.finish()) })
}

/// Writes where the generator stands (tokens, clock, bar) to `out`.
///
/// # Safety
/// `generator` is null or a handle from [`kantor_generator_new`]; `out` is
/// null or writable.
#[no_mangle]
pub unsafe extern "C" fn kantor_stats(
    generator: *mut KantorGenerator,
    out: *mut KantorStats,
) -> KantorStatus {
    if out.is_null() {
        return KANTOR_ERROR_NULL;
    }
    guard::catch(|| {
        // SAFETY: by the contract.
        unsafe {
            handle::with(generator, |g| {
                put(out, g.stats());
                KANTOR_OK
            })
        }
    })
}
