//! The token families: the Transformer and the LSTM with attention, over the
//! same REMI + BPE-512 tokens, trained by the trainer's own loop and sampled
//! through the engine's token step.

use std::path::PathBuf;

use anyhow::Result;
use kantor_engine::sampler::SamplerConfig;

use super::{trained, Context, Family, Nll, Samples, Trained};
use crate::config::{Architecture, DataConfig, ModelConfig, RunConfig, TrainConfig};
use crate::generate::{generate_candle, to_piece, GenerateOptions};
use crate::run::{Run, RunDir};
use crate::train::{train, TrainSummary};

/// A next-token model family.
pub struct Tokens {
    architecture: Architecture,
    name: &'static str,
    title: &'static str,
    run: Option<(TrainSummary, Run)>,
}

impl Tokens {
    /// The Transformer.
    pub fn transformer() -> Self {
        Tokens::new(Architecture::Transformer, "transformer", "Transformer")
    }

    /// The LSTM with attention.
    pub fn lstm_attention() -> Self {
        Tokens::new(
            Architecture::LstmAttention,
            "lstm-attention",
            "LSTM with attention",
        )
    }

    fn new(architecture: Architecture, name: &'static str, title: &'static str) -> Self {
        Tokens {
            architecture,
            name,
            title,
            run: None,
        }
    }

    /// The run's configuration at the study's budget.
    fn config(&self, cx: &Context<'_>) -> Result<RunConfig> {
        let p = cx.preset;
        let transformer = self.architecture == Architecture::Transformer;
        let model = ModelConfig {
            architecture: self.architecture,
            vocab_size: 512,
            dim: p.width,
            n_layers: p.layers.max(if transformer { 2 } else { 1 }),
            n_heads: 4,
            n_kv_heads: if transformer { 2 } else { 4 },
            hidden_dim: 2 * p.width,
            context: p.context,
            dropout: 0.1,
            ..ModelConfig::preset("tiny")?
        };
        let train = TrainConfig {
            batch_size: p.batch,
            max_steps: p.token_steps,
            warmup_steps: (p.token_steps / 20).max(1),
            eval_every: p.token_steps.div_ceil(4).max(1),
            checkpoint_every: p.token_steps.max(1),
            patience: 0,
            ..TrainConfig::default()
        };
        Ok(RunConfig {
            model,
            train,
            data: DataConfig {
                corpus: PathBuf::from(cx.jsb),
                split_seed: 0,
            },
        })
    }
}

impl Family for Tokens {
    fn name(&self) -> &'static str {
        self.name
    }

    fn describe(&self) -> &'static str {
        self.title
    }

    fn train(&mut self, cx: &Context<'_>) -> Result<Trained> {
        let path = cx.out.join(self.name);
        let _ = std::fs::remove_dir_all(&path);
        let dir = RunDir::new(path);
        let start = dir.clone().start(false, self.config(cx)?, None)?;
        let summary = train(cx.corpus, start, cx.device, None, false)?;
        let trained = Trained {
            parameters: summary.parameters,
            seconds: summary.elapsed_s,
            throughput: summary.tokens_per_s,
            throughput_unit: "tokens/s",
        };
        self.run = Some((summary, dir.open()?));
        Ok(trained)
    }

    fn nll(&mut self, _: &Context<'_>) -> Result<Nll> {
        let (summary, _) = trained(&mut self.run)?;
        Ok(Nll {
            value: Some(summary.best_val_loss),
            unit: "nats per BPE-512 token",
            perplexity: Some(summary.best_val_ppl),
        })
    }

    fn sample(&mut self, cx: &Context<'_>) -> Result<Samples> {
        let (_, run) = trained(&mut self.run)?;
        let lm = run.model("best", cx.device)?;
        let mut samples = Samples {
            streams: Some(Vec::new()),
            ..Samples::default()
        };
        for i in 0..cx.preset.samples {
            let options = GenerateOptions {
                sampler: SamplerConfig::default(),
                seed: i as u64,
                bars: 8,
                max_tokens: 1024,
                ..GenerateOptions::default()
            };
            let tokens = generate_candle(lm.as_ref(), &run.bpe, &[], &options, cx.device)?;
            let decoded = to_piece(&tokens, &run.bpe)?;
            samples.ill_formed += decoded.errors.len();
            if let Some(streams) = &mut samples.streams {
                streams.push(run.bpe.decode(&tokens)?);
            }
            samples.pieces.push(decoded.piece);
        }
        Ok(samples)
    }

    fn notes(&self) -> serde_json::Value {
        match &self.run {
            Some((summary, _)) => {
                serde_json::json!({ "unigram_perplexity": summary.unigram_val_ppl })
            }
            None => serde_json::Value::Null,
        }
    }
}
