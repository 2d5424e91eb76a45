//! The board, chosen in one place. Another board is another module here
//! that provides the same three things: a MIDI serial writer
//! (`embedded_io::Write`), a [`kantor_firmware::clock::Clock`], and reset.

pub mod stm32f405;

pub use stm32f405 as selected;
