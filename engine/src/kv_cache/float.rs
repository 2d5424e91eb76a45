//! Float caches: keys and values as f32 or f16, row after row, attention in
//! f32 (softmax, then the probability-weighted sum of values).

use super::{move_within, AttentionScratch, KeyScratch, KvHead, KvLayer, Store};
use crate::kernels::{scores_f32, softmax_with, weighted_sum_f32, Isa};

/// A stored float: f32 itself, or an f16 as its bits (`u16`). Each supplies
/// its conversion and the two attention loops over a head's rows.
pub trait FloatValue: Copy + core::fmt::Debug {
    /// The stored form of `x`.
    fn store(x: f32) -> Self;
    /// `out[t] = dot(q, rows[t·stride..][..q.len()])`.
    fn scores(isa: Isa, out: &mut [f32], rows: &[Self], stride: usize, q: &[f32]);
    /// `out = Σ_t p[t] · rows[t·stride..][..out.len()]`.
    fn weighted_sum(isa: Isa, out: &mut [f32], rows: &[Self], stride: usize, p: &[f32]);
}

impl FloatValue for f32 {
    fn store(x: f32) -> Self {
        x
    }
    fn scores(isa: Isa, out: &mut [f32], rows: &[f32], stride: usize, q: &[f32]) {
        scores_f32(isa, out, rows, stride, q)
    }
    fn weighted_sum(isa: Isa, out: &mut [f32], rows: &[f32], stride: usize, p: &[f32]) {
        weighted_sum_f32(isa, out, rows, stride, p)
    }
}

/// f16 bits (portable loops on every platform).
impl FloatValue for u16 {
    fn store(x: f32) -> Self {
        half::f16::from_f32(x).to_bits()
    }
    fn scores(_: Isa, out: &mut [f32], rows: &[u16], stride: usize, q: &[f32]) {
        let hd = q.len();
        for (t, s) in out.iter_mut().enumerate() {
            let k = rows.get(t * stride..t * stride + hd).unwrap_or(&[]);
            *s = q.iter().zip(k).fold(0.0f32, |a, (x, &y)| {
                a + x * half::f16::from_bits(y).to_f32()
            });
        }
    }
    fn weighted_sum(_: Isa, out: &mut [f32], rows: &[u16], stride: usize, p: &[f32]) {
        let hd = out.len();
        out.fill(0.0);
        for (t, &pt) in p.iter().enumerate() {
            let v = rows.get(t * stride..t * stride + hd).unwrap_or(&[]);
            for (x, &v) in out.iter_mut().zip(v) {
                *x += pt * half::f16::from_bits(v).to_f32();
            }
        }
    }
}

/// Float keys and values, `[layer][position][kv head][head_dim]` each.
#[derive(Debug)]
pub struct FloatKv<'a, T> {
    /// Keys.
    pub keys: &'a mut [T],
    /// Values.
    pub values: &'a mut [T],
}

impl<T: FloatValue> Store for FloatKv<'_, T> {
    fn write(
        &mut self,
        _: Isa,
        layer: KvLayer,
        slot: usize,
        key: &[f32],
        value: &[f32],
        _: &mut [i8],
    ) {
        let (at, row) = (layer.row(slot), layer.shape.row());
        for (rows, src) in [(&mut *self.keys, key), (&mut *self.values, value)] {
            let dst = rows.get_mut(at..at + row).unwrap_or(&mut []);
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = T::store(s);
            }
        }
    }

    fn scores(
        &self,
        isa: Isa,
        head: KvHead,
        q: &[f32],
        from: usize,
        scores: [&mut [f32]; 2],
        _: KeyScratch<'_>,
    ) {
        let hd = head.shape.head_dim;
        let scale = 1.0 / libm::sqrtf(hd as f32);
        let k = self.keys.get(head.key(from)..).unwrap_or(&[]);
        for (qi, s) in q.chunks_exact(hd).zip(scores) {
            T::scores(isa, s, k, head.shape.row(), qi);
            for s in s.iter_mut() {
                *s *= scale;
            }
        }
    }

    fn weigh(
        &self,
        isa: Isa,
        head: KvHead,
        positions: usize,
        out: &mut [f32],
        scratch: &mut AttentionScratch<'_>,
    ) {
        let (hd, cap) = (head.shape.head_dim, head.shape.capacity);
        let v = self.values.get(head.key(0)..).unwrap_or(&[]);
        for (o, s) in out.chunks_exact_mut(hd).zip(scratch.scores.chunks_mut(cap)) {
            let s = s.get_mut(..positions).unwrap_or(&mut []);
            softmax_with(isa, s);
            T::weighted_sum(isa, o, v, head.shape.row(), s);
        }
    }

    fn slide(&mut self, layer: KvLayer, drop: usize, keep: usize) {
        let sinks = layer.shape.sinks;
        let (from, to) = (layer.row(sinks + drop), layer.row(sinks));
        let n = keep * layer.shape.row();
        move_within(self.keys, from, to, n);
        move_within(self.values, from, to, n);
    }
}
