//! `host-trainer generate`: continue a prompt (or start from nothing) with an
//! exported model (the engine) or a run's checkpoint (candle); write MIDI,
//! and with `--wav`/`--png` its audio and piano roll.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use kantor_engine::model::Model;
use kantor_engine::plan::PiecePlan;
use kantor_engine::sampler::SamplerConfig;

use super::CommonArgs;
use crate::generate::{generate_candle, generate_engine, prompt_tokens, to_piece, GenerateOptions};
use crate::midi::{read_piece, write_midi, ReadOptions};
use crate::piece::Piece;
use crate::plan::{self, PlanArg, Planner};
use crate::run::Run;

/// Arguments of `host-trainer generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// An exported model (model.safetensors): generate with the engine.
    #[arg(long, conflicts_with = "run", required_unless_present = "run")]
    pub model: Option<PathBuf>,
    /// A run directory: generate with candle from its weights.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Weights of the run: best, last or a file.
    #[arg(long, default_value = "best")]
    pub weights: String,
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
    /// Bars to generate after the prompt.
    #[arg(long, default_value_t = 16)]
    pub bars: usize,
    /// MIDI file whose music the model continues (kept in the output).
    #[arg(long)]
    pub prompt: Option<PathBuf>,
    /// Use only the first N bars of the prompt.
    #[arg(long)]
    pub prompt_bars: Option<usize>,
    /// Output MIDI file.
    #[arg(long, default_value = "generated.mid")]
    pub out: PathBuf,
    /// Do not mask ill-formed tokens.
    #[arg(long)]
    pub unconstrained: bool,
    /// Voices to write for: plan (drawn from the model file's counts, as
    /// the board does; free with a prompt or without a plan), free (the
    /// model chooses) or a number, 1–16 (the opening chord sounds all of
    /// them; needs the grammar mask).
    #[arg(long, default_value = "plan", value_parser = plan::parse_voices, conflicts_with = "unconstrained")]
    pub voices: PlanArg,
    /// Bar form: plan (drawn from the model file's counts; none with a
    /// prompt or without a plan), none, or N: play the piece's first N bars
    /// again when the model starts bar N (A A B, as half of the chorales are
    /// written). With --model only.
    #[arg(long, default_value = "plan", value_parser = plan::parse_repeat, conflicts_with = "run")]
    pub repeat: PlanArg,
    /// Stop after this many generated tokens.
    #[arg(long, default_value_t = 8192)]
    pub max_tokens: usize,
    #[command(flatten)]
    pub listen: super::render::ListenArgs,
    /// --device, --json, --quiet.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The first `bars` bars of a piece.
pub fn first_bars(piece: &Piece, bars: usize) -> Piece {
    let end = piece.bars().nth(bars).map_or(u32::MAX, |b| b.start);
    Piece {
        notes: piece
            .notes
            .iter()
            .filter(|n| n.onset < end)
            .copied()
            .collect(),
        tempos: piece
            .tempos
            .iter()
            .filter(|t| t.tick < end)
            .copied()
            .collect(),
        meters: piece
            .meters
            .iter()
            .filter(|m| m.tick < end)
            .copied()
            .collect(),
        voices: piece.voices.clone(),
    }
}

/// `options` with the piece's voices and form: from `--voices` and
/// `--repeat`, `plan` standing for the model file's counts (`None`: with a
/// prompt, or without an engine file — the model chooses, nothing repeats).
fn planned(
    args: &GenerateArgs,
    options: GenerateOptions,
    plan: Option<&PiecePlan>,
) -> Result<GenerateOptions> {
    for (arg, flag) in [(args.voices, "--voices"), (args.repeat, "--repeat")] {
        if arg == PlanArg::Train {
            bail!("{flag} train is for eval; give plan, a number or leave it to the model");
        }
    }
    // `plan` without a plan (a prompt, or a run's candle model): the model chooses.
    let free = PiecePlan::free();
    let choice = Planner::new(
        (args.voices, args.repeat),
        || Ok(vec![]),
        Some(plan.unwrap_or(&free)),
    )?
    .choose(args.seed);
    Ok(GenerateOptions {
        voicing: choice.voicing,
        repeat_bars: choice.repeat_bars,
        ..options
    })
}

/// Run the command.
pub fn run(args: &GenerateArgs) -> Result<i32> {
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        bail!("--top-p must be in (0, 1]");
    }
    args.listen.check()?;
    let options = GenerateOptions {
        sampler: SamplerConfig {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
        },
        seed: args.seed,
        bars: args.bars,
        max_tokens: args.max_tokens,
        constrained: !args.unconstrained,
        stop_at_eos: true,
        ..GenerateOptions::default()
    };
    let prompt_piece = match &args.prompt {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let piece = read_piece(&bytes, ReadOptions::default())
                .with_context(|| format!("{}", path.display()))?;
            Some(match args.prompt_bars {
                Some(n) => first_bars(&piece, n),
                None => piece,
            })
        }
        None => None,
    };
    let (tokens, bpe) = match (&args.model, &args.run) {
        (Some(model), _) => {
            let bytes =
                std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
            let bpe =
                crate::export::read_bpe(&bytes).with_context(|| format!("{}", model.display()))?;
            let prompt = prompt_piece
                .as_ref()
                .map(|p| prompt_tokens(p, &bpe))
                .unwrap_or_default();
            // A prompt has made the piece's choices already.
            let plan = Model::from_bytes(&bytes)?.plan;
            let plan = prompt.is_empty().then_some(&plan);
            let options = planned(args, options, plan)?;
            (generate_engine(&bytes, &prompt, &options)?, bpe)
        }
        (None, Some(dir)) => {
            let run = Run::open(dir)?;
            let device = args.common.device()?;
            let model = run.model(&args.weights, &device)?;
            let prompt = prompt_piece
                .as_ref()
                .map(|p| prompt_tokens(p, &run.bpe))
                .unwrap_or_default();
            let options = planned(args, options, None)?;
            (
                generate_candle(model.as_ref(), &run.bpe, &prompt, &options, &device)?,
                run.bpe,
            )
        }
        (None, None) => bail!("give --model FILE or --run DIR"),
    };
    let decoded = to_piece(&tokens, &bpe)?;
    let mut piece = decoded.piece;
    if let Some(p) = &prompt_piece {
        piece.voices = p.voices.clone();
    }
    crate::fsutil::write_atomic(&args.out, &write_midi(&piece))?;
    println!(
        "wrote {}: {} notes, {:.1} quarter notes, {} tokens ({} ill-formed)",
        args.out.display(),
        piece.notes.len(),
        piece.quarters(),
        tokens.len(),
        decoded.errors.len()
    );
    if args.listen.wav.is_some() || args.listen.png.is_some() {
        let title = args
            .out
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        args.listen.write(&piece, &title)?;
    }
    Ok(0)
}
