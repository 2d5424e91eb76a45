//! `host-trainer render`: a MIDI file → a WAV file (rustysynth on a General
//! MIDI SoundFont) and a piano roll (PNG). [`ListenArgs`] are the same
//! options on `generate` and `train`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::midi::{read_piece, ReadOptions};
use crate::piece::Piece;
use crate::render::{find_soundfont, installed_soundfont, load_soundfont, render_wav, Instruments};

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
            piece
                .notes
                .iter()
                .map(|n| n.voice)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
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

/// Arguments of `host-trainer render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The MIDI file to render.
    pub piece: PathBuf,
    #[command(flatten)]
    pub listen: ListenArgs,
}

/// Run the command.
pub fn run(args: &RenderArgs) -> Result<i32> {
    if args.listen.wav.is_none() && args.listen.png.is_none() {
        bail!("give --wav OUT.wav and/or --png ROLL.png");
    }
    args.listen.check()?;
    let path = &args.piece;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let piece = read_piece(&bytes, ReadOptions::default())
        .with_context(|| format!("{}", path.display()))?;
    if piece.notes.is_empty() {
        bail!("{}: no notes to render", path.display());
    }
    let title = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    args.listen.write(&piece, &title)?;
    Ok(0)
}
