//! MIDI 1.0 bytes on a serial port, written with `midly`'s live-event writer
//! (running status on: fewer bytes at 31,250 baud; real-time bytes such as
//! the clock do not break it, as the MIDI specification says).

use kantor_engine::stream::MidiMessage;
use midly::live::{LiveEvent, SystemRealtime};
use midly::num::{u4, u7};

/// A MIDI output over any `embedded-io` writer.
#[derive(Debug)]
pub struct MidiOut<W> {
    writer: W,
    running_status: Option<u8>,
    bytes: u32,
}

impl<W: embedded_io::Write> MidiOut<W> {
    /// Wrap a serial writer.
    pub fn new(writer: W) -> Self {
        MidiOut {
            writer,
            running_status: None,
            bytes: 0,
        }
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u32 {
        self.bytes
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.writer
    }

    fn send(&mut self, event: LiveEvent<'_>) -> Result<(), W::Error> {
        let mut buffer = [0u8; 3];
        let mut cursor = midly::io::Cursor::new(&mut buffer);
        // Three bytes hold any channel or real-time message.
        let _ = event.write_with_running_status(&mut self.running_status, &mut cursor);
        let n = cursor.cursor();
        self.writer.write_all(buffer.get(..n).unwrap_or(&[]))?;
        self.bytes += n as u32;
        Ok(())
    }

    /// Send a note message (tempo changes are not wire messages and are ignored).
    pub fn message(&mut self, message: &MidiMessage) -> Result<(), W::Error> {
        let (channel, message) = match *message {
            MidiMessage::NoteOn {
                channel,
                key,
                velocity,
            } => (
                channel,
                midly::MidiMessage::NoteOn {
                    key: u7::new(key & 0x7f),
                    vel: u7::new(velocity & 0x7f),
                },
            ),
            MidiMessage::NoteOff { channel, key } => (
                channel,
                midly::MidiMessage::NoteOff {
                    key: u7::new(key & 0x7f),
                    vel: u7::new(0),
                },
            ),
            MidiMessage::Tempo { .. } => return Ok(()),
        };
        self.send(LiveEvent::Midi {
            channel: u4::new(channel & 0x0f),
            message,
        })
    }

    /// Send a real-time byte (clock, start, stop).
    pub fn realtime(&mut self, message: SystemRealtime) -> Result<(), W::Error> {
        self.send(LiveEvent::Realtime(message))
    }

    /// Wait until everything written has left.
    pub fn flush(&mut self) -> Result<(), W::Error> {
        self.writer.flush()
    }
}
