//! `host-trainer render`: a MIDI file → a WAV file (rustysynth on a General
//! MIDI SoundFont) and a piano roll (PNG). [`ListenArgs`] (in
//! [`crate::render`]) are the same options on `generate` and `train`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::midi::{read_piece, ReadOptions};
pub use crate::render::ListenArgs;

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
