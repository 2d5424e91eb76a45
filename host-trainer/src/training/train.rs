//! The training loop: data windows, AdamW with warm-up and cosine decay,
//! gradient accumulation and clipping, early stopping on validation loss,
//! checkpoints that a killed run resumes from, metrics and a loss curve.
//!
//! With a teacher it distils: the loss mixes the KL divergence to the
//! teacher's softened distribution with the usual cross-entropy.
//!
//! [`Trainer`] holds a run in progress: [`Trainer::new`] prepares data,
//! model and optimizer (fresh or from the checkpoint), [`Trainer::step`] is
//! one optimizer step, [`Trainer::evaluate`] one validation pass with early
//! stopping, and [`Trainer::run`] the loop between them. The files a run
//! writes are named by [`crate::run::RunDir`].

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{VarBuilder, VarMap};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::bpe::Bpe;
use crate::checkpoint::{self, TrainState};
use crate::config::{ModelConfig, RunConfig, TrainConfig};
use crate::corpus::{bpe_sequences, transpositions, windows, Corpus, Split};
use crate::metrics::{Metric, MetricsLog};
use crate::model::{build, ids_tensor, LanguageModel, Mode};
use crate::optimizer::{learning_rate, AdamW};
use crate::piece::PITCH_RANGE;
use crate::run::{RunDir, Start};

/// Training data: windows of `context + 1` tokens per split, and the BPE
/// table they use (none for data whose tokens are the model's vocabulary,
/// as the JSB raster's).
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The BPE table the windows use.
    pub bpe: Option<Bpe>,
    /// Training windows (augmented).
    pub train: Vec<Vec<u16>>,
    /// Validation windows (not augmented, not overlapping).
    pub valid: Vec<Vec<u16>>,
    /// Test windows (not augmented, not overlapping).
    pub test: Vec<Vec<u16>>,
}

impl Dataset {
    /// Split → augment (training only) → REMI → BPE → windows. Learns the BPE
    /// on the un-augmented training pieces unless one is given.
    pub fn prepare(
        corpus: &Corpus,
        model: &ModelConfig,
        train: &TrainConfig,
        bpe: Option<Bpe>,
    ) -> Result<Dataset> {
        let train_pieces = corpus.pieces(Split::Train);
        if train_pieces.iter().all(|p| p.notes.is_empty()) {
            bail!("the training split has no notes");
        }
        let bpe = match bpe {
            Some(b) => b,
            None => Bpe::train(
                &crate::corpus::base_sequences(&train_pieces),
                model.vocab_size,
            ),
        };
        let augmented: Vec<_> = train_pieces
            .iter()
            .flat_map(|p| transpositions(p, -train.transpose..=train.transpose, PITCH_RANGE))
            .collect();
        let len = model.context + 1;
        let stride = train.window_stride(model.context);
        let train_windows = windows(&bpe_sequences(&augmented, &bpe), len, stride);
        let held_out = |split| {
            windows(
                &bpe_sequences(&corpus.pieces(split), &bpe),
                len,
                model.context,
            )
        };
        let dataset = Dataset {
            train: train_windows,
            valid: held_out(Split::Valid),
            test: held_out(Split::Test),
            bpe: Some(bpe),
        };
        if dataset.train.is_empty() {
            bail!("the training split is shorter than one window of {len} tokens");
        }
        if dataset.valid.is_empty() {
            bail!("the validation split is shorter than one window of {len} tokens");
        }
        Ok(dataset)
    }
}

/// Mean cross-entropy (nats per token) of `model` on `windows`.
pub fn mean_loss(
    model: &dyn LanguageModel,
    windows: &[Vec<u16>],
    batch: usize,
    device: &Device,
) -> Result<f64> {
    let mut total = 0.0f64;
    let mut count = 0usize;
    for chunk in windows.chunks(batch.max(1)) {
        let (inputs, targets) = split_window(chunk);
        let loss = model.loss(
            &ids_tensor(&inputs, device)?,
            &ids_tensor(&targets, device)?,
            Mode::Eval,
        )?;
        total += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
        count += chunk.len();
    }
    Ok(total / count.max(1) as f64)
}

fn split_window(chunk: &[Vec<u16>]) -> (Vec<Vec<u16>>, Vec<Vec<u16>>) {
    chunk
        .iter()
        .map(|w| (w[..w.len() - 1].to_vec(), w[1..].to_vec()))
        .unzip()
}

/// Perplexity of a unigram model (token frequencies of `train`) on `held_out`:
/// the baseline a sequence model must beat.
pub fn unigram_perplexity(train: &[Vec<u16>], held_out: &[Vec<u16>], vocab: usize) -> f64 {
    let mut counts = vec![1.0f64; vocab]; // add-one smoothing
    for t in train.iter().flat_map(|w| &w[1..]) {
        counts[usize::from(*t)] += 1.0;
    }
    let total: f64 = counts.iter().sum();
    let (mut nll, mut n) = (0.0, 0usize);
    for t in held_out.iter().flat_map(|w| &w[1..]) {
        nll -= (counts[usize::from(*t)] / total).ln();
        n += 1;
    }
    (nll / n.max(1) as f64).exp()
}

/// A teacher for distillation.
pub struct Teacher {
    /// The teacher model (frozen).
    pub model: Box<dyn LanguageModel>,
    /// Softmax temperature of the soft targets.
    pub temperature: f64,
    /// Weight of the distillation term (1 − this weighs the hard labels).
    pub alpha: f64,
}

/// What a finished run reports.
#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    /// Steps completed.
    pub steps: usize,
    /// Whether early stopping ended it.
    pub stopped_early: bool,
    /// Best validation loss and its perplexity.
    pub best_val_loss: f64,
    /// `exp(best_val_loss)`.
    pub best_val_ppl: f64,
    /// Step of the best validation loss.
    pub best_step: usize,
    /// Unigram baseline perplexity on the validation windows.
    pub unigram_val_ppl: f64,
    /// Mean training throughput.
    pub tokens_per_s: f64,
    /// Training time in seconds (over all resumed parts).
    pub elapsed_s: f64,
    /// Parameters in the model.
    pub parameters: usize,
    /// Device the run used.
    pub device: String,
}

impl std::fmt::Display for TrainSummary {
    /// The line `train` and `distill` print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "trained {} steps{} on {}: best validation loss {:.4} (perplexity {:.3}) at step {}; unigram baseline perplexity {:.2}; {:.0} tokens/s; {:.0} s",
            self.steps,
            if self.stopped_early { " (early stop)" } else { "" },
            self.device,
            self.best_val_loss,
            self.best_val_ppl,
            self.best_step,
            self.unigram_val_ppl,
            self.tokens_per_s,
            self.elapsed_s
        )
    }
}

/// Deterministic batches: epoch `e` visits the windows in an order fixed by
/// `(seed, e)`, so any step's batch can be rebuilt after a resume.
struct Batches {
    seed: u64,
    epoch: Option<usize>,
    order: Vec<usize>,
}

impl Batches {
    fn new(seed: u64) -> Self {
        Batches {
            seed,
            epoch: None,
            order: Vec::new(),
        }
    }

    fn get<'w>(&mut self, windows: &'w [Vec<u16>], global: usize) -> &'w Vec<u16> {
        let n = windows.len();
        let epoch = global / n;
        if self.epoch != Some(epoch) {
            self.order = (0..n).collect();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                self.seed ^ (epoch as u64).wrapping_mul(0x2545_F491_4F6C_DD1D),
            );
            self.order.shuffle(&mut rng);
            self.epoch = Some(epoch);
        }
        &windows[self.order[global % n]]
    }

    fn batch(&mut self, windows: &[Vec<u16>], first: usize, size: usize) -> Vec<Vec<u16>> {
        (first..first + size)
            .map(|g| self.get(windows, g).clone())
            .collect()
    }
}

/// Set by Ctrl-C / SIGTERM: the loop checkpoints and stops.
fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        // If a handler is already installed (tests), carry on without one.
        let _ = ctrlc::set_handler(move || f.store(true, Ordering::SeqCst));
        flag
    })
    .clone()
}

fn distillation_loss(
    student: &dyn LanguageModel,
    teacher: &Teacher,
    inputs: &Tensor,
    targets: &Tensor,
    mode: Mode,
) -> Result<Tensor> {
    let logits = student.logits(inputs, mode)?;
    let (b, t, v) = logits.dims3()?;
    let temperature = teacher.temperature;
    let soft = (teacher.model.logits(inputs, Mode::Eval)?.detach() / temperature)?;
    let p_teacher = candle_nn::ops::softmax(&soft, D::Minus1)?;
    let log_p_teacher = candle_nn::ops::log_softmax(&soft, D::Minus1)?;
    let log_p_student = candle_nn::ops::log_softmax(&(&logits / temperature)?, D::Minus1)?;
    let kl = (p_teacher * (log_p_teacher - log_p_student)?)?
        .sum(D::Minus1)?
        .mean_all()?;
    let hard =
        candle_nn::loss::cross_entropy(&logits.reshape((b * t, v))?, &targets.reshape(b * t)?)?;
    let soft_term = (kl * (teacher.alpha * temperature * temperature))?;
    Ok((soft_term + (hard * (1.0 - teacher.alpha))?)?)
}

fn named_vars(varmap: &VarMap) -> Vec<(String, candle_core::Var)> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut vars: Vec<_> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Save the model's weights (with `extra` metadata) to `path`.
pub fn save_weights(varmap: &VarMap, path: &Path, extra: &[(&str, String)]) -> Result<()> {
    let tensors: Vec<(String, Tensor)> = named_vars(varmap)
        .into_iter()
        .map(|(k, v)| (k, v.as_tensor().clone()))
        .collect();
    let metadata = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    checkpoint::save(path, &tensors, metadata)
}

/// Load a model from a weights file written by [`save_weights`] or a checkpoint.
pub fn load_model(
    config: &ModelConfig,
    path: &Path,
    device: &Device,
) -> Result<(Box<dyn LanguageModel>, VarMap)> {
    let (tensors, _) = checkpoint::load(path, device)?;
    let varmap = VarMap::new();
    let model = build(config, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    for (name, var) in named_vars(&varmap) {
        let t = tensors.get(&name).with_context(|| {
            format!(
                "{} lacks tensor {name}: not a checkpoint of this model",
                path.display()
            )
        })?;
        if t.dims() != var.dims() {
            bail!(
                "{}: tensor {name} has shape {:?}, the model needs {:?}",
                path.display(),
                t.dims(),
                var.dims()
            );
        }
        var.set(t)?;
    }
    Ok((model, varmap))
}

/// Train (or continue training) a model on `corpus`: [`Trainer::new`], then
/// [`Trainer::run`].
pub fn train(
    corpus: &Corpus,
    start: Start,
    device: &Device,
    teacher: Option<&Teacher>,
    progress: bool,
) -> Result<TrainSummary> {
    Trainer::new(corpus, start, device, teacher, progress)?.run()
}

/// A training run in progress: its data, model, optimizer and loop state.
pub struct Trainer<'a> {
    dir: RunDir,
    config: RunConfig,
    data: Dataset,
    device: &'a Device,
    teacher: Option<&'a Teacher>,
    varmap: VarMap,
    model: Box<dyn LanguageModel>,
    optimizer: AdamW,
    state: TrainState,
    metrics: MetricsLog,
    batches: Batches,
    progress: indicatif::ProgressBar,
    last_train_loss: f64,
    last_val: Option<f64>,
}

impl<'a> Trainer<'a> {
    /// Prepare a run: data windows and vocabulary, then the model and the
    /// optimizer, seeded fresh (the run's files written) or restored from
    /// its checkpoint.
    pub fn new(
        corpus: &Corpus,
        start: Start,
        device: &'a Device,
        teacher: Option<&'a Teacher>,
        progress: bool,
    ) -> Result<Self> {
        let mut start = start;
        let data = Dataset::prepare(
            corpus,
            &start.config.model,
            &start.config.train,
            start.bpe.take(),
        )?;
        Self::with_data(data, start, device, teacher, progress)
    }

    /// Prepare a run on data windows made elsewhere (`start.bpe` is not
    /// used: the data's own table is the run's).
    pub fn with_data(
        data: Dataset,
        start: Start,
        device: &'a Device,
        teacher: Option<&'a Teacher>,
        progress: bool,
    ) -> Result<Self> {
        let Start {
            dir,
            mut config,
            resume,
            ..
        } = start;
        if let Some(bpe) = &data.bpe {
            fit_vocabulary(&mut config.model, bpe, teacher)?;
        }
        let metrics = MetricsLog::new(&dir.metrics());
        if !resume {
            dir.create(&config, data.bpe.as_ref())?;
            metrics.truncate_after(0)?;
        }
        let (varmap, model) = seeded_model(&config.model, config.train.seed, device)?;
        let mut optimizer = AdamW::new(named_vars(&varmap), config.train.weight_decay)?;
        let state = if resume {
            restore(&dir, &varmap, &mut optimizer, &metrics, device)?
        } else {
            TrainState::default()
        };
        Ok(Trainer {
            progress: progress_bar(progress, config.train.max_steps, state.step),
            batches: Batches::new(config.train.seed),
            last_train_loss: f64::NAN,
            last_val: state.best_val_loss,
            dir,
            config,
            data,
            device,
            teacher,
            varmap,
            model,
            optimizer,
            state,
            metrics,
        })
    }

    /// The loop: step, evaluate and checkpoint until `max_steps` or early
    /// stopping; Ctrl-C checkpoints and stops. Then the loss curve and the
    /// summary.
    pub fn run(mut self) -> Result<TrainSummary> {
        let interrupted = interrupt_flag();
        let tc = self.config.train.clone();
        while self.state.step < tc.max_steps && !self.state.stopped_early {
            if interrupted.load(Ordering::SeqCst) {
                self.save_checkpoint()?;
                self.progress.abandon();
                bail!(
                    "interrupted at step {}; continue with --resume --out {}",
                    self.state.step,
                    self.dir.path().display()
                );
            }
            self.step()?;
            let step = self.state.step;
            let evaluate = step.is_multiple_of(tc.eval_every) || step == tc.max_steps;
            if evaluate {
                self.evaluate()?;
            }
            if evaluate || step.is_multiple_of(tc.checkpoint_every) || step == tc.max_steps {
                self.save_checkpoint()?;
            }
        }
        self.finish()
    }

    /// One optimizer step over `accumulation` micro-batches, the gradient
    /// clipped; logged to the metrics and the progress bar. Returns the
    /// training loss.
    pub fn step(&mut self) -> Result<f64> {
        let started = Instant::now();
        let tc = &self.config.train;
        let lr = learning_rate(
            self.state.step,
            tc.warmup_steps,
            tc.max_steps,
            tc.learning_rate,
            tc.min_learning_rate,
        );
        let mut grads = Vec::new();
        let mut loss_sum = 0.0f64;
        for micro in 0..tc.accumulation {
            loss_sum += self.micro_batch(micro, &mut grads)?;
        }
        let norm = AdamW::grad_norm(&grads)?;
        if !norm.is_finite() || !loss_sum.is_finite() {
            bail!("training diverged at step {} (loss {loss_sum}, gradient norm {norm}); lower the learning rate", self.state.step);
        }
        let tc = &self.config.train;
        let scale = if tc.grad_clip > 0.0 && norm > tc.grad_clip {
            tc.grad_clip / norm
        } else {
            1.0
        };
        self.optimizer.step(&grads, lr, scale)?;
        let tokens_per_step = (tc.batch_size * tc.accumulation * self.config.model.context) as u64;
        self.state.step += 1;
        self.state.tokens_seen += tokens_per_step;
        let seconds = started.elapsed().as_secs_f64();
        self.state.elapsed_s += seconds;
        let tokens_per_s = tokens_per_step as f64 / seconds.max(1e-9);
        self.metrics.append(&Metric::Train {
            step: self.state.step,
            loss: loss_sum,
            lr,
            grad_norm: norm,
            tokens_per_s,
        })?;
        let val = self
            .last_val
            .map_or(String::new(), |v| format!(" val {v:.3}"));
        self.progress.set_message(format!(
            "loss {loss_sum:.3} ppl {:.2}{val} | {:.0} tok/s",
            loss_sum.exp(),
            tokens_per_s
        ));
        self.progress.set_position(self.state.step as u64);
        self.last_train_loss = loss_sum;
        Ok(loss_sum)
    }

    /// One micro-batch: its loss (divided by `accumulation`, the value
    /// returned) and its gradients added to `grads`.
    fn micro_batch(&mut self, micro: usize, grads: &mut Vec<Option<Tensor>>) -> Result<f64> {
        let tc = &self.config.train;
        let index = self.state.step * tc.accumulation + micro;
        let batch = self
            .batches
            .batch(&self.data.train, index * tc.batch_size, tc.batch_size);
        let (inputs, targets) = split_window(&batch);
        let (inputs, targets) = (
            ids_tensor(&inputs, self.device)?,
            ids_tensor(&targets, self.device)?,
        );
        let mode = Mode::Train {
            seed: tc.seed ^ (index as u64).wrapping_mul(0x9E37_79B9),
        };
        let loss = match self.teacher {
            Some(t) => distillation_loss(self.model.as_ref(), t, &inputs, &targets, mode)?,
            None => self.model.loss(&inputs, &targets, mode)?,
        };
        let loss = (loss / tc.accumulation as f64)?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        self.optimizer.accumulate(grads, &loss.backward()?)?;
        Ok(value)
    }

    /// Validation loss, logged; keeps the best weights and counts the
    /// evaluations without improvement towards early stopping.
    pub fn evaluate(&mut self) -> Result<f64> {
        let tc = &self.config.train;
        let val_loss = mean_loss(
            self.model.as_ref(),
            &self.data.valid,
            tc.batch_size,
            self.device,
        )?;
        let step = self.state.step;
        self.metrics.append(&Metric::Eval {
            step,
            val_loss,
            val_ppl: val_loss.exp(),
        })?;
        self.last_val = Some(val_loss);
        self.progress.println(format!(
            "step {step:>6}  train loss {:.4}  val loss {val_loss:.4}  val ppl {:.3}",
            self.last_train_loss,
            val_loss.exp()
        ));
        if self.state.best_val_loss.is_none_or(|b| val_loss < b) {
            self.state.best_val_loss = Some(val_loss);
            self.state.best_step = step;
            self.state.evals_since_best = 0;
            save_weights(
                &self.varmap,
                &self.dir.best(),
                &[
                    ("step", step.to_string()),
                    ("val_loss", val_loss.to_string()),
                ],
            )?;
        } else {
            self.state.evals_since_best += 1;
            if tc.patience > 0 && self.state.evals_since_best >= tc.patience {
                self.state.stopped_early = true;
                self.progress.println(format!(
                    "early stop: no improvement in {} evaluations",
                    tc.patience
                ));
            }
        }
        Ok(val_loss)
    }

    /// Weights, optimizer moments and loop state, to `checkpoint.safetensors`.
    fn save_checkpoint(&self) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = named_vars(&self.varmap)
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().clone()))
            .collect();
        tensors.extend(self.optimizer.state_tensors());
        let mut meta = std::collections::HashMap::new();
        meta.insert(
            "train_state".to_string(),
            serde_json::to_string(&self.state)?,
        );
        checkpoint::save(&self.dir.checkpoint(), &tensors, meta)
    }

    /// The loss curve and the summary.
    fn finish(self) -> Result<TrainSummary> {
        self.progress.finish_and_clear();
        let dir = self.dir.path();
        crate::plot::loss_curve(
            &self.metrics.read()?,
            &self.dir.loss_png(),
            &format!("{} — loss", dir.display()),
        )?;
        let (mc, state) = (&self.config.model, &self.state);
        let best = state.best_val_loss.unwrap_or(f64::NAN);
        Ok(TrainSummary {
            steps: state.step,
            stopped_early: state.stopped_early,
            best_val_loss: best,
            best_val_ppl: best.exp(),
            best_step: state.best_step,
            unigram_val_ppl: unigram_perplexity(&self.data.train, &self.data.valid, mc.vocab_size),
            tokens_per_s: state.tokens_seen as f64 / state.elapsed_s.max(1e-9),
            elapsed_s: state.elapsed_s,
            parameters: mc.parameters(),
            device: crate::device::name(self.device).to_string(),
        })
    }
}

/// Shrink the model's vocabulary to what the corpus supports, and check a
/// teacher's against it.
fn fit_vocabulary(model: &mut ModelConfig, bpe: &Bpe, teacher: Option<&Teacher>) -> Result<()> {
    if bpe.vocab_size() != model.vocab_size {
        eprintln!(
            "note: the corpus supports {} BPE tokens; the model's vocabulary shrinks from {} to match",
            bpe.vocab_size(),
            model.vocab_size
        );
        model.vocab_size = bpe.vocab_size();
    }
    if let Some(t) = teacher {
        if t.model.config().vocab_size != model.vocab_size {
            bail!(
                "teacher and student vocabularies differ ({} vs {})",
                t.model.config().vocab_size,
                model.vocab_size
            );
        }
    }
    Ok(())
}

/// A model with seeded initial weights (candle's own generator cannot be
/// seeded on the CPU): norms 1, biases 0, embeddings N(0, 0.02), other
/// matrices N(0, 1/fan-in).
fn seeded_model(
    config: &ModelConfig,
    seed: u64,
    device: &Device,
) -> Result<(VarMap, Box<dyn LanguageModel>)> {
    use rand_distr::Distribution;
    let varmap = VarMap::new();
    let model = build(config, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for (name, var) in named_vars(&varmap) {
        let values: Vec<f32> = if name.ends_with("norm.weight") {
            vec![1.0; var.elem_count()]
        } else if var.rank() == 1 {
            vec![0.0; var.elem_count()] // biases
        } else {
            let fan_in = var.dims().last().copied().unwrap_or(1) as f32;
            let std = if name.starts_with("tok_embeddings") {
                0.02
            } else {
                1.0 / fan_in.sqrt()
            };
            let normal = rand_distr::Normal::new(0.0f32, std)?;
            (0..var.elem_count())
                .map(|_| normal.sample(&mut rng))
                .collect()
        };
        var.set(&Tensor::from_vec(values, var.shape(), device)?)?;
    }
    Ok((varmap, model))
}

/// Weights, optimizer moments and loop state from the run's checkpoint;
/// the metrics past its step are dropped.
fn restore(
    dir: &RunDir,
    varmap: &VarMap,
    optimizer: &mut AdamW,
    metrics: &MetricsLog,
    device: &Device,
) -> Result<TrainState> {
    let path = dir.checkpoint();
    let (tensors, meta) = checkpoint::load(&path, device)?;
    let state = checkpoint::state_of(&meta, &path)?;
    for (name, var) in named_vars(varmap) {
        let t = tensors
            .get(&name)
            .with_context(|| format!("checkpoint lacks tensor {name}"))?;
        var.set(t)?;
    }
    optimizer.restore(&tensors, state.step)?;
    metrics.truncate_after(state.step)?;
    eprintln!("resuming {} at step {}", dir.path().display(), state.step);
    Ok(state)
}

fn progress_bar(show: bool, steps: usize, at: usize) -> indicatif::ProgressBar {
    let progress = if show {
        indicatif::ProgressBar::new(steps as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} {msg} [{elapsed_precise}<{eta_precise}]",
        )
        .expect("valid template"),
    );
    progress.set_position(at as u64);
    progress
}
