//! The numeric kernels of the forward pass: few, portable and deterministic.
//!
//! Every float reduction runs in a fixed order written here (the compiler
//! never reorders float arithmetic), and the transcendental functions come
//! from `libm`, so results are bit-identical on every target. Integer dot
//! products accumulate exactly in i32.

use crate::weights::{F32Bytes, Matrix, MatrixData};

/// An activation vector quantized to int8 in groups, each with its own scale
/// (`x ≈ values * scale`).
#[derive(Clone, Copy, Debug)]
pub struct QuantizedVector<'s> {
    /// The int8 values.
    pub values: &'s [i8],
    /// One scale per group.
    pub scales: &'s [f32],
    /// Values per scale.
    pub group_size: usize,
}

#[inline]
fn f32_le(b: &[u8]) -> f32 {
    match *b {
        [a, b, c, d] => f32::from_le_bytes([a, b, c, d]),
        _ => 0.0,
    }
}

#[inline]
fn f16_le(b: &[u8]) -> f32 {
    match *b {
        [a, b] => half::f16::from_bits(u16::from_le_bytes([a, b])).to_f32(),
        _ => 0.0,
    }
}

/// Sum eight partial sums in a fixed tree order.
#[inline]
fn sum8(a: [f32; 8]) -> f32 {
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

/// Dot product of little-endian values (`width` bytes each, decoded by
/// `decode`) with `x`, in eight interleaved lanes.
#[inline]
fn dot_lanes(w: &[u8], x: &[f32], width: usize, decode: impl Fn(&[u8]) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let w_blocks = w.chunks_exact(8 * width);
    let x_blocks = x.chunks_exact(8);
    let (w_tail, x_tail) = (w_blocks.remainder(), x_blocks.remainder());
    for (wb, xb) in w_blocks.zip(x_blocks) {
        for ((a, wv), &xv) in acc.iter_mut().zip(wb.chunks_exact(width)).zip(xb) {
            *a += decode(wv) * xv;
        }
    }
    let mut tail = 0.0f32;
    for (wv, &xv) in w_tail.chunks_exact(width).zip(x_tail) {
        tail += decode(wv) * xv;
    }
    sum8(acc) + tail
}

/// Exact int8 dot product.
#[inline]
pub fn dot_i8(w: &[u8], x: &[i8]) -> i32 {
    w.iter()
        .zip(x)
        .map(|(&w, &x)| i32::from(w as i8) * i32::from(x))
        .sum()
}

/// Quantize `x` to int8 in groups of `group_size` (symmetric, scale = max|x| / 127).
pub fn quantize(x: &[f32], group_size: usize, values: &mut [i8], scales: &mut [f32]) {
    if group_size == 0 {
        return;
    }
    for ((xg, qg), scale) in x
        .chunks(group_size)
        .zip(values.chunks_mut(group_size))
        .zip(scales.iter_mut())
    {
        let max = xg.iter().fold(0.0f32, |m, v| m.max(libm::fabsf(*v)));
        if max > 0.0 && max.is_finite() {
            let inv = 127.0 / max;
            for (q, &v) in qg.iter_mut().zip(xg) {
                *q = libm::roundf(v * inv).clamp(-127.0, 127.0) as i8;
            }
            *scale = max / 127.0;
        } else {
            qg.fill(0);
            *scale = 0.0;
        }
    }
}

/// `out = W x`. Int8 matrices use `xq`, the int8 form of `x` in the matrix's
/// group size; the float formats use `x`.
pub fn matvec(out: &mut [f32], w: &Matrix<'_>, x: &[f32], xq: Option<&QuantizedVector<'_>>) {
    let cols = w.cols.max(1);
    match w.data {
        MatrixData::F32(bytes) => {
            for (o, row) in out.iter_mut().zip(bytes.chunks_exact(cols * 4)) {
                *o = dot_lanes(row, x, 4, f32_le);
            }
        }
        MatrixData::F16(bytes) => {
            for (o, row) in out.iter_mut().zip(bytes.chunks_exact(cols * 2)) {
                *o = dot_lanes(row, x, 2, f16_le);
            }
        }
        MatrixData::Int8 {
            weights,
            scales,
            group_size,
        } => {
            let Some(xq) = xq.filter(|q| q.group_size == group_size && group_size > 0) else {
                out.fill(0.0);
                return;
            };
            let groups = cols / group_size;
            for ((o, row), row_scales) in out
                .iter_mut()
                .zip(weights.chunks_exact(cols))
                .zip(scales.0.chunks_exact(groups * 4))
            {
                let mut acc = 0.0f32;
                for (((wg, xg), ws), &xs) in row
                    .chunks_exact(group_size)
                    .zip(xq.values.chunks_exact(group_size))
                    .zip(row_scales.chunks_exact(4))
                    .zip(xq.scales)
                {
                    acc += dot_i8(wg, xg) as f32 * (f32_le(ws) * xs);
                }
                *o = acc;
            }
        }
    }
}

/// Copy row `row` of `w` into `out`, as f32 (the embedding lookup).
pub fn dequantize_row(out: &mut [f32], w: &Matrix<'_>, row: usize) {
    let cols = w.cols;
    match w.data {
        MatrixData::F32(bytes) => {
            let r = bytes.chunks_exact(cols * 4).nth(row).unwrap_or(&[]);
            for (o, b) in out.iter_mut().zip(r.chunks_exact(4)) {
                *o = f32_le(b);
            }
        }
        MatrixData::F16(bytes) => {
            let r = bytes.chunks_exact(cols * 2).nth(row).unwrap_or(&[]);
            for (o, b) in out.iter_mut().zip(r.chunks_exact(2)) {
                *o = f16_le(b);
            }
        }
        MatrixData::Int8 {
            weights,
            scales,
            group_size,
        } => {
            let groups = cols / group_size.max(1);
            let r = weights.chunks_exact(cols).nth(row).unwrap_or(&[]);
            let s = scales.0.chunks_exact(groups * 4).nth(row).unwrap_or(&[]);
            for ((og, wg), sb) in out
                .chunks_mut(group_size.max(1))
                .zip(r.chunks_exact(group_size.max(1)))
                .zip(s.chunks_exact(4))
            {
                let scale = f32_le(sb);
                for (o, &q) in og.iter_mut().zip(wg) {
                    *o = f32::from(q as i8) * scale;
                }
            }
        }
    }
}

/// `out = x / rms(x) * weight`.
pub fn rmsnorm(out: &mut [f32], x: &[f32], weight: F32Bytes<'_>, eps: f32) {
    let ss = x.iter().fold(0.0f32, |s, v| s + v * v);
    let inv = 1.0 / libm::sqrtf(ss / x.len().max(1) as f32 + eps);
    for ((o, &v), w) in out.iter_mut().zip(x).zip(weight.iter()) {
        *o = w * (v * inv);
    }
}

/// In-place softmax.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = libm::expf(*v - max);
        sum += *v;
    }
    if sum > 0.0 {
        for v in x.iter_mut() {
            *v /= sum;
        }
    }
}

/// SwiGLU: `gate = silu(gate) * up`.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + libm::expf(-*g)) * u;
    }
}

/// RoPE inverse frequencies `theta^(-2i/head_dim)`, `i < head_dim / 2`.
pub fn rope_frequencies(theta: f32, head_dim: usize, out: &mut [f32]) {
    for (i, f) in out.iter_mut().enumerate() {
        *f = 1.0 / libm::powf(theta, (2 * i) as f32 / head_dim as f32);
    }
}

/// Cosines and sines of the RoPE angles at `position` (may be negative, to
/// rotate back).
pub fn rope_angles(position: f32, frequencies: &[f32], cos: &mut [f32], sin: &mut [f32]) {
    for ((f, c), s) in frequencies.iter().zip(cos.iter_mut()).zip(sin.iter_mut()) {
        let angle = position * f;
        *c = libm::cosf(angle);
        *s = libm::sinf(angle);
    }
}

/// Rotate one head (half-split pairs: element `i` with `i + head_dim/2`).
pub fn rope_rotate(head: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = head.len() / 2;
    let (lo, hi) = head.split_at_mut(half);
    for (((a, b), &c), &s) in lo.iter_mut().zip(hi.iter_mut()).zip(cos).zip(sin) {
        let (x, y) = (*a, *b);
        *a = x * c - y * s;
        *b = x * s + y * c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_f32(v: &[f32]) -> heapless::Vec<u8, 256> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn float_and_int8_matvec_agree_with_the_definition() {
        // W = [[1..=10], [-1..=-10]] / 10, x = [1, 2, ..., 10] / 10.
        let w: heapless::Vec<f32, 20> = (1..=10)
            .map(|i| i as f32 / 10.0)
            .chain((1..=10).map(|i| -i as f32 / 10.0))
            .collect();
        let x: heapless::Vec<f32, 10> = (1..=10).map(|i| i as f32 / 10.0).collect();
        let exact = 3.85f32; // sum i^2 / 100
        let wb = bytes_f32(&w);
        let m = Matrix {
            rows: 2,
            cols: 10,
            data: MatrixData::F32(&wb),
        };
        let mut out = [0.0; 2];
        matvec(&mut out, &m, &x, None);
        assert!((out[0] - exact).abs() < 1e-5 && (out[1] + exact).abs() < 1e-5);

        let f16: heapless::Vec<u8, 40> = w
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes())
            .collect();
        let m = Matrix {
            rows: 2,
            cols: 10,
            data: MatrixData::F16(&f16),
        };
        matvec(&mut out, &m, &x, None);
        assert!((out[0] - exact).abs() < 2e-3, "{}", out[0]);

        // int8, groups of 5.
        let mut wq = [0i8; 20];
        let mut ws = [0.0f32; 4];
        quantize(&w, 5, &mut wq, &mut ws);
        let wq_bytes: heapless::Vec<u8, 20> = wq.iter().map(|&v| v as u8).collect();
        let ws_bytes = bytes_f32(&ws);
        let m = Matrix {
            rows: 2,
            cols: 10,
            data: MatrixData::Int8 {
                weights: &wq_bytes,
                scales: F32Bytes(&ws_bytes),
                group_size: 5,
            },
        };
        let mut xq = [0i8; 10];
        let mut xs = [0.0f32; 2];
        quantize(&x, 5, &mut xq, &mut xs);
        let q = QuantizedVector {
            values: &xq,
            scales: &xs,
            group_size: 5,
        };
        matvec(&mut out, &m, &x, Some(&q));
        assert!(
            (out[0] - exact).abs() < 0.02 && (out[1] + exact).abs() < 0.02,
            "{out:?}"
        );
        let mut row = [0.0f32; 10];
        dequantize_row(&mut row, &m, 1);
        assert!(row.iter().zip(&w[10..]).all(|(a, b)| (a - b).abs() < 0.01));
    }

    #[test]
    fn quantize_handles_zeros_and_extremes() {
        let mut q = [0i8; 4];
        let mut s = [1.0f32; 2];
        quantize(&[0.0, 0.0, -2.0, 1.0], 2, &mut q, &mut s);
        assert_eq!((q, s), ([0, 0, -127, 64], [0.0, 2.0 / 127.0]));
    }

    #[test]
    fn norm_softmax_and_rope_behave() {
        let ones = bytes_f32(&[1.0; 4]);
        let mut out = [0.0; 4];
        rmsnorm(&mut out, &[2.0, -2.0, 2.0, -2.0], F32Bytes(&ones), 0.0);
        assert_eq!(out, [1.0, -1.0, 1.0, -1.0]);
        let mut p = [1.0, 2.0, 3.0, f32::NEG_INFINITY];
        softmax(&mut p);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[3] == 0.0 && p[2] > p[1]);

        let mut freq = [0.0; 2];
        rope_frequencies(10_000.0, 4, &mut freq);
        assert_eq!(freq[0], 1.0);
        let (mut c, mut s) = ([0.0; 2], [0.0; 2]);
        let mut head = [1.0, 0.5, -0.25, 2.0];
        let original = head;
        rope_angles(7.0, &freq, &mut c, &mut s);
        rope_rotate(&mut head, &c, &s);
        let norm = |h: &[f32]| h[0] * h[0] + h[2] * h[2];
        assert!((norm(&head) - norm(&original)).abs() < 1e-5);
        rope_angles(-7.0, &freq, &mut c, &mut s);
        rope_rotate(&mut head, &c, &s);
        assert!(head
            .iter()
            .zip(&original)
            .all(|(a, b)| (a - b).abs() < 1e-5));
    }
}
