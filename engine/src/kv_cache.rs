//! The static key/value cache, and attention over it.
//!
//! The cache lives in caller-provided slices (see [`crate::session`]) with
//! room for `capacity` positions (the model's context) per layer, stored as
//! f32, f16 or int8 (int8 with one f32 scale per position and head; int8
//! values are stored transposed, one row per value dimension, so that the
//! weighted sum over positions is an integer dot product).
//!
//! Generation never stops at the context length. When the cache is full, the
//! first `sinks` positions (attention sinks: the start of the piece) stay, the
//! oldest half of the rest is dropped and the remaining positions move down:
//! the model always sees distances it was trained on, and a player can run
//! forever.
//!
//! Moved keys are not rotated back. RoPE makes a score depend only on the
//! distance between query and key, so the cache counts how far it has slid
//! ([`KvCache::slid`]) and the session rotates each new query and key to its
//! position *plus* that count; only the sinks, which stay put, meet the query
//! rotated back by the slide ([`KvCache::attend`]). A slide is a memory move,
//! and a key is quantized once, when it is written.

use crate::kernels::{
    dot_rows_i16, dot_rows_i16_pair, dot_rows_i8, dot_rows_i8_pair, exp_nonpositive,
    lane_pairs_i16, quantize_packed, quantize_with, rope_rotate_back, scores_f32, softmax,
    weighted_sum_f32, Isa,
};

/// How cache entries are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvPrecision {
    /// 32-bit floats (the reference; matches the trainer).
    F32,
    /// Half floats.
    F16,
    /// int8 with a scale per position and head (a quarter of f32's memory).
    Int8,
}

impl KvPrecision {
    /// Bytes per stored value.
    pub const fn value_bytes(self) -> usize {
        match self {
            KvPrecision::F32 => 4,
            KvPrecision::F16 => 2,
            KvPrecision::Int8 => 1,
        }
    }
}

/// The cache's storage, by precision.
#[derive(Debug)]
pub enum KvStore<'a> {
    /// f32 keys and values.
    F32 {
        /// Keys.
        keys: &'a mut [f32],
        /// Values.
        values: &'a mut [f32],
    },
    /// f16 keys and values (as bits).
    F16 {
        /// Keys.
        keys: &'a mut [u16],
        /// Values.
        values: &'a mut [u16],
    },
    /// int8 keys and values with scales.
    Int8 {
        /// Keys, `[layer][position][head][head_dim]`.
        keys: &'a mut [i8],
        /// Values, transposed: `[layer][head][head_dim][position]`, each row
        /// [`KvShape::value_stride`] long.
        values: &'a mut [i8],
        /// One scale per (layer, position, head) of the keys.
        key_scales: &'a mut [f32],
        /// Same for the values.
        value_scales: &'a mut [f32],
    },
}

/// Shape of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvShape {
    /// Layers.
    pub layers: usize,
    /// Positions per layer.
    pub capacity: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Width of a head.
    pub head_dim: usize,
    /// Leading positions that are never dropped.
    pub sinks: usize,
}

impl KvShape {
    /// Values per (layer, position): all heads.
    pub fn row(&self) -> usize {
        self.kv_heads * self.head_dim
    }
    /// Values of keys (or of values) in the whole cache.
    pub fn values(&self) -> usize {
        self.layers * self.capacity * self.row()
    }
    /// Scales of keys (or of values) in the whole cache (int8 only).
    pub fn scales(&self) -> usize {
        self.layers * self.capacity * self.kv_heads
    }
    /// Positions dropped when the cache is full.
    pub fn evicted(&self) -> usize {
        (self.capacity.saturating_sub(self.sinks) / 2).max(1)
    }
    /// Positions per row of the transposed int8 values: the capacity rounded
    /// up to a multiple of 16, so that the value dot products run over whole
    /// blocks (the extra positions get weight 0).
    pub fn value_stride(&self) -> usize {
        self.capacity.div_ceil(16) * 16
    }

    /// Index of the scale of (`layer`, KV head `kvh`, position `slot`): the
    /// scales of one head lie side by side, position after position.
    fn scale_at(&self, layer: usize, kvh: usize, slot: usize) -> usize {
        (layer * self.kv_heads + kvh) * self.capacity + slot
    }

    /// int8 values in the whole cache (transposed layout).
    pub fn transposed_values(&self) -> usize {
        self.layers * self.row() * self.value_stride()
    }
}

/// Scratch buffers attention needs.
#[derive(Debug)]
///
/// Attention runs the query heads of a KV head two at a time (each key and
/// value row is read once for both), so the per-head buffers hold two heads,
/// one after the other ([`AttentionScratch::sizes`]).
pub struct AttentionScratch<'s> {
    /// One score per cached position, two heads.
    pub scores: &'s mut [f32],
    /// Two query (or value) heads quantized to int8 (int8 caches).
    pub query: &'s mut [i8],
    /// The same, packed for the DSP path.
    pub query_packed: &'s mut [u32],
    /// A query head rotated back by the slide (for the sinks).
    pub head: &'s mut [f32],
    /// Attention weights as 16-bit integers, one per position of a value row
    /// ([`KvShape::value_stride`]; int8 caches), two heads.
    pub weights: &'s mut [i16],
    /// The same, packed for the DSP path.
    pub weights_packed: &'s mut [u32],
}

impl AttentionScratch<'_> {
    /// Lengths of the buffers for `shape`, in field order.
    pub fn sizes(shape: &KvShape) -> [usize; 6] {
        let (hd, vs) = (shape.head_dim, shape.value_stride());
        [2 * shape.capacity, 2 * hd, hd, hd, 2 * vs, vs]
    }
}

/// The buffers an int8 query head is quantized into.
struct KeyScratch<'s> {
    query: &'s mut [i8],
    packed: &'s mut [u32],
}

/// The key/value cache. See the [module documentation](self).
#[derive(Debug)]
pub struct KvCache<'a> {
    store: KvStore<'a>,
    shape: KvShape,
    len: usize,
    slid: u64,
}

/// Cosines and sines (one per RoPE frequency) of the rotation by
/// [`KvCache::slid`] positions: what turns a query at its position in the
/// window into the one the sinks must meet.
#[derive(Clone, Copy, Debug)]
pub struct SlideRotation<'r> {
    /// Cosines.
    pub cos: &'r [f32],
    /// Sines.
    pub sin: &'r [f32],
}

impl<'a> KvCache<'a> {
    /// A cache over `store`, whose slices must have the sizes `shape` implies
    /// (checked by the session that carves them).
    pub fn new(store: KvStore<'a>, shape: KvShape) -> Self {
        KvCache {
            store,
            shape,
            len: 0,
            slid: 0,
        }
    }

    /// Positions dropped by every slide since the cache was cleared: the
    /// RoPE positions of new queries and keys run this far ahead of their
    /// place in the window.
    pub fn slid(&self) -> u64 {
        self.slid
    }

    /// Cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if the next position needs an eviction first.
    pub fn is_full(&self) -> bool {
        self.len >= self.shape.capacity
    }

    /// The shape.
    pub fn shape(&self) -> KvShape {
        self.shape
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.len = 0;
        self.slid = 0;
    }

    fn offset(&self, layer: usize, slot: usize) -> usize {
        (layer * self.shape.capacity + slot) * self.shape.row()
    }

    /// Start of the transposed int8 value row of (`layer`, value dimension `d`).
    fn value_row(&self, layer: usize, d: usize) -> usize {
        (layer * self.shape.row() + d) * self.shape.value_stride()
    }

    /// Store the key and value rows (all heads) of position `len` in `layer`.
    /// Does nothing when the cache is full (evict first).
    pub fn write(
        &mut self,
        isa: Isa,
        layer: usize,
        key: &[f32],
        value: &[f32],
        scratch: &mut AttentionScratch<'_>,
    ) {
        if self.is_full() || layer >= self.shape.layers {
            return;
        }
        let (at, row, hd) = (
            self.offset(layer, self.len),
            self.shape.row(),
            self.shape.head_dim,
        );
        let (shape, len) = (self.shape, self.len);
        let sat = |h: usize| shape.scale_at(layer, h, len);
        let (slot, stride, first_row) = (
            self.len,
            self.shape.value_stride(),
            self.value_row(layer, 0),
        );
        match &mut self.store {
            KvStore::F32 { keys, values } => {
                copy_into(keys.get_mut(at..at + row), key, |v| v);
                copy_into(values.get_mut(at..at + row), value, |v| v);
            }
            KvStore::F16 { keys, values } => {
                let f16 = |v: f32| half::f16::from_f32(v).to_bits();
                copy_into(keys.get_mut(at..at + row), key, f16);
                copy_into(values.get_mut(at..at + row), value, f16);
            }
            KvStore::Int8 {
                keys,
                values,
                key_scales,
                value_scales,
            } => {
                let k_row = keys.get_mut(at..at + row).unwrap_or(&mut []);
                let q = scratch.query.get_mut(..hd).unwrap_or(&mut []);
                for (h, ((k, v), kq)) in key
                    .chunks_exact(hd)
                    .zip(value.chunks_exact(hd))
                    .zip(k_row.chunks_exact_mut(hd))
                    .enumerate()
                {
                    let (Some(ks), Some(vs)) =
                        (key_scales.get_mut(sat(h)), value_scales.get_mut(sat(h)))
                    else {
                        continue;
                    };
                    quantize_with(isa, k, hd, kq, core::slice::from_mut(ks));
                    // Values go in column `slot` of the transposed rows.
                    quantize_with(isa, v, hd, q, core::slice::from_mut(vs));
                    for (d, &x) in q.iter().enumerate() {
                        if let Some(cell) = values.get_mut(first_row + (h * hd + d) * stride + slot)
                        {
                            *cell = x;
                        }
                    }
                }
            }
        }
    }

    /// Count the position just written (after every layer wrote it).
    pub fn advance(&mut self) {
        self.len = (self.len + 1).min(self.shape.capacity);
    }

    /// Attention of all query heads `query` (`n_heads * head_dim`) over the
    /// first `len + 1` positions of `layer` (including the one just
    /// written); the result goes to `out` (same width as `query`). Once the
    /// cache has slid, `slide` is the rotation by [`KvCache::slid`]: the
    /// sinks' scores use each query head rotated back by it.
    ///
    /// Float caches: softmax, then the probability-weighted sum of values in
    /// f32. Int8 caches run on integers: scores are exact dot products of the
    /// int8 query and keys (one rescale each); the softmax numerators times
    /// each position's value scale become 16-bit weights, and every output is
    /// one exact integer dot product with a row of transposed values and one
    /// rescale per head.
    pub fn attend(
        &self,
        isa: Isa,
        layer: usize,
        query: &[f32],
        out: &mut [f32],
        scratch: &mut AttentionScratch<'_>,
        slide: Option<SlideRotation<'_>>,
    ) {
        let hd = self.shape.head_dim.max(1);
        let slide = slide.filter(|_| self.slid > 0);
        let heads = query.len() / hd;
        let group = (heads / self.shape.kv_heads.max(1)).max(1);
        let mut h = 0;
        while h < heads {
            let kvh = h / group;
            // Two query heads at a time where they share the KV head.
            let n = if h + 1 < heads && (h + 1) / group == kvh {
                2
            } else {
                1
            };
            let range = h * hd..(h + n) * hd;
            if let (Some(q), Some(o)) = (query.get(range.clone()), out.get_mut(range)) {
                self.attend_heads(isa, layer, kvh, q, o, scratch, slide);
            }
            h += n;
        }
    }

    /// Attention of one or two query heads (`q` and `out`: that many heads)
    /// over KV head `kvh` of `layer`.
    #[allow(clippy::too_many_arguments)]
    fn attend_heads(
        &self,
        isa: Isa,
        layer: usize,
        kvh: usize,
        q: &[f32],
        out: &mut [f32],
        scratch: &mut AttentionScratch<'_>,
        slide: Option<SlideRotation<'_>>,
    ) {
        let (hd, cap) = (self.shape.head_dim, self.shape.capacity);
        let positions = (self.len + 1).min(cap);
        let sinks = slide.map_or(0, |_| self.shape.sinks.min(positions));
        self.window_scores(isa, layer, kvh, q, sinks..positions, scratch);
        if let Some(slide) = slide {
            for (i, qi) in q.chunks_exact(hd).enumerate() {
                let AttentionScratch {
                    scores,
                    query,
                    query_packed,
                    head,
                    ..
                } = scratch;
                let (Some(back), Some(s)) =
                    (head.get_mut(..hd), scores.get_mut(i * cap..i * cap + sinks))
                else {
                    continue;
                };
                back.copy_from_slice(qi);
                rope_rotate_back(back, slide.cos, slide.sin);
                let keys = KeyScratch {
                    query,
                    packed: query_packed,
                };
                self.scores(isa, layer, kvh, back, 0, s, keys);
            }
        }
        self.weigh(isa, layer, kvh, out, scratch);
    }

    /// Scores of each query head of `q` over positions `window` of KV head
    /// `kvh`, into its part of `scratch.scores`: int8 caches read each key
    /// once for a pair of heads.
    fn window_scores(
        &self,
        isa: Isa,
        layer: usize,
        kvh: usize,
        q: &[f32],
        window: core::ops::Range<usize>,
        scratch: &mut AttentionScratch<'_>,
    ) {
        let (hd, cap) = (self.shape.head_dim, self.shape.capacity);
        let AttentionScratch {
            scores,
            query,
            query_packed,
            ..
        } = scratch;
        let (sa, sb) = scores.split_at_mut(cap.min(scores.len()));
        let (sa, sb) = (
            sa.get_mut(window.clone()).unwrap_or(&mut []),
            sb.get_mut(window.clone()).unwrap_or(&mut []),
        );
        let pair = q.len() == 2 * hd && query.len() >= 2 * hd && query_packed.len() >= hd;
        if let (
            KvStore::Int8 {
                keys, key_scales, ..
            },
            true,
        ) = (&self.store, pair)
        {
            let (qa, qb) = q.split_at(hd);
            let (q8a, q8b) = query.split_at_mut(hd);
            let (pa, pb) = query_packed.split_at_mut(hd / 2);
            let scale = 1.0 / libm::sqrtf(hd as f32);
            let qs = [
                quantize_query(isa, qa, q8a, pa),
                quantize_query(isa, qb, q8b, pb),
            ];
            let at = self.offset(layer, window.start) + kvh * hd;
            let k = keys.get(at..).unwrap_or(&[]);
            let (q8a, q8b) = (&q8a[..], q8b.get(..hd).unwrap_or(&[]));
            let (pa, pb) = (&pa[..], pb.get(..hd / 2).unwrap_or(&[]));
            dot_rows_i8_pair(
                isa,
                [&mut *sa, &mut *sb],
                bytemuck::cast_slice(k),
                self.shape.row(),
                [q8a, q8b],
                [pa, pb],
            );
            let ks = key_scales
                .get(self.shape.scale_at(layer, kvh, window.start)..)
                .unwrap_or(&[]);
            for (s, q_scale) in [sa, sb].into_iter().zip(qs) {
                let qs = q_scale * scale;
                for (s, &ks) in s.iter_mut().zip(ks) {
                    *s *= qs * ks;
                }
            }
            return;
        }
        for (qi, s) in q.chunks_exact(hd).zip([sa, sb]) {
            let keys = KeyScratch {
                query,
                packed: query_packed,
            };
            self.scores(isa, layer, kvh, qi, window.start, s, keys);
        }
    }

    /// Scores of query head `q` against the keys of KV head `kvh` at
    /// positions `from..from + scores.len()` of `layer`, scaled by
    /// 1/√head_dim.
    #[allow(clippy::too_many_arguments)]
    fn scores(
        &self,
        isa: Isa,
        layer: usize,
        kvh: usize,
        q: &[f32],
        from: usize,
        scores: &mut [f32],
        scratch: KeyScratch<'_>,
    ) {
        let hd = self.shape.head_dim;
        let scale = 1.0 / libm::sqrtf(hd as f32);
        let row = self.shape.row();
        let head_at = |t: usize| self.offset(layer, from + t) + kvh * hd;
        match &self.store {
            KvStore::F32 { keys, .. } => {
                let k = keys.get(head_at(0)..).unwrap_or(&[]);
                scores_f32(isa, scores, k, row, q);
                for s in scores.iter_mut() {
                    *s *= scale;
                }
            }
            KvStore::F16 { keys, .. } => {
                for (t, s) in scores.iter_mut().enumerate() {
                    let k = keys.get(head_at(t)..head_at(t) + hd).unwrap_or(&[]);
                    *s = q.iter().zip(k).fold(0.0f32, |a, (x, &y)| {
                        a + x * half::f16::from_bits(y).to_f32()
                    }) * scale;
                }
            }
            KvStore::Int8 {
                keys, key_scales, ..
            } => {
                let qs = quantize_query(isa, q, scratch.query, scratch.packed) * scale;
                let (q8, packed) = (
                    scratch.query.get(..hd).unwrap_or(&[]),
                    scratch.packed.get(..hd / 2).unwrap_or(&[]),
                );
                let k = keys.get(head_at(0)..).unwrap_or(&[]);
                dot_rows_i8(isa, scores, bytemuck::cast_slice(k), row, q8, packed);
                let ks = key_scales
                    .get(self.shape.scale_at(layer, kvh, from)..)
                    .unwrap_or(&[]);
                for (s, &ks) in scores.iter_mut().zip(ks) {
                    *s *= qs * ks;
                }
            }
        }
    }

    /// Softmax of each head's scores in `scratch.scores` and the weighted
    /// sum of KV head `kvh`'s values at those positions of `layer`, into
    /// `out` (one or two heads).
    fn weigh(
        &self,
        isa: Isa,
        layer: usize,
        kvh: usize,
        out: &mut [f32],
        scratch: &mut AttentionScratch<'_>,
    ) {
        let (hd, cap) = (self.shape.head_dim, self.shape.capacity);
        let positions = (self.len + 1).min(cap);
        let row = self.shape.row();
        let head_at = |t: usize| self.offset(layer, t) + kvh * hd;
        let scores = &mut *scratch.scores;
        match &self.store {
            KvStore::F32 { values, .. } => {
                for (o, s) in out.chunks_exact_mut(hd).zip(scores.chunks_mut(cap)) {
                    let s = s.get_mut(..positions).unwrap_or(&mut []);
                    softmax(s);
                    let v = values.get(head_at(0)..).unwrap_or(&[]);
                    weighted_sum_f32(isa, o, v, row, s);
                }
            }
            KvStore::F16 { values, .. } => {
                for (o, s) in out.chunks_exact_mut(hd).zip(scores.chunks_mut(cap)) {
                    let s = s.get_mut(..positions).unwrap_or(&mut []);
                    softmax(s);
                    o.fill(0.0);
                    for (t, &p) in s.iter().enumerate() {
                        let at = head_at(t);
                        for (x, &v) in o.iter_mut().zip(values.get(at..at + hd).unwrap_or(&[])) {
                            *x += p * half::f16::from_bits(v).to_f32();
                        }
                    }
                }
            }
            KvStore::Int8 {
                values,
                value_scales,
                ..
            } => {
                let vs = value_scales
                    .get(self.shape.scale_at(layer, kvh, 0)..)
                    .unwrap_or(&[]);
                let v = values.get(self.value_row(layer, kvh * hd)..).unwrap_or(&[]);
                self.weigh_int8(isa, bytemuck::cast_slice(v), vs, out, scratch);
            }
        }
    }

    /// [`KvCache::weigh`] over int8 values `v` (a KV head's transposed rows)
    /// with their scales `vs`: each head's scores become 16-bit weights, one
    /// integer dot product per value row (for two heads at once), one
    /// rescale per head.
    fn weigh_int8(
        &self,
        isa: Isa,
        v: &[u8],
        vs: &[f32],
        out: &mut [f32],
        scratch: &mut AttentionScratch<'_>,
    ) {
        let (hd, cap) = (self.shape.head_dim, self.shape.capacity);
        let positions = (self.len + 1).min(cap);
        let (vs_len, padded) = (self.shape.value_stride(), positions.div_ceil(16) * 16);
        let AttentionScratch {
            scores,
            weights,
            weights_packed,
            ..
        } = scratch;
        let mut c = [0.0f32; 2];
        let heads = out.len() / hd.max(1);
        for (i, c) in c.iter_mut().enumerate().take(heads) {
            let s = scores
                .get_mut(i * cap..i * cap + positions)
                .unwrap_or(&mut []);
            let w = weights
                .get_mut(i * vs_len..(i + 1) * vs_len)
                .unwrap_or(&mut []);
            let p = weights_packed
                .get_mut(i * vs_len / 2..(i + 1) * vs_len / 2)
                .unwrap_or(&mut []);
            *c = integer_weights(isa, s, vs, w, p);
        }
        let w = |i: usize| weights.get(i * vs_len..i * vs_len + padded).unwrap_or(&[]);
        let p = |i: usize| {
            weights_packed
                .get(i * vs_len / 2..(i * vs_len + padded) / 2)
                .unwrap_or(&[])
        };
        if out.len() == 2 * hd {
            let (oa, ob) = out.split_at_mut(hd);
            dot_rows_i16_pair(isa, [oa, ob], v, vs_len, [w(0), w(1)], [p(0), p(1)]);
        } else {
            dot_rows_i16(isa, out, v, vs_len, w(0), p(0));
        }
        for (o, c) in out.chunks_exact_mut(hd).zip(c) {
            for x in o.iter_mut() {
                *x *= c;
            }
        }
    }

    /// Make room: keep the sinks, drop the oldest [`KvShape::evicted`]
    /// positions after them and move the rest down; [`KvCache::slid`] grows
    /// by as many. Returns the number of positions dropped.
    pub fn evict(&mut self) -> usize {
        let shape = self.shape;
        let drop = shape.evicted().min(self.len.saturating_sub(shape.sinks));
        if drop == 0 {
            return 0;
        }
        let keep = self.len - shape.sinks - drop;
        for layer in 0..shape.layers {
            let from = self.offset(layer, shape.sinks + drop);
            let to = self.offset(layer, shape.sinks);
            let n = keep * shape.row();
            let first_row = self.value_row(layer, 0);
            match &mut self.store {
                KvStore::F32 { keys, values } => {
                    move_within(keys, from, to, n);
                    move_within(values, from, to, n);
                }
                KvStore::F16 { keys, values } => {
                    move_within(keys, from, to, n);
                    move_within(values, from, to, n);
                }
                KvStore::Int8 {
                    keys,
                    values,
                    key_scales,
                    value_scales,
                } => {
                    move_within(keys, from, to, n);
                    for kvh in 0..shape.kv_heads {
                        let r = shape.scale_at(layer, kvh, 0);
                        move_within(key_scales, r + shape.sinks + drop, r + shape.sinks, keep);
                        move_within(value_scales, r + shape.sinks + drop, r + shape.sinks, keep);
                    }
                    let stride = shape.value_stride();
                    for d in 0..shape.row() {
                        let r = first_row + d * stride;
                        move_within(values, r + shape.sinks + drop, r + shape.sinks, keep);
                    }
                }
            }
        }
        self.len -= drop;
        self.slid = self.slid.saturating_add(drop as u64);
        drop
    }
}

/// Quantize query head `q` into `q8` (and, for the DSP path, its lane pairs
/// into `packed`); returns its scale.
fn quantize_query(isa: Isa, q: &[f32], q8: &mut [i8], packed: &mut [u32]) -> f32 {
    let hd = q.len();
    let mut scale = [0.0f32];
    let q8 = q8.get_mut(..hd).unwrap_or(&mut []);
    let packed = packed.get_mut(..hd / 2).unwrap_or(&mut []);
    quantize_packed(isa, q, hd, q8, packed, &mut scale);
    scale[0]
}

/// Turn `scores` (one per position) into 16-bit attention weights for the
/// int8 value rows: `e_t = exp(s_t − max)` (the softmax numerators, written
/// back into `scores`) times the position's value scale `vs(t)`, scaled so
/// that the largest is `qmax`, rounded; zero up to the next multiple of 16.
/// Returns the factor that turns a weighted sum of int8 values back into
/// the attention output: `max_w / qmax / Σ e_t`. `qmax` (at most 32767) keeps
/// every sum of `16·⌈positions/16⌉` products with |value| ≤ 128 inside an i32.
fn integer_weights(
    isa: Isa,
    scores: &mut [f32],
    vs: &[f32],
    weights: &mut [i16],
    packed: &mut [u32],
) -> f32 {
    let positions = scores.len();
    let padded = positions.div_ceil(16) * 16;
    let mut max = f32::NEG_INFINITY;
    for &s in scores.iter() {
        if s > max {
            max = s;
        }
    }
    let (mut sum, mut max_w) = (0.0f32, 0.0f32);
    let vs = vs.iter().copied().chain(core::iter::repeat(0.0));
    for (s, v) in scores.iter_mut().zip(vs) {
        let e = exp_nonpositive(*s - max);
        sum += e;
        *s = e * v;
        if *s > max_w {
            max_w = *s;
        }
    }
    let weights = weights.get_mut(..padded).unwrap_or(&mut []);
    let packed = packed.get_mut(..padded / 2).unwrap_or(&mut []);
    if !(max_w > 0.0 && max_w.is_finite() && sum > 0.0) {
        weights.fill(0);
        packed.fill(0);
        return 0.0;
    }
    let qmax = (i32::MAX as usize / (128 * padded.max(1))).min(32767) as f32;
    let inv = qmax / max_w;
    // s ≥ 0: adding 0.5 and truncating rounds to nearest.
    let weight = |s: f32| (s * inv + 0.5) as i32 as i16;
    if isa == Isa::ArmDsp {
        // Straight into the DSP kernel's lane pairs (zero past the positions).
        let at = |t: usize| scores.get(t).map_or(0, |&s| weight(s));
        for (i, p) in packed.chunks_exact_mut(2).enumerate() {
            if let [a, b] = p {
                [*a, *b] = lane_pairs_i16([at(4 * i), at(4 * i + 1), at(4 * i + 2), at(4 * i + 3)]);
            }
        }
        return max_w / qmax / sum;
    }
    for (w, &s) in weights.iter_mut().zip(scores.iter()) {
        *w = weight(s);
    }
    weights.get_mut(positions..).unwrap_or(&mut []).fill(0);
    max_w / qmax / sum
}

fn copy_into<T: Copy>(dst: Option<&mut [T]>, src: &[f32], convert: impl Fn(f32) -> T) {
    if let Some(dst) = dst {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = convert(s);
        }
    }
}

/// `slice[to..to + n] = slice[from..from + n]` (`to < from`); does nothing if out of range.
fn move_within<T: Copy>(slice: &mut [T], from: usize, to: usize, n: usize) {
    if to <= from && from.checked_add(n).is_some_and(|end| end <= slice.len()) {
        slice.copy_within(from..from + n, to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{rope_angles, rope_angles_far, rope_frequencies, rope_rotate};

    const HD: usize = 8;
    const CAP: usize = 16;
    type Head = [f32; HD];

    fn rotated(raw: &Head, position: u64, freq: &[f32]) -> Head {
        let (mut cos, mut sin, mut out) = ([0.0; HD / 2], [0.0; HD / 2], *raw);
        rope_angles(position as f32, freq, &mut cos, &mut sin);
        rope_rotate(&mut out, &cos, &sin);
        out
    }

    /// Write `heads` (raw keys and values) into a cache of precision `kv`
    /// (2 sinks, sliding by 7 whenever full), each key rotated to its place
    /// plus the positions slid, and attend with `raw_q` at the last one's
    /// position. Returns the output and the positions attended over.
    fn attention(kv: KvPrecision, heads: &[(Head, Head)], raw_q: &Head) -> (Head, usize) {
        let shape = KvShape {
            layers: 1,
            capacity: CAP,
            kv_heads: 1,
            head_dim: HD,
            sinks: 2,
        };
        let (mut kf, mut vf) = ([0.0f32; CAP * HD], [0.0f32; CAP * HD]);
        let (mut kh, mut vh) = ([0u16; CAP * HD], [0u16; CAP * HD]);
        let (mut k8, mut v8) = ([0i8; CAP * HD], [0i8; CAP * HD]);
        let (mut ks, mut vs) = ([0.0f32; CAP], [0.0f32; CAP]);
        let store = match kv {
            KvPrecision::F32 => KvStore::F32 {
                keys: &mut kf,
                values: &mut vf,
            },
            KvPrecision::F16 => KvStore::F16 {
                keys: &mut kh,
                values: &mut vh,
            },
            KvPrecision::Int8 => KvStore::Int8 {
                keys: &mut k8,
                values: &mut v8,
                key_scales: &mut ks,
                value_scales: &mut vs,
            },
        };
        let mut cache = KvCache::new(store, shape);
        let mut freq = [0.0f32; HD / 2];
        rope_frequencies(10_000.0, HD, &mut freq);
        let (mut scores, mut q8, mut qp, mut head) =
            ([0.0; CAP], [0i8; HD], [0u32; HD / 2], [0.0; HD]);
        let (mut w, mut wp) = ([0i16; CAP], [0u32; CAP / 2]);
        let mut scratch = AttentionScratch {
            scores: &mut scores,
            query: &mut q8,
            query_packed: &mut qp,
            head: &mut head,
            weights: &mut w,
            weights_packed: &mut wp,
        };
        let mut out = [0.0f32; HD];
        for (i, (k, v)) in heads.iter().enumerate() {
            if cache.is_full() {
                cache.evict();
            }
            let position = cache.len() as u64 + cache.slid();
            cache.write(
                Isa::Portable,
                0,
                &rotated(k, position, &freq),
                v,
                &mut scratch,
            );
            if i + 1 < heads.len() {
                cache.advance();
                continue;
            }
            let (mut cos, mut sin) = ([0.0; HD / 2], [0.0; HD / 2]);
            rope_angles_far(cache.slid(), &freq, &mut cos, &mut sin);
            let slide = SlideRotation {
                cos: &cos,
                sin: &sin,
            };
            let q = rotated(raw_q, position, &freq);
            cache.attend(Isa::Portable, 0, &q, &mut out, &mut scratch, Some(slide));
        }
        (out, cache.len() + 1)
    }

    #[test]
    fn a_slid_cache_attends_like_a_fresh_cache_of_the_kept_positions() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            f32::from((seed >> 16) as u16) / 16384.0 - 2.0
        };
        let heads: [(Head, Head); 33] = core::array::from_fn(|_| {
            (
                core::array::from_fn(|_| next()),
                core::array::from_fn(|_| next()),
            )
        });
        let q: Head = core::array::from_fn(|_| next());
        for (kv, tolerance) in [
            (KvPrecision::F32, 1e-5),
            (KvPrecision::F16, 1e-2),
            (KvPrecision::Int8, 5e-2),
        ] {
            // 33 heads into 16 places: the cache slides three times.
            let (slid, positions) = attention(kv, &heads, &q);
            assert!(positions < CAP && positions > 2);
            // What it keeps: the two sinks and the newest heads, which a
            // cache that never slid holds at their places in the window.
            let mut kept: heapless::Vec<(Head, Head), CAP> = heapless::Vec::new();
            let newest = &heads[heads.len() - (positions - 2)..];
            for h in heads[..2].iter().chain(newest) {
                kept.push(*h).unwrap();
            }
            let (fresh, fresh_positions) = attention(kv, &kept, &q);
            assert_eq!(fresh_positions, positions);
            for (a, b) in slid.iter().zip(&fresh) {
                assert!((a - b).abs() <= tolerance, "{kv:?}: {slid:?} vs {fresh:?}");
            }
        }
    }

    #[test]
    fn the_slide_is_only_a_move_and_counts_the_positions_dropped() {
        let (heads, q) = ([([0.5f32; HD], [0.25f32; HD]); 17], [1.0f32; HD]);
        let (_, positions) = attention(KvPrecision::F32, &heads, &q);
        // 16 fill the cache; the 17th drops 7 after the 2 sinks.
        assert_eq!(positions, CAP - 7 + 1);
    }
}
