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
//! oldest half of the rest is dropped, and the remaining keys are rotated back
//! so their RoPE positions again run 0, 1, 2, …: the model always sees
//! positions it was trained on, and a player can run forever.

use crate::kernels::{
    dot_rows_i16, dot_rows_i8, exp, pack_pairs, pack_pairs_i16, quantize_with, rope_angles,
    rope_rotate, scores_f32, softmax, weighted_sum_f32, Isa,
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
    /// int8 values in the whole cache (transposed layout).
    pub fn transposed_values(&self) -> usize {
        self.layers * self.row() * self.value_stride()
    }
}

/// Scratch buffers attention needs.
#[derive(Debug)]
pub struct AttentionScratch<'s> {
    /// One score per cached position.
    pub scores: &'s mut [f32],
    /// A query (or value) head quantized to int8 (int8 caches).
    pub query: &'s mut [i8],
    /// The same, packed for the DSP path.
    pub query_packed: &'s mut [u32],
    /// A head of f32 (dequantizing during eviction).
    pub head: &'s mut [f32],
    /// Q15 cosines and sines of an eviction's rotation (int8 caches), one head wide.
    pub rotation: &'s mut [i32],
    /// Attention weights as 16-bit integers, one per position of a value row
    /// ([`KvShape::value_stride`]; int8 caches).
    pub weights: &'s mut [i16],
    /// The same, packed for the DSP path.
    pub weights_packed: &'s mut [u32],
}

/// The key/value cache. See the [module documentation](self).
#[derive(Debug)]
pub struct KvCache<'a> {
    store: KvStore<'a>,
    shape: KvShape,
    len: usize,
}

impl<'a> KvCache<'a> {
    /// A cache over `store`, whose slices must have the sizes `shape` implies
    /// (checked by the session that carves them).
    pub fn new(store: KvStore<'a>, shape: KvShape) -> Self {
        KvCache {
            store,
            shape,
            len: 0,
        }
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
    }

    fn offset(&self, layer: usize, slot: usize) -> usize {
        (layer * self.shape.capacity + slot) * self.shape.row()
    }

    fn scale_offset(&self, layer: usize, slot: usize) -> usize {
        (layer * self.shape.capacity + slot) * self.shape.kv_heads
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
        let sat = self.scale_offset(layer, self.len);
        let heads = self.shape.kv_heads;
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
                if let (Some(k), Some(ks)) = (
                    keys.get_mut(at..at + row),
                    key_scales.get_mut(sat..sat + heads),
                ) {
                    quantize_with(isa, key, hd, k, ks);
                }
                // Values go in column `slot` of the transposed rows.
                let q = scratch.query.get_mut(..hd).unwrap_or(&mut []);
                for (h, (v, vs)) in value
                    .chunks_exact(hd)
                    .zip(value_scales.get_mut(sat..sat + heads).unwrap_or(&mut []))
                    .enumerate()
                {
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
    /// written); the result goes to `out` (same width as `query`).
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
    ) {
        let hd = self.shape.head_dim;
        let positions = (self.len + 1).min(self.shape.capacity);
        let heads = query.len() / hd.max(1);
        let group = (heads / self.shape.kv_heads.max(1)).max(1);
        let scale = 1.0 / libm::sqrtf(hd as f32);
        let base = self.offset(layer, 0);
        let scale_base = self.scale_offset(layer, 0);
        let row = self.shape.row();
        let kv_heads = self.shape.kv_heads;
        for (h, (q, o)) in query
            .chunks_exact(hd)
            .zip(out.chunks_exact_mut(hd))
            .enumerate()
        {
            let kvh = h / group;
            let head_at = |t: usize| base + t * row + kvh * hd;
            let scale_at = |t: usize| scale_base + t * kv_heads + kvh;
            let scores = scratch.scores.get_mut(..positions).unwrap_or(&mut []);
            match &self.store {
                KvStore::F32 { keys, values } => {
                    let (k, v) = (
                        keys.get(head_at(0)..).unwrap_or(&[]),
                        values.get(head_at(0)..).unwrap_or(&[]),
                    );
                    scores_f32(isa, scores, k, row, q);
                    for s in scores.iter_mut() {
                        *s *= scale;
                    }
                    softmax(scores);
                    weighted_sum_f32(isa, o, v, row, scores);
                }
                KvStore::F16 { keys, values } => {
                    for (t, s) in scores.iter_mut().enumerate() {
                        let k = keys.get(head_at(t)..head_at(t) + hd).unwrap_or(&[]);
                        *s = q.iter().zip(k).fold(0.0f32, |a, (x, &y)| {
                            a + x * half::f16::from_bits(y).to_f32()
                        }) * scale;
                    }
                    softmax(scores);
                    o.fill(0.0);
                    for (t, &p) in scores.iter().enumerate() {
                        let at = head_at(t);
                        for (x, &v) in o.iter_mut().zip(values.get(at..at + hd).unwrap_or(&[])) {
                            *x += p * half::f16::from_bits(v).to_f32();
                        }
                    }
                }
                KvStore::Int8 {
                    keys,
                    values,
                    key_scales,
                    value_scales,
                } => {
                    let mut q_scale = [0.0f32];
                    let q8 = scratch.query.get_mut(..hd).unwrap_or(&mut []);
                    quantize_with(isa, q, hd, q8, &mut q_scale);
                    let packed = scratch.query_packed.get_mut(..hd / 2).unwrap_or(&mut []);
                    if isa == Isa::ArmDsp {
                        pack_pairs(q8, packed);
                    }
                    let qs = q_scale[0] * scale;
                    let k = keys.get(head_at(0)..).unwrap_or(&[]);
                    dot_rows_i8(isa, scores, bytemuck::cast_slice(k), row, q8, packed);
                    for (t, s) in scores.iter_mut().enumerate() {
                        let ks = key_scales.get(scale_at(t)).copied().unwrap_or(0.0);
                        *s *= qs * ks;
                    }
                    let vs = |t: usize| value_scales.get(scale_at(t)).copied().unwrap_or(0.0);
                    let c =
                        integer_weights(isa, scores, vs, scratch.weights, scratch.weights_packed);
                    let padded = positions.div_ceil(16) * 16;
                    let w = scratch.weights.get(..padded).unwrap_or(&[]);
                    let wp = scratch.weights_packed.get(..padded / 2).unwrap_or(&[]);
                    let at = self.value_row(layer, kvh * hd);
                    let v = values.get(at..).unwrap_or(&[]);
                    let stride = self.shape.value_stride();
                    dot_rows_i16(isa, o, bytemuck::cast_slice(v), stride, w, wp);
                    for x in o.iter_mut() {
                        *x *= c;
                    }
                }
            }
        }
    }

    /// Make room: keep the sinks, drop the oldest [`KvShape::evicted`]
    /// positions after them, move the rest down and rotate their keys back
    /// by as many positions. Returns the number of positions dropped.
    pub fn evict(
        &mut self,
        frequencies: &[f32],
        cos: &mut [f32],
        sin: &mut [f32],
        scratch: &mut AttentionScratch<'_>,
    ) -> usize {
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
            let (sfrom, sto) = (
                self.scale_offset(layer, shape.sinks + drop),
                self.scale_offset(layer, shape.sinks),
            );
            let sn = keep * shape.kv_heads;
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
                    move_within(key_scales, sfrom, sto, sn);
                    move_within(value_scales, sfrom, sto, sn);
                    let stride = shape.value_stride();
                    for d in 0..shape.row() {
                        let r = first_row + d * stride;
                        move_within(values, r + shape.sinks + drop, r + shape.sinks, keep);
                    }
                }
            }
        }
        // Rotate the moved keys back by `drop` positions.
        rope_angles(-(drop as f32), frequencies, cos, sin);
        let hd = shape.head_dim;
        let half = hd / 2;
        // int8 keys rotate in fixed point (cosines and sines in Q15).
        let q15 = |v: f32| {
            let r = v * 32768.0;
            (r + if r < 0.0 { -0.5 } else { 0.5 }) as i32
        };
        let rotation = scratch.rotation.get_mut(..hd).unwrap_or(&mut []);
        for (i, r) in rotation.iter_mut().enumerate() {
            *r = if i < half {
                cos.get(i).copied().map_or(0, q15)
            } else {
                sin.get(i - half).copied().map_or(0, q15)
            };
        }
        let head = scratch.head.get_mut(..hd).unwrap_or(&mut []);
        for layer in 0..shape.layers {
            for slot in shape.sinks..shape.sinks + keep {
                for kvh in 0..shape.kv_heads {
                    let at = self.offset(layer, slot) + kvh * hd;
                    let sat = self.scale_offset(layer, slot) + kvh;
                    match &mut self.store {
                        KvStore::F32 { keys, .. } => {
                            if let Some(k) = keys.get_mut(at..at + hd) {
                                rope_rotate(k, cos, sin);
                            }
                        }
                        KvStore::F16 { keys, .. } => {
                            if let Some(k) = keys.get_mut(at..at + hd) {
                                for (x, &b) in head.iter_mut().zip(k.iter()) {
                                    *x = half::f16::from_bits(b).to_f32();
                                }
                                rope_rotate(head, cos, sin);
                                for (b, &x) in k.iter_mut().zip(head.iter()) {
                                    *b = half::f16::from_f32(x).to_bits();
                                }
                            }
                        }
                        KvStore::Int8 {
                            keys, key_scales, ..
                        } => {
                            if let (Some(k), Some(s)) =
                                (keys.get_mut(at..at + hd), key_scales.get_mut(sat))
                            {
                                rotate_int8(k, s, rotation);
                            }
                        }
                    }
                }
            }
        }
        self.len -= drop;
        drop
    }
}

/// Rotate one int8 key head (scale `scale`) by the angles whose Q15 cosines
/// and sines are `rotation` (`[cos; half] ++ [sin; half]`), and quantize it
/// again to the largest magnitude: exact integer arithmetic (the same bits on
/// every target) and one float rescale. The products fit an i32: |a·c − b·s|
/// ≤ 127·2¹⁵·√2, and times 254 still below 2³¹.
fn rotate_int8(k: &mut [i8], scale: &mut f32, rotation: &[i32]) {
    let half = k.len() / 2;
    let (lo, hi) = k.split_at_mut(half);
    let (c, s) = rotation.split_at(half.min(rotation.len()));
    let mut max = 0i32;
    for (((a, b), &c), &s) in lo.iter().zip(hi.iter()).zip(c).zip(s) {
        let (a, b) = (i32::from(*a), i32::from(*b));
        max = max.max((a * c - b * s).abs()).max((a * s + b * c).abs());
    }
    if max == 0 {
        k.fill(0);
        *scale = 0.0;
        return;
    }
    // round(v · 127 / max), half away from zero, by an exact division.
    let requantize = |v: i32| {
        let n = 2 * 127 * v;
        (n + n.signum() * max).checked_div(2 * max).unwrap_or(0) as i8
    };
    for (((a, b), &c), &s) in lo.iter_mut().zip(hi.iter_mut()).zip(c).zip(s) {
        let (x, y) = (i32::from(*a), i32::from(*b));
        *a = requantize(x * c - y * s);
        *b = requantize(x * s + y * c);
    }
    *scale *= max as f32 / (127.0 * 32768.0);
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
    vs: impl Fn(usize) -> f32,
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
    for s in scores.iter_mut() {
        *s = exp(*s - max);
    }
    let mut sum = 0.0f32;
    let mut max_w = 0.0f32;
    for (t, s) in scores.iter_mut().enumerate() {
        sum += *s;
        *s *= vs(t);
        if *s > max_w {
            max_w = *s;
        }
    }
    let weights = weights.get_mut(..padded).unwrap_or(&mut []);
    if !(max_w > 0.0 && max_w.is_finite() && sum > 0.0) {
        weights.fill(0);
        return 0.0;
    }
    let qmax = (i32::MAX as usize / (128 * padded.max(1))).min(32767) as f32;
    let inv = qmax / max_w;
    for (w, &s) in weights.iter_mut().zip(scores.iter()) {
        // s ≥ 0: adding 0.5 and truncating rounds to nearest.
        *w = (s * inv + 0.5) as i32 as i16;
    }
    weights.get_mut(positions..).unwrap_or(&mut []).fill(0);
    if isa == Isa::ArmDsp {
        pack_pairs_i16(weights, packed.get_mut(..padded / 2).unwrap_or(&mut []));
    }
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

    #[test]
    fn int8_rotation_follows_the_float_rotation() {
        let mut seed = 99u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 16) as u8 as i8
        };
        let mut freq = [0.0f32; 16];
        crate::kernels::rope_frequencies(10_000.0, 32, &mut freq);
        for drop in [1.0f32, 7.0, 62.0] {
            let (mut cos, mut sin) = ([0.0f32; 16], [0.0f32; 16]);
            rope_angles(-drop, &freq, &mut cos, &mut sin);
            let q15 = |v: f32| (v * 32768.0 + if v < 0.0 { -0.5 } else { 0.5 }) as i32;
            let mut rotation = [0i32; 32];
            for i in 0..16 {
                rotation[i] = q15(cos[i]);
                rotation[16 + i] = q15(sin[i]);
            }
            for _ in 0..50 {
                let mut k = [0i8; 32];
                k.iter_mut().for_each(|v| *v = next().clamp(-127, 127));
                let mut scale = 0.02f32;
                let mut float = [0.0f32; 32];
                for (f, &q) in float.iter_mut().zip(&k) {
                    *f = f32::from(q) * scale;
                }
                rope_rotate(&mut float, &cos, &sin);
                rotate_int8(&mut k, &mut scale, &rotation);
                let max = float.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!((scale * 127.0 - max).abs() <= max * 1e-3, "{scale} {max}");
                for (f, &q) in float.iter().zip(&k) {
                    assert!(
                        (f32::from(q) * scale - f).abs() <= 0.51 * scale + 1e-6,
                        "{f} {q}"
                    );
                }
            }
        }
    }
}
