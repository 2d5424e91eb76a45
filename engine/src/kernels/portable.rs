//! The portable kernels: plain Rust, the reference every other family must
//! match, and the fallback on any processor.

/// Sum eight partial sums in a fixed tree order.
#[inline]
pub fn sum8(a: [f32; 8]) -> f32 {
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

#[inline]
pub(crate) fn f32_le(b: &[u8]) -> f32 {
    match *b {
        [a, b, c, d] => f32::from_le_bytes([a, b, c, d]),
        _ => 0.0,
    }
}

#[inline]
pub(crate) fn f16_le(b: &[u8]) -> f32 {
    match *b {
        [a, b] => half::f16::from_bits(u16::from_le_bytes([a, b])).to_f32(),
        _ => 0.0,
    }
}

/// Dot product of little-endian values (`width` bytes each, decoded by
/// `decode`) with `x`, in eight interleaved lanes: lane `j` sums columns
/// `8b + j` in order of `b`, the lanes are reduced by [`sum8`] and the
/// columns past the last multiple of 8 are added in order at the end.
#[inline]
pub fn dot_lanes(w: &[u8], x: &[f32], width: usize, decode: impl Fn(&[u8]) -> f32) -> f32 {
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

/// Dot product of two f32 slices in eight interleaved lanes, reduced by
/// [`sum8`], the tail added in order (the order of the f32 matvec).
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let a_blocks = a.chunks_exact(8);
    let b_blocks = b.chunks_exact(8);
    let (a_tail, b_tail) = (a_blocks.remainder(), b_blocks.remainder());
    for (ab, bb) in a_blocks.zip(b_blocks) {
        for ((s, &x), &y) in acc.iter_mut().zip(ab).zip(bb) {
            *s += x * y;
        }
    }
    let mut tail = 0.0f32;
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        tail += x * y;
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

/// Dot product of int8 weights with activations packed by
/// [`super::pack_pairs`]: the portable reference of the DSP kernel.
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

/// Float matvec (`width` 4: f32, 2: f16), one row at a time.
pub fn matvec_float(out: &mut [f32], w: &[u8], cols: usize, x: &[f32], width: usize) {
    let decode = if width == 4 { f32_le } else { f16_le };
    for (o, row) in out.iter_mut().zip(w.chunks_exact(cols.max(1) * width)) {
        *o = dot_lanes(row, x, width, decode);
    }
}

/// int8 matvec over [`Int8Layout::Interleaved4`] weights (one scale per
/// row): the same bits as [`matvec_i8`] over the same rows in row order.
///
/// [`Int8Layout::Interleaved4`]: crate::weights::Int8Layout::Interleaved4
pub fn matvec_i8_rows4(out: &mut [f32], m: super::Int8Rows<'_>, xq: &[i8], xs: &[f32]) {
    let (cols, s) = (m.cols.max(1), xs.first().copied().unwrap_or(0.0));
    let blocks = m.weights.chunks_exact(4 * cols);
    let scales = m.scales.chunks_exact(16);
    for ((o4, block), s4) in out.chunks_mut(4).zip(blocks).zip(scales) {
        let mut acc = [0i32; 4];
        for (words, x) in block.chunks_exact(16).zip(xq.chunks_exact(4)) {
            for (a, w) in acc.iter_mut().zip(words.chunks_exact(4)) {
                *a += dot_i8(w, x);
            }
        }
        for ((o, a), ws) in o4.iter_mut().zip(acc).zip(s4.chunks_exact(4)) {
            *o = 0.0 + a as f32 * (f32_le(ws) * s);
        }
    }
}

/// int8 matvec: per row, the groups' exact integer dot products, each times
/// its weight scale times its activation scale, summed in group order.
pub fn matvec_i8(out: &mut [f32], m: super::Int8Rows<'_>, xq: &[i8], xs: &[f32]) {
    let super::Int8Rows {
        weights: w,
        scales,
        cols,
        group,
        ..
    } = m;
    let group = group.max(1);
    let groups = cols / group;
    for ((o, row), row_scales) in out
        .iter_mut()
        .zip(w.chunks_exact(cols.max(1)))
        .zip(scales.chunks_exact(groups.max(1) * 4))
    {
        let mut acc = 0.0f32;
        for (((wg, xg), ws), &s) in row
            .chunks_exact(group)
            .zip(xq.chunks_exact(group))
            .zip(row_scales.chunks_exact(4))
            .zip(xs)
        {
            acc += dot_i8(wg, xg) as f32 * (f32_le(ws) * s);
        }
        *o = acc;
    }
}
