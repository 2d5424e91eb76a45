//! The study's model families, each behind one trait: [`Family`] — train,
//! validation NLL, samples, diagnostics. `compare` runs the list and writes
//! the table.
//!
//! * [`tokens`] — the Transformer and the LSTM with attention over REMI+BPE
//!   tokens, trained by the trainer's own loop;
//! * [`vae`] — the recurrent VAE (GRU or MLP decoder);
//! * [`vq_vae`] — the VQ-VAE with an LSTM prior over its codes;
//! * [`gan`] — the MuseGAN-style WGAN-GP;
//! * [`diffusion`] — the DDPM over piano rolls.

pub mod diffusion;
pub mod gan;
pub mod tokens;
pub mod vae;
pub mod vq_vae;

use std::cell::OnceCell;
use std::path::Path;

use anyhow::{Context as _, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use super::compare::StudyPreset;
use super::fit::{fit, FitOptions, FitReport};
use super::roll::{roll_tensor, segments, Segment};
use crate::corpus::{transpositions, Corpus, Split};
use crate::piece::{Piece, PITCH_RANGE};

/// One model family of the study. The study calls [`Family::train`], then
/// [`Family::nll`] and [`Family::sample`], then [`Family::notes`].
pub trait Family {
    /// Its name: the table's row, `results/NAME.json`, `samples/NAME-i.mid`.
    fn name(&self) -> &'static str;
    /// What it is, for the progress line.
    fn describe(&self) -> &'static str;
    /// Train it on the study's data.
    fn train(&mut self, cx: &Context<'_>) -> Result<Trained>;
    /// Its validation NLL, where it defines one (none by default).
    fn nll(&mut self, _cx: &Context<'_>) -> Result<Nll> {
        Ok(Nll::NONE)
    }
    /// Generate the study's number of pieces.
    fn sample(&mut self, cx: &Context<'_>) -> Result<Samples>;
    /// Family-specific diagnostics (KL per dimension, codebook use …).
    fn notes(&self) -> serde_json::Value;
}

/// What training a family cost.
#[derive(Clone, Copy, Debug)]
pub struct Trained {
    /// Parameters.
    pub parameters: usize,
    /// Training time in seconds.
    pub seconds: f64,
    /// Training throughput.
    pub throughput: f64,
    /// Its unit.
    pub throughput_unit: &'static str,
}

impl Trained {
    /// The figures of a roll model trained by [`super::fit::fit`].
    pub fn of_fit(parameters: usize, fit: &FitReport) -> Self {
        Trained {
            parameters,
            seconds: fit.seconds,
            throughput: fit.items_per_s,
            throughput_unit: "segments/s",
        }
    }
}

/// A family's validation NLL.
#[derive(Clone, Copy, Debug)]
pub struct Nll {
    /// The NLL, where the family defines one.
    pub value: Option<f64>,
    /// What it is per (`—` for none).
    pub unit: &'static str,
    /// `exp(value)` for token models.
    pub perplexity: Option<f64>,
}

impl Nll {
    /// No likelihood (the GAN, the diffusion model).
    pub const NONE: Nll = Nll {
        value: None,
        unit: "—",
        perplexity: None,
    };

    /// An NLL per roll cell.
    pub fn per_cell(nats_per_segment: f64, unit: &'static str) -> Nll {
        Nll {
            value: Some(nats_per_segment / CELLS),
            unit,
            perplexity: None,
        }
    }
}

/// Generated pieces.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    /// The pieces.
    pub pieces: Vec<Piece>,
    /// Ill-formed tokens skipped while decoding them.
    pub ill_formed: usize,
    /// Their REMI token streams, where the family made tokens (else the
    /// pieces' encodings).
    pub streams: Option<Vec<Vec<u16>>>,
}

impl Samples {
    /// Pieces drawn without tokens.
    pub fn of(pieces: Vec<Piece>) -> Self {
        Samples {
            pieces,
            ..Samples::default()
        }
    }
}

/// What every family trains and measures on.
pub struct Context<'a> {
    /// The JSB Chorales file.
    pub jsb: &'a Path,
    /// The study's output directory.
    pub out: &'a Path,
    /// Where to train.
    pub device: &'a Device,
    /// Sizes and budgets.
    pub preset: &'a StudyPreset,
    /// The corpus (official split).
    pub corpus: &'a Corpus,
    /// Its training pieces.
    pub train_pieces: &'a [Piece],
    rolls: OnceCell<Rolls>,
}

impl<'a> Context<'a> {
    /// The context of a study.
    pub fn new(
        jsb: &'a Path,
        out: &'a Path,
        device: &'a Device,
        preset: &'a StudyPreset,
        corpus: &'a Corpus,
        train_pieces: &'a [Piece],
    ) -> Self {
        Context {
            jsb,
            out,
            device,
            preset,
            corpus,
            train_pieces,
            rolls: OnceCell::new(),
        }
    }

    /// The piano-roll data of the roll families (made once, when first asked).
    pub fn rolls(&self) -> Result<&Rolls> {
        if self.rolls.get().is_none() {
            let rolls = Rolls::new(self.corpus, self.train_pieces, self.device)?;
            let _ = self.rolls.set(rolls);
        }
        self.rolls.get().context("the piano rolls")
    }

    /// Train a roll model (the variables of `varmap`) over the training
    /// segments for the preset's roll steps: [`super::fit::fit`].
    pub fn fit_rolls(
        &self,
        varmap: &VarMap,
        seed: u64,
        loss: impl FnMut(&[usize], usize, &mut rand_chacha::ChaCha8Rng) -> candle_core::Result<Tensor>,
    ) -> Result<FitReport> {
        let items = self.rolls()?.train_segments.len();
        fit(
            varmap,
            items,
            self.fit_options(self.preset.roll_steps, seed),
            loss,
        )
    }

    /// Training options of a roll model.
    pub fn fit_options(&self, steps: usize, seed: u64) -> FitOptions {
        FitOptions {
            steps,
            batch: self.preset.batch,
            learning_rate: 2e-3,
            seed,
        }
    }
}

/// Piano-roll data of the roll families: two-bar segments starting at every
/// bar, the training pieces transposed within ±6 semitones.
pub struct Rolls {
    /// Training segments.
    pub train_segments: Vec<Segment>,
    /// Their rolls.
    pub train: Tensor,
    /// Validation segments.
    pub valid_segments: Vec<Segment>,
    /// Their rolls.
    pub valid: Tensor,
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

    /// Indices of the validation segments in chunks of `size`.
    pub fn valid_chunks(&self, size: usize) -> Vec<Vec<usize>> {
        let all: Vec<usize> = (0..self.valid_segments.len()).collect();
        all.chunks(size).map(<[usize]>::to_vec).collect()
    }
}

/// Cells of one roll segment (the unit of the roll models' NLL).
pub const CELLS: f64 = (super::roll::STEPS * super::roll::PITCHES) as f64;

/// Parameters held by `varmap`.
pub fn count(varmap: &VarMap) -> usize {
    varmap
        .data()
        .lock()
        .expect("varmap lock")
        .values()
        .map(|v| v.elem_count())
        .sum()
}

/// The state a family keeps between training and measuring, or an error
/// saying it was not trained.
fn trained<T>(state: &mut Option<T>) -> Result<&mut T> {
    state
        .as_mut()
        .context("the family must be trained before it is measured")
}
