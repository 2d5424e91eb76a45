//! The numeric kernels of the forward pass: few, portable and deterministic.
//!
//! Every float reduction runs in a fixed order written here (the compiler
//! never reorders float arithmetic), and the transcendental functions come
//! from `libm`, so results are bit-identical on every target. Integer dot
//! products accumulate exactly in i32, so the Cortex-M4 fast path (the `dsp`
//! cargo feature on ARM targets: SMLAD on pairs of 16-bit lanes) gives the
//! same sums as the portable one.

use crate::weights::{F32Bytes, Matrix, MatrixData};

/// An activation vector quantized to int8 in groups, each with its own scale
/// (`x ≈ values * scale`).
#[derive(Clone, Copy, Debug)]
pub struct QuantizedVector<'s> {
    /// The int8 values.
    pub values: &'s [i8],
    /// The same values as 16-bit lane pairs for the DSP path ([`pack_pairs`]).
    pub packed: &'s [u32],
    /// One scale per group.
    pub scales: &'s [f32],
    /// Values per scale.
    pub group_size: usize,
}

/// Lay int8 values out for the paired dot product: each four values
/// `x0 x1 x2 x3` become two words of signed 16-bit lanes, `(x2:x0)` and
/// `(x3:x1)` — the order in which `SXTB16` unpacks four weight bytes.
pub fn pack_pairs(values: &[i8], packed: &mut [u32]) {
    let lane = |v: i8| u32::from(i16::from(v) as u16);
    for (x, p) in values.chunks_exact(4).zip(packed.chunks_exact_mut(2)) {
        if let ([x0, x1, x2, x3], [a, b]) = (x, p) {
            *a = lane(*x0) | (lane(*x2) << 16);
            *b = lane(*x1) | (lane(*x3) << 16);
        }
    }
}

/// Dot product of int8 weights with activations packed by [`pack_pairs`]:
/// the portable reference of the DSP kernel (same integer result).
pub fn dot_packed_portable(w: &[u8], x: &[u32]) -> i32 {
    let half =
        |word: u32, high: bool| i32::from((if high { word >> 16 } else { word }) as u16 as i16);
    let mut acc = 0i32;
    for (wq, xp) in w.chunks_exact(4).zip(x.chunks_exact(2)) {
        if let ([w0, w1, w2, w3], [a, b]) = (wq, xp) {
            acc += i32::from(*w0 as i8) * half(*a, false)
                + i32::from(*w2 as i8) * half(*a, true)
                + i32::from(*w1 as i8) * half(*b, false)
                + i32::from(*w3 as i8) * half(*b, true);
        }
    }
    acc
}

/// The Cortex-M4 (ARMv7E-M DSP) kernels: per 8 weights two word loads,
/// four `SXTB16` and four `SMLAD` (two 16-bit products each).
#[cfg(all(target_arch = "arm", feature = "dsp"))]
#[allow(unsafe_code)]
mod dsp {
    /// Same result as [`super::dot_packed_portable`].
    #[inline(always)]
    pub fn dot_packed(w: &[u8], x: &[u32]) -> i32 {
        let blocks = (w.len() / 8).min(x.len() / 4);
        let mut acc = 0i32;
        if blocks > 0 {
            // SAFETY: reads `blocks * 8` bytes of `w` and `blocks * 4` words
            // of `x` (word-aligned, as LDRD needs; the M4 allows unaligned
            // LDR from `w`); writes no memory.
            unsafe {
                core::arch::asm!(
                    "2:",
                    "ldr {w}, [{wp}], #4",
                    "ldrd {x0}, {x1}, [{xp}], #8",
                    "sxtb16 {t}, {w}",
                    "smlad {acc}, {t}, {x0}, {acc}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {acc}, {t}, {x1}, {acc}",
                    "ldr {w}, [{wp}], #4",
                    "ldrd {x0}, {x1}, [{xp}], #8",
                    "sxtb16 {t}, {w}",
                    "smlad {acc}, {t}, {x0}, {acc}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {acc}, {t}, {x1}, {acc}",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    wp = inout(reg) w.as_ptr() => _,
                    xp = inout(reg) x.as_ptr() => _,
                    n = inout(reg) blocks => _,
                    acc = inout(reg) acc,
                    w = out(reg) _,
                    x0 = out(reg) _,
                    x1 = out(reg) _,
                    t = out(reg) _,
                    options(nostack, readonly),
                );
            }
        }
        let (w_rest, x_rest) = (
            w.get(blocks * 8..).unwrap_or(&[]),
            x.get(blocks * 4..).unwrap_or(&[]),
        );
        acc + super::dot_packed_portable(w_rest, x_rest)
    }

    /// Dot products of two rows' groups (`a`, `b`, equal lengths, a multiple
    /// of 8) with the same packed activations: each activation word is loaded
    /// once for both rows.
    #[inline(always)]
    pub fn dot_packed_pair(a: &[u8], b: &[u8], x: &[u32]) -> (i32, i32) {
        let blocks = (a.len() / 8).min(b.len() / 8).min(x.len() / 4);
        let (mut sa, mut sb) = (0i32, 0i32);
        if blocks > 0 {
            // SAFETY: reads `blocks * 8` bytes of `a` and of `b` and
            // `blocks * 4` words of `x` (word-aligned for LDRD); writes no memory.
            unsafe {
                core::arch::asm!(
                    "2:",
                    "ldrd {x0}, {x1}, [{xp}], #8",
                    "ldr {wa}, [{pa}], #4",
                    "ldr {wb}, [{pb}], #4",
                    "sxtb16 {t}, {wa}",
                    "smlad {sa}, {t}, {x0}, {sa}",
                    "sxtb16 {t}, {wa}, ror #8",
                    "smlad {sa}, {t}, {x1}, {sa}",
                    "sxtb16 {t}, {wb}",
                    "smlad {sb}, {t}, {x0}, {sb}",
                    "sxtb16 {t}, {wb}, ror #8",
                    "smlad {sb}, {t}, {x1}, {sb}",
                    "ldrd {x0}, {x1}, [{xp}], #8",
                    "ldr {wa}, [{pa}], #4",
                    "ldr {wb}, [{pb}], #4",
                    "sxtb16 {t}, {wa}",
                    "smlad {sa}, {t}, {x0}, {sa}",
                    "sxtb16 {t}, {wa}, ror #8",
                    "smlad {sa}, {t}, {x1}, {sa}",
                    "sxtb16 {t}, {wb}",
                    "smlad {sb}, {t}, {x0}, {sb}",
                    "sxtb16 {t}, {wb}, ror #8",
                    "smlad {sb}, {t}, {x1}, {sb}",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    pa = inout(reg) a.as_ptr() => _,
                    pb = inout(reg) b.as_ptr() => _,
                    xp = inout(reg) x.as_ptr() => _,
                    n = inout(reg) blocks => _,
                    sa = inout(reg) sa,
                    sb = inout(reg) sb,
                    wa = out(reg) _,
                    wb = out(reg) _,
                    x0 = out(reg) _,
                    x1 = out(reg) _,
                    t = out(reg) _,
                    options(nostack, readonly),
                );
            }
        }
        (sa, sb)
    }
}

/// True when the int8 kernels use the ARMv7E-M DSP instructions.
pub const DSP: bool = cfg!(all(target_arch = "arm", feature = "dsp"));

/// One group's integer dot product, by the fastest exact path of the target
/// (`packed` is `values` laid out by [`pack_pairs`]).
#[inline(always)]
pub fn dot_group(w: &[u8], values: &[i8], packed: &[u32]) -> i32 {
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    {
        let _ = values;
        dsp::dot_packed(w, packed)
    }
    #[cfg(not(all(target_arch = "arm", feature = "dsp")))]
    {
        let _ = packed;
        dot_i8(w, values)
    }
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

/// Exact int8 dot product (weights as the file's bytes).
#[inline]
pub fn dot_i8(w: &[u8], x: &[i8]) -> i32 {
    w.iter()
        .zip(x)
        .map(|(&w, &x)| i32::from(w as i8) * i32::from(x))
        .sum()
}

/// Quantize `x` to int8 in groups of `group_size` (symmetric, scale =
/// max|x| / 127, round half away from zero).
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
                let r = v * inv;
                // `as` truncates toward zero (and saturates): r ± 0.5 rounds.
                *q = ((r + libm::copysignf(0.5, r)) as i32).clamp(-127, 127) as i8;
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
            #[cfg(all(target_arch = "arm", feature = "dsp"))]
            if group_size.is_multiple_of(8) {
                // Rows two at a time: each activation word serves both.
                let mut rows = weights
                    .chunks_exact(cols)
                    .zip(scales.0.chunks_exact(groups * 4));
                let mut outs = out.chunks_exact_mut(2);
                for pair in outs.by_ref() {
                    let (Some((ra, sa)), Some((rb, sb))) = (rows.next(), rows.next()) else {
                        break;
                    };
                    let (mut acc_a, mut acc_b) = (0.0f32, 0.0f32);
                    for (((((ga, gb), xp), wsa), wsb), &xs) in ra
                        .chunks_exact(group_size)
                        .zip(rb.chunks_exact(group_size))
                        .zip(xq.packed.chunks_exact(group_size / 2))
                        .zip(sa.chunks_exact(4))
                        .zip(sb.chunks_exact(4))
                        .zip(xq.scales)
                    {
                        let (da, db) = dsp::dot_packed_pair(ga, gb, xp);
                        acc_a += da as f32 * (f32_le(wsa) * xs);
                        acc_b += db as f32 * (f32_le(wsb) * xs);
                    }
                    if let [oa, ob] = pair {
                        *oa = acc_a;
                        *ob = acc_b;
                    }
                }
                // An odd last row.
                if let (Some(o), Some((row, row_scales))) =
                    (outs.into_remainder().first_mut(), rows.next())
                {
                    let mut acc = 0.0f32;
                    for ((((wg, xg), xp), ws), &xs) in row
                        .chunks_exact(group_size)
                        .zip(xq.values.chunks_exact(group_size))
                        .zip(xq.packed.chunks_exact(group_size / 2))
                        .zip(row_scales.chunks_exact(4))
                        .zip(xq.scales)
                    {
                        acc += dot_group(wg, xg, xp) as f32 * (f32_le(ws) * xs);
                    }
                    *o = acc;
                }
                return;
            }
            for ((o, row), row_scales) in out
                .iter_mut()
                .zip(weights.chunks_exact(cols))
                .zip(scales.0.chunks_exact(groups * 4))
            {
                let mut acc = 0.0f32;
                for ((((wg, xg), xp), ws), &xs) in row
                    .chunks_exact(group_size)
                    .zip(xq.values.chunks_exact(group_size))
                    .zip(xq.packed.chunks_exact(group_size / 2))
                    .zip(row_scales.chunks_exact(4))
                    .zip(xq.scales)
                {
                    acc += dot_group(wg, xg, xp) as f32 * (f32_le(ws) * xs);
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

/// `e^x` in single precision, to about 1 ulp: Cody–Waite range reduction
/// and a degree-6 polynomial. Only f32 arithmetic — no `f64`, which a
/// Cortex-M4 would emulate in software — and the same bits on every target.
/// Underflows to 0 below −87.3 (so `exp(−∞) = 0`) and overflows to ∞ above
/// 88.37 (just short of `f32::MAX`'s logarithm, 88.72).
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75; // ln 2 in two parts: n·LN2_HI is exact
    const LN2_LO: f32 = 1.428_606_8e-6;
    if x.is_nan() {
        return x;
    }
    if x > 88.37 {
        return f32::INFINITY;
    }
    if x < -87.3 {
        return 0.0;
    }
    let t = x * LOG2_E;
    let n = (t + libm::copysignf(0.5, t)) as i32; // round to nearest
    let nf = n as f32;
    let r = (x - nf * LN2_HI) - nf * LN2_LO; // |r| <= ln2 / 2
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n + 127) as u32) << 23)
}

/// In-place softmax.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = exp(*v - max);
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
        *g = *g / (1.0 + exp(-*g)) * u;
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
        // W = [[1..=8], [-1..=-8]] / 8, x = [1, 2, ..., 8] / 8.
        let w: heapless::Vec<f32, 16> = (1..=8)
            .map(|i| i as f32 / 8.0)
            .chain((1..=8).map(|i| -i as f32 / 8.0))
            .collect();
        let x: heapless::Vec<f32, 8> = (1..=8).map(|i| i as f32 / 8.0).collect();
        let exact = 204.0f32 / 64.0; // sum i^2 / 64
        let wb = bytes_f32(&w);
        let m = Matrix {
            rows: 2,
            cols: 8,
            data: MatrixData::F32(&wb),
        };
        let mut out = [0.0; 2];
        matvec(&mut out, &m, &x, None);
        assert!((out[0] - exact).abs() < 1e-5 && (out[1] + exact).abs() < 1e-5);

        let f16: heapless::Vec<u8, 32> = w
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes())
            .collect();
        let m = Matrix {
            rows: 2,
            cols: 8,
            data: MatrixData::F16(&f16),
        };
        matvec(&mut out, &m, &x, None);
        assert!((out[0] - exact).abs() < 2e-3, "{}", out[0]);

        // int8, groups of 4.
        let mut wq = [0i8; 16];
        let mut ws = [0.0f32; 4];
        quantize(&w, 4, &mut wq, &mut ws);
        let wq_bytes: heapless::Vec<u8, 16> = wq.iter().map(|&v| v as u8).collect();
        let ws_bytes = bytes_f32(&ws);
        let m = Matrix {
            rows: 2,
            cols: 8,
            data: MatrixData::Int8 {
                weights: &wq_bytes,
                scales: F32Bytes(&ws_bytes),
                group_size: 4,
            },
        };
        let mut xq = [0i8; 8];
        let mut xs = [0.0f32; 2];
        quantize(&x, 4, &mut xq, &mut xs);
        let mut packed = [0u32; 4];
        pack_pairs(&xq, &mut packed);
        let q = QuantizedVector {
            values: &xq,
            packed: &packed,
            scales: &xs,
            group_size: 4,
        };
        matvec(&mut out, &m, &x, Some(&q));
        assert!(
            (out[0] - exact).abs() < 0.02 && (out[1] + exact).abs() < 0.02,
            "{out:?}"
        );
        let mut row = [0.0f32; 8];
        dequantize_row(&mut row, &m, 1);
        assert!(row.iter().zip(&w[8..]).all(|(a, b)| (a - b).abs() < 0.01));
    }

    #[test]
    fn packed_dot_product_equals_the_plain_one() {
        let mut seed = 12345u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 16) as u8
        };
        for len in [4usize, 8, 32, 36, 64] {
            let w: heapless::Vec<u8, 64> = (0..len).map(|_| next()).collect();
            let mut x: heapless::Vec<i8, 64> = (0..len).map(|_| next() as i8).collect();
            x[0] = -128; // extremes
            let mut packed = [0u32; 32];
            pack_pairs(&x, &mut packed);
            let packed = &packed[..len / 2];
            assert_eq!(dot_packed_portable(&w, packed), dot_i8(&w, &x), "len {len}");
            assert_eq!(dot_group(&w, &x, packed), dot_i8(&w, &x));
        }
    }

    #[test]
    fn exp_is_accurate_and_total() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = f64::from(exp(x));
            let want = libm::exp(f64::from(x));
            worst = worst.max(((got - want) / want).abs());
            x += 0.0371;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
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
