//! Generate a MIDI file on the desktop with the engine alone — the same code
//! path the microcontroller runs.
//!
//! ```text
//! cargo run --release -p kantor-engine --example generate -- \
//!     runs/default/model.safetensors out.mid [TOKENS] [SEED]
//! ```

use std::error::Error;

use kantor_engine::generator::Generator;
use kantor_engine::model::Model;
use kantor_engine::sampler::{Sampler, SamplerConfig};
use kantor_engine::session::{Session, SessionOptions};
use kantor_engine::stream::MidiMessage;
use kantor_engine::vocab::TICKS_PER_QUARTER;
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, Smf, Timing, TrackEvent, TrackEventKind};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model_path), Some(out_path)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: generate MODEL.safetensors OUT.mid [TOKENS] [SEED]");
        std::process::exit(2);
    };
    let tokens: u32 = args.get(3).map_or(Ok(600), |s| s.parse())?;
    let seed: u64 = args.get(4).map_or(Ok(1), |s| s.parse())?;

    let bytes = std::fs::read(model_path)?;
    let model = Model::from_bytes(&bytes).map_err(|e| match e.source() {
        Some(cause) => format!("{model_path}: {e}: {cause}"),
        None => format!("{model_path}: {e}"),
    })?;
    let options = SessionOptions::for_model(&model);
    // The engine never allocates: the application gives it memory.
    let mut memory = vec![0u8; Session::memory_required(&model, options)];
    let memory_kib = memory.len() / 1024;
    let session = Session::new(&model, options, &mut memory)?;
    let mut generator: Generator<'_, '_, 128> =
        Generator::new(session, Sampler::new(SamplerConfig::default(), seed), true);

    let mut track = Track::default();
    for _ in 0..tokens {
        generator.step()?;
        track.play(&mut generator);
    }
    generator.finish();
    track.play(&mut generator);
    let mut smf = Smf::new(Header::new(
        Format::SingleTrack,
        Timing::Metrical(u15::new(TPQ)),
    ));
    smf.tracks.push(track.end());
    smf.save(out_path)?;
    println!(
        "{out_path}: {} tokens ({} ill-formed), {} KiB of engine memory, {} cache slides",
        generator.tokens(),
        generator.ill_formed(),
        memory_kib,
        generator.session().evictions()
    );
    Ok(())
}

/// Ticks per quarter note of the MIDI file.
const TPQ: u16 = 480;

/// Timed messages → one MIDI track (delta times in [`TPQ`] ticks).
#[derive(Default)]
struct Track {
    events: Vec<TrackEvent<'static>>,
    last: u32,
}

impl Track {
    /// Append every message the generator has due.
    fn play(&mut self, generator: &mut Generator<'_, '_, 128>) {
        let scale = u32::from(TPQ) / TICKS_PER_QUARTER;
        while let Some(m) = generator.pop_message() {
            let t = m.tick * scale;
            self.events.push(TrackEvent {
                delta: u28::new(t.saturating_sub(self.last)),
                kind: event_kind(m.message),
            });
            self.last = self.last.max(t);
        }
    }

    /// The track with its end marker.
    fn end(mut self) -> Vec<TrackEvent<'static>> {
        self.events.push(TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
        });
        self.events
    }
}

/// An engine message as a MIDI file event.
fn event_kind(message: MidiMessage) -> TrackEventKind<'static> {
    match message {
        MidiMessage::NoteOn {
            channel,
            key,
            velocity,
        } => TrackEventKind::Midi {
            channel: u4::new(channel),
            message: midly::MidiMessage::NoteOn {
                key: u7::new(key),
                vel: u7::new(velocity),
            },
        },
        MidiMessage::NoteOff { channel, key } => TrackEventKind::Midi {
            channel: u4::new(channel),
            message: midly::MidiMessage::NoteOff {
                key: u7::new(key),
                vel: u7::new(0),
            },
        },
        MidiMessage::Tempo { micros_per_quarter } => {
            TrackEventKind::Meta(MetaMessage::Tempo(u24::new(micros_per_quarter)))
        }
    }
}
