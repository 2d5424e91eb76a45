//! `host-trainer eval`: held-out NLL (per token and per note) and the
//! metrics of generated music beside held-out Bach's, with the overlap of
//! their feature distributions ([`crate::features`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kantor_engine::sampler::SamplerConfig;
use serde::Serialize;

use super::CommonArgs;
use crate::bpe::Bpe;
use crate::corpus::{bpe_sequences, midi_files, windows, Corpus, LoadOptions, Split};
use crate::evaluate::{
    engine_loss, js_divergence, music_metrics, target_notes, MusicMetrics, NGRAM_SIZES,
};
use crate::features::{overlap, Overlap};
use crate::generate::{generate_candle, generate_engine, to_piece, GenerateOptions};
use crate::midi::{read_piece, ReadOptions};
use crate::piece::Piece;
use crate::plan::{self, PlanArg, Planner};
use crate::remi;
use crate::run::Run;

/// Arguments of `host-trainer eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A run directory (float perplexity with candle; its model.safetensors for the engine).
    #[arg(long, required_unless_present = "model")]
    pub run: Option<PathBuf>,
    /// An exported model (engine perplexity and samples).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Corpus for a bare --model (a run knows its own).
    #[arg(long, default_value = "data/bach-chorales-midi")]
    pub corpus: PathBuf,
    /// Held-out split of the NLL: valid or test.
    #[arg(long, default_value = "valid")]
    pub split: String,
    /// Held-out split the generated pieces are compared with: test or valid
    /// (never the training pieces).
    #[arg(long, default_value = "test")]
    pub reference: String,
    /// Generated pieces to measure. The mean overlap of 24 pieces moves by
    /// up to ±0.08 from one set of seeds to the next (a few pieces decide
    /// the repetition and polyphony features), of 120 by about ±0.015.
    #[arg(long, default_value_t = 120)]
    pub samples: usize,
    /// Bars per generated piece (default: the reference pieces' median).
    #[arg(long)]
    pub bars: Option<usize>,
    /// First seed of the samples.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sampling temperature.
    #[arg(long, default_value_t = SamplerConfig::default().temperature)]
    pub temperature: f32,
    /// Keep the k most likely tokens (0: all).
    #[arg(long, default_value_t = SamplerConfig::default().top_k)]
    pub top_k: usize,
    /// Keep the most likely tokens up to this probability mass.
    #[arg(long, default_value_t = SamplerConfig::default().top_p)]
    pub top_p: f32,
    /// Measure the MIDI files in this directory instead of generating.
    #[arg(long)]
    pub generated: Option<PathBuf>,
    /// Sample without the grammar mask (to measure ill-formed output).
    #[arg(long)]
    pub unconstrained: bool,
    /// Voices of each piece: free (the model chooses), train (the voice
    /// count of a training piece drawn by the piece's seed), plan (drawn
    /// from the model file's counts, as the board does) or a number.
    #[arg(long, default_value = "free", value_parser = plan::parse_voices, conflicts_with = "unconstrained")]
    pub voices: PlanArg,
    /// Bar form: none, train (repeat the opening as a training piece drawn
    /// by the piece's seed does), plan (drawn from the model file's counts)
    /// or a number of bars to play again.
    #[arg(long, default_value = "none", value_parser = plan::parse_repeat)]
    pub repeat: PlanArg,
    /// Where to write the pitch-histogram PNG (default: the run directory or .).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// --device, --json, --quiet.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct EvalReport {
    /// Which split the NLL is on.
    pub split: String,
    /// Tokens in the held-out windows (the predicted ones).
    pub tokens: usize,
    /// Notes among those tokens.
    pub notes: usize,
    /// Perplexity of the float model (candle), with a run.
    pub float_perplexity: Option<f64>,
    /// The float model's NLL in nats per note.
    pub float_nats_per_note: Option<f64>,
    /// Perplexity computed by the engine, with an exported model.
    pub engine_perplexity: Option<f64>,
    /// The engine's NLL in nats per note.
    pub engine_nats_per_note: Option<f64>,
    /// How the pieces were sampled (when generated).
    pub sampler: Option<Sampling>,
    /// Bars per generated piece.
    pub bars: usize,
    /// Metrics of the generated pieces.
    pub generated: MusicMetrics,
    /// Which held-out split the pieces are compared with.
    pub reference_split: String,
    /// The same metrics of the reference split.
    pub reference: MusicMetrics,
    /// Overlap of the generated and reference feature distributions.
    pub overlap: Overlap,
    /// Jensen–Shannon divergence (bits) of the generated pitch histogram from the reference's.
    pub pitch_histogram_distance: f64,
    /// The pitch-histogram PNG.
    pub pitch_histogram_png: String,
}

/// The sampler settings, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct Sampling {
    /// Softmax temperature.
    pub temperature: f32,
    /// Top-k (0: off).
    pub top_k: usize,
    /// Top-p (1: off).
    pub top_p: f32,
    /// How the voices were chosen: free, train, plan or a number.
    pub voices: String,
    /// How the bar-form repeats were chosen: none, train, plan or a number.
    pub repeat: String,
}

impl Sampling {
    fn new(c: SamplerConfig, args: &EvalArgs) -> Self {
        Sampling {
            temperature: c.temperature,
            top_k: c.top_k,
            top_p: c.top_p,
            voices: args.voices.words("free"),
            repeat: args.repeat.words("none"),
        }
    }
}

fn parse_split(name: &str) -> Result<Split> {
    Ok(match name {
        "valid" => Split::Valid,
        "test" => Split::Test,
        "train" => Split::Train,
        other => bail!("unknown split {other:?} (valid, test or train)"),
    })
}

/// Run the command.
pub fn run(args: &EvalArgs) -> Result<i32> {
    let split = parse_split(&args.split)?;
    let device = args.common.device()?;
    let run = args.run.as_deref().map(Run::open).transpose()?;
    let model_bytes = args
        .model
        .clone()
        .or_else(|| run.as_ref().map(|r| r.dir.model()).filter(|p| p.exists()))
        .map(|p| std::fs::read(&p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let (corpus, bpe, context) = data_of(args, run.as_ref(), model_bytes.as_deref())?;
    let reference_split = match parse_split(&args.reference)? {
        Split::Train => bail!("--reference train: compare with held-out pieces (test or valid)"),
        held_out => held_out,
    };
    let nll = held_out_nll(
        (&args.split, &corpus.pieces(split), &bpe, context),
        run.as_ref(),
        model_bytes.as_deref(),
        &device,
    )?;
    let per_note =
        |nats_per_token: f64| nats_per_token * nll.tokens as f64 / nll.notes.max(1) as f64;

    // The pieces to measure (given files, or fresh samples) beside the reference.
    let reference_pieces = corpus.pieces(reference_split);
    let bars = args.bars.unwrap_or_else(|| median_bars(&reference_pieces));
    let sampler = SamplerConfig {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
    };
    let plan = model_bytes
        .as_deref()
        .map(kantor_engine::model::Model::from_bytes)
        .transpose()?
        .map(|m| m.plan);
    let training = || Ok(corpus.pieces(Split::Train));
    let planner = Planner::new((args.voices, args.repeat), training, plan.as_ref())?;
    let (pieces, streams, ill_formed) = match &args.generated {
        Some(dir) => read_generated(dir)?,
        None => sample(
            args,
            (sampler, &planner, bars),
            run.as_ref(),
            model_bytes.as_deref(),
            &bpe,
            &device,
        )?,
    };
    let generated = music_metrics(&pieces, &streams, ill_formed);
    let reference_streams: Vec<Vec<u16>> = reference_pieces.iter().map(remi::encode_ids).collect();
    let reference = music_metrics(&reference_pieces, &reference_streams, 0);
    let distance = js_divergence(&generated.pitch_histogram, &reference.pitch_histogram);
    let out_dir = args
        .out
        .clone()
        .or_else(|| run.as_ref().map(|r| r.dir.path().to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("."));
    let png = histogram_png(&out_dir, &reference, &generated)?;
    let report = EvalReport {
        split: args.split.clone(),
        tokens: nll.tokens,
        notes: nll.notes,
        float_perplexity: nll.float_loss.map(f64::exp),
        float_nats_per_note: nll.float_loss.map(per_note),
        engine_perplexity: nll.engine_loss.map(f64::exp),
        engine_nats_per_note: nll.engine_loss.map(per_note),
        sampler: args
            .generated
            .is_none()
            .then(|| Sampling::new(sampler, args)),
        bars,
        overlap: overlap(&pieces, &reference_pieces),
        generated,
        reference_split: args.reference.clone(),
        reference,
        pitch_histogram_distance: distance,
        pitch_histogram_png: png.display().to_string(),
    };
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(0)
}

/// The held-out NLL: the predicted tokens, the notes among them, and the
/// mean NLL per token (nats) of the float model and of the exported one.
struct HeldOutNll {
    tokens: usize,
    notes: usize,
    float_loss: Option<f64>,
    engine_loss: Option<f64>,
}

/// [`HeldOutNll`] of `pieces` (the split called `name`) cut into windows of
/// `context + 1` tokens.
fn held_out_nll(
    (name, pieces, bpe, context): (&str, &[Piece], &Bpe, usize),
    run: Option<&Run>,
    model_bytes: Option<&[u8]>,
    device: &candle_core::Device,
) -> Result<HeldOutNll> {
    let held_out = windows(&bpe_sequences(pieces, bpe), context + 1, context);
    if held_out.is_empty() {
        bail!("the {name} split is shorter than one window");
    }
    let float_loss = match run {
        Some(r) => {
            let model = r.model("best", device)?;
            let batch = r.config.train.batch_size;
            Some(crate::train::mean_loss(
                model.as_ref(),
                &held_out,
                batch,
                device,
            )?)
        }
        None => None,
    };
    let engine_loss = model_bytes
        .map(|bytes| engine_loss(bytes, &held_out))
        .transpose()?;
    Ok(HeldOutNll {
        tokens: held_out.len() * context,
        notes: target_notes(&held_out, bpe),
        float_loss,
        engine_loss,
    })
}

/// The median number of bars of `pieces` (16 if there are none).
fn median_bars(pieces: &[Piece]) -> usize {
    let mut bars: Vec<usize> = pieces.iter().map(|p| p.bars().count()).collect();
    bars.sort_unstable();
    bars.get(bars.len() / 2).copied().unwrap_or(16).max(1)
}

/// The held-out data: the run's corpus and BPE table, or `--corpus` and the
/// exported model's table; and the context.
fn data_of(
    args: &EvalArgs,
    run: Option<&Run>,
    model_bytes: Option<&[u8]>,
) -> Result<(Corpus, Bpe, usize)> {
    Ok(match (run, model_bytes) {
        (Some(r), _) => (r.corpus()?, r.bpe.clone(), r.config.model.context),
        (None, Some(bytes)) => {
            let model = kantor_engine::model::Model::from_bytes(bytes)?;
            let corpus = Corpus::load(&args.corpus, LoadOptions::default())?;
            (
                corpus,
                crate::export::read_bpe(bytes)?,
                model.config.context,
            )
        }
        (None, None) => bail!("give --run DIR or --model FILE"),
    })
}

/// The MIDI files of `dir`, as pieces with their token streams.
fn read_generated(dir: &Path) -> Result<(Vec<Piece>, Vec<Vec<u16>>, usize)> {
    let mut pieces = Vec::new();
    for f in midi_files(dir)? {
        let bytes = std::fs::read(&f)?;
        pieces.push(
            read_piece(&bytes, ReadOptions::default())
                .with_context(|| format!("{}", f.display()))?,
        );
    }
    let streams = pieces.iter().map(remi::encode_ids).collect();
    Ok((pieces, streams, 0))
}

/// `pitch-histogram.png` in `out_dir`: the reference's and the generated.
fn histogram_png(
    out_dir: &Path,
    reference: &MusicMetrics,
    generated: &MusicMetrics,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out_dir)?;
    let png = out_dir.join("pitch-histogram.png");
    crate::plot::pitch_histograms(
        &[
            (
                "held-out Bach".to_string(),
                reference.pitch_histogram.clone(),
            ),
            ("generated".to_string(), generated.pitch_histogram.clone()),
        ],
        &png,
        "Pitch distribution",
    )?;
    Ok(png)
}

fn sample(
    args: &EvalArgs,
    (sampler, planner, bars): (SamplerConfig, &Planner, usize),
    run: Option<&Run>,
    model_bytes: Option<&[u8]>,
    bpe: &Bpe,
    device: &candle_core::Device,
) -> Result<(Vec<Piece>, Vec<Vec<u16>>, usize)> {
    let candle_model = match (model_bytes, run) {
        (None, Some(r)) => Some(r.model("best", device)?),
        _ => None,
    };
    let (mut pieces, mut streams, mut ill_formed) = (Vec::new(), Vec::new(), 0);
    for i in 0..args.samples {
        let seed = args.seed + i as u64;
        let choice = planner.choose(seed);
        let options = GenerateOptions {
            sampler,
            seed,
            bars,
            constrained: !args.unconstrained,
            voicing: choice.voicing,
            repeat_bars: choice.repeat_bars,
            ..GenerateOptions::default()
        };
        let tokens = match (model_bytes, &candle_model) {
            (Some(bytes), _) => generate_engine(bytes, &[], &options)?,
            (None, Some(m)) => generate_candle(m.as_ref(), bpe, &[], &options, device)?,
            (None, None) => bail!("nothing to generate with"),
        };
        let decoded = to_piece(&tokens, bpe)?;
        ill_formed += decoded.errors.len();
        streams.push(bpe.decode(&tokens)?);
        pieces.push(decoded.piece);
    }
    Ok((pieces, streams, ill_formed))
}

fn print_report(r: &EvalReport) {
    println!(
        "held-out {} split: {} tokens, {} notes",
        r.split, r.tokens, r.notes
    );
    let nll = |name: &str, ppl: Option<f64>, per_note: Option<f64>| {
        if let (Some(p), Some(n)) = (ppl, per_note) {
            println!("  {name}: perplexity {p:.3}, {n:.4} nats per note");
        }
    };
    nll("float (candle)", r.float_perplexity, r.float_nats_per_note);
    nll(
        "exported (engine)",
        r.engine_perplexity,
        r.engine_nats_per_note,
    );
    if let Some(s) = &r.sampler {
        println!(
            "generated: {} pieces of {} bars, temperature {}, top-k {}, top-p {}, voices {}, repeat {}",
            r.generated.pieces, r.bars, s.temperature, s.top_k, s.top_p, s.voices, s.repeat
        );
    }
    let reference = format!("held-out ({})", r.reference_split);
    println!("{:<34} {:>12} {:>14}", "metric", "generated", reference);
    let row = |name: String, a: f64, b: f64| println!("{name:<34} {a:>12.4} {b:>14.4}");
    let (g, d) = (&r.generated, &r.reference);
    row("pieces".into(), g.pieces as f64, d.pieces as f64);
    row("notes".into(), g.notes as f64, d.notes as f64);
    for (i, n) in NGRAM_SIZES.iter().enumerate() {
        row(
            format!("pitch {n}-gram repetition"),
            g.ngram_repetition[i],
            d.ngram_repetition[i],
        );
    }
    for (i, n) in NGRAM_SIZES.iter().enumerate() {
        row(
            format!("token {n}-gram compression ratio"),
            g.compression_ratio[i],
            d.compression_ratio[i],
        );
    }
    row(
        "pitch-class entropy (bits)".into(),
        g.pitch_class_entropy,
        d.pitch_class_entropy,
    );
    row(
        "scale consistency".into(),
        g.scale_consistency,
        d.scale_consistency,
    );
    row("polyphony".into(), g.polyphony, d.polyphony);
    row(
        "empty-beat rate".into(),
        g.empty_beat_rate,
        d.empty_beat_rate,
    );
    row(
        "ill-formed token rate".into(),
        g.ill_formed_rate,
        d.ill_formed_rate,
    );
    println!(
        "pitch histogram distance (Jensen-Shannon, bits): {:.4}; plot: {}",
        r.pitch_histogram_distance, r.pitch_histogram_png
    );
    println!(
        "{:<34} {:>8} {:>12} {:>14}",
        "feature (per piece)", "overlap", "generated", reference
    );
    for f in &r.overlap.features {
        println!(
            "{:<34} {:>8.3} {:>12.4} {:>14.4}",
            f.feature, f.overlap, f.generated_mean, f.reference_mean
        );
    }
    println!("mean overlap area: {:.3}", r.overlap.mean);
}
