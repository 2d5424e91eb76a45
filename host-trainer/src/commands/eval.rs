//! `host-trainer eval`: perplexity on held-out data and the metrics of
//! generated music, side by side with the same metrics of the training data.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kantor_engine::sampler::SamplerConfig;
use serde::Serialize;

use super::CommonArgs;
use crate::bpe::Bpe;
use crate::corpus::{bpe_sequences, midi_files, windows, Corpus, LoadOptions, Split};
use crate::evaluate::{engine_loss, js_divergence, music_metrics, MusicMetrics, NGRAM_SIZES};
use crate::generate::{generate_candle, generate_engine, to_piece, GenerateOptions};
use crate::midi::{read_piece, ReadOptions};
use crate::piece::Piece;
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
    /// Held-out split: valid or test.
    #[arg(long, default_value = "valid")]
    pub split: String,
    /// Generated pieces to measure.
    #[arg(long, default_value_t = 8)]
    pub samples: usize,
    /// Bars per generated piece.
    #[arg(long, default_value_t = 16)]
    pub bars: usize,
    /// First seed of the samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Measure the MIDI files in this directory instead of generating.
    #[arg(long)]
    pub generated: Option<PathBuf>,
    /// Sample without the grammar mask (to measure ill-formed output).
    #[arg(long)]
    pub unconstrained: bool,
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
    /// Which split the perplexities are on.
    pub split: String,
    /// Tokens in the held-out windows.
    pub tokens: usize,
    /// Perplexity of the float model (candle), with a run.
    pub float_perplexity: Option<f64>,
    /// Perplexity computed by the engine, with an exported model.
    pub engine_perplexity: Option<f64>,
    /// Metrics of the generated pieces.
    pub generated: MusicMetrics,
    /// The same metrics of the training split.
    pub training_data: MusicMetrics,
    /// Jensen–Shannon divergence (bits) of the generated pitch histogram from the training data's.
    pub pitch_histogram_distance: f64,
    /// The pitch-histogram PNG.
    pub pitch_histogram_png: String,
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
    let held_out = windows(
        &bpe_sequences(&corpus.pieces(split), &bpe),
        context + 1,
        context,
    );
    if held_out.is_empty() {
        bail!("the {} split is shorter than one window", args.split);
    }
    let float_perplexity = match &run {
        Some(r) => {
            let model = r.model("best", &device)?;
            Some(
                crate::train::mean_loss(
                    model.as_ref(),
                    &held_out,
                    r.config.train.batch_size,
                    &device,
                )?
                .exp(),
            )
        }
        None => None,
    };
    let engine_perplexity = match &model_bytes {
        Some(bytes) => Some(engine_loss(bytes, &held_out)?.exp()),
        None => None,
    };

    // The pieces to measure: given files, or fresh samples.
    let (pieces, streams, ill_formed) = match &args.generated {
        Some(dir) => read_generated(dir)?,
        None => sample(args, run.as_ref(), model_bytes.as_deref(), &bpe, &device)?,
    };
    let generated = music_metrics(&pieces, &streams, ill_formed);
    let train_pieces = corpus.pieces(Split::Train);
    let train_streams: Vec<Vec<u16>> = train_pieces.iter().map(remi::encode_ids).collect();
    let training_data = music_metrics(&train_pieces, &train_streams, 0);
    let distance = js_divergence(&generated.pitch_histogram, &training_data.pitch_histogram);
    let out_dir = args
        .out
        .clone()
        .or_else(|| run.as_ref().map(|r| r.dir.path().to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("."));
    let png = histogram_png(&out_dir, &training_data, &generated)?;
    let report = EvalReport {
        split: args.split.clone(),
        tokens: held_out.len() * context,
        float_perplexity,
        engine_perplexity,
        generated,
        training_data,
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

/// `pitch-histogram.png` in `out_dir`: the training data's and the generated.
fn histogram_png(
    out_dir: &Path,
    training_data: &MusicMetrics,
    generated: &MusicMetrics,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out_dir)?;
    let png = out_dir.join("pitch-histogram.png");
    crate::plot::pitch_histograms(
        &[
            (
                "training data".to_string(),
                training_data.pitch_histogram.clone(),
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
        let options = GenerateOptions {
            sampler: SamplerConfig::default(),
            seed: args.seed + i as u64,
            bars: args.bars,
            constrained: !args.unconstrained,
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
    println!("held-out {} split: {} tokens", r.split, r.tokens);
    if let Some(p) = r.float_perplexity {
        println!("  perplexity (float, candle): {p:.3}");
    }
    if let Some(p) = r.engine_perplexity {
        println!("  perplexity (exported, engine): {p:.3}");
    }
    println!(
        "{:<34} {:>12} {:>14}",
        "metric", "generated", "training data"
    );
    let row = |name: String, a: f64, b: f64| println!("{name:<34} {a:>12.4} {b:>14.4}");
    let (g, d) = (&r.generated, &r.training_data);
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
}
