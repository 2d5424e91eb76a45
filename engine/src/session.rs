//! A running model: the run-state buffers, the KV cache and the forward pass.
//!
//! All memory comes from one caller-provided byte slice (a `static` array on
//! a microcontroller, a `Vec` on the desktop); [`Session::memory_required`]
//! says how large it must be. Nothing is allocated.
//!
//! The forward pass reads top to bottom like llama2.c's `forward`: embed the
//! token, then per layer RMSNorm → Q, K, V → RoPE → cache → attention → output
//! projection → residual, RMSNorm → SwiGLU → residual; final RMSNorm and the
//! tied output layer give the logits.

use crate::config::WeightFormat;
use crate::kernels::{
    dequantize_row, matvec, quantize_packed, rmsnorm, rope_add_angles, rope_angles,
    rope_angles_far, rope_frequencies, rope_rotate, swiglu, Isa, QuantizedVector,
};
use crate::kv_cache::{AttentionScratch, KvCache, KvPrecision, KvShape, KvStore, SlideRotation};
use crate::model::Model;
use crate::sampler::Sampler;

/// How to run a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Storage of the KV cache.
    pub kv: KvPrecision,
    /// Leading positions the cache never drops (attention sinks).
    pub sinks: usize,
    /// The kernel family (every family gives the same results; see [`Isa`]).
    /// A family this processor lacks runs as [`Isa::Portable`].
    pub isa: Isa,
}

impl SessionOptions {
    /// The natural options for a model: a cache as precise as its weights, 4 sinks.
    pub fn for_model(model: &Model<'_>) -> Self {
        SessionOptions {
            kv: match model.config.weights {
                WeightFormat::F32 => KvPrecision::F32,
                WeightFormat::F16 => KvPrecision::F16,
                WeightFormat::Int8 { .. } => KvPrecision::Int8,
            },
            sinks: 4,
            isa: Isa::best(),
        }
    }
}

/// Why a session could not be made or run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// The memory slice is too small.
    MemoryTooSmall {
        /// Bytes needed (at most).
        needed: usize,
        /// Bytes given.
        given: usize,
    },
    /// `sinks` must leave at least half the context free for sliding.
    TooManySinks,
    /// A token id outside the model's vocabulary.
    TokenOutOfRange(u16),
}

/// Carves typed slices off a byte slice, or (with no bytes) counts how many
/// bytes the same carving needs.
struct Arena<'b> {
    rest: Option<&'b mut [u8]>,
    needed: usize,
}

impl<'b> Arena<'b> {
    fn take<T: bytemuck::Pod>(&mut self, n: usize) -> Option<&'b mut [T]> {
        let size = core::mem::size_of::<T>();
        // Word alignment for every buffer, whatever its type: the DSP kernels
        // load int8 rows a word at a time.
        let align = core::mem::align_of::<T>().max(8);
        // Sizes that overflow count as "more than any memory".
        let bytes = n.saturating_mul(size);
        self.needed = self.needed.saturating_add(bytes).saturating_add(align - 1);
        let rest = self.rest.take()?;
        let pad = rest.as_ptr().align_offset(align);
        if pad.checked_add(bytes)? > rest.len() {
            return None;
        }
        let (_, aligned) = rest.split_at_mut(pad);
        let (taken, rest) = aligned.split_at_mut(bytes);
        self.rest = Some(rest);
        bytemuck::try_cast_slice_mut(taken).ok()
    }
}

/// The buffers of one forward pass.
#[derive(Debug)]
struct RunState<'b> {
    /// Residual stream.
    x: &'b mut [f32],
    /// Normalised input of a sub-layer / its output.
    xb: &'b mut [f32],
    /// Attention output before the output projection.
    xb2: &'b mut [f32],
    /// SwiGLU gate and up activations.
    hb: &'b mut [f32],
    hb2: &'b mut [f32],
    /// Query, key and value of the current position.
    q: &'b mut [f32],
    k: &'b mut [f32],
    v: &'b mut [f32],
    /// Output scores over the vocabulary.
    logits: &'b mut [f32],
    /// int8 form of the current matmul input, packed for the DSP path, and its group scales.
    xq: &'b mut [i8],
    xq_packed: &'b mut [u32],
    xq_scales: &'b mut [f32],
    /// RoPE inverse frequencies and this position's cosines and sines.
    frequencies: &'b mut [f32],
    cos: &'b mut [f32],
    sin: &'b mut [f32],
    /// Cosines and sines of the rotation by the positions the cache slid.
    slide_cos: &'b mut [f32],
    slide_sin: &'b mut [f32],
    /// Attention scratch.
    scores: &'b mut [f32],
    query8: &'b mut [i8],
    query_packed: &'b mut [u32],
    head: &'b mut [f32],
    /// Attention weights as 16-bit integers (int8 caches), and packed for the DSP path.
    attention_weights: &'b mut [i16],
    attention_weights_packed: &'b mut [u32],
    /// Sampler scratch: one index per token.
    order: &'b mut [u16],
}

/// A model with its cache and buffers: feed tokens, get logits.
#[derive(Debug)]
pub struct Session<'m, 'b> {
    model: &'m Model<'m>,
    state: RunState<'b>,
    cache: KvCache<'b>,
    evictions: usize,
    isa: Isa,
}

fn carve<'b>(
    arena: &mut Arena<'b>,
    model: &Model<'_>,
    options: SessionOptions,
) -> Option<(RunState<'b>, KvCache<'b>)> {
    let c = &model.config;
    let widest = c.dim.max(c.hidden_dim);
    let groups = match c.weights {
        format @ WeightFormat::Int8 { .. } => (c.dim / format.group_for(c.dim).max(1))
            .max(c.hidden_dim / format.group_for(c.hidden_dim).max(1)),
        _ => 0,
    };
    let shape = KvShape {
        layers: c.n_layers,
        capacity: c.context,
        kv_heads: c.n_kv_heads,
        head_dim: c.head_dim(),
        sinks: options.sinks,
    };
    let (x, xb, xb2) = (arena.take(c.dim), arena.take(c.dim), arena.take(c.dim));
    let (hb, hb2) = (arena.take(c.hidden_dim), arena.take(c.hidden_dim));
    let (q, k, v) = (
        arena.take(c.dim),
        arena.take(c.kv_dim()),
        arena.take(c.kv_dim()),
    );
    let logits = arena.take(c.vocab_size);
    let (xq, xq_packed, xq_scales) = (
        arena.take(widest),
        arena.take(widest / 2),
        arena.take(groups),
    );
    let half = c.head_dim() / 2;
    let (frequencies, cos, sin) = (arena.take(half), arena.take(half), arena.take(half));
    let (slide_cos, slide_sin) = (arena.take(half), arena.take(half));
    let [n_scores, n_query, n_packed, n_head, n_weights, n_weights_packed] =
        AttentionScratch::sizes(&shape);
    let (scores, query8, query_packed, head) = (
        arena.take(n_scores),
        arena.take(n_query),
        arena.take(n_packed),
        arena.take(n_head),
    );
    let (attention_weights, attention_weights_packed) =
        (arena.take(n_weights), arena.take(n_weights_packed));
    let order = arena.take(c.vocab_size);
    let store = match options.kv {
        KvPrecision::F32 => {
            let (keys, values) = (arena.take(shape.values()), arena.take(shape.values()));
            Some(KvStore::F32 {
                keys: keys?,
                values: values?,
            })
        }
        KvPrecision::F16 => {
            let (keys, values) = (arena.take(shape.values()), arena.take(shape.values()));
            Some(KvStore::F16 {
                keys: keys?,
                values: values?,
            })
        }
        KvPrecision::Int8 => {
            let (keys, values) = (
                arena.take(shape.values()),
                arena.take(shape.transposed_values()),
            );
            let (key_scales, value_scales) =
                (arena.take(shape.scales()), arena.take(shape.scales()));
            Some(KvStore::Int8 {
                keys: keys?,
                values: values?,
                key_scales: key_scales?,
                value_scales: value_scales?,
            })
        }
    };
    let state = RunState {
        x: x?,
        xb: xb?,
        xb2: xb2?,
        hb: hb?,
        hb2: hb2?,
        q: q?,
        k: k?,
        v: v?,
        logits: logits?,
        xq: xq?,
        xq_packed: xq_packed?,
        xq_scales: xq_scales?,
        frequencies: frequencies?,
        cos: cos?,
        sin: sin?,
        slide_cos: slide_cos?,
        slide_sin: slide_sin?,
        scores: scores?,
        query8: query8?,
        query_packed: query_packed?,
        head: head?,
        attention_weights: attention_weights?,
        attention_weights_packed: attention_weights_packed?,
        order: order?,
    };
    Some((state, KvCache::new(store?, shape)))
}

/// The int8 buffers of a matmul input.
struct QuantBuffers<'s> {
    values: &'s mut [i8],
    packed: &'s mut [u32],
    scales: &'s mut [f32],
}

/// Quantize `x` for an int8 matmul (no-op for float weights).
fn prepare<'s>(
    isa: Isa,
    weights: WeightFormat,
    x: &[f32],
    buffers: &'s mut QuantBuffers<'_>,
) -> Option<QuantizedVector<'s>> {
    let group_size = weights.group_for(x.len());
    if group_size == 0 {
        return None;
    }
    let values = buffers.values.get_mut(..x.len())?;
    let packed = buffers.packed.get_mut(..x.len() / 2)?;
    let scales = buffers.scales.get_mut(..x.len() / group_size.max(1))?;
    quantize_packed(isa, x, group_size, values, packed, scales);
    Some(QuantizedVector {
        values,
        packed,
        scales,
        group_size,
    })
}

impl<'m, 'b> Session<'m, 'b> {
    /// Bytes of memory a session of `model` with `options` needs (an upper bound).
    pub fn memory_required(model: &Model<'_>, options: SessionOptions) -> usize {
        let mut counter = Arena {
            rest: None,
            needed: 0,
        };
        let _ = carve(&mut counter, model, options);
        counter.needed
    }

    /// A session whose buffers and cache live in `memory`.
    pub fn new(
        model: &'m Model<'m>,
        options: SessionOptions,
        memory: &'b mut [u8],
    ) -> Result<Self, SessionError> {
        if options.sinks.saturating_mul(2) > model.config.context {
            return Err(SessionError::TooManySinks);
        }
        let needed = Self::memory_required(model, options);
        let given = memory.len();
        let mut arena = Arena {
            rest: Some(memory),
            needed: 0,
        };
        let (state, cache) = carve(&mut arena, model, options)
            .ok_or(SessionError::MemoryTooSmall { needed, given })?;
        rope_frequencies(
            model.config.rope_theta,
            model.config.head_dim(),
            state.frequencies,
        );
        Ok(Session {
            model,
            state,
            cache,
            evictions: 0,
            isa: if options.isa.is_available() {
                options.isa
            } else {
                Isa::Portable
            },
        })
    }

    /// The model.
    pub fn model(&self) -> &'m Model<'m> {
        self.model
    }

    /// Positions in the cache (the next token's RoPE position).
    pub fn position(&self) -> usize {
        self.cache.len()
    }

    /// How often the cache slid.
    pub fn evictions(&self) -> usize {
        self.evictions
    }

    /// Forget all context.
    pub fn reset(&mut self) {
        self.cache.clear();
        self.evictions = 0;
    }

    /// The logits of the last forward pass.
    pub fn logits(&self) -> &[f32] {
        self.state.logits
    }

    /// The logits, writable (for masking before sampling).
    pub fn logits_mut(&mut self) -> &mut [f32] {
        self.state.logits
    }

    /// Sample the next token from the current logits (which it overwrites).
    pub fn sample(&mut self, sampler: &mut Sampler) -> u16 {
        sampler.sample(self.state.logits, self.state.order)
    }

    /// Feed one token; returns the logits for the next.
    pub fn forward(&mut self, token: u16) -> Result<&mut [f32], SessionError> {
        self.forward_masked(token, None)
    }

    /// [`Session::forward`], computing only the logits of the tokens in
    /// `allowed` (a bit set over the vocabulary, as
    /// [`crate::grammar::TokenMask::allowed`] gives) and setting the others
    /// to −∞: the output layer is the largest matmul of a small model, and
    /// after most tokens the grammar allows only a few kinds. The allowed
    /// logits are exactly those `forward` gives.
    pub fn forward_masked(
        &mut self,
        token: u16,
        allowed: Option<&[u32]>,
    ) -> Result<&mut [f32], SessionError> {
        let c = self.model.config;
        let w = &self.model.weights;
        if usize::from(token) >= c.vocab_size {
            return Err(SessionError::TokenOutOfRange(token));
        }
        let RunState {
            x,
            xb,
            xb2,
            hb,
            hb2,
            q,
            k,
            v,
            logits,
            xq,
            xq_packed,
            xq_scales,
            frequencies,
            cos,
            sin,
            slide_cos,
            slide_sin,
            scores,
            query8,
            query_packed,
            head,
            attention_weights,
            attention_weights_packed,
            order: _,
        } = &mut self.state;
        let mut scratch = AttentionScratch {
            scores,
            query: query8,
            query_packed,
            head,
            weights: attention_weights,
            weights_packed: attention_weights_packed,
        };
        let mut q8 = QuantBuffers {
            values: xq,
            packed: xq_packed,
            scales: xq_scales,
        };
        if self.cache.is_full() {
            self.cache.evict();
            self.evictions = self.evictions.saturating_add(1);
            rope_angles_far(self.cache.slid(), frequencies, slide_cos, slide_sin);
        }
        let hd = c.head_dim();
        let format = c.weights;
        let isa = self.isa;

        dequantize_row(x, &w.embedding, usize::from(token));
        // RoPE position: the place in the window plus the positions slid.
        rope_angles(self.cache.len() as f32, frequencies, cos, sin);
        let slide = (self.cache.slid() > 0).then(|| {
            rope_add_angles(cos, sin, slide_cos, slide_sin);
            SlideRotation {
                cos: slide_cos,
                sin: slide_sin,
            }
        });

        for (l, layer) in w.layers.iter().enumerate() {
            // Attention block.
            rmsnorm(xb, x, layer.attention_norm, c.norm_eps);
            let xin = prepare(isa, format, xb, &mut q8);
            matvec(isa, q, &layer.wq, xb, xin.as_ref());
            matvec(isa, k, &layer.wk, xb, xin.as_ref());
            matvec(isa, v, &layer.wv, xb, xin.as_ref());
            for h in q.chunks_exact_mut(hd).chain(k.chunks_exact_mut(hd)) {
                rope_rotate(h, cos, sin);
            }
            self.cache.write(isa, l, k, v, &mut scratch);
            self.cache.attend(isa, l, q, xb2, &mut scratch, slide);
            let xin = prepare(isa, format, xb2, &mut q8);
            matvec(isa, xb, &layer.wo, xb2, xin.as_ref());
            for (a, b) in x.iter_mut().zip(xb.iter()) {
                *a += b;
            }

            // Feed-forward block.
            rmsnorm(xb, x, layer.ffn_norm, c.norm_eps);
            let xin = prepare(isa, format, xb, &mut q8);
            matvec(isa, hb, &layer.w1, xb, xin.as_ref());
            matvec(isa, hb2, &layer.w3, xb, xin.as_ref());
            swiglu(hb, hb2);
            let xin = prepare(isa, format, hb, &mut q8);
            matvec(isa, xb, &layer.w2, hb, xin.as_ref());
            for (a, b) in x.iter_mut().zip(xb.iter()) {
                *a += b;
            }
        }
        self.cache.advance();

        rmsnorm(xb, x, w.norm, c.norm_eps);
        let xin = prepare(isa, format, xb, &mut q8);
        let Some(set) = allowed else {
            matvec(isa, logits, &w.embedding, xb, xin.as_ref());
            return Ok(logits);
        };
        // Runs of consecutive allowed ids, each one matvec.
        let allowed_at = |id: usize| set.get(id / 32).is_some_and(|w| w & (1 << (id % 32)) != 0);
        let mut id = 0;
        while id < logits.len() {
            let start = id;
            let on = allowed_at(id);
            while id < logits.len() && allowed_at(id) == on {
                id += 1;
            }
            let run = &mut logits[start..id];
            match w.embedding.rows(start, id).filter(|_| on) {
                Some(rows) => matvec(isa, run, &rows, xb, xin.as_ref()),
                None => run.fill(f32::NEG_INFINITY),
            }
        }
        Ok(logits)
    }
}
