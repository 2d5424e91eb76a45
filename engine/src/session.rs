//! A running model: the run-state buffers, the KV cache and the forward pass.
//!
//! All memory comes from one caller-provided byte slice (a `static` array on
//! a microcontroller, a `Vec` on the desktop), or from several
//! ([`Session::new_in`]: a board whose RAM is in pieces, such as the
//! STM32F4's SRAM and its 64 KiB CCM); [`Session::memory_required`] says how
//! much is needed. Nothing is allocated.
//!
//! The forward pass reads top to bottom like llama2.c's `forward`: embed the
//! token, then per layer RMSNorm → Q, K, V → RoPE → cache → attention → output
//! projection → residual, RMSNorm → SwiGLU → residual; final RMSNorm and the
//! tied output layer give the logits.

use crate::config::{ModelConfig, WeightFormat};
use crate::kernels::{
    dequantize_row, matvec, quantize_packed, rmsnorm, rope_add_angles, rope_angles,
    rope_angles_far, rope_frequencies, rope_rotate, swiglu, Isa, QuantizedVector,
};
use crate::kv_cache::{
    AttentionScratch, FloatKv, Int8Kv, KvCache, KvPrecision, KvShape, KvStore, SlideRotation,
};
use crate::model::Model;
use crate::sampler::Sampler;
use crate::weights::{Layer, Weights};

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
    /// The memory is too small (or, given in regions, some buffer fits in
    /// none of them).
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

/// Carves typed slices off byte slices (each from the first region with room
/// for it), or (with no regions) counts how many bytes the same carving needs.
struct Arena<'r, 'b> {
    regions: &'r mut [&'b mut [u8]],
    needed: usize,
}

impl<'b> Arena<'_, 'b> {
    fn take<T: bytemuck::Pod>(&mut self, n: usize) -> Option<&'b mut [T]> {
        let size = core::mem::size_of::<T>();
        // Word alignment for every buffer, whatever its type: the DSP kernels
        // load int8 rows a word at a time.
        let align = core::mem::align_of::<T>().max(8);
        // Sizes that overflow count as "more than any memory".
        let bytes = n.saturating_mul(size);
        self.needed = self.needed.saturating_add(bytes).saturating_add(align - 1);
        let region = self.regions.iter_mut().find(|r| {
            let pad = r.as_ptr().align_offset(align);
            pad.checked_add(bytes).is_some_and(|end| end <= r.len())
        })?;
        let whole = core::mem::take(region);
        let pad = whole.as_ptr().align_offset(align);
        let (taken, rest) = whole.split_at_mut(pad).1.split_at_mut(bytes);
        *region = rest;
        bytemuck::try_cast_slice_mut(taken).ok()
    }
}

/// The activations of one forward pass.
#[derive(Debug)]
struct Activations<'b> {
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
    /// The int8 form of the current matmul input.
    quant: QuantBuffers<'b>,
}

/// The int8 buffers of a matmul input: values, the same packed for the DSP
/// path, and the group scales.
#[derive(Debug)]
struct QuantBuffers<'s> {
    values: &'s mut [i8],
    packed: &'s mut [u32],
    scales: &'s mut [f32],
}

/// RoPE: the inverse frequencies, this position's cosines and sines, and
/// those of the rotation by the positions the cache slid.
#[derive(Debug)]
struct Rope<'b> {
    frequencies: &'b mut [f32],
    cos: &'b mut [f32],
    sin: &'b mut [f32],
    slide_cos: &'b mut [f32],
    slide_sin: &'b mut [f32],
    slid: bool,
}

/// The buffers of one forward pass.
#[derive(Debug)]
struct RunState<'b> {
    act: Activations<'b>,
    rope: Rope<'b>,
    attention: AttentionScratch<'b>,
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

/// What every step of a forward pass needs to know.
#[derive(Clone, Copy)]
struct Step {
    isa: Isa,
    format: WeightFormat,
    norm_eps: f32,
    head_dim: usize,
}

// Every `carve_*` takes all of its buffers before it gives up on a missing
// one, so that counting (an arena without bytes) counts them all.

fn carve_activations<'b>(arena: &mut Arena<'_, 'b>, c: &ModelConfig) -> Option<Activations<'b>> {
    let widest = c.dim.max(c.hidden_dim);
    let groups = match c.weights {
        format @ WeightFormat::Int8 { .. } => (c.dim / format.group_for(c.dim).max(1))
            .max(c.hidden_dim / format.group_for(c.hidden_dim).max(1)),
        _ => 0,
    };
    let (x, xb, xb2) = (arena.take(c.dim), arena.take(c.dim), arena.take(c.dim));
    let (hb, hb2) = (arena.take(c.hidden_dim), arena.take(c.hidden_dim));
    let (q, k, v) = (
        arena.take(c.dim),
        arena.take(c.kv_dim()),
        arena.take(c.kv_dim()),
    );
    let logits = arena.take(c.vocab_size);
    let (values, packed, scales) = (
        arena.take(widest),
        arena.take(widest / 2),
        arena.take(groups),
    );
    Some(Activations {
        x: x?,
        xb: xb?,
        xb2: xb2?,
        hb: hb?,
        hb2: hb2?,
        q: q?,
        k: k?,
        v: v?,
        logits: logits?,
        quant: QuantBuffers {
            values: values?,
            packed: packed?,
            scales: scales?,
        },
    })
}

fn carve_rope<'b>(arena: &mut Arena<'_, 'b>, c: &ModelConfig) -> Option<Rope<'b>> {
    let half = c.head_dim() / 2;
    let (frequencies, cos, sin) = (arena.take(half), arena.take(half), arena.take(half));
    let (slide_cos, slide_sin) = (arena.take(half), arena.take(half));
    Some(Rope {
        frequencies: frequencies?,
        cos: cos?,
        sin: sin?,
        slide_cos: slide_cos?,
        slide_sin: slide_sin?,
        slid: false,
    })
}

fn carve_attention<'b>(arena: &mut Arena<'_, 'b>, shape: &KvShape) -> Option<AttentionScratch<'b>> {
    let [n_scores, n_query, n_packed, n_head, n_weights, n_weights_packed] =
        AttentionScratch::sizes(shape);
    let (scores, query, query_packed, head) = (
        arena.take(n_scores),
        arena.take(n_query),
        arena.take(n_packed),
        arena.take(n_head),
    );
    let (weights, weights_packed) = (arena.take(n_weights), arena.take(n_weights_packed));
    Some(AttentionScratch {
        scores: scores?,
        query: query?,
        query_packed: query_packed?,
        head: head?,
        weights: weights?,
        weights_packed: weights_packed?,
    })
}

fn carve_store<'b>(
    arena: &mut Arena<'_, 'b>,
    kv: KvPrecision,
    shape: &KvShape,
) -> Option<KvStore<'b>> {
    match kv {
        KvPrecision::F32 => {
            let (keys, values) = (arena.take(shape.values()), arena.take(shape.values()));
            Some(KvStore::F32(FloatKv {
                keys: keys?,
                values: values?,
            }))
        }
        KvPrecision::F16 => {
            let (keys, values) = (arena.take(shape.values()), arena.take(shape.values()));
            Some(KvStore::F16(FloatKv {
                keys: keys?,
                values: values?,
            }))
        }
        KvPrecision::Int8 => {
            let (keys, values) = (
                arena.take(shape.values()),
                arena.take(shape.transposed_values()),
            );
            let (key_scales, value_scales) =
                (arena.take(shape.scales()), arena.take(shape.scales()));
            Some(KvStore::Int8(Int8Kv {
                keys: keys?,
                values: values?,
                key_scales: key_scales?,
                value_scales: value_scales?,
            }))
        }
    }
}

fn carve<'b>(
    arena: &mut Arena<'_, 'b>,
    model: &Model<'_>,
    options: SessionOptions,
) -> Option<(RunState<'b>, KvCache<'b>)> {
    let c = &model.config;
    let shape = KvShape {
        layers: c.n_layers,
        capacity: c.context,
        kv_heads: c.n_kv_heads,
        head_dim: c.head_dim(),
        sinks: options.sinks,
    };
    let act = carve_activations(arena, c);
    let rope = carve_rope(arena, c);
    let attention = carve_attention(arena, &shape);
    let order = arena.take(c.vocab_size);
    let store = carve_store(arena, options.kv, &shape);
    let state = RunState {
        act: act?,
        rope: rope?,
        attention: attention?,
        order: order?,
    };
    Some((state, KvCache::new(store?, shape)))
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
            regions: &mut [],
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
        Self::new_in(model, options, &mut [memory])
    }

    /// A session whose buffers are carved from several `regions`, each
    /// buffer from the first region with room for it, in this order: the
    /// run state (activations, RoPE tables, attention scratch, about
    /// 10–20 KiB for a student), then the KV cache's keys, its values
    /// (each `layers × context × kv_dim` bytes for an int8 cache) and their
    /// scales. So a board gives its main RAM first and a second memory
    /// (the STM32F4's CCM) after it for whatever does not fit. The results
    /// do not depend on where the buffers lie. Fails with
    /// [`SessionError::MemoryTooSmall`] when a buffer fits in no region,
    /// even if the regions together are larger than
    /// [`memory_required`](Self::memory_required).
    pub fn new_in(
        model: &'m Model<'m>,
        options: SessionOptions,
        regions: &mut [&'b mut [u8]],
    ) -> Result<Self, SessionError> {
        if options.sinks.saturating_mul(2) > model.config.context {
            return Err(SessionError::TooManySinks);
        }
        let needed = Self::memory_required(model, options);
        let given = regions.iter().map(|r| r.len()).sum();
        let mut arena = Arena { regions, needed: 0 };
        let (state, cache) = carve(&mut arena, model, options)
            .ok_or(SessionError::MemoryTooSmall { needed, given })?;
        rope_frequencies(
            model.config.rope_theta,
            model.config.head_dim(),
            state.rope.frequencies,
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

    /// How often the cache slid since the session was made (a
    /// [`Session::reset`] does not undo a count).
    pub fn evictions(&self) -> usize {
        self.evictions
    }

    /// Forget all context: the next token goes to position 0.
    pub fn reset(&mut self) {
        self.cache.clear();
        self.state.rope.slid = false;
    }

    /// The logits of the last forward pass.
    pub fn logits(&self) -> &[f32] {
        self.state.act.logits
    }

    /// The logits, writable (for masking before sampling).
    pub fn logits_mut(&mut self) -> &mut [f32] {
        self.state.act.logits
    }

    /// Sample the next token from the current logits (which it overwrites).
    pub fn sample(&mut self, sampler: &mut Sampler) -> u16 {
        sampler.sample(self.state.act.logits, self.state.order)
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
        if self.cache.is_full() {
            self.cache.evict();
            self.evictions = self.evictions.saturating_add(1);
            self.state.rope.slide_to(self.cache.slid());
        }
        let step = Step {
            isa: self.isa,
            format: c.weights,
            norm_eps: c.norm_eps,
            head_dim: c.head_dim(),
        };
        let RunState {
            act,
            rope,
            attention,
            ..
        } = &mut self.state;
        dequantize_row(act.x, &w.embedding, usize::from(token));
        rope.at(self.cache.len());
        for (l, layer) in w.layers.iter().enumerate() {
            act.attention(step, layer, l, &mut self.cache, attention, rope);
            act.feed_forward(step, layer);
        }
        self.cache.advance();
        Ok(act.output(step, w, allowed))
    }
}

impl Rope<'_> {
    /// The rotation by `slid` positions (after a slide of the cache).
    fn slide_to(&mut self, slid: u64) {
        rope_angles_far(slid, self.frequencies, self.slide_cos, self.slide_sin);
        self.slid = slid > 0;
    }

    /// The angles of window place `place`: the place plus the positions slid.
    fn at(&mut self, place: usize) {
        rope_angles(place as f32, self.frequencies, self.cos, self.sin);
        if self.slid {
            rope_add_angles(self.cos, self.sin, self.slide_cos, self.slide_sin);
        }
    }

    /// What the sinks' queries are rotated back by, once the cache slid.
    fn slide(&self) -> Option<SlideRotation<'_>> {
        self.slid.then_some(SlideRotation {
            cos: self.slide_cos,
            sin: self.slide_sin,
        })
    }
}

impl Activations<'_> {
    /// The attention block of layer `l`: RMSNorm → Q, K, V → RoPE → cache →
    /// attention → output projection → residual.
    fn attention(
        &mut self,
        step: Step,
        layer: &Layer<'_>,
        l: usize,
        cache: &mut KvCache<'_>,
        scratch: &mut AttentionScratch<'_>,
        rope: &Rope<'_>,
    ) {
        let Step { isa, format, .. } = step;
        rmsnorm(self.xb, self.x, layer.attention_norm, step.norm_eps);
        let xin = prepare(isa, format, self.xb, &mut self.quant);
        matvec(isa, self.q, &layer.wq, self.xb, xin.as_ref());
        matvec(isa, self.k, &layer.wk, self.xb, xin.as_ref());
        matvec(isa, self.v, &layer.wv, self.xb, xin.as_ref());
        let hd = step.head_dim;
        for h in self
            .q
            .chunks_exact_mut(hd)
            .chain(self.k.chunks_exact_mut(hd))
        {
            rope_rotate(h, rope.cos, rope.sin);
        }
        cache.write(isa, l, self.k, self.v, scratch);
        cache.attend(isa, l, self.q, self.xb2, scratch, rope.slide());
        let xin = prepare(isa, format, self.xb2, &mut self.quant);
        matvec(isa, self.xb, &layer.wo, self.xb2, xin.as_ref());
        for (a, b) in self.x.iter_mut().zip(self.xb.iter()) {
            *a += b;
        }
    }

    /// The feed-forward block: RMSNorm → SwiGLU → residual.
    fn feed_forward(&mut self, step: Step, layer: &Layer<'_>) {
        let Step { isa, format, .. } = step;
        rmsnorm(self.xb, self.x, layer.ffn_norm, step.norm_eps);
        let xin = prepare(isa, format, self.xb, &mut self.quant);
        matvec(isa, self.hb, &layer.w1, self.xb, xin.as_ref());
        matvec(isa, self.hb2, &layer.w3, self.xb, xin.as_ref());
        swiglu(self.hb, self.hb2);
        let xin = prepare(isa, format, self.hb, &mut self.quant);
        matvec(isa, self.xb, &layer.w2, self.hb, xin.as_ref());
        for (a, b) in self.x.iter_mut().zip(self.xb.iter()) {
            *a += b;
        }
    }

    /// Final RMSNorm and the tied output layer: the logits, of the tokens in
    /// `allowed` only if given (runs of consecutive allowed ids, each one
    /// matvec; the others −∞).
    fn output(&mut self, step: Step, w: &Weights<'_>, allowed: Option<&[u32]>) -> &mut [f32] {
        let Step { isa, format, .. } = step;
        rmsnorm(self.xb, self.x, w.norm, step.norm_eps);
        let xin = prepare(isa, format, self.xb, &mut self.quant);
        let logits = &mut *self.logits;
        let Some(set) = allowed else {
            matvec(isa, logits, &w.embedding, self.xb, xin.as_ref());
            return logits;
        };
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
                Some(rows) => matvec(isa, run, &rows, self.xb, xin.as_ref()),
                None => run.fill(f32::NEG_INFINITY),
            }
        }
        logits
    }
}
