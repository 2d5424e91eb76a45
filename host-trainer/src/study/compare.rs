//! `host-trainer compare`: train every family on the JSB Chorales (official
//! split, transposition-augmented training data), generate from each, and
//! measure them all with the same metrics into one table. The families live
//! in [`super::family`], behind one trait; this module is the loop and the
//! table.

use std::path::Path;

use anyhow::{Context as _, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::family::diffusion::DiffusionFamily;
use super::family::gan::GanFamily;
use super::family::tokens::Tokens;
use super::family::vae::VaeFamily;
use super::family::vq_vae::VqVaeFamily;
use super::family::{Context, Family};
use super::raster::{self, RasterReport};
use super::vae::DecoderKind;
use crate::config::ModelConfig;
use crate::corpus::{Corpus, LoadOptions, Split};
use crate::evaluate::{js_divergence, music_metrics, MusicMetrics, NGRAM_SIZES};
use crate::midi::write_midi;
use crate::remi;

/// Sizes and budgets of a study run.
#[derive(Clone, Debug)]
pub struct StudyPreset {
    /// Name.
    pub name: String,
    /// Optimizer steps of the token models.
    pub token_steps: usize,
    /// Optimizer steps of the roll models.
    pub roll_steps: usize,
    /// Generator steps of the GAN.
    pub gan_steps: usize,
    /// Steps of the raster benchmark.
    pub raster_steps: usize,
    /// Width of the models.
    pub width: usize,
    /// Layers of the sequence models.
    pub layers: usize,
    /// Context of the token models.
    pub context: usize,
    /// Batch size.
    pub batch: usize,
    /// Pieces generated per family.
    pub samples: usize,
    /// Diffusion steps.
    pub timesteps: usize,
}

impl StudyPreset {
    /// `tiny` (CI: about a minute on two cores) or `full` (about 40 minutes).
    pub fn named(name: &str) -> Result<StudyPreset> {
        Ok(match name {
            "tiny" => StudyPreset {
                name: name.into(),
                token_steps: 40,
                roll_steps: 40,
                gan_steps: 10,
                raster_steps: 40,
                width: 64,
                layers: 1,
                context: 64,
                batch: 8,
                samples: 2,
                timesteps: 40,
            },
            "full" => StudyPreset {
                name: name.into(),
                token_steps: 1200,
                roll_steps: 1500,
                gan_steps: 400,
                raster_steps: 1200,
                width: 128,
                layers: 2,
                context: 128,
                batch: 16,
                samples: 8,
                timesteps: 200,
            },
            other => anyhow::bail!("unknown study preset {other:?} (tiny or full)"),
        })
    }
}

/// One row of the table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FamilyResult {
    /// Family.
    pub family: String,
    /// Validation NLL where the family defines one.
    pub valid_nll: Option<f64>,
    /// What the NLL is per.
    pub nll_unit: String,
    /// `exp(valid_nll)` for token models.
    pub perplexity: Option<f64>,
    /// Parameters.
    pub parameters: usize,
    /// Training time in seconds.
    pub train_seconds: f64,
    /// Training throughput.
    pub throughput: f64,
    /// Its unit.
    pub throughput_unit: String,
    /// Metrics of the generated pieces.
    pub metrics: MusicMetrics,
    /// Jensen–Shannon divergence of the pitch histogram from the training data's (bits).
    pub pitch_distance: f64,
    /// Family-specific diagnostics (KL per dimension, codebook use …).
    pub notes: serde_json::Value,
    /// Sample MIDI files.
    pub samples: Vec<String>,
}

/// The whole study.
#[derive(Clone, Debug, Serialize)]
pub struct Study {
    /// Preset.
    pub preset: String,
    /// Rows.
    pub families: Vec<FamilyResult>,
    /// The same metrics for the training data.
    pub training_data: MusicMetrics,
    /// The raster benchmark.
    pub jsb_benchmark: RasterReport,
}

/// The study's families, in the table's order.
fn families() -> Vec<Box<dyn Family>> {
    vec![
        Box::new(Tokens::transformer()),
        Box::new(Tokens::lstm_attention()),
        Box::new(VaeFamily::new(DecoderKind::Gru)),
        Box::new(VaeFamily::new(DecoderKind::Mlp)),
        Box::<VqVaeFamily>::default(),
        Box::<GanFamily>::default(),
        Box::<DiffusionFamily>::default(),
    ]
}

/// A finished result is kept in `out/results/NAME.json`; with `resume` it
/// is read back instead of computed again, so that a killed study loses at
/// most the family it was training.
fn cached<T: Serialize + serde::de::DeserializeOwned>(
    out: &Path,
    resume: bool,
    name: &str,
    compute: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let path = out.join("results").join(format!("{name}.json"));
    if resume && path.exists() {
        eprintln!("  (resumed from {})", path.display());
        let text = std::fs::read_to_string(&path)?;
        return serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()));
    }
    let value = compute()?;
    crate::fsutil::write_atomic(&path, serde_json::to_string_pretty(&value)?.as_bytes())?;
    Ok(value)
}

/// Train one family, measure it and write its samples: its row.
fn measure(cx: &Context<'_>, family: &mut dyn Family, train_hist: &[f64]) -> Result<FamilyResult> {
    let trained = family.train(cx)?;
    let nll = family.nll(cx)?;
    let samples = family.sample(cx)?;
    let streams = samples
        .streams
        .unwrap_or_else(|| samples.pieces.iter().map(remi::encode_ids).collect());
    let metrics = music_metrics(&samples.pieces, &streams, samples.ill_formed);
    let dir = cx.out.join("samples");
    std::fs::create_dir_all(&dir)?;
    let mut paths = Vec::new();
    for (i, p) in samples.pieces.iter().enumerate() {
        let path = dir.join(format!("{}-{i}.mid", family.name()));
        std::fs::write(&path, write_midi(p))?;
        paths.push(path.display().to_string());
    }
    Ok(FamilyResult {
        family: family.name().into(),
        valid_nll: nll.value,
        nll_unit: nll.unit.into(),
        perplexity: nll.perplexity,
        parameters: trained.parameters,
        train_seconds: trained.seconds,
        throughput: trained.throughput,
        throughput_unit: trained.throughput_unit.into(),
        pitch_distance: js_divergence(&metrics.pitch_histogram, train_hist),
        metrics,
        notes: family.notes(),
        samples: paths,
    })
}

/// The JSB benchmark in the published setting (raster order, note-wise NLL).
fn jsb_benchmark(cx: &Context<'_>, resume: bool) -> Result<RasterReport> {
    eprintln!("JSB benchmark (raster order, note-wise NLL)");
    let p = cx.preset;
    let raster_config = ModelConfig {
        vocab_size: raster::VOCAB,
        dim: p.width,
        n_layers: p.layers.max(2),
        n_heads: 4,
        n_kv_heads: 4,
        hidden_dim: 2 * p.width,
        context: 2 * p.context,
        dropout: 0.1,
        ..ModelConfig::preset("tiny")?
    };
    cached(cx.out, resume, "jsb-benchmark", || {
        raster::benchmark(
            cx.jsb,
            &raster_config,
            cx.fit_options(p.raster_steps, 41),
            cx.device,
        )
    })
}

/// Run the study into `out`: every family, then the benchmark, the table
/// and the pitch histograms.
///
/// With `resume`, families already measured by an earlier (killed) run of
/// the same preset into the same `out` are read back, not trained again.
pub fn run(
    jsb: &Path,
    preset: &StudyPreset,
    out: &Path,
    device: &Device,
    resume: bool,
) -> Result<Study> {
    std::fs::create_dir_all(out)?;
    let corpus = Corpus::load(jsb, LoadOptions::default())
        .with_context(|| format!("loading {}", jsb.display()))?;
    let train_pieces = corpus.pieces(Split::Train);
    let train_streams: Vec<Vec<u16>> = train_pieces.iter().map(remi::encode_ids).collect();
    let training_data = music_metrics(&train_pieces, &train_streams, 0);
    check_study(out, preset, jsb, device, resume)?;
    let cx = Context::new(jsb, out, device, preset, &corpus, &train_pieces);
    let mut all = families();
    let mut families = Vec::new();
    let n = all.len();
    for (i, family) in all.iter_mut().enumerate() {
        eprintln!("[{}/{n}] {}", i + 1, family.describe());
        let hist = &training_data.pitch_histogram;
        families.push(cached(out, resume, family.name(), || {
            measure(&cx, family.as_mut(), hist)
        })?);
    }
    let study = Study {
        preset: preset.name.clone(),
        families,
        jsb_benchmark: jsb_benchmark(&cx, resume)?,
        training_data,
    };
    write_study(out, &study)?;
    Ok(study)
}

/// `results.json`, `table.md` and `pitch-histograms.png`.
fn write_study(out: &Path, study: &Study) -> Result<()> {
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(study)?,
    )?;
    std::fs::write(out.join("table.md"), markdown(study))?;
    let mut series = vec![(
        "training data".to_string(),
        study.training_data.pitch_histogram.clone(),
    )];
    series.extend(
        study
            .families
            .iter()
            .map(|f| (f.family.clone(), f.metrics.pitch_histogram.clone())),
    );
    crate::plot::pitch_histograms(
        &series,
        &out.join("pitch-histograms.png"),
        "Pitch distributions by family",
    )
}

/// Results of one study (preset, corpus, device) must not be resumed into
/// another: the table would mix them.
fn check_study(
    out: &Path,
    preset: &StudyPreset,
    jsb: &Path,
    device: &Device,
    resume: bool,
) -> Result<()> {
    let path = out.join("results").join("study");
    let wanted = format!(
        "preset: {preset:?}\ncorpus: {}\ndevice: {:?}\n",
        jsb.display(),
        device.location()
    );
    if resume {
        if let Ok(found) = std::fs::read_to_string(&path) {
            anyhow::ensure!(
                found == wanted,
                "{} holds results of another study; use a fresh --out\n{found}",
                out.display()
            );
        }
    } else {
        let _ = std::fs::remove_dir_all(out.join("results"));
    }
    crate::fsutil::write_atomic(&path, wanted.as_bytes())
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("—".into(), |x| format!("{x:.digits$}"))
}

/// The table as Markdown.
pub fn markdown(study: &Study) -> String {
    let mut s = String::new();
    s += &format!(
        "Study preset `{}` on the JSB Chorales (official split).\n\n",
        study.preset
    );
    s += "| family | valid NLL | NLL unit | perplexity | params | train s | throughput | rep. 2/4/8/16 | compression 2/4/8/16 | pitch JS | PC entropy | scale cons. | polyphony | empty beats | ill-formed |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    let metrics_cells = |m: &MusicMetrics| {
        let r: Vec<String> = m
            .ngram_repetition
            .iter()
            .map(|v| format!("{v:.2}"))
            .collect();
        let c: Vec<String> = m
            .compression_ratio
            .iter()
            .map(|v| format!("{v:.2}"))
            .collect();
        (r.join("/"), c.join("/"))
    };
    for f in &study.families {
        let (r, c) = metrics_cells(&f.metrics);
        s += &format!(
            "| {} | {} | {} | {} | {:.2} M | {:.0} | {:.0} {} | {r} | {c} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} |\n",
            f.family,
            opt(f.valid_nll, 3),
            f.nll_unit,
            opt(f.perplexity, 2),
            f.parameters as f64 / 1e6,
            f.train_seconds,
            f.throughput,
            f.throughput_unit,
            f.pitch_distance,
            f.metrics.pitch_class_entropy,
            f.metrics.scale_consistency,
            f.metrics.polyphony,
            f.metrics.empty_beat_rate,
            f.metrics.ill_formed_rate,
        );
    }
    let (r, c) = metrics_cells(&study.training_data);
    let d = &study.training_data;
    s += &format!(
        "| *training data* | | | | | | | {r} | {c} | 0 | {:.2} | {:.2} | {:.2} | {:.2} | 0 |\n\n",
        d.pitch_class_entropy, d.scale_consistency, d.polyphony, d.empty_beat_rate
    );
    s += &format!("n-gram sizes: {NGRAM_SIZES:?}. Diagnostics:\n\n");
    for f in &study.families {
        if !f.notes.is_null() {
            s += &format!("* {}: `{}`\n", f.family, f.notes);
        }
    }
    let b = &study.jsb_benchmark;
    s += &format!(
        "\nJSB Chorales, published setting (16th grid, SATB raster order, note-wise NLL on the validation split):\n\n| model | valid NLL |\n|---|---|\n| Kantor Transformer ({:.2} M params, {} steps) | {:.3} |\n",
        b.parameters as f64 / 1e6,
        b.training.steps,
        b.valid_nll
    );
    for (name, nll) in raster::PUBLISHED {
        s += &format!("| {name} (published) | {nll:.3} |\n");
    }
    s
}
