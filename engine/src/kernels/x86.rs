//! x86-64 kernels: AVX2 (+F16C) and AVX-512 VNNI.
//!
//! Each gives exactly the portable kernel's result. Integer dot products are
//! exact whatever the summation order. The float kernels keep the portable
//! eight-lane order — lane `j` sums the products of columns `8b + j` in
//! order of `b`, without fused multiply-add — and reduce the lanes with the
//! same tree, so they match bit for bit as well.
//!
//! The int8 dot product uses the unsigned × signed byte instructions
//! (`vpmaddubsw`, `vpdpbusd`) on `|w|` and `x · sign(w)`: both are exact
//! because activations are in −127..=127 ([`super::quantize`]) and `|w| ≤ 128`.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::portable::sum8;
use super::Int8Rows;

/// `out[r] = Σ w[r, c] x[c]` for f32 weights (little-endian bytes, `cols` per row).
pub fn matvec_f32(out: &mut [f32], w: &[u8], cols: usize, x: &[f32]) {
    if cols == 0 || x.len() < cols || w.len() < out.len() * cols * 4 {
        return;
    }
    // SAFETY: the caller checked AVX2 (Isa::Avx2 or better); sizes checked above.
    unsafe { matvec_float::<4>(out, w.as_ptr(), cols, x.as_ptr()) }
}

/// Same for f16 weights.
pub fn matvec_f16(out: &mut [f32], w: &[u8], cols: usize, x: &[f32]) {
    if cols == 0 || x.len() < cols || w.len() < out.len() * cols * 2 {
        return;
    }
    // SAFETY: as above (F16C comes with Isa::Avx2).
    unsafe { matvec_float::<2>(out, w.as_ptr(), cols, x.as_ptr()) }
}

/// Lanes of an accumulator summed like [`sum8`].
#[inline(always)]
unsafe fn lanes(v: __m256) -> f32 {
    let mut a = [0.0f32; 8];
    _mm256_storeu_ps(a.as_mut_ptr(), v);
    sum8(a)
}

/// Eight accumulators' lanes summed like [`sum8`], all at once: lane `r` of
/// the result is `lanes(acc[r])`. (The horizontal adds pair the same lanes as
/// `sum8`'s tree, and float addition is commutative.)
#[inline(always)]
unsafe fn lanes8(acc: &[__m256; 8]) -> __m256 {
    let h01 = _mm256_hadd_ps(acc[0], acc[1]);
    let h23 = _mm256_hadd_ps(acc[2], acc[3]);
    let h45 = _mm256_hadd_ps(acc[4], acc[5]);
    let h67 = _mm256_hadd_ps(acc[6], acc[7]);
    // Per 128-bit half: ((a0+a1)+(a2+a3)) of rows 0–3, then of rows 4–7.
    let q0 = _mm256_hadd_ps(h01, h23);
    let q1 = _mm256_hadd_ps(h45, h67);
    let low = _mm256_permute2f128_ps::<0x20>(q0, q1);
    let high = _mm256_permute2f128_ps::<0x31>(q0, q1);
    _mm256_add_ps(low, high)
}

/// Float matvec, eight rows per pass (each activation block loaded once,
/// eight independent accumulator chains), then four, then one.
/// `W` is the bytes per weight (4: f32, 2: f16).
#[target_feature(enable = "avx2,f16c")]
unsafe fn matvec_float<const W: usize>(out: &mut [f32], w: *const u8, cols: usize, x: *const f32) {
    let row_bytes = cols * W;
    let mut r = 0;
    let rows = out.len();
    while r + 8 <= rows {
        rows_float::<W, 8>(&mut out[r..r + 8], w.add(r * row_bytes), cols, x);
        r += 8;
    }
    while r + 4 <= rows {
        rows_float::<W, 4>(&mut out[r..r + 4], w.add(r * row_bytes), cols, x);
        r += 4;
    }
    while r < rows {
        rows_float::<W, 1>(&mut out[r..r + 1], w.add(r * row_bytes), cols, x);
        r += 1;
    }
}

/// `R` consecutive rows of [`matvec_float`].
#[inline(always)]
unsafe fn rows_float<const W: usize, const R: usize>(
    out: &mut [f32],
    w: *const u8,
    cols: usize,
    x: *const f32,
) {
    let blocks = cols / 8;
    let row_bytes = cols * W;
    let load = |p: *const u8| {
        if W == 4 {
            _mm256_loadu_ps(p.cast())
        } else {
            _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
        }
    };
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..blocks {
        let xv = _mm256_loadu_ps(x.add(b * 8));
        // The next pass's rows, one cache line per row every 64 bytes: eight
        // interleaved short rows are more than the hardware prefetcher follows.
        if (b * 8 * W).is_multiple_of(64) {
            for i in 0..R {
                _mm_prefetch::<_MM_HINT_T0>(
                    w.wrapping_add((2 * R + i) * row_bytes + b * 8 * W).cast(),
                );
            }
        }
        for (i, a) in acc.iter_mut().enumerate() {
            *a = _mm256_add_ps(
                *a,
                _mm256_mul_ps(load(w.add(i * row_bytes + b * 8 * W)), xv),
            );
        }
    }
    let mut tails = [0.0f32; R];
    for (i, tail) in tails.iter_mut().enumerate() {
        let row = w.add(i * row_bytes);
        for c in blocks * 8..cols {
            let wv = if W == 4 {
                f32::from_le_bytes(core::ptr::read_unaligned(row.add(c * 4).cast()))
            } else {
                half::f16::from_bits(u16::from_le_bytes(core::ptr::read_unaligned(
                    row.add(c * 2).cast(),
                )))
                .to_f32()
            };
            *tail += wv * *x.add(c);
        }
    }
    if let (Ok(acc), Some(o)) = (<&[__m256; 8]>::try_from(&acc[..]), out.get_mut(..8)) {
        let sums = _mm256_add_ps(lanes8(acc), _mm256_loadu_ps(tails.as_ptr()));
        _mm256_storeu_ps(o.as_mut_ptr(), sums);
        return;
    }
    for ((o, a), tail) in out.iter_mut().zip(acc).zip(tails) {
        *o = lanes(a) + tail;
    }
}

/// int8 matvec with per-(row, group) scales: `out[r] = Σ_g dot(w[r, g], x[g]) · (ws[r, g] · xs[g])`,
/// the groups summed in order. `group` must be a multiple of 32.
pub fn matvec_i8(vnni: bool, out: &mut [f32], m: Int8Rows<'_>, xq: &[i8], xs: &[f32]) {
    let Int8Rows {
        weights: w,
        scales,
        cols,
        group,
        ..
    } = m;
    if m.checked_groups(out.len(), xq.len(), xs.len(), 32)
        .is_none()
    {
        return;
    }
    // SAFETY: sizes checked above; the caller checked the features.
    unsafe {
        if vnni {
            matvec_i8_vnni(out, w, scales, cols, group, xq, xs)
        } else {
            matvec_i8_avx2(out, w, scales, cols, group, xq, xs)
        }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn matvec_i8_avx2(
    out: &mut [f32],
    w: &[u8],
    scales: &[u8],
    cols: usize,
    group: usize,
    xq: &[i8],
    xs: &[f32],
) {
    matvec_i8_body::<false>(out, w, scales, cols, group, xq, xs)
}

#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn matvec_i8_vnni(
    out: &mut [f32],
    w: &[u8],
    scales: &[u8],
    cols: usize,
    group: usize,
    xq: &[i8],
    xs: &[f32],
) {
    matvec_i8_body::<true>(out, w, scales, cols, group, xq, xs)
}

/// One row-group's products summed into `acc` (eight i32 lanes).
#[inline(always)]
unsafe fn dot_bytes<const VNNI: bool>(acc: __m256i, w: *const u8, x: *const i8) -> __m256i {
    let wv = _mm256_loadu_si256(w.cast());
    let xv = _mm256_loadu_si256(x.cast());
    let u = _mm256_abs_epi8(wv);
    let s = _mm256_sign_epi8(xv, wv);
    if VNNI {
        _mm256_dpbusd_epi32(acc, u, s)
    } else {
        let p16 = _mm256_maddubs_epi16(u, s);
        _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)))
    }
}

/// Horizontal sums of four accumulators: `[Σa0, Σa1, Σa2, Σa3]`.
#[inline(always)]
unsafe fn sum4(a: [__m256i; 4]) -> [i32; 4] {
    let s = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    let r = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
    let mut v = [0i32; 4];
    _mm_storeu_si128(v.as_mut_ptr().cast(), r);
    v
}

#[inline(always)]
unsafe fn scale_at(scales: &[u8], index: usize) -> f32 {
    f32::from_le_bytes(core::ptr::read_unaligned(
        scales.as_ptr().add(index * 4).cast(),
    ))
}

/// How far ahead of the rows in hand [`matvec_i8_body`] prefetches, in rows.
const PREFETCH_ROWS: usize = 8;

#[inline(always)]
unsafe fn matvec_i8_body<const VNNI: bool>(
    out: &mut [f32],
    w: &[u8],
    scales: &[u8],
    cols: usize,
    group: usize,
    xq: &[i8],
    xs: &[f32],
) {
    let groups = cols / group;
    let (wp, xp) = (w.as_ptr(), xq.as_ptr());
    let mut quads = out.chunks_exact_mut(4);
    let mut r = 0;
    for o in quads.by_ref() {
        let mut acc = [0.0f32; 4];
        for g in 0..groups {
            let mut sums = [_mm256_setzero_si256(); 4];
            for c in (g * group..(g + 1) * group).step_by(32) {
                if c % 64 == 0 {
                    for i in 0..4 {
                        let ahead = (r + PREFETCH_ROWS + i) * cols + c;
                        _mm_prefetch::<_MM_HINT_T0>(wp.wrapping_add(ahead).cast());
                    }
                }
                for (i, s) in sums.iter_mut().enumerate() {
                    *s = dot_bytes::<VNNI>(*s, wp.add((r + i) * cols + c), xp.add(c));
                }
            }
            let d = sum4(sums);
            let s = *xs.get_unchecked(g);
            for (i, (a, d)) in acc.iter_mut().zip(d).enumerate() {
                *a += d as f32 * (scale_at(scales, (r + i) * groups + g) * s);
            }
        }
        o.copy_from_slice(&acc);
        r += 4;
    }
    for o in quads.into_remainder() {
        let mut acc = 0.0f32;
        for g in 0..groups {
            let mut s = _mm256_setzero_si256();
            for c in (g * group..(g + 1) * group).step_by(32) {
                s = dot_bytes::<VNNI>(s, wp.add(r * cols + c), xp.add(c));
            }
            let z = _mm256_setzero_si256();
            let d = sum4([s, z, z, z])[0];
            acc += d as f32 * (scale_at(scales, r * groups + g) * *xs.get_unchecked(g));
        }
        *o = acc;
        r += 1;
    }
}

/// Exact `Σ a[i] · b[i]` of int8 bytes and int8 values.
pub fn dot_i8(a: &[u8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    // SAFETY: the caller checked AVX2; reads within `n`.
    unsafe { dot_i8_avx2(a.as_ptr(), b.as_ptr(), n) }
}

#[target_feature(enable = "avx2")]
unsafe fn dot_i8_avx2(a: *const u8, b: *const i8, n: usize) -> i32 {
    let mut acc = _mm256_setzero_si256();
    let blocks = n / 32;
    for i in 0..blocks {
        acc = dot_bytes::<false>(acc, a.add(i * 32), b.add(i * 32));
    }
    let z = _mm256_setzero_si256();
    let mut sum = sum4([acc, z, z, z])[0];
    for i in blocks * 32..n {
        sum += i32::from(*a.add(i) as i8) * i32::from(*b.add(i));
    }
    sum
}

/// Exact `Σ v[i] · w[i]` of int8 bytes and 16-bit weights.
pub fn dot_i16(v: &[u8], w: &[i16]) -> i32 {
    let n = v.len().min(w.len());
    // SAFETY: the caller checked AVX2; reads within `n`.
    unsafe { dot_i16_avx2(v.as_ptr(), w.as_ptr(), n) }
}

#[target_feature(enable = "avx2")]
unsafe fn dot_i16_avx2(v: *const u8, w: *const i16, n: usize) -> i32 {
    let mut acc = _mm256_setzero_si256();
    let blocks = n / 16;
    for i in 0..blocks {
        let vv = _mm256_cvtepi8_epi16(_mm_loadu_si128(v.add(i * 16).cast()));
        let wv = _mm256_loadu_si256(w.add(i * 16).cast());
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(vv, wv));
    }
    let z = _mm256_setzero_si256();
    let mut sum = sum4([acc, z, z, z])[0];
    for i in blocks * 16..n {
        sum += i32::from(*v.add(i) as i8) * i32::from(*w.add(i));
    }
    sum
}

/// One group of [`super::quantize`] (same bits): returns the scale.
pub fn quantize_group(x: &[f32], q: &mut [i8]) -> f32 {
    let n = x.len().min(q.len());
    // SAFETY: the caller checked AVX2; reads and writes within `n`.
    unsafe { quantize_group_avx2(x.as_ptr(), q.as_mut_ptr(), n) }
}

#[target_feature(enable = "avx2")]
unsafe fn quantize_group_avx2(x: *const f32, q: *mut i8, n: usize) -> f32 {
    let blocks = n / 8;
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    // max_ps(a, m) returns m when a is NaN: NaN is skipped, as in the portable loop.
    let mut m = _mm256_setzero_ps();
    for b in 0..blocks {
        m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x.add(b * 8)), abs_mask), m);
    }
    let mut lanes = [0.0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), m);
    let mut max = 0.0f32;
    for i in 0..n - blocks * 8 {
        let a = (*x.add(blocks * 8 + i)).abs();
        if a > max {
            max = a;
        }
    }
    for a in lanes {
        if a > max {
            max = a;
        }
    }
    if !(max > 0.0 && max.is_finite()) {
        core::ptr::write_bytes(q, 0, n);
        return 0.0;
    }
    let inv = 127.0 / max;
    let invv = _mm256_set1_ps(inv);
    let sign = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN));
    let half = _mm256_set1_ps(0.5);
    let (lo, hi) = (_mm256_set1_epi32(-127), _mm256_set1_epi32(127));
    for b in 0..blocks {
        let r = _mm256_mul_ps(_mm256_loadu_ps(x.add(b * 8)), invv);
        let t = _mm256_add_ps(r, _mm256_or_ps(_mm256_and_ps(r, sign), half));
        let ordered = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_ORD_Q>(r, r));
        let i = _mm256_and_si256(_mm256_cvttps_epi32(t), ordered); // NaN → 0
        let i = _mm256_min_epi32(_mm256_max_epi32(i, lo), hi);
        let w = _mm256_packs_epi32(i, i); // i16: [0..4 0..4 | 4..8 4..8]
        let w = _mm256_packs_epi16(w, w); // i8 lanes 0..4 in bytes 0..4 of each half
        let lo4 = _mm256_castsi256_si128(w);
        let hi4 = _mm256_extracti128_si256::<1>(w);
        let bytes = _mm_unpacklo_epi32(lo4, hi4);
        core::ptr::write_unaligned(q.add(b * 8).cast::<i64>(), _mm_cvtsi128_si64(bytes));
    }
    for i in blocks * 8..n {
        let r = *x.add(i) * inv;
        let h = f32::from_bits(0x3f00_0000 | (r.to_bits() & 0x8000_0000));
        *q.add(i) = ((r + h) as i32).clamp(-127, 127) as i8;
    }
    max / 127.0
}

/// [`super::dot_f32`] of `n` values (same lanes, same tree, no FMA: the same bits).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn dot_f32_avx2(a: *const f32, b: *const f32, n: usize) -> f32 {
    let blocks = n / 8;
    let mut acc = _mm256_setzero_ps();
    for i in 0..blocks {
        acc = _mm256_add_ps(
            acc,
            _mm256_mul_ps(_mm256_loadu_ps(a.add(i * 8)), _mm256_loadu_ps(b.add(i * 8))),
        );
    }
    let mut tail = 0.0f32;
    for i in blocks * 8..n {
        tail += *a.add(i) * *b.add(i);
    }
    lanes(acc) + tail
}

/// `y[i] += a · x[i]` for `i < n` (elementwise: the same bits as the scalar loop).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn axpy_avx2(y: *mut f32, a: f32, x: *const f32, n: usize) {
    let blocks = n / 8;
    let av = _mm256_set1_ps(a);
    for i in 0..blocks {
        let v = _mm256_add_ps(
            _mm256_loadu_ps(y.add(i * 8)),
            _mm256_mul_ps(av, _mm256_loadu_ps(x.add(i * 8))),
        );
        _mm256_storeu_ps(y.add(i * 8), v);
    }
    for i in blocks * 8..n {
        *y.add(i) += a * *x.add(i);
    }
}

/// `out[t] = dot_f32(q, keys[t·stride..][..q.len()])` for every `t < out.len()`
/// (the attention scores of one head; the same bits as [`super::dot_f32`]),
/// eight positions per pass.
pub fn scores_f32(out: &mut [f32], keys: &[f32], stride: usize, q: &[f32]) {
    let (n, hd) = (out.len(), q.len());
    if n == 0 || keys.len() < (n - 1) * stride + hd {
        return;
    }
    // SAFETY: the caller checked AVX2; reads within the check above.
    unsafe {
        let (q, k) = (q.as_ptr(), keys.as_ptr());
        let mut chunks = out.chunks_exact_mut(8);
        for (c, o) in (&mut chunks).enumerate() {
            scores8(o, k.add(8 * c * stride), stride, q, hd);
        }
        let done = n - chunks.into_remainder().len();
        for (t, o) in out.iter_mut().enumerate().skip(done) {
            *o = dot_f32_avx2(q, k.add(t * stride), hd);
        }
    }
}

/// Eight positions of [`scores_f32`]: eight accumulator chains sharing each
/// query load, reduced together.
#[target_feature(enable = "avx2")]
unsafe fn scores8(out: &mut [f32], k: *const f32, stride: usize, q: *const f32, hd: usize) {
    let blocks = hd / 8;
    let mut acc = [_mm256_setzero_ps(); 8];
    for b in 0..blocks {
        let qv = _mm256_loadu_ps(q.add(b * 8));
        for (t, a) in acc.iter_mut().enumerate() {
            *a = _mm256_add_ps(
                *a,
                _mm256_mul_ps(qv, _mm256_loadu_ps(k.add(t * stride + b * 8))),
            );
        }
    }
    let mut tails = [0.0f32; 8];
    for (t, tail) in tails.iter_mut().enumerate() {
        for i in blocks * 8..hd {
            *tail += *q.add(i) * *k.add(t * stride + i);
        }
    }
    let sums = _mm256_add_ps(lanes8(&acc), _mm256_loadu_ps(tails.as_ptr()));
    _mm256_storeu_ps(out.as_mut_ptr(), sums);
}

/// `out = Σ_t p[t] · values[t·stride..][..out.len()]`, in order of `t`
/// (elementwise: the same bits as the scalar loop). Heads of 8 to 64 floats
/// keep `out` in registers.
pub fn weighted_sum_f32(out: &mut [f32], values: &[f32], stride: usize, p: &[f32]) {
    let (n, hd) = (p.len(), out.len());
    out.fill(0.0);
    if n == 0 || values.len() < (n - 1) * stride + hd {
        return;
    }
    let v = values.as_ptr();
    // SAFETY: the caller checked AVX2; reads within the check above.
    unsafe {
        match hd {
            8 => weighted_sum_regs::<1>(out, v, stride, p),
            16 => weighted_sum_regs::<2>(out, v, stride, p),
            32 => weighted_sum_regs::<4>(out, v, stride, p),
            64 => weighted_sum_regs::<8>(out, v, stride, p),
            _ => {
                for (t, &pt) in p.iter().enumerate() {
                    axpy_avx2(out.as_mut_ptr(), pt, v.add(t * stride), hd);
                }
            }
        }
    }
}

/// [`weighted_sum_f32`] for a head of `8·B` floats, held in `B` registers.
#[target_feature(enable = "avx2")]
unsafe fn weighted_sum_regs<const B: usize>(
    out: &mut [f32],
    v: *const f32,
    stride: usize,
    p: &[f32],
) {
    let mut acc = [_mm256_setzero_ps(); B];
    for (t, &pt) in p.iter().enumerate() {
        let pv = _mm256_set1_ps(pt);
        for (b, a) in acc.iter_mut().enumerate() {
            let x = _mm256_loadu_ps(v.add(t * stride + b * 8));
            *a = _mm256_add_ps(*a, _mm256_mul_ps(pv, x));
        }
    }
    for (b, a) in acc.iter().enumerate() {
        _mm256_storeu_ps(out.as_mut_ptr().add(b * 8), *a);
    }
}

/// `x[i] = exp(x[i] − shift)` for every `i`, eight at a time: the same
/// operations as [`super::exp`] (clamp, round half away, Cody–Waite, the
/// degree-6 polynomial, the power of two; NaN and the ends selected last),
/// so the same bits.
pub fn exp_shifted(x: &mut [f32], shift: f32) {
    // SAFETY: the caller checked AVX2; loads and stores within `x`.
    unsafe { exp_shifted_avx2(x, shift) }
}

#[target_feature(enable = "avx2")]
unsafe fn exp_shifted_avx2(x: &mut [f32], shift: f32) {
    use super::{LN2_HI, LN2_LO};
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    let set = _mm256_set1_ps;
    let (lo, hi) = (set(-87.3), set(88.37));
    let sign = set(-0.0);
    let mut blocks = x.chunks_exact_mut(8);
    for b in &mut blocks {
        let x = _mm256_sub_ps(_mm256_loadu_ps(b.as_ptr()), set(shift));
        let xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
        let t = _mm256_mul_ps(xc, set(LOG2_E));
        let half = _mm256_or_ps(set(0.5), _mm256_and_ps(t, sign));
        let n = _mm256_cvttps_epi32(_mm256_add_ps(t, half));
        let nf = _mm256_cvtepi32_ps(n);
        let r = _mm256_sub_ps(
            _mm256_sub_ps(xc, _mm256_mul_ps(nf, set(LN2_HI))),
            _mm256_mul_ps(nf, set(LN2_LO)),
        );
        let mut p = set(1.0 / 720.0);
        for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
            p = _mm256_add_ps(set(c), _mm256_mul_ps(r, p));
        }
        let two_n = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            n,
            _mm256_set1_epi32(127),
        )));
        let v = _mm256_mul_ps(p, two_n);
        let v = _mm256_blendv_ps(v, set(f32::INFINITY), _mm256_cmp_ps::<_CMP_GT_OQ>(x, hi));
        let v = _mm256_blendv_ps(v, set(0.0), _mm256_cmp_ps::<_CMP_LT_OQ>(x, lo));
        let v = _mm256_blendv_ps(v, x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x));
        _mm256_storeu_ps(b.as_mut_ptr(), v);
    }
    for v in blocks.into_remainder() {
        *v = super::exp(*v - shift);
    }
}

/// `x[i] = exp_nonpositive(x[i] − shift)` for every `i` (`shift` the
/// largest of them), eight at a time: the same operations as
/// [`super::exp_nonpositive`], so the same bits.
pub fn exp_nonpositive_shifted(x: &mut [f32], shift: f32) {
    // SAFETY: the caller checked AVX2; loads and stores within `x`.
    unsafe { exp_nonpositive_shifted_avx2(x, shift) }
}

#[target_feature(enable = "avx2")]
unsafe fn exp_nonpositive_shifted_avx2(x: &mut [f32], shift: f32) {
    use core::f32::consts::LN_2;
    let set = _mm256_set1_ps;
    let coefficients = [
        LN_2 * LN_2 * LN_2 * LN_2 / 24.0,
        LN_2 * LN_2 * LN_2 / 6.0,
        LN_2 * LN_2 / 2.0,
        LN_2,
        1.0,
    ];
    let mut blocks = x.chunks_exact_mut(8);
    for b in &mut blocks {
        let x = _mm256_sub_ps(_mm256_loadu_ps(b.as_ptr()), set(shift));
        let y = _mm256_mul_ps(x, set(core::f32::consts::LOG2_E));
        // NaN or ≤ −126: the answer is 0.
        let zero = _mm256_cmp_ps::<_CMP_NGT_UQ>(y, set(-126.0));
        let y = _mm256_min_ps(y, set(0.0));
        let n = _mm256_cvttps_epi32(_mm256_sub_ps(y, set(0.5)));
        let f = _mm256_sub_ps(y, _mm256_cvtepi32_ps(n));
        let mut p = set(LN_2 * LN_2 * LN_2 * LN_2 * LN_2 / 120.0);
        for c in coefficients {
            p = _mm256_add_ps(set(c), _mm256_mul_ps(f, p));
        }
        let two_n = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            n,
            _mm256_set1_epi32(127),
        )));
        let v = _mm256_andnot_ps(zero, _mm256_mul_ps(p, two_n));
        _mm256_storeu_ps(b.as_mut_ptr(), v);
    }
    for v in blocks.into_remainder() {
        *v = super::exp_nonpositive(*v - shift);
    }
}
