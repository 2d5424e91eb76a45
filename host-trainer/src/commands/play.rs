//! `host-trainer play`: generate with the engine and play live to a MIDI
//! output port — note-on/off and MIDI clock (24 per quarter note, Start and
//! Stop) — or, with `--record`, to the recording port, which writes what it
//! received with its timing to a file.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use kantor_engine::generator::Generator;
use kantor_engine::model::Model;
use kantor_engine::sampler::{Sampler, SamplerConfig};
use kantor_engine::session::{Session, SessionOptions};

use crate::midi_port::{MidiPort, RecordingPort};
use crate::player::{play, PlayOptions, PlayReport, QUEUE};
use crate::run::RunDir;

/// Arguments of `host-trainer play`.
#[derive(Debug, clap::Args)]
pub struct PlayArgs {
    /// An exported model (model.safetensors).
    #[arg(long, conflicts_with = "run")]
    pub model: Option<PathBuf>,
    /// A run directory: play its exported model (model.safetensors).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Send to the MIDI output port whose name contains NAME (or whose number --list-ports shows).
    #[arg(long, value_name = "NAME", group = "output")]
    pub port: Option<String>,
    /// Open a virtual output port named NAME for a DAW to connect to (Linux, macOS).
    #[arg(long = "virtual", value_name = "NAME", group = "output")]
    pub virtual_port: Option<String>,
    /// Play to the recording port instead of a MIDI port and write what it
    /// received (seconds, bytes in hex) to FILE; needs no MIDI system.
    #[arg(long, value_name = "FILE", group = "output")]
    pub record: Option<PathBuf>,
    /// List the MIDI output ports and exit.
    #[arg(long, group = "output")]
    pub list_ports: bool,
    /// Stop generating after this many seconds (the last notes ring out);
    /// without it, play until Ctrl-C.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Softmax temperature (0 = greedy).
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 50)]
    pub top_k: usize,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Do not mask ill-formed tokens.
    #[arg(long)]
    pub unconstrained: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[cfg(not(feature = "live"))]
const NO_LIVE: &str = "this host-trainer was built without the `live` feature, so it cannot \
     open MIDI ports; build it with default features (tools/setup.sh installs libasound2-dev \
     and pkg-config, which midir needs on Linux), or play to the recording port with --record FILE";

#[cfg(feature = "live")]
fn list_ports() -> Result<()> {
    let names = crate::midi_port::live::port_names()?;
    if names.is_empty() {
        println!("no MIDI output ports (use --virtual NAME to open one for a DAW)");
    }
    for (i, name) in names.iter().enumerate() {
        println!("{i}: {name}");
    }
    Ok(())
}

#[cfg(not(feature = "live"))]
fn list_ports() -> Result<()> {
    bail!("{NO_LIVE}")
}

#[cfg(feature = "live")]
fn live_port(args: &PlayArgs) -> Result<Box<dyn MidiPort>> {
    use crate::midi_port::live;
    Ok(match (&args.port, &args.virtual_port) {
        (Some(name), _) => Box::new(live::connect(name)?),
        (None, Some(name)) => Box::new(live::create_virtual(name)?),
        (None, None) => bail!("give --port NAME, --virtual NAME or --record FILE"),
    })
}

#[cfg(not(feature = "live"))]
fn live_port(_args: &PlayArgs) -> Result<Box<dyn MidiPort>> {
    bail!("{NO_LIVE}")
}

/// Run the command.
pub fn run(args: &PlayArgs) -> Result<i32> {
    if args.list_ports {
        list_ports()?;
        return Ok(0);
    }
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        bail!("--top-p must be in (0, 1]");
    }
    if args.seconds.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
        bail!("--seconds must be a positive number");
    }
    let model_path = match (&args.model, &args.run) {
        (Some(model), _) => model.clone(),
        (None, Some(dir)) => RunDir::new(dir).model(),
        (None, None) => bail!("give --model FILE or --run DIR"),
    };
    let mut recording = RecordingPort::default();
    let mut live = match &args.record {
        Some(_) => None,
        None => Some(live_port(args)?),
    };
    let port: &mut dyn MidiPort = match &mut live {
        Some(port) => port.as_mut(),
        None => &mut recording,
    };

    let bytes =
        std::fs::read(&model_path).with_context(|| format!("reading {}", model_path.display()))?;
    let model = Model::from_bytes(&bytes).with_context(|| model_path.display().to_string())?;
    let options = SessionOptions::for_model(&model);
    let mut memory = vec![0u8; Session::memory_required(&model, options)];
    let session = Session::new(&model, options, &mut memory)
        .with_context(|| model_path.display().to_string())?;
    let sampler = Sampler::new(
        SamplerConfig {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
        },
        args.seed,
    );
    let mut generator: Generator<'_, '_, QUEUE> =
        Generator::new(session, sampler, !args.unconstrained);

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::SeqCst));
    eprintln!(
        "playing {} {}",
        model_path.display(),
        match args.seconds {
            Some(s) => format!("for {s} s"),
            None => String::from("until Ctrl-C"),
        }
    );
    let report = play(
        &mut generator,
        port,
        &PlayOptions {
            seconds: args.seconds,
        },
        &stop,
    )?;
    if let Some(path) = &args.record {
        recording.write_log(path)?;
        eprintln!(
            "wrote {} ({} messages)",
            path.display(),
            recording.messages.len()
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(0)
}

fn print_report(r: &PlayReport) {
    let mut bpm: Vec<String> = r
        .tempos
        .iter()
        .map(|t| format!("{:.0}", 60e6 / f64::from(t.micros_per_quarter)))
        .collect();
    bpm.dedup();
    println!(
        "played {:.1} s: {} tokens ({} ill-formed), {} note-ons, {} note-offs, {} clocks, {} dropped notes{}{}",
        r.seconds,
        r.tokens,
        r.ill_formed,
        r.note_ons,
        r.note_offs,
        r.clocks,
        r.dropped_notes,
        if bpm.is_empty() {
            String::from(", 120 BPM")
        } else {
            format!(", tempo {} BPM", bpm.join("/"))
        },
        if r.interrupted { ", interrupted" } else { "" }
    );
    if let Some(e) = &r.generation_error {
        println!("generation stopped early: {e}");
    }
    println!(
        "jitter against the schedule: mean {:.3} ms, max {:.3} ms over {} messages",
        r.jitter.mean_ms, r.jitter.max_ms, r.jitter.messages
    );
}
