//! The recurrent baseline: embedding → stacked LSTM → causal self-attention
//! over the LSTM's outputs (with a residual) → next-token head.

use candle_core::{Result, Tensor, D};
use candle_nn::rnn::{LSTMConfig, RNN};
use candle_nn::{Module, VarBuilder};

use crate::config::ModelConfig;
use crate::model::{Dropout, LanguageModel, Mode};

/// LSTM with attention.
pub struct LstmAttention {
    embedding: candle_nn::Embedding,
    layers: Vec<candle_nn::LSTM>,
    wq: candle_nn::Linear,
    wk: candle_nn::Linear,
    wv: candle_nn::Linear,
    wo: candle_nn::Linear,
    head: candle_nn::Linear,
    dropout: Dropout,
    config: ModelConfig,
}

impl LstmAttention {
    /// Build (or load) the variables under `vb`.
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let d = config.dim;
        let layers = (0..config.n_layers)
            .map(|i| {
                let c = LSTMConfig {
                    layer_idx: i,
                    ..LSTMConfig::default()
                };
                candle_nn::lstm(d, d, c, vb.pp("lstm"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LstmAttention {
            embedding: candle_nn::embedding(config.vocab_size, d, vb.pp("embedding"))?,
            layers,
            wq: candle_nn::linear_no_bias(d, d, vb.pp("attention.wq"))?,
            wk: candle_nn::linear_no_bias(d, d, vb.pp("attention.wk"))?,
            wv: candle_nn::linear_no_bias(d, d, vb.pp("attention.wv"))?,
            wo: candle_nn::linear_no_bias(d, d, vb.pp("attention.wo"))?,
            head: candle_nn::linear(d, config.vocab_size, vb.pp("head"))?,
            dropout: Dropout { p: config.dropout },
            config: config.clone(),
        })
    }
}

impl LanguageModel for LstmAttention {
    fn logits(&self, ids: &Tensor, mode: Mode) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let mut x = self
            .dropout
            .forward(&self.embedding.forward(ids)?, mode, 0)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let states = layer.seq(&x)?;
            x = self
                .dropout
                .forward(&layer.states_to_tensor(&states)?, mode, 1 + i as u64)?;
        }
        // Multi-head causal self-attention over the LSTM outputs.
        let (heads, hd) = (self.config.n_heads, self.config.dim / self.config.n_heads);
        let split = |w: &candle_nn::Linear| -> Result<Tensor> {
            w.forward(&x)?
                .reshape((b, t, heads, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(&self.wq)?, split(&self.wk)?, split(&self.wv)?);
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), ids.device())?;
        let scores = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?.broadcast_add(&mask)?;
        let attended = candle_nn::ops::softmax(&scores, D::Minus1)?
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, t, self.config.dim))?;
        let x = (x + self.wo.forward(&attended)?)?;
        self.head.forward(&x)
    }

    fn config(&self) -> &ModelConfig {
        &self.config
    }
}
