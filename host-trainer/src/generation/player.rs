//! Real-time playback: the engine's [`Generator`] generates, its scheduler
//! (`pop_due`, the same as the firmware's sequencer uses) says when each
//! note-on and note-off is due, and the player sends them to a [`MidiPort`]
//! at that wall-clock time, with MIDI clock (24 per quarter note) between
//! Start and Stop — what a DAW records from a keyboard.
//!
//! The loop is the firmware's (`firmware/src/sequencer.rs`): musical time is
//! the engine's grid (12 ticks per quarter note), two MIDI clocks per grid
//! tick. At each clock the player first makes sure the generator has decided
//! everything up to that tick, then sends the due notes, then the clock. The
//! host has time to spare between clocks, so it also generates ahead (up to
//! [`LOOKAHEAD_TICKS`]) before it sleeps, and the next clock finds its notes
//! ready. Deadlines are absolute (start + the sum of clock periods at the
//! tempo the model sets), so the beat never drifts; each message's lateness
//! against its deadline is measured ([`Jitter`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use kantor_engine::generator::Generator;
use kantor_engine::stream::{MidiMessage, TimedMessage};
use midly::live::{LiveEvent, SystemRealtime};
use midly::num::{u4, u7};
use serde::Serialize;

use crate::midi_port::MidiPort;

/// Capacity of the scheduler's queue (as the firmware's).
pub const QUEUE: usize = 64;

/// MIDI tempo before the model sets one (120 BPM, as the firmware).
pub const DEFAULT_MICROS_PER_QUARTER: u32 = 500_000;

/// Most tokens generated for one clock before playback moves on anyway (as the firmware).
pub const MAX_TOKENS_PER_TICK: u32 = 64;

/// How far ahead of playback the player generates while it waits, in grid ticks (a quarter note).
pub const LOOKAHEAD_TICKS: u32 = 12;

/// MIDI clocks per grid tick (24 per quarter note, 12 grid ticks per quarter).
pub const CLOCKS_PER_TICK: u64 = 2;

/// What to play.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlayOptions {
    /// Stop generating after this many seconds; the last notes ring out,
    /// then Stop is sent. `None`: play until asked to stop.
    pub seconds: Option<f64>,
}

/// Lateness of sent messages against their scheduled times.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Jitter {
    /// Messages measured (every message sent: Start, notes, clocks, Stop).
    pub messages: u64,
    /// Mean lateness in milliseconds.
    pub mean_ms: f64,
    /// Largest lateness in milliseconds.
    pub max_ms: f64,
}

#[derive(Clone, Copy, Debug, Default)]
struct JitterMeter {
    count: u64,
    sum: Duration,
    max: Duration,
}

impl JitterMeter {
    fn add(&mut self, late: Duration) {
        self.count += 1;
        self.sum += late;
        self.max = self.max.max(late);
    }

    fn jitter(&self) -> Jitter {
        Jitter {
            messages: self.count,
            mean_ms: if self.count == 0 {
                0.0
            } else {
                self.sum.as_secs_f64() * 1e3 / self.count as f64
            },
            max_ms: self.max.as_secs_f64() * 1e3,
        }
    }
}

/// A tempo the model set.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct TempoAt {
    /// Grid tick.
    pub tick: u32,
    /// Microseconds per quarter note from there.
    pub micros_per_quarter: u32,
}

/// What a performance did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PlayReport {
    /// Tokens fed to the model (the first `Bos` included).
    pub tokens: u32,
    /// Tokens the decoder rejected.
    pub ill_formed: u32,
    /// Notes dropped by a full scheduler.
    pub dropped_notes: u32,
    /// Note-ons sent.
    pub note_ons: u64,
    /// Note-offs sent.
    pub note_offs: u64,
    /// MIDI clocks sent.
    pub clocks: u64,
    /// The last grid tick played.
    pub last_tick: u32,
    /// Tempo changes the model made.
    pub tempos: Vec<TempoAt>,
    /// Wall-clock seconds from Start to Stop.
    pub seconds: f64,
    /// True if playback was stopped early (Ctrl-C): sounding notes were ended at once.
    pub interrupted: bool,
    /// Why generation stopped early, if the model failed.
    pub generation_error: Option<String>,
    /// Lateness of every message sent against its scheduled time.
    pub jitter: Jitter,
}

/// The bytes of a note message (tempo is not a wire message: `None`).
pub fn wire_bytes(message: &MidiMessage) -> Option<Vec<u8>> {
    let (channel, message) = match *message {
        MidiMessage::NoteOn {
            channel,
            key,
            velocity,
        } => (
            channel,
            midly::MidiMessage::NoteOn {
                key: u7::new(key & 0x7f),
                vel: u7::new(velocity.clamp(1, 127)),
            },
        ),
        MidiMessage::NoteOff { channel, key } => (
            channel,
            midly::MidiMessage::NoteOff {
                key: u7::new(key & 0x7f),
                vel: u7::new(64),
            },
        ),
        MidiMessage::Tempo { .. } => return None,
    };
    Some(live_bytes(LiveEvent::Midi {
        channel: u4::new(channel & 0x0f),
        message,
    }))
}

fn live_bytes(event: LiveEvent<'_>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(3);
    // Writing a channel or real-time message to a Vec cannot fail.
    let _ = event.write_std(&mut bytes);
    bytes
}

/// The player's state over one performance.
struct Performance<'p, 'g, 'm, 'b, const Q: usize> {
    generator: &'g mut Generator<'m, 'b, Q>,
    port: &'p mut dyn MidiPort,
    generating: bool,
    /// Moving average of the time one token takes, to know whether the next fits before a clock.
    token_time: Duration,
    jitter: JitterMeter,
    report: PlayReport,
}

impl<const Q: usize> Performance<'_, '_, '_, '_, Q> {
    fn send(&mut self, bytes: &[u8], due: Instant) -> Result<()> {
        self.port.send(bytes)?;
        self.jitter
            .add(Instant::now().saturating_duration_since(due));
        Ok(())
    }

    fn step(&mut self) {
        let start = Instant::now();
        let stepped = self.generator.step();
        self.token_time = (self.token_time * 7 + start.elapsed()) / 8;
        if let Err(e) = stepped {
            self.report.generation_error = Some(e.to_string());
            self.stop_generating();
        }
    }

    fn stop_generating(&mut self) {
        if self.generating {
            self.generator.finish();
            self.generating = false;
        }
    }

    /// Generate until everything up to `tick` is decided (at most
    /// [`MAX_TOKENS_PER_TICK`] tokens), or — given `until` — while another
    /// token (twice the average token time) fits before `until`.
    fn generate_through(&mut self, tick: u32, until: Option<Instant>) {
        let mut n = 0;
        while self.generating
            && self.generator.decoder().now() <= tick
            && n < MAX_TOKENS_PER_TICK
            && until.is_none_or(|t| Instant::now() + 2 * self.token_time < t)
        {
            self.step();
            n += 1;
        }
    }

    /// Send the messages due at `tick` (a tempo change sets the clock's
    /// `micros_per_quarter`).
    fn release_due(&mut self, tick: u32, due: Instant, micros_per_quarter: &mut u32) -> Result<()> {
        while let Some(m) = self.generator.pop_due(tick) {
            if let MidiMessage::Tempo {
                micros_per_quarter: t,
            } = m.message
            {
                *micros_per_quarter = t;
                self.report.tempos.push(TempoAt {
                    tick: m.tick,
                    micros_per_quarter: t,
                });
            } else {
                self.send_note(&m, due)?;
            }
        }
        Ok(())
    }

    /// Asked to stop: end every sounding note now.
    fn interrupt(&mut self) -> Result<()> {
        self.report.interrupted = true;
        self.stop_generating();
        while let Some(m) = self.generator.pop_message() {
            if matches!(m.message, MidiMessage::NoteOff { .. }) {
                self.send_note(&m, Instant::now())?;
            }
        }
        Ok(())
    }

    /// MIDI Stop, and the report of a performance that began at `start`.
    fn end(mut self, start: Instant) -> Result<PlayReport> {
        let stop_due = Instant::now();
        self.send(
            &live_bytes(LiveEvent::Realtime(SystemRealtime::Stop)),
            stop_due,
        )?;
        let mut report = self.report;
        report.seconds = start.elapsed().as_secs_f64();
        report.tokens = self.generator.tokens();
        report.ill_formed = self.generator.ill_formed();
        report.dropped_notes = self.generator.dropped_notes();
        report.jitter = self.jitter.jitter();
        Ok(report)
    }

    fn send_note(&mut self, m: &TimedMessage, due: Instant) -> Result<()> {
        if let Some(bytes) = wire_bytes(&m.message) {
            match m.message {
                MidiMessage::NoteOn { .. } => self.report.note_ons += 1,
                _ => self.report.note_offs += 1,
            }
            self.send(&bytes, due)?;
        }
        Ok(())
    }
}

/// Play `generator` to `port` in real time until `options.seconds` have
/// passed or `stop` is set (then sounding notes end at once). Returns what
/// was played, with the measured jitter.
pub fn play<const Q: usize>(
    generator: &mut Generator<'_, '_, Q>,
    port: &mut dyn MidiPort,
    options: &PlayOptions,
    stop: &AtomicBool,
) -> Result<PlayReport> {
    let mut p = Performance {
        generator,
        port,
        generating: true,
        token_time: Duration::ZERO,
        jitter: JitterMeter::default(),
        report: PlayReport::default(),
    };
    // Decide the first quarter note before the clock starts.
    p.generate_through(LOOKAHEAD_TICKS, None);
    let start = Instant::now();
    p.send(
        &live_bytes(LiveEvent::Realtime(SystemRealtime::Start)),
        start,
    )?;
    let mut micros_per_quarter = DEFAULT_MICROS_PER_QUARTER;
    let mut clock: u64 = 0;
    // Nanoseconds from start to the current clock, times 24.
    let mut elapsed_x24: u128 = 0;
    let due_at = |elapsed_x24: u128| start + Duration::from_nanos((elapsed_x24 / 24) as u64);
    loop {
        let due = due_at(elapsed_x24);
        let tick = (clock / CLOCKS_PER_TICK) as u32;
        p.generate_through(tick, None);
        if clock.is_multiple_of(CLOCKS_PER_TICK) {
            p.release_due(tick, due, &mut micros_per_quarter)?;
        }
        p.send(
            &live_bytes(LiveEvent::Realtime(SystemRealtime::TimingClock)),
            due,
        )?;
        p.report.clocks += 1;
        p.report.last_tick = tick;
        if stop.load(Ordering::SeqCst) {
            p.interrupt()?;
            break;
        }
        if options
            .seconds
            .is_some_and(|s| start.elapsed().as_secs_f64() >= s)
        {
            p.stop_generating();
        }
        if !p.generating && p.generator.is_idle() {
            break;
        }
        clock += 1;
        elapsed_x24 += u128::from(micros_per_quarter) * 1000;
        let next = due_at(elapsed_x24);
        // Generate ahead while there is time, leaving half a millisecond to spare.
        let next_tick = (clock / CLOCKS_PER_TICK) as u32;
        p.generate_through(
            next_tick + LOOKAHEAD_TICKS,
            next.checked_sub(Duration::from_micros(500)),
        );
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    p.end(start)
}
