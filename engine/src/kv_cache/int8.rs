//! The int8 cache: attention on integers.
//!
//! Keys are stored row after row, values transposed (one row per value
//! dimension, [`KvShape::value_stride`] positions long), each with one f32
//! scale per (layer, KV head, position). Scores are exact dot products of the
//! int8 query with the keys (one rescale each); the softmax numerators times
//! each position's value scale become 16-bit weights, and every output is one
//! exact integer dot product with a row of values and one rescale per head.

use super::{move_within, AttentionScratch, KeyScratch, KvHead, KvLayer, KvShape, Store};
use crate::kernels::{
    dot_rows_i16, dot_rows_i16_pair, dot_rows_i8, dot_rows_i8_pair, exp_nonpositive_shifted,
    lane_pairs_i16, quantize_packed, quantize_with, Isa,
};

/// int8 keys and values with their scales.
#[derive(Debug)]
pub struct Int8Kv<'a> {
    /// Keys, `[layer][position][kv head][head_dim]`.
    pub keys: &'a mut [i8],
    /// Values, transposed: `[layer][kv head][head_dim][position]`, each row
    /// [`KvShape::value_stride`] long.
    pub values: &'a mut [i8],
    /// One scale per (layer, KV head, position) of the keys, the positions
    /// of a head side by side.
    pub key_scales: &'a mut [f32],
    /// Same for the values.
    pub value_scales: &'a mut [f32],
}

impl Store for Int8Kv<'_> {
    fn write(
        &mut self,
        isa: Isa,
        layer: KvLayer,
        slot: usize,
        key: &[f32],
        value: &[f32],
        scratch: &mut [i8],
    ) {
        let (at, row, hd) = (layer.row(slot), layer.shape.row(), layer.shape.head_dim);
        let k_row = self.keys.get_mut(at..at + row).unwrap_or(&mut []);
        let q = scratch.get_mut(..hd).unwrap_or(&mut []);
        for (h, ((k, v), kq)) in key
            .chunks_exact(hd)
            .zip(value.chunks_exact(hd))
            .zip(k_row.chunks_exact_mut(hd))
            .enumerate()
        {
            let head = layer.head(h);
            let (Some(ks), Some(vs)) = (
                self.key_scales.get_mut(head.scale(slot)),
                self.value_scales.get_mut(head.scale(slot)),
            ) else {
                continue;
            };
            quantize_with(isa, k, hd, kq, core::slice::from_mut(ks));
            // Values go in column `slot` of the transposed rows.
            quantize_with(isa, v, hd, q, core::slice::from_mut(vs));
            for (d, &x) in q.iter().enumerate() {
                if let Some(cell) = self.values.get_mut(head.value_row(d) + slot) {
                    *cell = x;
                }
            }
        }
    }

    /// Two query heads share each key load.
    fn scores(
        &self,
        isa: Isa,
        head: KvHead,
        q: &[f32],
        from: usize,
        scores: [&mut [f32]; 2],
        scratch: KeyScratch<'_>,
    ) {
        let (hd, row) = (head.shape.head_dim, head.shape.row());
        let scale = 1.0 / libm::sqrtf(hd as f32);
        let k = self.keys.get(head.key(from)..).unwrap_or(&[]);
        let k: &[u8] = bytemuck::cast_slice(k);
        let ks = self.key_scales.get(head.scale(from)..).unwrap_or(&[]);
        // Scores times the query's and each key's scale, and 1/√head_dim.
        let rescale = |s: &mut [f32], q_scale: f32| {
            let qs = q_scale * scale;
            for (s, &ks) in s.iter_mut().zip(ks) {
                *s *= qs * ks;
            }
        };
        let [sa, sb] = scores;
        let KeyScratch { query, packed } = scratch;
        if q.len() == 2 * hd && query.len() >= 2 * hd && packed.len() >= hd {
            let (qa, qb) = q.split_at(hd);
            let (q8a, q8b) = query.split_at_mut(hd);
            let (pa, pb) = packed.split_at_mut(hd / 2);
            let qs = [
                quantize_query(isa, qa, q8a, pa),
                quantize_query(isa, qb, q8b, pb),
            ];
            let (q8a, q8b) = (&q8a[..], q8b.get(..hd).unwrap_or(&[]));
            let (pa, pb) = (&pa[..], pb.get(..hd / 2).unwrap_or(&[]));
            dot_rows_i8_pair(isa, [&mut *sa, &mut *sb], k, row, [q8a, q8b], [pa, pb]);
            rescale(sa, qs[0]);
            rescale(sb, qs[1]);
            return;
        }
        for (qi, s) in q.chunks_exact(hd).zip([sa, sb]) {
            let qs = quantize_query(isa, qi, query, packed);
            let (q8, packed) = (
                query.get(..hd).unwrap_or(&[]),
                packed.get(..hd / 2).unwrap_or(&[]),
            );
            dot_rows_i8(isa, s, k, row, q8, packed);
            rescale(s, qs);
        }
    }

    /// Each head's scores become 16-bit weights, one integer dot product per
    /// value row (for two heads at once), one rescale per head.
    fn weigh(
        &self,
        isa: Isa,
        head: KvHead,
        positions: usize,
        out: &mut [f32],
        scratch: &mut AttentionScratch<'_>,
    ) {
        let (hd, cap) = (head.shape.head_dim, head.shape.capacity);
        let vs = self.value_scales.get(head.scale(0)..).unwrap_or(&[]);
        let v = self.values.get(head.value_row(0)..).unwrap_or(&[]);
        let v: &[u8] = bytemuck::cast_slice(v);
        let (vs_len, padded) = (head.shape.value_stride(), positions.div_ceil(16) * 16);
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

    fn slide(&mut self, layer: KvLayer, drop: usize, keep: usize) {
        let shape: &KvShape = &layer.shape;
        let sinks = shape.sinks;
        let (from, to) = (layer.row(sinks + drop), layer.row(sinks));
        move_within(self.keys, from, to, keep * shape.row());
        for kvh in 0..shape.kv_heads {
            let head = layer.head(kvh);
            let r = head.scale(0);
            move_within(self.key_scales, r + sinks + drop, r + sinks, keep);
            move_within(self.value_scales, r + sinks + drop, r + sinks, keep);
            for d in 0..shape.head_dim {
                let r = head.value_row(d);
                move_within(self.values, r + sinks + drop, r + sinks, keep);
            }
        }
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
    exp_nonpositive_shifted(isa, scores, max);
    let (mut sum, mut max_w) = (0.0f32, 0.0f32);
    let vs = vs.iter().copied().chain(core::iter::repeat(0.0));
    for (s, v) in scores.iter_mut().zip(vs) {
        let e = *s;
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
