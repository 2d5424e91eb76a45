//! The sequencer: keeps generation ahead of playback, plays notes when their
//! time comes, and sends MIDI clock (24 per quarter note) between Start and
//! Stop so that a DAW or drum machine can follow.
//!
//! Musical time is the engine's grid (12 ticks per quarter note), two MIDI
//! clocks per grid tick. At each grid tick the sequencer first makes sure the
//! generator has decided everything up to that tick, then sends the due note
//! messages, then the clock. The order of bytes therefore depends only on the
//! model and the seed — never on how fast the board runs — which is what lets
//! the QEMU test compare the board's output with the host's byte for byte.

use kantor_engine::generator::Generator;
use kantor_engine::stream::MidiMessage;
use kantor_engine::vocab::BOS_ID;
use midly::live::SystemRealtime;

use crate::clock::Clock;
use crate::midi_out::MidiOut;
use crate::settings::MAX_TOKENS_PER_TICK;

/// MIDI tempo before the model sets one (120 BPM).
pub const DEFAULT_MICROS_PER_QUARTER: u32 = 500_000;

/// When a performance stops generating (the last notes then ring out and
/// `Stop` is sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// Never: play forever.
    Forever,
    /// After this many tokens (the first `Bos` included).
    Tokens(u32),
    /// After this many seconds of the clock.
    Seconds(u32),
}

/// What a performance did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Tokens fed to the model (the first `Bos` included).
    pub tokens: u32,
    /// Tokens the decoder rejected.
    pub ill_formed: u32,
    /// Notes dropped by a full scheduler.
    pub dropped_notes: u32,
    /// Note messages sent.
    pub messages: u32,
    /// MIDI clocks sent.
    pub clocks: u32,
    /// Bytes sent.
    pub bytes: u32,
    /// Times the KV cache slid.
    pub evictions: u32,
    /// Pieces begun (each from an empty cache), the first included.
    pub pieces: u32,
    /// Clock cycles spent generating (from [`Clock::cycles`]).
    pub generate_cycles: u64,
    /// Most cycles one token took.
    pub max_token_cycles: u64,
    /// Which token took them (counted as [`Report::tokens`]).
    pub max_token: u32,
    /// Microseconds of the clock from `Start` to `Stop`.
    pub elapsed_us: u64,
}

/// Generator + MIDI output + clock.
pub struct Sequencer<'m, 'b, const Q: usize, W, C> {
    generator: Generator<'m, 'b, Q>,
    out: MidiOut<W>,
    clock: C,
}

impl<'m, 'b, const Q: usize, W: embedded_io::Write, C: Clock> Sequencer<'m, 'b, Q, W, C> {
    /// A sequencer over a generator, a serial writer and a clock.
    pub fn new(generator: Generator<'m, 'b, Q>, writer: W, clock: C) -> Self {
        Sequencer {
            generator,
            out: MidiOut::new(writer),
            clock,
        }
    }

    /// The output back (e.g. the host reference's byte buffer).
    pub fn into_writer(self) -> W {
        self.out.into_inner()
    }

    /// Play until the budget is spent and the last notes have rung out.
    pub fn run(&mut self, budget: Budget) -> Result<Report, W::Error> {
        let mut report = Report::default();
        let mut micros_per_quarter = DEFAULT_MICROS_PER_QUARTER;
        let mut generating = true;
        let mut half_tick: u64 = 0;
        let mut deadline = self.clock.now_us();
        let start_us = deadline;
        // The piece's `Bos` before the clock starts: every timed step is one token.
        let _ = self.generator.prime();
        report.pieces = 1;
        self.out.realtime(SystemRealtime::Start)?;
        loop {
            let tick = (half_tick / 2) as u32;
            let mut this_tick = 0;
            while generating
                && self.generator.decoder().now() <= tick
                && this_tick < MAX_TOKENS_PER_TICK
            {
                let spent = match budget {
                    Budget::Forever => false,
                    Budget::Tokens(n) => self.generator.tokens() >= n,
                    Budget::Seconds(s) => {
                        self.clock.now_us().saturating_sub(start_us) >= u64::from(s) * 1_000_000
                    }
                };
                if spent {
                    self.generator.finish();
                    generating = false;
                    break;
                }
                let start = self.clock.cycles();
                let stepped = self.generator.step();
                let cycles = self.clock.cycles().wrapping_sub(start);
                report.generate_cycles = report.generate_cycles.saturating_add(cycles);
                if cycles > report.max_token_cycles {
                    report.max_token_cycles = cycles;
                    report.max_token = self.generator.tokens();
                }
                this_tick += 1;
                report.pieces = report
                    .pieces
                    .saturating_add(u32::from(matches!(stepped, Ok(BOS_ID))));
                if stepped.is_err() {
                    self.generator.finish();
                    generating = false;
                }
            }
            if half_tick.is_multiple_of(2) {
                while let Some(m) = self.generator.pop_due(tick) {
                    if let MidiMessage::Tempo {
                        micros_per_quarter: t,
                    } = m.message
                    {
                        micros_per_quarter = t;
                    } else {
                        self.out.message(&m.message)?;
                        report.messages = report.messages.saturating_add(1);
                    }
                }
            }
            self.out.realtime(SystemRealtime::TimingClock)?;
            report.clocks = report.clocks.saturating_add(1);
            if !generating && self.generator.is_idle() {
                break;
            }
            half_tick += 1;
            deadline += u64::from(micros_per_quarter / 24);
            self.clock.wait_until_us(deadline);
        }
        self.out.realtime(SystemRealtime::Stop)?;
        self.out.flush()?;
        report.tokens = self.generator.tokens();
        report.ill_formed = self.generator.ill_formed();
        report.dropped_notes = self.generator.dropped_notes();
        report.bytes = self.out.bytes_written();
        report.evictions = self.generator.session().evictions() as u32;
        report.elapsed_us = self.clock.now_us().saturating_sub(start_us);
        Ok(report)
    }
}

/// The byte stream the board sends for `tokens` tokens, computed on the host
/// (or anywhere): the reference of the QEMU test.
pub fn reference_stream<const Q: usize>(
    generator: Generator<'_, '_, Q>,
    tokens: u32,
    out: &mut heapless::Vec<u8, 65536>,
) -> Report {
    let mut sequencer = Sequencer::new(
        generator,
        VecWriter(out),
        crate::clock::VirtualClock::default(),
    );
    // A full buffer is reported by the writer as an error: the report is then partial.
    sequencer.run(Budget::Tokens(tokens)).unwrap_or_default()
}

/// An `embedded-io` writer into a fixed buffer.
pub struct VecWriter<'a, const N: usize>(pub &'a mut heapless::Vec<u8, N>);

/// The buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl core::fmt::Display for Full {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("output buffer full")
    }
}

impl core::error::Error for Full {}

impl embedded_io::Error for Full {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::OutOfMemory
    }
}

impl<const N: usize> embedded_io::ErrorType for VecWriter<'_, N> {
    type Error = Full;
}

impl<const N: usize> embedded_io::Write for VecWriter<'_, N> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Full> {
        self.0.extend_from_slice(buf).map_err(|_| Full)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Full> {
        Ok(())
    }
}
