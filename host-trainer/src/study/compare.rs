//! `host-trainer compare`: train every family on the JSB Chorales (official
//! split, transposition-augmented training data), generate from each, and
//! measure them all with the same metrics into one table.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use kantor_engine::sampler::SamplerConfig;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::fit::{fit, rows, FitOptions, FitReport};
use super::gan::{self, GanConfig};
use super::raster::{self, RasterReport};
use super::roll::{roll_tensor, rolls_to_piece, segments, tracks_tensor, tracks_to_piece, Segment};
use super::vae::{DecoderKind, Vae, VaeConfig};
use super::vqvae::{codebook_usage, VqConfig, VqVae, CODES};
use crate::config::{Architecture, ModelConfig, RunConfig, TrainConfig};
use crate::corpus::{transpositions, Corpus, LoadOptions, Split};
use crate::evaluate::{js_divergence, music_metrics, MusicMetrics, NGRAM_SIZES};
use crate::generate::{generate_candle, to_piece, GenerateOptions};
use crate::midi::write_midi;
use crate::model::{ids_tensor, Mode};
use crate::piece::{Piece, PITCH_RANGE};
use crate::remi;
use crate::run::RunDir;
use crate::train::train;

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

fn count(varmap: &VarMap) -> usize {
    varmap
        .data()
        .lock()
        .expect("varmap lock")
        .values()
        .map(|v| v.elem_count())
        .sum()
}

struct Context<'a> {
    jsb: &'a Path,
    out: &'a Path,
    device: &'a Device,
    preset: &'a StudyPreset,
    train_pieces: Vec<Piece>,
    train_hist: Vec<f64>,
    resume: bool,
}

impl Context<'_> {
    /// A finished result is kept in `out/results/NAME.json`; with `resume`
    /// it is read back instead of computed again, so that a killed study
    /// loses at most the family it was training.
    fn cached<T: Serialize + serde::de::DeserializeOwned>(
        &self,
        name: &str,
        compute: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let dir = self.out.join("results");
        let path = dir.join(format!("{name}.json"));
        if self.resume && path.exists() {
            eprintln!("  (resumed from {})", path.display());
            let text = std::fs::read_to_string(&path)?;
            return serde_json::from_str(&text)
                .with_context(|| format!("reading {}", path.display()));
        }
        let value = compute()?;
        crate::fsutil::write_atomic(&path, serde_json::to_string_pretty(&value)?.as_bytes())?;
        Ok(value)
    }

    fn finish(
        &self,
        family: &str,
        pieces: Vec<Piece>,
        ill_formed: usize,
        streams: Option<Vec<Vec<u16>>>,
        row: FamilyResult,
    ) -> Result<FamilyResult> {
        let streams = streams.unwrap_or_else(|| pieces.iter().map(remi::encode_ids).collect());
        let metrics = music_metrics(&pieces, &streams, ill_formed);
        let mut samples = Vec::new();
        let dir = self.out.join("samples");
        std::fs::create_dir_all(&dir)?;
        for (i, p) in pieces.iter().enumerate() {
            let path = dir.join(format!("{family}-{i}.mid"));
            std::fs::write(&path, write_midi(p))?;
            samples.push(path.display().to_string());
        }
        Ok(FamilyResult {
            pitch_distance: js_divergence(&metrics.pitch_histogram, &self.train_hist),
            metrics,
            samples,
            ..row
        })
    }

    fn token_family(
        &self,
        corpus: &Corpus,
        architecture: Architecture,
        family: &str,
    ) -> Result<FamilyResult> {
        let p = self.preset;
        let model = ModelConfig {
            architecture,
            vocab_size: 512,
            dim: p.width,
            n_layers: p.layers.max(if architecture == Architecture::Transformer {
                2
            } else {
                1
            }),
            n_heads: 4,
            n_kv_heads: if architecture == Architecture::Transformer {
                2
            } else {
                4
            },
            hidden_dim: 2 * p.width,
            context: p.context,
            dropout: 0.1,
            ..ModelConfig::preset("tiny")?
        };
        let train_config = TrainConfig {
            batch_size: p.batch,
            max_steps: p.token_steps,
            warmup_steps: (p.token_steps / 20).max(1),
            eval_every: p.token_steps.div_ceil(4).max(1),
            checkpoint_every: p.token_steps.max(1),
            patience: 0,
            ..TrainConfig::default()
        };
        let dir = self.out.join(family);
        let _ = std::fs::remove_dir_all(&dir);
        let config = RunConfig {
            model,
            train: train_config,
            data: crate::config::DataConfig {
                corpus: PathBuf::from(self.jsb),
                split_seed: 0,
            },
        };
        let dir = RunDir::new(dir);
        let start = dir.clone().start(false, config, None)?;
        let summary = train(corpus, start, self.device, None, false)?;
        let run = dir.open()?;
        let lm = run.model("best", self.device)?;
        let (mut pieces, mut streams, mut ill) = (Vec::new(), Vec::new(), 0);
        for i in 0..p.samples {
            let options = GenerateOptions {
                sampler: SamplerConfig::default(),
                seed: i as u64,
                bars: 8,
                max_tokens: 1024,
                ..GenerateOptions::default()
            };
            let tokens = generate_candle(lm.as_ref(), &run.bpe, &[], &options, self.device)?;
            let decoded = to_piece(&tokens, &run.bpe)?;
            ill += decoded.errors.len();
            streams.push(run.bpe.decode(&tokens)?);
            pieces.push(decoded.piece);
        }
        let row = FamilyResult {
            family: family.into(),
            valid_nll: Some(summary.best_val_loss),
            nll_unit: "nats per BPE-512 token".into(),
            perplexity: Some(summary.best_val_ppl),
            parameters: summary.parameters,
            train_seconds: summary.elapsed_s,
            throughput: summary.tokens_per_s,
            throughput_unit: "tokens/s".into(),
            metrics: MusicMetrics::default(),
            pitch_distance: 0.0,
            notes: serde_json::json!({ "unigram_perplexity": summary.unigram_val_ppl }),
            samples: vec![],
        };
        self.finish(family, pieces, ill, Some(streams), row)
    }

    fn vae_family(&self, r: &Rolls, kind: DecoderKind, family: &str) -> Result<FamilyResult> {
        let p = self.preset;
        let varmap = VarMap::new();
        let config = VaeConfig {
            latent: 16,
            hidden: p.width,
            decoder: kind,
            warmup_steps: p.roll_steps / 2,
            free_bits: 0.05,
        };
        let vae = Vae::new(
            config,
            VarBuilder::from_varmap(&varmap, DType::F32, self.device),
        )?;
        let report = fit(
            &varmap,
            r.train_segments.len(),
            fit_options(p, p.roll_steps, 11),
            |batch, step, rng| {
                let x = rows(&r.train, batch)?;
                vae.objective(&vae.loss(&x, rng)?, step)
            },
        )?;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (mut rec, mut kl, mut n) = (0.0, vec![0.0f64; config.latent], 0usize);
        for chunk in (0..r.valid_segments.len()).collect::<Vec<_>>().chunks(32) {
            let parts = vae.loss(&rows(&r.valid, chunk)?, &mut rng)?;
            rec += f64::from(parts.reconstruction.to_scalar::<f32>()?) * chunk.len() as f64;
            for (k, v) in kl.iter_mut().zip(parts.kl_per_dim.to_vec1::<f32>()?) {
                *k += f64::from(v) * chunk.len() as f64;
            }
            n += chunk.len();
        }
        kl.iter_mut().for_each(|k| *k /= n.max(1) as f64);
        let rec = rec / n.max(1) as f64;
        let active = kl.iter().filter(|&&k| k > 0.01).count();
        let pieces = (0..p.samples)
            .map(|_| rolls_to_piece(&vae.sample(4, &mut rng, self.device)?))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut row = empty_row(
            family,
            count(&varmap),
            &report,
            "nats per roll cell (−ELBO bound)",
        );
        row.valid_nll = Some((rec + kl.iter().sum::<f64>()) / CELLS);
        row.notes = serde_json::json!({
            "kl_per_dim": kl,
            "active_dims": active,
            "latent_dims": config.latent,
            "posterior_collapsed": active == 0,
            "reconstruction_nats_per_segment": rec,
        });
        self.finish(family, pieces, 0, None, row)
    }

    fn vq_vae_family(&self, r: &Rolls) -> Result<FamilyResult> {
        let p = self.preset;
        let varmap = VarMap::new();
        let config = VqConfig {
            codes: 64,
            dim: 16,
            hidden: p.width,
            commitment: 0.25,
        };
        let vq = VqVae::new(
            config,
            VarBuilder::from_varmap(&varmap, DType::F32, self.device),
        )?;
        let codebook_var = varmap
            .data()
            .lock()
            .expect("varmap lock")
            .get("codebook")
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("VQ-VAE has no codebook variable"))?;
        let mut used = vec![false; config.codes];
        let mut restarts = 0;
        let report = fit(
            &varmap,
            r.train_segments.len(),
            fit_options(p, p.roll_steps, 13),
            |batch, step, rng| {
                let x = rows(&r.train, batch)?;
                // Start from the data, then restart codes nobody used for 50 steps.
                if step % 50 == 0 && step < p.roll_steps * 3 / 4 {
                    if step == 0 {
                        used.fill(false);
                    }
                    restarts += super::vqvae::restart_dead_codes(
                        &codebook_var,
                        &used,
                        &vq.latents(&x)?,
                        rng,
                    )?;
                    used.fill(false);
                }
                let parts = vq.loss(&x)?;
                for c in parts.codes.flatten_all()?.to_vec1::<u32>()? {
                    used[c as usize] = true;
                }
                parts.reconstruction + parts.vq
            },
        )?;
        let codes_of = |rolls: &Tensor, n: usize| -> Result<Vec<Vec<u32>>> {
            let mut out = Vec::new();
            for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
                out.extend(vq.codes_of(&rows(rolls, chunk)?)?.to_vec2::<u32>()?);
            }
            Ok(out)
        };
        let valid_codes = codes_of(&r.valid, r.valid_segments.len())?;
        let flat: Vec<u32> = valid_codes.iter().flatten().copied().collect();
        let (used, perplexity) = codebook_usage(&flat, config.codes);
        let mut rec = 0.0;
        for chunk in (0..r.valid_segments.len()).collect::<Vec<_>>().chunks(32) {
            rec += f64::from(
                vq.loss(&rows(&r.valid, chunk)?)?
                    .reconstruction
                    .to_scalar::<f32>()?,
            ) * chunk.len() as f64;
        }
        rec /= r.valid_segments.len().max(1) as f64;
        // The prior: an LSTM over code sequences (BOS = codes).
        let train_codes = codes_of(&r.train, r.train_segments.len())?;
        let prior_config = ModelConfig {
            architecture: Architecture::LstmAttention,
            vocab_size: config.codes + 1,
            dim: p.width,
            n_layers: 1,
            n_heads: 4,
            n_kv_heads: 4,
            hidden_dim: p.width,
            context: CODES,
            dropout: 0.0,
            ..ModelConfig::preset("tiny")?
        };
        let prior_vars = VarMap::new();
        let prior = crate::model::build(
            &prior_config,
            VarBuilder::from_varmap(&prior_vars, DType::F32, self.device),
        )?;
        let bos = config.codes as u16;
        let sequences: Vec<Vec<u16>> = train_codes
            .iter()
            .map(|c| {
                std::iter::once(bos)
                    .chain(c.iter().map(|&x| x as u16))
                    .collect()
            })
            .collect();
        let prior_report = fit(
            &prior_vars,
            sequences.len(),
            fit_options(p, p.roll_steps, 17),
            |batch, step, _| {
                let chosen: Vec<Vec<u16>> = batch.iter().map(|&i| sequences[i].clone()).collect();
                let x: Vec<Vec<u16>> = chosen.iter().map(|s| s[..CODES].to_vec()).collect();
                let y: Vec<Vec<u16>> = chosen.iter().map(|s| s[1..].to_vec()).collect();
                prior.loss(
                    &ids_tensor(&x, self.device)?,
                    &ids_tensor(&y, self.device)?,
                    Mode::Train { seed: step as u64 },
                )
            },
        )?;
        let mut sampler = kantor_engine::sampler::Sampler::new(
            SamplerConfig {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
            },
            23,
        );
        let mut roll_rng = ChaCha8Rng::seed_from_u64(23);
        let mut pieces = Vec::new();
        for _ in 0..p.samples {
            let mut all = Vec::new();
            for _ in 0..4 {
                let mut seq = vec![bos];
                for _ in 0..CODES {
                    let logits =
                        prior.logits(&ids_tensor(&[seq.clone()], self.device)?, Mode::Eval)?;
                    let mut last = logits.squeeze(0)?.get(seq.len() - 1)?.to_vec1::<f32>()?;
                    last[usize::from(bos)] = f32::NEG_INFINITY; // codes only
                    let mut order = vec![0u16; last.len()];
                    seq.push(sampler.sample(&mut last, &mut order));
                }
                all.push(seq[1..].iter().map(|&c| u32::from(c)).collect::<Vec<u32>>());
            }
            let codes = Tensor::from_vec(all.concat(), (4, CODES), self.device)?;
            let probs = candle_nn::ops::sigmoid(&vq.decode_codes(&codes)?)?;
            pieces.push(rolls_to_piece(&super::vae::bernoulli(
                &probs,
                &mut roll_rng,
            )?)?);
        }
        let mut row = empty_row(
            "vq-vae",
            count(&varmap) + count(&prior_vars),
            &report,
            "nats per roll cell (reconstruction)",
        );
        row.train_seconds += prior_report.seconds;
        row.valid_nll = Some(rec / CELLS);
        row.notes = serde_json::json!({
            "codebook_size": config.codes,
            "codebook_used": used,
            "codebook_perplexity": perplexity,
            "prior_final_loss": prior_report.final_loss,
            "dead_code_restarts": restarts,
        });
        self.finish("vq-vae", pieces, 0, None, row)
    }

    fn gan_family(&self, r: &Rolls) -> Result<FamilyResult> {
        let p = self.preset;
        let tracks = tracks_tensor(&r.train_segments, self.device)?;
        let config = GanConfig {
            z_shared: 32,
            z_track: 16,
            hidden: 2 * p.width,
            critic_steps: 5,
            penalty: 10.0,
        };
        let (generator, g_vars, report) =
            gan::train(config, &tracks, p.gan_steps, p.batch, 1e-3, 19)?;
        let mut rng = ChaCha8Rng::seed_from_u64(29);
        let pieces = (0..p.samples)
            .map(|_| tracks_to_piece(&generator.sample(4, &mut rng, self.device)?, 0.5))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut row = empty_row("musegan-wgan-gp", count(&g_vars), &report, "—");
        row.notes = serde_json::json!({ "critic_wasserstein_estimate": report.final_loss, "parameters_counted": "generator" });
        self.finish("musegan-wgan-gp", pieces, 0, None, row)
    }

    fn diffusion_family(&self, r: &Rolls) -> Result<FamilyResult> {
        let p = self.preset;
        let varmap = VarMap::new();
        let config = super::diffusion::DiffusionConfig {
            hidden: p.width,
            timesteps: p.timesteps,
        };
        let model = super::diffusion::Denoiser::new(
            config,
            VarBuilder::from_varmap(&varmap, DType::F32, self.device),
        )?;
        let report = fit(
            &varmap,
            r.train_segments.len(),
            fit_options(p, p.roll_steps, 31),
            |batch, _, rng| model.loss(&rows(&r.train, batch)?, rng),
        )?;
        let mut rng = ChaCha8Rng::seed_from_u64(37);
        let pieces = (0..p.samples)
            .map(|_| rolls_to_piece(&model.sample(4, super::roll::STEPS, &mut rng, self.device)?))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut row = empty_row("diffusion-ddpm", count(&varmap), &report, "—");
        row.notes = serde_json::json!({ "final_noise_mse": report.final_loss, "timesteps": config.timesteps });
        self.finish("diffusion-ddpm", pieces, 0, None, row)
    }
}

/// Piano-roll data of the roll families: two-bar segments starting at every
/// bar, the training pieces transposed within ±6 semitones.
struct Rolls {
    train_segments: Vec<Segment>,
    train: Tensor,
    valid_segments: Vec<Segment>,
    valid: Tensor,
}

impl Rolls {
    fn new(corpus: &Corpus, train_pieces: &[Piece], device: &Device) -> Result<Rolls> {
        let augmented: Vec<Piece> = train_pieces
            .iter()
            .flat_map(|p| transpositions(p, -6..=6, PITCH_RANGE))
            .collect();
        let train_segments: Vec<_> = augmented.iter().flat_map(|p| segments(p, 16)).collect();
        let valid_segments: Vec<_> = corpus
            .pieces(Split::Valid)
            .iter()
            .flat_map(|p| segments(p, 32))
            .collect();
        Ok(Rolls {
            train: roll_tensor(&train_segments, device)?,
            valid: roll_tensor(&valid_segments, device)?,
            train_segments,
            valid_segments,
        })
    }
}

/// Cells of one roll segment (the unit of the roll models' NLL).
const CELLS: f64 = (super::roll::STEPS * super::roll::PITCHES) as f64;

fn fit_options(p: &StudyPreset, steps: usize, seed: u64) -> FitOptions {
    FitOptions {
        steps,
        batch: p.batch,
        learning_rate: 2e-3,
        seed,
    }
}

fn empty_row(family: &str, parameters: usize, fit: &FitReport, unit: &str) -> FamilyResult {
    FamilyResult {
        family: family.into(),
        valid_nll: None,
        nll_unit: unit.into(),
        perplexity: None,
        parameters,
        train_seconds: fit.seconds,
        throughput: fit.items_per_s,
        throughput_unit: "segments/s".into(),
        metrics: MusicMetrics::default(),
        pitch_distance: 0.0,
        notes: serde_json::Value::Null,
        samples: vec![],
    }
}

/// Run the study into `out`.
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
    let cx = Context {
        jsb,
        out,
        device,
        preset,
        train_hist: training_data.pitch_histogram.clone(),
        train_pieces,
        resume,
    };
    check_study(out, preset, jsb, device, resume)?;
    let mut families = Vec::new();
    eprintln!("[1/7] Transformer");
    families.push(cx.cached("transformer", || {
        cx.token_family(&corpus, Architecture::Transformer, "transformer")
    })?);
    eprintln!("[2/7] LSTM with attention");
    families.push(cx.cached("lstm-attention", || {
        cx.token_family(&corpus, Architecture::LstmAttention, "lstm-attention")
    })?);

    let rolls = Rolls::new(&corpus, &cx.train_pieces, device)?;
    for (index, (kind, family)) in [
        (DecoderKind::Gru, "vae-gru-decoder"),
        (DecoderKind::Mlp, "vae-mlp-decoder"),
    ]
    .into_iter()
    .enumerate()
    {
        eprintln!("[{}/7] recurrent VAE ({family})", 3 + index);
        families.push(cx.cached(family, || cx.vae_family(&rolls, kind, family))?);
    }
    eprintln!("[5/7] VQ-VAE");
    families.push(cx.cached("vq-vae", || cx.vq_vae_family(&rolls))?);
    eprintln!("[6/7] MuseGAN-style WGAN-GP");
    families.push(cx.cached("musegan-wgan-gp", || cx.gan_family(&rolls))?);
    eprintln!("[7/7] diffusion");
    families.push(cx.cached("diffusion-ddpm", || cx.diffusion_family(&rolls))?);

    eprintln!("JSB benchmark (raster order, note-wise NLL)");
    let p = preset;
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
    let jsb_benchmark = cx.cached("jsb-benchmark", || {
        raster::benchmark(
            jsb,
            &raster_config,
            fit_options(p, p.raster_steps, 41),
            device,
        )
    })?;

    let study = Study {
        preset: preset.name.clone(),
        families,
        training_data,
        jsb_benchmark,
    };
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&study)?,
    )?;
    std::fs::write(out.join("table.md"), markdown(&study))?;
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
    )?;
    Ok(study)
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
