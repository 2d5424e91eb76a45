//! # kantor-firmware
//!
//! The board-independent half of Kantor's MIDI sequencer. It builds for the
//! microcontroller and for the host: the host build produces the reference
//! byte stream that the QEMU test compares the board's output with.
//!
//! * [`clock`] — the time source the sequencer needs (an `embedded-hal` delay plus "now").
//! * [`midi_out`] — MIDI 1.0 bytes with `midly`'s live-event writer.
//! * [`sequencer`] — generation, scheduling, MIDI clock, pacing.
//! * [`settings`] — the model linked into flash and the performance settings.
//! * [`session_memory`] — the session's static memory in SRAM and the CCM (the board build only).
//!
//! The board itself (USART, SysTick, reset) lives in `src/board/`, chosen in
//! one place: `src/board/mod.rs`.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod midi_out;
pub mod sequencer;
#[cfg(target_os = "none")]
pub mod session_memory;
pub mod settings;
