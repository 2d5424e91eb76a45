//! Listening: a piece → a WAV file (44.1 kHz, 16-bit stereo), played by
//! `rustysynth` on a General MIDI SoundFont.
//!
//! The piece is rendered as Kantor reads it, on the vocabulary's grid (a
//! generated piece is on it already). Each voice plays on its own channel
//! (the engine's [`voice_channel`], as the firmware sends it) with a General
//! MIDI program chosen by [`Instruments`] and the voice's register. The
//! synthesizer runs twice over the piece: the first pass measures the peak,
//! the second writes the samples scaled to 1 dB below full scale, so a render
//! never clips and is never needlessly quiet. The file appears only when it
//! is complete.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use kantor_engine::stream::voice_channel;
use kantor_engine::vocab::{tempo_micros, TICKS_PER_QUARTER};
use rustysynth::{SoundFont, Synthesizer, SynthesizerSettings};

use crate::piece::Piece;

/// Samples per second of the WAV files written.
pub const SAMPLE_RATE: u32 = 44_100;

/// Seconds rendered after the last note ends, for its release and the reverb.
pub const TAIL_SECONDS: f64 = 0.75;

/// Longest render, in seconds (3 hours, about 1.9 GB of WAV).
pub const MAX_SECONDS: f64 = 3.0 * 3600.0;

/// Peak level of a render, relative to full scale (−1 dBFS).
pub const PEAK: f32 = 0.891;

/// Where General MIDI SoundFonts are installed, best first: Debian's
/// `fluid-soundfont-gm`, the system default, Debian's `timgm6mb-soundfont`
/// (what `tools/setup.sh` installs), then other distributions' paths.
pub const SOUNDFONT_PATHS: &[&str] = &[
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
];

/// The Debian package `tools/setup.sh` installs for a SoundFont.
pub const SOUNDFONT_PACKAGE: &str = "timgm6mb-soundfont";

/// The first installed SoundFont of [`SOUNDFONT_PATHS`].
pub fn installed_soundfont() -> Option<PathBuf> {
    SOUNDFONT_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The SoundFont to use: `explicit` if given, else the installed one; an
/// error that says how to get one when there is none.
pub fn find_soundfont(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--soundfont {}: no such file", path.display());
        }
        return Ok(path.to_path_buf());
    }
    installed_soundfont().ok_or_else(|| {
        anyhow!(
            "no General MIDI SoundFont found (looked for {}); run tools/setup.sh, which installs \
             the Debian package {SOUNDFONT_PACKAGE} (fluid-soundfont-gm sounds better), or give \
             --soundfont FILE.sf2",
            SOUNDFONT_PATHS.join(", ")
        )
    })
}

/// Read a SoundFont (SF2) file.
pub fn load_soundfont(path: &Path) -> Result<Arc<SoundFont>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::new(file);
    // rustysynth reports what it checks as errors; a panic on data it does
    // not check becomes an error too.
    let loaded =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SoundFont::new(&mut reader)));
    match loaded {
        Ok(Ok(font)) if !font.get_presets().is_empty() => Ok(Arc::new(font)),
        Ok(Ok(_)) => bail!("{}: the SoundFont has no presets", path.display()),
        Ok(Err(e)) => bail!("{}: not a usable SoundFont: {e}", path.display()),
        Err(_) => bail!("{}: not a usable SoundFont", path.display()),
    }
}

/// Which General MIDI instruments play the voices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Instruments {
    /// Church organ on every voice.
    #[default]
    Organ,
    /// A string quartet by register: violins on top, viola, cello lowest.
    Strings,
    /// Choir "aahs" on every voice.
    Choir,
    /// Acoustic grand piano on every voice.
    Piano,
    /// Choir on the upper half of the voices, string ensemble on the lower.
    Blend,
}

/// General MIDI programs (zero-based).
mod gm {
    pub const PIANO: u8 = 0;
    pub const CHURCH_ORGAN: u8 = 19;
    pub const VIOLIN: u8 = 40;
    pub const VIOLA: u8 = 41;
    pub const CELLO: u8 = 42;
    pub const STRING_ENSEMBLE: u8 = 48;
    pub const CHOIR_AAHS: u8 = 52;
}

impl Instruments {
    /// The name `--instruments` takes.
    pub fn name(self) -> &'static str {
        match self {
            Instruments::Organ => "organ",
            Instruments::Strings => "strings",
            Instruments::Choir => "choir",
            Instruments::Piano => "piano",
            Instruments::Blend => "blend",
        }
    }

    /// The program of the voice ranked `rank` from the top (0 = highest) of `voices` voices.
    pub fn program(self, rank: usize, voices: usize) -> u8 {
        match self {
            Instruments::Organ => gm::CHURCH_ORGAN,
            Instruments::Choir => gm::CHOIR_AAHS,
            Instruments::Piano => gm::PIANO,
            Instruments::Strings if voices > 1 && rank + 1 == voices => gm::CELLO,
            Instruments::Strings if voices > 2 && rank + 2 == voices => gm::VIOLA,
            Instruments::Strings => gm::VIOLIN,
            Instruments::Blend if rank < voices.div_ceil(2) => gm::CHOIR_AAHS,
            Instruments::Blend => gm::STRING_ENSEMBLE,
        }
    }

    /// (voice, program) for each voice of `piece` that has notes, ranked by
    /// mean pitch.
    pub fn assign(self, piece: &Piece) -> Vec<(u8, u8)> {
        let mut sums = [(0u64, 0u64); 16];
        for n in &piece.notes {
            let s = &mut sums[usize::from(n.voice & 15)];
            s.0 += u64::from(n.pitch);
            s.1 += 1;
        }
        let mut voices: Vec<(u8, f64)> = (0..16u8)
            .filter_map(|v| {
                let (sum, count) = sums[usize::from(v)];
                (count > 0).then(|| (v, sum as f64 / count as f64))
            })
            .collect();
        voices.sort_by(|a, b| b.1.total_cmp(&a.1));
        let n = voices.len();
        voices
            .iter()
            .enumerate()
            .map(|(rank, &(voice, _))| (voice, self.program(rank, n)))
            .collect()
    }
}

/// Grid ticks → microseconds, following a piece's tempo changes.
#[derive(Clone, Debug)]
pub struct TempoMap {
    /// (tick, microseconds at that tick, microseconds per quarter from there).
    segments: Vec<(u32, f64, f64)>,
}

impl TempoMap {
    /// The tempo map of a piece (120 BPM before its first change).
    pub fn new(piece: &Piece) -> TempoMap {
        let mut segments = vec![(0u32, 0.0f64, 500_000.0f64)];
        for t in &piece.tempos {
            let &(tick, micros, per_quarter) = segments.last().unwrap_or(&(0, 0.0, 500_000.0));
            let at = micros
                + f64::from(t.tick.saturating_sub(tick)) * per_quarter
                    / f64::from(TICKS_PER_QUARTER);
            let next = (t.tick, at, f64::from(tempo_micros(t.tempo)));
            match segments.last_mut() {
                Some(last) if last.0 == t.tick => *last = next,
                _ => segments.push(next),
            }
        }
        TempoMap { segments }
    }

    /// Seconds from the start of the piece to `tick`.
    pub fn seconds(&self, tick: u32) -> f64 {
        let i = self.segments.partition_point(|s| s.0 <= tick);
        let (start, micros, per_quarter) = self.segments[i.saturating_sub(1)];
        (micros + f64::from(tick - start) * per_quarter / f64::from(TICKS_PER_QUARTER)) / 1e6
    }
}

/// What a render made.
#[derive(Clone, Copy, Debug)]
pub struct RenderReport {
    /// Length of the WAV file in seconds.
    pub seconds: f64,
    /// Seconds of music (to the end of the last note).
    pub music_seconds: f64,
    /// The gain applied to reach [`PEAK`].
    pub gain: f32,
}

/// A synthesizer event at a sample frame.
#[derive(Clone, Copy, Debug)]
struct SynthEvent {
    frame: u64,
    /// Note-offs (0) before note-ons (1) at one frame.
    on: bool,
    channel: u8,
    key: u8,
    velocity: u8,
}

/// Note-ons and note-offs at their audio frames, in order (at one frame,
/// note-offs first).
fn synth_events(piece: &Piece, tempo: &TempoMap) -> Vec<SynthEvent> {
    let frame = |tick: u32| (tempo.seconds(tick) * f64::from(SAMPLE_RATE)).round() as u64;
    let mut events: Vec<SynthEvent> = Vec::with_capacity(2 * piece.notes.len());
    for n in &piece.notes {
        let (channel, key) = (voice_channel(n.voice), n.pitch & 0x7f);
        let velocity = n.velocity.clamp(1, 127);
        events.push(SynthEvent {
            frame: frame(n.onset),
            on: true,
            channel,
            key,
            velocity,
        });
        events.push(SynthEvent {
            frame: frame(n.onset + n.duration.max(1)),
            on: false,
            channel,
            key,
            velocity,
        });
    }
    events.sort_by_key(|e| (e.frame, e.on));
    events
}

/// Render `piece` with `soundfont` into the WAV file `out` (written atomically).
pub fn render_wav(
    piece: &Piece,
    soundfont: &Arc<SoundFont>,
    instruments: Instruments,
    out: &Path,
) -> Result<RenderReport> {
    if piece.notes.is_empty() {
        bail!("the piece has no notes to render");
    }
    let tempo = TempoMap::new(piece);
    let music_seconds = tempo.seconds(piece.end_tick());
    let seconds = music_seconds + TAIL_SECONDS;
    if seconds > MAX_SECONDS {
        bail!(
            "the piece lasts {:.0} minutes; render handles at most {:.0}",
            music_seconds / 60.0,
            MAX_SECONDS / 60.0
        );
    }
    let events = synth_events(piece, &tempo);
    let programs: Vec<(u8, u8)> = instruments
        .assign(piece)
        .into_iter()
        .map(|(voice, program)| (voice_channel(voice), program))
        .collect();
    let frames = (seconds * f64::from(SAMPLE_RATE)).round() as u64;

    let mut peak = 0f32;
    synthesize(soundfont, &programs, &events, frames, |left, right| {
        for s in left.iter().chain(right.iter()) {
            peak = peak.max(s.abs());
        }
        Ok(())
    })?;
    if peak <= 0.0 {
        bail!("the SoundFont played nothing for this piece (silent render)");
    }
    let gain = PEAK / peak;

    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    crate::fsutil::write_atomic_with(out, |tmp| {
        let mut writer = hound::WavWriter::create(tmp, spec)
            .with_context(|| format!("creating {}", tmp.display()))?;
        synthesize(soundfont, &programs, &events, frames, |left, right| {
            for (l, r) in left.iter().zip(right) {
                writer.write_sample(to_i16(l * gain))?;
                writer.write_sample(to_i16(r * gain))?;
            }
            Ok(())
        })?;
        writer
            .finalize()
            .with_context(|| format!("writing {}", tmp.display()))
    })?;
    Ok(RenderReport {
        seconds: frames as f64 / f64::from(SAMPLE_RATE),
        music_seconds,
        gain,
    })
}

fn to_i16(x: f32) -> i16 {
    (x.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Run the synthesizer over `events` for `frames` frames, handing each
/// rendered block (left, right) to `sink`.
fn synthesize(
    soundfont: &Arc<SoundFont>,
    programs: &[(u8, u8)],
    events: &[SynthEvent],
    frames: u64,
    mut sink: impl FnMut(&[f32], &[f32]) -> Result<()>,
) -> Result<()> {
    const BLOCK: usize = 1024;
    let settings = SynthesizerSettings::new(SAMPLE_RATE as i32);
    let mut synth =
        Synthesizer::new(soundfont, &settings).map_err(|e| anyhow!("synthesizer: {e}"))?;
    for &(channel, program) in programs {
        synth.process_midi_message(i32::from(channel), 0xC0, i32::from(program), 0);
    }
    let (mut left, mut right) = (vec![0f32; BLOCK], vec![0f32; BLOCK]);
    let mut now = 0u64;
    let mut next = 0usize;
    while now < frames {
        while let Some(e) = events.get(next).filter(|e| e.frame <= now) {
            if e.on {
                synth.note_on(
                    i32::from(e.channel),
                    i32::from(e.key),
                    i32::from(e.velocity),
                );
            } else {
                synth.note_off(i32::from(e.channel), i32::from(e.key));
            }
            next += 1;
        }
        let until = events.get(next).map_or(frames, |e| e.frame.min(frames));
        let n = (until - now).clamp(1, BLOCK as u64) as usize;
        synth.render(&mut left[..n], &mut right[..n]);
        sink(&left[..n], &right[..n])?;
        now += n as u64;
    }
    Ok(())
}

/// Listening options: audio and piano roll of a piece.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ListenArgs {
    /// Write the piece as audio: WAV, 44.1 kHz, 16-bit stereo.
    #[arg(long, value_name = "OUT.wav")]
    pub wav: Option<PathBuf>,
    /// Write the piece's piano roll (PNG).
    #[arg(long, value_name = "ROLL.png")]
    pub png: Option<PathBuf>,
    /// General MIDI SoundFont for --wav (default: the one tools/setup.sh installs).
    #[arg(long, value_name = "FILE.sf2")]
    pub soundfont: Option<PathBuf>,
    /// Instruments for the voices (each voice has its own channel).
    #[arg(long, value_enum, default_value_t)]
    pub instruments: Instruments,
}

impl ListenArgs {
    /// Fail early, before any work, if --wav or --soundfont is given and there is no SoundFont.
    pub fn check(&self) -> Result<()> {
        if self.wav.is_some() || self.soundfont.is_some() {
            find_soundfont(self.soundfont.as_deref())?;
        }
        Ok(())
    }

    /// Write the files asked for (the piano roll first, then the WAV).
    pub fn write(&self, piece: &Piece, title: &str) -> Result<()> {
        write_files(piece, title, self.wav.as_deref(), self.png.as_deref(), self)
    }

    /// A run's sample: `--png`/`--wav` where given, else `png` and — when a
    /// SoundFont is installed or given — `wav` (skipped with a note otherwise).
    pub fn write_sample(&self, piece: &Piece, title: &str, wav: &Path, png: &Path) -> Result<()> {
        let png = self.png.as_deref().unwrap_or(png);
        let wav = match (&self.wav, &self.soundfont, installed_soundfont()) {
            (Some(path), _, _) => Some(path.as_path()),
            (None, Some(_), _) | (None, None, Some(_)) => Some(wav),
            (None, None, None) => {
                println!(
                    "no SoundFont installed: skipped {} (run tools/setup.sh, or give --soundfont FILE.sf2)",
                    wav.display()
                );
                None
            }
        };
        write_files(piece, title, wav, Some(png), self)
    }
}

fn write_files(
    piece: &Piece,
    title: &str,
    wav: Option<&Path>,
    png: Option<&Path>,
    listen: &ListenArgs,
) -> Result<()> {
    if piece.notes.is_empty() {
        bail!("the piece has no notes to render");
    }
    let soundfont = match wav {
        Some(_) => {
            let path = find_soundfont(listen.soundfont.as_deref())?;
            Some((load_soundfont(&path)?, path))
        }
        None => None,
    };
    if let Some(png) = png {
        crate::plot::piano_roll(piece, png, title)
            .with_context(|| format!("writing {}", png.display()))?;
        println!(
            "wrote {}: piano roll, {} bars, {} voices",
            png.display(),
            piece.bars().count(),
            piece.voice_count()
        );
    }
    if let (Some(wav), Some((font, font_path))) = (wav, soundfont) {
        let report = render_wav(piece, &font, listen.instruments, wav)
            .with_context(|| format!("writing {}", wav.display()))?;
        println!(
            "wrote {}: {:.1} s (music {:.1} s), 44.1 kHz 16-bit stereo, {} on {}",
            wav.display(),
            report.seconds,
            report.music_seconds,
            listen.instruments.name(),
            std::fs::canonicalize(&font_path)
                .unwrap_or(font_path)
                .display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::piece::TempoChange;
    use kantor_engine::vocab::tempo_class;

    #[test]
    fn tempo_map_follows_changes() {
        let piece = Piece::new(
            Vec::new(),
            vec![
                TempoChange {
                    tick: 0,
                    tempo: tempo_class(500_000),
                },
                TempoChange {
                    tick: 24,
                    tempo: tempo_class(1_000_000),
                },
            ],
            Vec::new(),
            Vec::new(),
        );
        let map = TempoMap::new(&piece);
        assert_eq!(map.seconds(0), 0.0);
        assert!((map.seconds(12) - 0.5).abs() < 1e-9);
        assert!((map.seconds(24) - 1.0).abs() < 1e-9);
        assert!((map.seconds(36) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn strings_go_from_violin_down_to_cello() {
        let programs: Vec<u8> = (0..4).map(|r| Instruments::Strings.program(r, 4)).collect();
        assert_eq!(programs, [40, 40, 41, 42]);
        assert_eq!(Instruments::Blend.program(1, 4), 52);
        assert_eq!(Instruments::Blend.program(2, 4), 48);
        assert_eq!(Instruments::Strings.program(0, 1), 40);
    }
}
