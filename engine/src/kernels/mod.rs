//! The numeric kernels of the forward pass: few, portable and deterministic.
//!
//! Every float reduction runs in a fixed order written here (the compiler
//! never reorders float arithmetic), and the transcendental functions come
//! from `libm`, so results are bit-identical on every target. Integer dot
//! products accumulate exactly in i32, so the fast paths — x86-64 AVX2 and
//! AVX-512 VNNI, the Cortex-M4's SMLAD — give the same sums as the portable
//! ones. Which family runs is an [`Isa`], chosen per session
//! ([`crate::session::SessionOptions::isa`]); the portable family is the
//! reference the others are tested against.

#[cfg(all(target_arch = "arm", feature = "dsp"))]
mod arm_dsp;
mod isa;
mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use isa::Isa;
pub use portable::{dot_f32, dot_i8, dot_packed_portable, sum8};
use portable::{f16_le, f32_le};

use crate::weights::{F32Bytes, Int8Layout, Matrix, MatrixData};

/// An activation vector quantized to int8 in groups, each with its own scale
/// (`x ≈ values * scale`).
#[derive(Clone, Copy, Debug)]
pub struct QuantizedVector<'s> {
    /// The int8 values (in −127..=127, as [`quantize`] makes them).
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

/// An int8 matrix as the kernels take it: row-major weights (the file's
/// bytes), `[rows, cols / group]` little-endian f32 scales.
#[derive(Clone, Copy, Debug)]
pub struct Int8Rows<'a> {
    /// The weights.
    pub weights: &'a [u8],
    /// The scales.
    pub scales: &'a [u8],
    /// Inputs per row.
    pub cols: usize,
    /// Inputs per scale.
    pub group: usize,
    /// The order of the weights.
    pub layout: Int8Layout,
}

impl Int8Rows<'_> {
    /// The number of groups per row if `rows` rows, `x_values` activations and
    /// `x_scales` activation scales are enough for every read of a matvec
    /// (and `multiple` divides the group size); `None` otherwise. (Only the
    /// x86 and DSP families call it.)
    #[cfg(any(target_arch = "x86_64", all(target_arch = "arm", feature = "dsp")))]
    pub(crate) fn checked_groups(
        &self,
        rows: usize,
        x_values: usize,
        x_scales: usize,
        multiple: usize,
    ) -> Option<usize> {
        let groups = self.cols.checked_div(self.group)?;
        let fits = self.group.is_multiple_of(multiple)
            && self.cols.is_multiple_of(self.group)
            && x_values >= self.cols
            && x_scales >= groups
            && self.weights.len() >= rows.checked_mul(self.cols)?
            && self.scales.len() >= rows.checked_mul(groups)?.checked_mul(4)?;
        fits.then_some(groups)
    }
}

/// True when the int8 kernels can use the ARMv7E-M DSP instructions.
pub const DSP: bool = cfg!(all(target_arch = "arm", feature = "dsp"));

/// One group's integer dot product, by the fastest exact path of the target
/// (`packed` is `values` laid out by [`pack_pairs`]).
#[inline(always)]
pub fn dot_group(w: &[u8], values: &[i8], packed: &[u32]) -> i32 {
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    {
        let _ = values;
        arm_dsp::dot_packed(w, packed)
    }
    #[cfg(not(all(target_arch = "arm", feature = "dsp")))]
    {
        let _ = packed;
        dot_i8(w, values)
    }
}

/// Quantize `x` to int8 in groups of `group_size` (symmetric, scale =
/// max|x| / 127, round half away from zero).
pub fn quantize(x: &[f32], group_size: usize, values: &mut [i8], scales: &mut [f32]) {
    quantize_with(Isa::Portable, x, group_size, values, scales)
}

/// [`quantize`] by the kernels of `isa` (the same bits).
pub fn quantize_with(
    isa: Isa,
    x: &[f32],
    group_size: usize,
    values: &mut [i8],
    scales: &mut [f32],
) {
    if group_size == 0 {
        return;
    }
    quantize_packed(isa, x, group_size, values, &mut [], scales)
}

/// [`quantize_with`], and on the DSP path also the values' lane pairs (as
/// [`pack_pairs`] lays them out) in `packed`, if it has room for them: the
/// form the DSP kernels read. Other families leave `packed` alone.
pub fn quantize_packed(
    isa: Isa,
    x: &[f32],
    group_size: usize,
    values: &mut [i8],
    packed: &mut [u32],
    scales: &mut [f32],
) {
    if group_size == 0 {
        return;
    }
    let x86 = isa.is_x86();
    let pack = packed.len() * 2 >= x.len() && group_size.is_multiple_of(4);
    let mut packed_groups = packed.chunks_mut((group_size / 2).max(1));
    for ((xg, qg), scale) in x
        .chunks(group_size)
        .zip(values.chunks_mut(group_size))
        .zip(scales.iter_mut())
    {
        #[cfg_attr(not(all(target_arch = "arm", feature = "dsp")), allow(unused_mut))]
        let mut pg = packed_groups.next().filter(|_| pack);
        #[cfg(target_arch = "x86_64")]
        if x86 {
            *scale = x86::quantize_group(xg, qg);
            continue;
        }
        let _ = x86;
        #[cfg(all(target_arch = "arm", feature = "dsp"))]
        if isa == Isa::ArmDsp {
            let fast = arm_dsp::quantize_group(xg, qg, pg.as_deref_mut());
            if let Some(s) = fast {
                *scale = s;
                continue;
            }
        }
        *scale = quantize_group(xg, qg);
        if isa == Isa::ArmDsp {
            if let Some(pg) = pg {
                pack_pairs(qg, pg);
            }
        }
    }
}

/// One group of [`quantize`]; returns its scale.
fn quantize_group(xg: &[f32], qg: &mut [i8]) -> f32 {
    // Eight running maxima (comparisons rather than `f32::max`, which a
    // Cortex-M4 calls out of line; NaN is skipped either way).
    let mut lanes = [0.0f32; 8];
    let blocks = xg.chunks_exact(8);
    let tail = blocks.remainder();
    for b in blocks {
        for (m, &v) in lanes.iter_mut().zip(b) {
            let a = libm::fabsf(v);
            if a > *m {
                *m = a;
            }
        }
    }
    let mut max = 0.0f32;
    for a in lanes
        .into_iter()
        .chain(tail.iter().map(|v| libm::fabsf(*v)))
    {
        if a > max {
            max = a;
        }
    }
    if !(max > 0.0 && max.is_finite()) {
        qg.fill(0);
        return 0.0;
    }
    let inv = 127.0 / max;
    for (q, &v) in qg.iter_mut().zip(xg) {
        let r = v * inv;
        // `as` truncates toward zero (and saturates; NaN gives 0): r ± 0.5 rounds.
        // Saturation to −128 gives the same as to −127 here (|r| ≤ 127 by the
        // choice of `inv`) and is one SSAT instruction on a Cortex-M.
        *q = ((r + half_away(r)) as i32).clamp(-128, 127) as i8;
    }
    max / 127.0
}

/// `out = W x` with the kernels of `isa` (the portable ones where it does
/// not apply). Int8 matrices use `xq`, the int8 form of `x` in the matrix's
/// group size; the float formats use `x`. Every family gives the same bits.
pub fn matvec(
    isa: Isa,
    out: &mut [f32],
    w: &Matrix<'_>,
    x: &[f32],
    xq: Option<&QuantizedVector<'_>>,
) {
    let cols = w.cols.max(1);
    let rows = w.rows.min(out.len());
    let out = &mut out[..rows];
    let x86 = isa.is_x86();
    match w.data {
        MatrixData::F32(bytes) => {
            #[cfg(target_arch = "x86_64")]
            if x86 {
                return x86::matvec_f32(out, bytes, cols, x);
            }
            portable::matvec_float(out, bytes, cols, x, 4)
        }
        MatrixData::F16(bytes) => {
            #[cfg(target_arch = "x86_64")]
            if x86 {
                return x86::matvec_f16(out, bytes, cols, x);
            }
            portable::matvec_float(out, bytes, cols, x, 2)
        }
        MatrixData::Int8 {
            weights,
            scales,
            group_size,
            layout,
        } => {
            let Some(xq) = xq.filter(|q| q.group_size == group_size && group_size > 0) else {
                out.fill(0.0);
                return;
            };
            let m = Int8Rows {
                weights,
                scales: scales.0,
                cols,
                group: group_size,
                layout,
            };
            if layout == Int8Layout::Interleaved4 {
                #[cfg(all(target_arch = "arm", feature = "dsp"))]
                if isa == Isa::ArmDsp {
                    if let Some(()) = arm_dsp::matvec_i8_rows4(out, m, xq.packed, xq.scales) {
                        return;
                    }
                }
                return portable::matvec_i8_rows4(out, m, xq.values, xq.scales);
            }
            #[cfg(target_arch = "x86_64")]
            if x86 && group_size.is_multiple_of(32) {
                let vnni = isa == Isa::Avx512Vnni;
                return x86::matvec_i8(vnni, out, m, xq.values, xq.scales);
            }
            #[cfg(all(target_arch = "arm", feature = "dsp"))]
            if isa == Isa::ArmDsp && group_size.is_multiple_of(8) {
                if let Some(()) = arm_dsp::matvec_i8(out, m, xq.packed, xq.scales) {
                    return;
                }
            }
            let _ = x86;
            portable::matvec_i8(out, m, xq.values, xq.scales)
        }
    }
}

/// The scores of one attention head over f32 keys:
/// `out[t] = dot_f32(q, keys[t·stride..][..q.len()])`, by the kernels of `isa`.
pub fn scores_f32(isa: Isa, out: &mut [f32], keys: &[f32], stride: usize, q: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa.is_x86() {
        return x86::scores_f32(out, keys, stride, q);
    }
    let _ = isa;
    let hd = q.len();
    for (t, o) in out.iter_mut().enumerate() {
        *o = dot_f32(q, keys.get(t * stride..t * stride + hd).unwrap_or(&[]));
    }
}

/// The output of one attention head over f32 values:
/// `out = Σ_t p[t] · values[t·stride..][..out.len()]`, by the kernels of `isa`.
pub fn weighted_sum_f32(isa: Isa, out: &mut [f32], values: &[f32], stride: usize, p: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa.is_x86() {
        return x86::weighted_sum_f32(out, values, stride, p);
    }
    let _ = isa;
    out.fill(0.0);
    let hd = out.len();
    for (t, &pt) in p.iter().enumerate() {
        for (o, &v) in out
            .iter_mut()
            .zip(values.get(t * stride..t * stride + hd).unwrap_or(&[]))
        {
            *o += pt * v;
        }
    }
}

/// `out[t] = dot(rows[t·stride..][..b.len()], b)` as f32, for every
/// `t < out.len()`: exact int8 dot products of byte rows (keys) with int8
/// `b` (a query; `b_packed` is it laid out by [`pack_pairs`]), by the
/// kernels of `isa`. Rows out of range give 0.
pub fn dot_rows_i8(
    isa: Isa,
    out: &mut [f32],
    rows: &[u8],
    stride: usize,
    b: &[i8],
    b_packed: &[u32],
) {
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    if isa == Isa::ArmDsp {
        return arm_dsp::dot_rows(out, rows, stride, b.len(), b_packed);
    }
    let len = b.len();
    for (t, o) in out.iter_mut().enumerate() {
        let row = rows.get(t * stride..t * stride + len).unwrap_or(&[]);
        *o = dot_i8_with(isa, row, b, b_packed) as f32;
    }
}

/// `out[d] = dot(rows[d·stride..][..w.len()], w)` as f32 for every
/// `d < out.len()`: exact dot products of int8 byte rows (transposed values)
/// with 16-bit weights (`w_packed`: see [`pack_pairs_i16`]), by the kernels
/// of `isa`. `w.len()` should be a multiple of 16.
pub fn dot_rows_i16(
    isa: Isa,
    out: &mut [f32],
    rows: &[u8],
    stride: usize,
    w: &[i16],
    w_packed: &[u32],
) {
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    if isa == Isa::ArmDsp {
        return arm_dsp::dot_rows(out, rows, stride, w.len(), w_packed);
    }
    let len = w.len();
    for (d, o) in out.iter_mut().enumerate() {
        let row = rows.get(d * stride..d * stride + len).unwrap_or(&[]);
        *o = dot_i16_with(isa, row, w, w_packed) as f32;
    }
}

/// [`dot_rows_i8`] for two query heads that share their keys: the same
/// numbers (`out[i]` from `b[i]`), each key read once on the DSP path.
pub fn dot_rows_i8_pair(
    isa: Isa,
    out: [&mut [f32]; 2],
    rows: &[u8],
    stride: usize,
    b: [&[i8]; 2],
    b_packed: [&[u32]; 2],
) {
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    if isa == Isa::ArmDsp {
        return arm_dsp::dot_rows_pair(out, rows, stride, b[0].len(), b_packed);
    }
    let [out_a, out_b] = out;
    dot_rows_i8(isa, out_a, rows, stride, b[0], b_packed[0]);
    dot_rows_i8(isa, out_b, rows, stride, b[1], b_packed[1]);
}

/// [`dot_rows_i16`] for the attention weights of two query heads that share
/// their values: the same numbers, each value row read once on the DSP path.
pub fn dot_rows_i16_pair(
    isa: Isa,
    out: [&mut [f32]; 2],
    rows: &[u8],
    stride: usize,
    w: [&[i16]; 2],
    w_packed: [&[u32]; 2],
) {
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    if isa == Isa::ArmDsp {
        return arm_dsp::dot_rows_pair(out, rows, stride, w[0].len(), w_packed);
    }
    let [out_a, out_b] = out;
    dot_rows_i16(isa, out_a, rows, stride, w[0], w_packed[0]);
    dot_rows_i16(isa, out_b, rows, stride, w[1], w_packed[1]);
}

/// Exact dot product of int8 bytes `a` with int8 `b` (`b_packed` is `b` laid
/// out by [`pack_pairs`]), by the kernels of `isa`: a key against a query.
#[inline]
pub fn dot_i8_with(isa: Isa, a: &[u8], b: &[i8], b_packed: &[u32]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if isa.is_x86() {
        return x86::dot_i8(a, b);
    }
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    if isa == Isa::ArmDsp {
        return arm_dsp::dot_packed(a, b_packed);
    }
    let _ = (isa, b_packed);
    dot_i8(a, b)
}

/// Exact dot product of int8 bytes `v` with 16-bit weights `w` (`w_packed`:
/// the same weights as lane pairs `(w2:w0) (w3:w1)`, see [`pack_pairs_i16`]),
/// by the kernels of `isa`: one value dimension against attention weights.
/// Lengths should be a multiple of 16 (pad with zero weights).
#[inline]
pub fn dot_i16_with(isa: Isa, v: &[u8], w: &[i16], w_packed: &[u32]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if isa.is_x86() {
        return x86::dot_i16(v, w);
    }
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    if isa == Isa::ArmDsp {
        return arm_dsp::dot_packed(v, w_packed);
    }
    let _ = (isa, w_packed);
    v.iter()
        .zip(w)
        .map(|(&v, &w)| i32::from(v as i8) * i32::from(w))
        .sum()
}

/// [`pack_pairs`] for 16-bit values.
pub fn pack_pairs_i16(values: &[i16], packed: &mut [u32]) {
    for (x, p) in values.chunks_exact(4).zip(packed.chunks_exact_mut(2)) {
        if let ([x0, x1, x2, x3], [a, b]) = (x, p) {
            [*a, *b] = lane_pairs_i16([*x0, *x1, *x2, *x3]);
        }
    }
}

/// Four consecutive 16-bit values as the DSP kernels' two lane pairs
/// `(x2:x0) (x3:x1)`: one step of [`pack_pairs_i16`].
#[inline]
pub fn lane_pairs_i16(x: [i16; 4]) -> [u32; 2] {
    let lane = |v: i16| u32::from(v as u16);
    [
        lane(x[0]) | (lane(x[2]) << 16),
        lane(x[1]) | (lane(x[3]) << 16),
    ]
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
            layout,
        } => {
            let groups = cols / group_size.max(1);
            let r = weights.chunks_exact(cols).nth(row).unwrap_or(&[]);
            if layout == Int8Layout::Interleaved4 {
                let block = weights.chunks_exact(4 * cols).nth(row / 4).unwrap_or(&[]);
                let s = scales.0.get(row * 4..row * 4 + 4).map_or(0.0, f32_le);
                let words = block.chunks_exact(16).map(|c| &c[4 * (row % 4)..][..4]);
                for (o4, word) in out.chunks_mut(4).zip(words) {
                    for (o, &q) in o4.iter_mut().zip(word) {
                        *o = f32::from(q as i8) * s;
                    }
                }
                return;
            }
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

/// ln 2 in two parts for [`exp`]'s range reduction: `n·LN2_HI` is exact.
pub(crate) const LN2_HI: f32 = 0.693_145_75;
/// The rest of ln 2 (see [`LN2_HI`]).
pub(crate) const LN2_LO: f32 = 1.428_606_8e-6;

/// `e^x` in single precision, to about 1 ulp: Cody–Waite range reduction
/// and a degree-6 polynomial. Only f32 arithmetic — no `f64`, which a
/// Cortex-M4 would emulate in software — and the same bits on every target.
/// Underflows to 0 below −87.3 (so `exp(−∞) = 0`) and overflows to ∞ above
/// 88.37 (just short of `f32::MAX`'s logarithm, 88.72).
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    // Branch-free, so that loops over `exp` vectorise: the polynomial runs on
    // a clamped argument and the out-of-range answers are selected at the end.
    let xc = x.clamp(-87.3, 88.37);
    let t = xc * LOG2_E;
    let n = (t + half_away(t)) as i32; // round to nearest
    let nf = n as f32;
    let r = (xc - nf * LN2_HI) - nf * LN2_LO; // |r| <= ln2 / 2
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let v = p * f32::from_bits(((n + 127) as u32) << 23);
    if x.is_nan() {
        x
    } else if x > 88.37 {
        f32::INFINITY
    } else if x < -87.3 {
        0.0
    } else {
        v
    }
}

/// `e^x` for `x ≤ 0` — a softmax numerator, a score minus the largest one —
/// to about 5·10⁻⁶ relative: `2^(x·log₂e)` as a power of two times a
/// degree-5 polynomial of the rest (in ±½). Half the instructions of
/// [`exp`], with one test: below −87 (or NaN) it is 0; above 0 (which the
/// callers never pass) it is 1. The same bits on every target.
#[inline]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // the negation is what takes NaN
pub fn exp_nonpositive(x: f32) -> f32 {
    use core::f32::consts::LN_2;
    let y = x * core::f32::consts::LOG2_E;
    // NaN or ≤ −126, in one comparison: NaN is not above −126 either.
    if !(y > -126.0) {
        return 0.0;
    }
    let y = if y < 0.0 { y } else { 0.0 };
    let n = (y - 0.5) as i32; // round to nearest (y ≤ 0: truncation is toward 0)
    let f = y - n as f32; // in [−0.5, 0.5]
    let p = 1.0
        + f * (LN_2
            + f * (LN_2 * LN_2 / 2.0
                + f * (LN_2 * LN_2 * LN_2 / 6.0
                    + f * (LN_2 * LN_2 * LN_2 * LN_2 / 24.0
                        + f * (LN_2 * LN_2 * LN_2 * LN_2 * LN_2 / 120.0)))));
    p * f32::from_bits(((n + 127) as u32) << 23)
}

/// ±0.5 with the sign of `r` (`copysign(0.5, r)` as bit operations, inlined
/// everywhere): `r + half_away(r)` truncated rounds half away from zero.
#[inline(always)]
fn half_away(r: f32) -> f32 {
    f32::from_bits(0x3f00_0000 | (r.to_bits() & 0x8000_0000))
}

/// In-place softmax.
pub fn softmax(x: &mut [f32]) {
    softmax_with(Isa::Portable, x)
}

/// [`softmax`] by the kernels of `isa` (the same bits: the exponentials are
/// [`exp`]'s, the sum runs in order).
pub fn softmax_with(isa: Isa, x: &mut [f32]) {
    let mut max = f32::NEG_INFINITY;
    for &v in x.iter() {
        if v > max {
            max = v;
        }
    }
    exp_shifted(isa, x, max);
    let mut sum = 0.0f32;
    for &v in x.iter() {
        sum += v;
    }
    if sum > 0.0 {
        for v in x.iter_mut() {
            *v /= sum;
        }
    }
}

/// `x[i] = exp(x[i] − shift)` for every `i`, by the kernels of `isa` (the
/// same bits as [`exp`]).
pub fn exp_shifted(isa: Isa, x: &mut [f32], shift: f32) {
    #[cfg(target_arch = "x86_64")]
    if isa.is_x86() {
        return x86::exp_shifted(x, shift);
    }
    let _ = isa;
    for v in x.iter_mut() {
        *v = exp(*v - shift);
    }
}

/// `x[i] = exp_nonpositive(x[i] − shift)` for every `i` (`shift` at least
/// the largest of them), by the kernels of `isa` (the same bits as
/// [`exp_nonpositive`]).
pub fn exp_nonpositive_shifted(isa: Isa, x: &mut [f32], shift: f32) {
    #[cfg(target_arch = "x86_64")]
    if isa.is_x86() {
        return x86::exp_nonpositive_shifted(x, shift);
    }
    let _ = isa;
    for v in x.iter_mut() {
        *v = exp_nonpositive(*v - shift);
    }
}

/// SwiGLU: `gate = silu(gate) * up`, with `silu(g) = g / (1 + e^−g)`
/// written so that the exponential is always of −|g| ([`exp_nonpositive`]):
/// `g / (1 + e^−g)` for `g ≥ 0`, `g·e^g / (e^g + 1)` below.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        let e = exp_nonpositive(-libm::fabsf(x));
        let silu = if x >= 0.0 {
            x / (1.0 + e)
        } else {
            x * e / (e + 1.0)
        };
        *g = silu * u;
    }
}

/// RoPE inverse frequencies `theta^(-2i/head_dim)`, `i < head_dim / 2`.
pub fn rope_frequencies(theta: f32, head_dim: usize, out: &mut [f32]) {
    for (i, f) in out.iter_mut().enumerate() {
        *f = 1.0 / libm::powf(theta, (2 * i) as f32 / head_dim as f32);
    }
}

/// Cosines and sines of the RoPE angles at `position` (may be negative, to
/// rotate back), by [`sin_cos`].
pub fn rope_angles(position: f32, frequencies: &[f32], cos: &mut [f32], sin: &mut [f32]) {
    for ((f, c), s) in frequencies.iter().zip(cos.iter_mut()).zip(sin.iter_mut()) {
        (*s, *c) = sin_cos(position * f);
    }
}

/// `(sin x, cos x)` in f32 arithmetic only — libm's `sinf` and `cosf`
/// evaluate in f64, which a Cortex-M4 emulates in software (about a
/// thousand instructions each): `x` less the nearest multiple of π/2 (π/2 in
/// three parts, Cody–Waite, exact enough for |x| < 8192), then Taylor
/// polynomials of degree 9 and 8 on [−π/4, π/4]; within 2·10⁻⁷ of the
/// true values. Larger |x| (and NaN) go to libm. The same bits on every
/// target.
pub fn sin_cos(x: f32) -> (f32, f32) {
    const P1: f32 = 1.570_312_5; // π/2 = P1 + P2 + P3, P1 and P2 with few bits
    const P2: f32 = 4.837_513e-4;
    const P3: f32 = 7.549_79e-8;
    if x.is_nan() || libm::fabsf(x) >= 8192.0 {
        return (libm::sinf(x), libm::cosf(x));
    }
    let t = x * core::f32::consts::FRAC_2_PI;
    let k = (t + half_away(t)) as i32;
    let kf = k as f32;
    let r = ((x - kf * P1) - kf * P2) - kf * P3;
    let r2 = r * r;
    let s = r + r * r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 / 362_880.0)));
    let c = 1.0 - 0.5 * r2 + r2 * r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0)));
    match k & 3 {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// Cosines and sines of the RoPE angles at a `position` of any size: the
/// angles are formed and reduced in f64, so that position 10⁶ is as exact as
/// position 10 (libm's f64 functions: the same bits on every target).
pub fn rope_angles_far(position: u64, frequencies: &[f32], cos: &mut [f32], sin: &mut [f32]) {
    for ((&f, c), s) in frequencies.iter().zip(cos.iter_mut()).zip(sin.iter_mut()) {
        let (sine, cosine) = libm::sincos(position as f64 * f64::from(f));
        *c = cosine as f32;
        *s = sine as f32;
    }
}

/// Add the angles (`cos_b`, `sin_b`) to the angles (`cos`, `sin`), in place:
/// cos(a + b) and sin(a + b) from both angles' cosines and sines.
pub fn rope_add_angles(cos: &mut [f32], sin: &mut [f32], cos_b: &[f32], sin_b: &[f32]) {
    for (((c, s), &cb), &sb) in cos.iter_mut().zip(sin.iter_mut()).zip(cos_b).zip(sin_b) {
        let (ca, sa) = (*c, *s);
        *c = ca * cb - sa * sb;
        *s = sa * cb + ca * sb;
    }
}

/// Rotate one head by the negated angles: undoes [`rope_rotate`].
pub fn rope_rotate_back(head: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = head.len() / 2;
    let (lo, hi) = head.split_at_mut(half);
    for (((a, b), &c), &s) in lo.iter_mut().zip(hi.iter_mut()).zip(cos).zip(sin) {
        let (x, y) = (*a, *b);
        *a = x * c + y * s;
        *b = y * c - x * s;
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
        matvec(Isa::Portable, &mut out, &m, &x, None);
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
        matvec(Isa::Portable, &mut out, &m, &x, None);
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
                layout: Int8Layout::Rows,
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
        matvec(Isa::Portable, &mut out, &m, &x, Some(&q));
        assert!(
            (out[0] - exact).abs() < 0.02 && (out[1] + exact).abs() < 0.02,
            "{out:?}"
        );
        let mut row = [0.0f32; 8];
        dequantize_row(&mut row, &m, 1);
        assert!(row.iter().zip(&w[8..]).all(|(a, b)| (a - b).abs() < 0.01));
    }

    /// A deterministic byte stream for test data.
    fn bytes(seed: u32, n: usize) -> impl Iterator<Item = u8> {
        let mut s = seed;
        (0..n).map(move |_| {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (s >> 16) as u8
        })
    }

    #[test]
    fn every_kernel_family_gives_the_portable_bits() {
        // Shapes with a row remainder (7 rows) and, for floats, a column tail.
        for (rows, cols, group) in [
            (7usize, 64usize, 32usize),
            (9, 128, 64),
            (5, 200, 8),
            (16, 36, 4),
        ] {
            let x: heapless::Vec<f32, 256> = bytes(cols as u32, cols)
                .map(|b| (f32::from(b) - 127.5) / 50.0)
                .collect();
            let mut f32w = heapless::Vec::<u8, 8192>::new();
            let mut f16w = heapless::Vec::<u8, 4096>::new();
            for b in bytes(rows as u32, rows * cols) {
                let v = (f32::from(b) - 128.0) / 300.0;
                f32w.extend_from_slice(&v.to_le_bytes()).unwrap();
                f16w.extend_from_slice(&half::f16::from_f32(v).to_bits().to_le_bytes())
                    .unwrap();
            }
            let mut int8w: heapless::Vec<u8, 2048> = bytes(7, rows * cols).collect();
            int8w[0] = 0x80; // -128, the one weight whose magnitude is not an i8
            let scales: heapless::Vec<u8, 1024> = (0..rows * cols / group)
                .flat_map(|i| (0.001 + i as f32 * 0.0007).to_le_bytes())
                .collect();
            let (mut xq, mut xs, mut packed) = ([0i8; 256], [0.0f32; 32], [0u32; 128]);
            quantize(&x, group, &mut xq[..cols], &mut xs[..cols / group]);
            pack_pairs(&xq[..cols], &mut packed[..cols / 2]);
            let q = QuantizedVector {
                values: &xq[..cols],
                packed: &packed[..cols / 2],
                scales: &xs[..cols / group],
                group_size: group,
            };
            let matrices = [
                MatrixData::F32(&f32w),
                MatrixData::F16(&f16w),
                MatrixData::Int8 {
                    weights: &int8w,
                    scales: F32Bytes(&scales),
                    group_size: group,
                    layout: Int8Layout::Rows,
                },
            ];
            for data in matrices {
                let m = Matrix { rows, cols, data };
                let mut reference = [0.0f32; 16];
                matvec(Isa::Portable, &mut reference[..rows], &m, &x, Some(&q));
                assert!(reference[..rows].iter().all(|v| v.is_finite() && *v != 0.0));
                for isa in Isa::available() {
                    let mut out = [0.0f32; 16];
                    matvec(isa, &mut out[..rows], &m, &x, Some(&q));
                    let bits = |v: &[f32]| {
                        v.iter()
                            .map(|f| f.to_bits())
                            .collect::<heapless::Vec<u32, 16>>()
                    };
                    assert_eq!(
                        bits(&out[..rows]),
                        bits(&reference[..rows]),
                        "{isa:?} {rows}x{cols}"
                    );
                }
            }
        }
    }

    #[test]
    fn interleaved_rows_give_the_bits_of_rows_in_order() {
        use crate::weights::interleave_rows4;
        let (rows, cols) = (12usize, 40usize);
        let plain: heapless::Vec<u8, 480> = bytes(11, rows * cols).collect();
        let mut mixed = [0u8; 480];
        assert!(interleave_rows4(&plain, cols, &mut mixed));
        assert_ne!(&plain[..], &mixed[..]);
        assert!(!interleave_rows4(
            &plain[..rows * cols - 4],
            cols,
            &mut mixed[..476]
        ));
        let scales: heapless::Vec<u8, 48> = (0..rows)
            .flat_map(|i| (0.002 + i as f32 * 0.0003).to_le_bytes())
            .collect();
        let x: heapless::Vec<f32, 40> = bytes(5, cols)
            .map(|b| (f32::from(b) - 127.5) / 40.0)
            .collect();
        let (mut xq, mut xs, mut packed) = ([0i8; 40], [0.0f32; 1], [0u32; 20]);
        quantize(&x, cols, &mut xq, &mut xs);
        pack_pairs(&xq, &mut packed);
        let q = QuantizedVector {
            values: &xq,
            packed: &packed,
            scales: &xs,
            group_size: cols,
        };
        let matrix = |weights, layout| Matrix {
            rows,
            cols,
            data: MatrixData::Int8 {
                weights,
                scales: F32Bytes(&scales),
                group_size: cols,
                layout,
            },
        };
        let (by_rows, by_blocks) = (
            matrix(&plain[..], Int8Layout::Rows),
            matrix(&mixed[..], Int8Layout::Interleaved4),
        );
        for isa in Isa::available() {
            let (mut a, mut b) = ([0.0f32; 12], [0.0f32; 12]);
            matvec(isa, &mut a, &by_rows, &x, Some(&q));
            matvec(isa, &mut b, &by_blocks, &x, Some(&q));
            assert!(a.iter().all(|v| *v != 0.0));
            assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits), "{isa:?}");
        }
        for row in [0, 5, 11] {
            let (mut a, mut b) = ([0.0f32; 40], [0.0f32; 40]);
            dequantize_row(&mut a, &by_rows, row);
            dequantize_row(&mut b, &by_blocks, row);
            assert_eq!(a, b);
        }
        // Whole blocks of rows can be split off; rows within a block cannot.
        assert!(by_blocks.rows(4, 12).is_some() && by_blocks.rows(2, 6).is_none());
    }

    #[test]
    fn exp_of_nonpositive_arguments_is_close_to_libm() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -(i as f32) * 0.000_5; // 0 down to −100
            let (fast, exact) = (exp_nonpositive(x), libm::exp(f64::from(x)));
            if exact > 1e-30 {
                worst = worst.max((f64::from(fast) - exact).abs() / exact);
            } else {
                assert!(f64::from(fast) <= 1e-30, "{x}");
            }
        }
        assert!(worst < 1e-5, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive(f32::NAN), 0.0);
        assert_eq!(exp_nonpositive(3.0), 1.0);
    }

    #[test]
    fn swiglu_is_silu_times_up() {
        let xs = [
            -100.0f32, -20.0, -3.5, -1.0, -1e-3, 0.0, 1e-3, 0.7, 4.0, 30.0, 90.0,
        ];
        let mut gate = xs;
        let up = [2.0f32; 11];
        swiglu(&mut gate, &up);
        for (&x, &y) in xs.iter().zip(&gate) {
            let exact = 2.0 * f64::from(x) / (1.0 + libm::exp(-f64::from(x)));
            assert!(
                (f64::from(y) - exact).abs() <= 1e-5 * exact.abs().max(1e-3),
                "{x}: {y} vs {exact}"
            );
        }
        let mut nan = [f32::NAN];
        swiglu(&mut nan, &[1.0]);
        assert!(nan[0].is_nan());
    }

    #[test]
    fn sin_cos_is_close_to_libm() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 0.040_95; // ±8190
            let (s, c) = sin_cos(x);
            let (es, ec) = libm::sincos(f64::from(x));
            worst = worst
                .max((f64::from(s) - es).abs())
                .max((f64::from(c) - ec).abs());
        }
        assert!(worst < 2e-7, "worst absolute error {worst}");
        assert_eq!(sin_cos(0.0), (0.0, 1.0));
        let (s, c) = sin_cos(1e6);
        assert_eq!((s, c), (libm::sinf(1e6), libm::cosf(1e6)));
        assert!(sin_cos(f32::NAN).0.is_nan());
    }

    #[test]
    fn every_family_scores_and_weighs_float_heads_with_the_portable_bits() {
        let keys: heapless::Vec<f32, 4096> = bytes(5, 4096)
            .map(|b| (f32::from(b) - 128.0) / 40.0)
            .collect();
        for hd in [8usize, 12, 16, 32, 64] {
            let stride = 2 * hd;
            let q: heapless::Vec<f32, 64> = bytes(hd as u32, hd)
                .map(|b| (f32::from(b) - 127.0) / 60.0)
                .collect();
            for n in [1usize, 7, 8, 9, 17, 24] {
                let p: heapless::Vec<f32, 24> =
                    bytes(n as u32, n).map(|b| f32::from(b) / 255.0).collect();
                let (mut s0, mut o0) = ([0.0f32; 24], [0.0f32; 64]);
                scores_f32(Isa::Portable, &mut s0[..n], &keys, stride, &q);
                weighted_sum_f32(Isa::Portable, &mut o0[..hd], &keys, stride, &p);
                assert!(s0[..n].iter().all(|s| *s != 0.0) && o0[..hd].iter().any(|o| *o != 0.0));
                for isa in Isa::available() {
                    let (mut s, mut o) = ([0.0f32; 24], [1.0f32; 64]);
                    scores_f32(isa, &mut s[..n], &keys, stride, &q);
                    weighted_sum_f32(isa, &mut o[..hd], &keys, stride, &p);
                    assert_eq!(
                        s.map(f32::to_bits),
                        s0.map(f32::to_bits),
                        "{isa:?} {hd} {n}"
                    );
                    assert_eq!(
                        o.map(f32::to_bits)[..hd],
                        o0.map(f32::to_bits)[..hd],
                        "{isa:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_family_exponentiates_to_the_portable_bits() {
        let mut x: heapless::Vec<f32, 300> = bytes(9, 300)
            .map(|b| (f32::from(b) - 200.0) / 2.5)
            .collect();
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            0.0,
            88.37,
            -87.3,
        ];
        x[..specials.len()].copy_from_slice(&specials);
        x[290] = 1e-7;
        for shift in [0.0f32, 3.5, -1.25, f32::INFINITY] {
            let (mut e0, mut n0) = (x.clone(), x.clone());
            exp_shifted(Isa::Portable, &mut e0, shift);
            exp_nonpositive_shifted(Isa::Portable, &mut n0, shift);
            for isa in Isa::available() {
                let (mut e, mut n) = (x.clone(), x.clone());
                exp_shifted(isa, &mut e, shift);
                exp_nonpositive_shifted(isa, &mut n, shift);
                let bits = |v: &[f32]| {
                    v.iter()
                        .map(|f| f.to_bits())
                        .collect::<heapless::Vec<u32, 300>>()
                };
                assert_eq!(bits(&e), bits(&e0), "{isa:?} exp, shift {shift}");
                assert_eq!(
                    bits(&n),
                    bits(&n0),
                    "{isa:?} exp_nonpositive, shift {shift}"
                );
            }
        }
    }

    #[test]
    fn every_family_quantizes_to_the_same_bits() {
        let mut x: heapless::Vec<f32, 200> = bytes(3, 200)
            .map(|b| (f32::from(b) - 128.0) / 7.0)
            .collect();
        x[5] = f32::NAN;
        x[77] = -0.0;
        for group in [4usize, 8, 20, 40, 100] {
            let (mut q0, mut s0) = ([0i8; 200], [0.0f32; 50]);
            quantize(&x, group, &mut q0, &mut s0);
            for isa in Isa::available() {
                let (mut q, mut s) = ([0i8; 200], [0.0f32; 50]);
                quantize_with(isa, &x, group, &mut q, &mut s);
                assert_eq!(q, q0, "{isa:?} group {group}");
                assert_eq!(s.map(f32::to_bits), s0.map(f32::to_bits), "{isa:?}");
            }
        }
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
