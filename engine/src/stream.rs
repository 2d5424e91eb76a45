//! Decoded events → timed MIDI messages, in order, without allocation.
//!
//! Notes arrive from the decoder as (onset, duration); a player needs
//! note-on and note-off messages in time order. The scheduler keeps a
//! fixed-capacity queue sorted by time, and releases messages once the
//! decoder's clock has passed them (no later token can put anything before
//! them). At one tick, note-offs come before tempo changes, which come before
//! note-ons. A note that restarts a pitch still sounding on its channel ends
//! the earlier one first. If a note does not fit in the queue (more notes
//! sounding than it holds), it is dropped and counted ([`Scheduler::dropped`]).

use crate::decoder::Event;

/// A MIDI message the player sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MidiMessage {
    /// Note-on.
    NoteOn {
        /// Channel 0–15.
        channel: u8,
        /// Key 0–127.
        key: u8,
        /// Velocity 1–127.
        velocity: u8,
    },
    /// Note-off.
    NoteOff {
        /// Channel 0–15.
        channel: u8,
        /// Key 0–127.
        key: u8,
    },
    /// Tempo change (not a wire message: the player's clock changes).
    Tempo {
        /// Microseconds per quarter note.
        micros_per_quarter: u32,
    },
}

impl MidiMessage {
    fn order(&self) -> u8 {
        match self {
            MidiMessage::NoteOff { .. } => 0,
            MidiMessage::Tempo { .. } => 1,
            MidiMessage::NoteOn { .. } => 2,
        }
    }
}

/// A message at a grid tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedMessage {
    /// Grid tick ([`crate::vocab::TICKS_PER_QUARTER`] per quarter note).
    pub tick: u32,
    /// The message.
    pub message: MidiMessage,
}

/// MIDI channel of a voice: voices 0–8 on channels 1–9, 9–14 on 11–16
/// (skipping the drum channel 10), voice 15 shares channel 16.
pub const fn voice_channel(voice: u8) -> u8 {
    match voice {
        0..=8 => voice,
        9..=14 => voice + 1,
        _ => 15,
    }
}

#[derive(Clone, Copy, Debug)]
struct Queued {
    tick: u32,
    order: u8,
    seq: u32,
    message: MidiMessage,
}

impl Queued {
    fn key(&self) -> (u32, u8, u32) {
        (self.tick, self.order, self.seq)
    }
}

/// The scheduler; `N` is the queue capacity (sounding notes plus pending messages).
#[derive(Clone, Debug)]
pub struct Scheduler<const N: usize> {
    queue: heapless::Vec<Queued, N>,
    seq: u32,
    horizon: u32,
    dropped: u32,
}

impl<const N: usize> Default for Scheduler<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Scheduler<N> {
    /// An empty scheduler.
    pub const fn new() -> Self {
        Scheduler {
            queue: heapless::Vec::new(),
            seq: 0,
            horizon: 0,
            dropped: 0,
        }
    }

    /// Notes dropped because the queue was full.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// Messages waiting (released or not).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True if nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn insert(&mut self, tick: u32, message: MidiMessage) {
        let q = Queued {
            tick,
            order: message.order(),
            seq: self.seq,
            message,
        };
        self.seq = self.seq.wrapping_add(1);
        let at = self.queue.partition_point(|e| e.key() <= q.key());
        // Callers check for room first; a full queue drops rather than panics.
        let _ = self.queue.insert(at, q);
    }

    fn remove(&mut self, index: usize) -> Option<Queued> {
        (index < self.queue.len()).then(|| self.queue.remove(index))
    }

    /// Move a queued note-off to `tick` (earlier), keeping the order.
    fn end_early(&mut self, index: usize, tick: u32) {
        if let Some(mut q) = self.remove(index) {
            q.tick = tick;
            self.insert(q.tick, q.message);
        }
    }

    /// Schedule a decoded event.
    pub fn push(&mut self, event: &Event) {
        match *event {
            Event::Note(note) => {
                let channel = voice_channel(note.voice);
                let key = note.pitch & 0x7f;
                let onset = note.onset.max(self.horizon);
                let same_key = self.queue.iter().position(|q| {
                    matches!(q.message, MidiMessage::NoteOff { channel: c, key: k } if c == channel && k == key)
                        && q.tick > onset
                });
                if let Some(i) = same_key {
                    self.end_early(i, onset);
                }
                if self.queue.len() + 2 > N {
                    self.dropped = self.dropped.saturating_add(1);
                    return;
                }
                self.insert(
                    onset,
                    MidiMessage::NoteOn {
                        channel,
                        key,
                        velocity: note.velocity.clamp(1, 127),
                    },
                );
                self.insert(
                    onset.saturating_add(note.duration.max(1)),
                    MidiMessage::NoteOff { channel, key },
                );
            }
            Event::Tempo {
                tick,
                micros_per_quarter,
            } => {
                if self.queue.len() < N {
                    self.insert(
                        tick.max(self.horizon),
                        MidiMessage::Tempo { micros_per_quarter },
                    );
                }
            }
            Event::TimeSignature { .. } | Event::End { .. } => {}
        }
    }

    /// Nothing will be scheduled before `tick` any more (the decoder's clock).
    pub fn release_until(&mut self, tick: u32) {
        self.horizon = self.horizon.max(tick);
    }

    /// Release everything (end of generation).
    pub fn flush(&mut self) {
        self.horizon = u32::MAX;
    }

    /// The next released message, in time order.
    pub fn pop(&mut self) -> Option<TimedMessage> {
        let first = self.queue.first()?;
        if first.tick > self.horizon {
            return None;
        }
        let q = self.remove(0)?;
        Some(TimedMessage {
            tick: q.tick,
            message: q.message,
        })
    }

    /// The next released message due at or before `tick`.
    pub fn pop_due(&mut self, tick: u32) -> Option<TimedMessage> {
        if self.queue.first()?.tick > tick {
            return None;
        }
        self.pop()
    }

    /// Tick of the next message, released or not.
    pub fn next_tick(&self) -> Option<u32> {
        self.queue.first().map(|q| q.tick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::Note;

    fn note(onset: u32, pitch: u8, duration: u32) -> Event {
        Event::Note(Note {
            onset,
            voice: 0,
            pitch,
            duration,
            velocity: 90,
        })
    }

    fn drain<const N: usize>(s: &mut Scheduler<N>) -> heapless::Vec<(u32, char, u8), 32> {
        let mut out = heapless::Vec::new();
        while let Some(m) = s.pop() {
            let (kind, key) = match m.message {
                MidiMessage::NoteOn { key, .. } => ('+', key),
                MidiMessage::NoteOff { key, .. } => ('-', key),
                MidiMessage::Tempo { .. } => ('t', 0),
            };
            out.push((m.tick, kind, key)).unwrap();
        }
        out
    }

    #[test]
    fn releases_messages_in_time_order_once_the_clock_passes() {
        let mut s = Scheduler::<16>::new();
        s.push(&note(0, 60, 12));
        s.push(&note(0, 64, 6));
        s.release_until(0);
        assert_eq!(&drain(&mut s)[..], &[(0, '+', 60), (0, '+', 64)]);
        s.push(&Event::Tempo {
            tick: 6,
            micros_per_quarter: 500_000,
        });
        s.push(&note(6, 67, 6));
        s.release_until(6);
        assert_eq!(
            &drain(&mut s)[..],
            &[(6, '-', 64), (6, 't', 0), (6, '+', 67)]
        );
        s.flush();
        assert_eq!(&drain(&mut s)[..], &[(12, '-', 60), (12, '-', 67)]);
    }

    #[test]
    fn a_repeated_pitch_ends_the_sounding_one_first() {
        let mut s = Scheduler::<16>::new();
        s.push(&note(0, 60, 24));
        s.push(&note(12, 60, 24));
        s.flush();
        assert_eq!(
            &drain(&mut s)[..],
            &[(0, '+', 60), (12, '-', 60), (12, '+', 60), (36, '-', 60)]
        );
    }

    #[test]
    fn a_note_that_does_not_fit_is_dropped_and_counted() {
        let mut s = Scheduler::<3>::new();
        s.push(&note(0, 60, 48));
        s.release_until(0);
        assert_eq!(drain(&mut s).len(), 1);
        s.push(&note(0, 62, 24));
        assert_eq!(drain(&mut s).len(), 1);
        s.push(&note(6, 64, 12)); // two offs pending + two new messages > 3
        assert_eq!(s.dropped(), 1);
        s.flush();
        assert_eq!(&drain(&mut s)[..], &[(24, '-', 62), (48, '-', 60)]);
    }

    #[test]
    fn channels_skip_the_drums() {
        assert_eq!(voice_channel(8), 8);
        assert_eq!(voice_channel(9), 10);
        assert_eq!(voice_channel(15), 15);
    }
}
