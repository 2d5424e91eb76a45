//! The Cortex-M4 (ARMv7E-M DSP) kernels: per 8 weights two word loads,
//! four `SXTB16` and four `SMLAD` (two 16-bit products each), activations
//! pre-packed into 16-bit lanes by [`super::pack_pairs`].
#![allow(unsafe_code)]

use super::portable::dot_packed_portable;

/// Same result as [`dot_packed_portable`].
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
    acc + dot_packed_portable(w_rest, x_rest)
}

/// int8 matvec with per-(row, group) scales, three rows per pass: the same
/// result as [`super::portable::matvec_i8`] (`packed` is the activations
/// laid out by [`super::pack_pairs`], `group` a multiple of 8).
/// The weight scales must be 4-byte aligned (an exported model keeps them
/// so; `None` is returned otherwise and nothing is written).
pub fn matvec_i8(
    out: &mut [f32],
    m: super::Int8Rows<'_>,
    packed: &[u32],
    xs: &[f32],
) -> Option<()> {
    let rows = out.len();
    let Some(groups) = m.checked_groups(rows, packed.len() * 2, xs.len(), 8) else {
        return Some(());
    };
    let pass = Rows {
        w: m.weights,
        scales: bytemuck::try_cast_slice(&m.scales[..rows * groups * 4]).ok()?,
        packed,
        xs,
        cols: m.cols,
        group: m.group,
        groups,
    };
    let mut r = if groups == 1 {
        pass.triples_one_scale(out)
    } else {
        0
    };
    r = pass.triples(out, r);
    pass.tail(out, r);
    Some(())
}

/// A checked int8 matvec (see [`matvec_i8`]): every row `< out.len()` and
/// group `< groups` lies within the slices.
struct Rows<'a> {
    w: &'a [u8],
    scales: &'a [f32],
    packed: &'a [u32],
    xs: &'a [f32],
    cols: usize,
    group: usize,
    groups: usize,
}

impl Rows<'_> {
    /// Scale `i` (of `rows * groups`).
    fn scale(&self, i: usize) -> f32 {
        // SAFETY: every caller's index is < rows * groups (checked in matvec_i8).
        unsafe { *self.scales.get_unchecked(i) }
    }

    /// One scale per row: three rows' dot products per pass, one rescale
    /// each. Returns the rows done.
    fn triples_one_scale(&self, out: &mut [f32]) -> usize {
        let (wp, xp, cols) = (self.w.as_ptr(), self.packed.as_ptr(), self.cols);
        // SAFETY: one group, so xs holds one scale (checked in matvec_i8).
        let s = unsafe { *self.xs.get_unchecked(0) };
        let mut r = 0;
        while r + 3 <= out.len() {
            // SAFETY: rows r..r + 3 are in range (checked in matvec_i8).
            let d = unsafe {
                let a = wp.add(r * cols);
                triple_blocks(a, a.add(cols), a.add(2 * cols), xp, self.group / 8)
            };
            for (i, d) in d.into_iter().enumerate() {
                out[r + i] = d as f32 * (self.scale(r + i) * s);
            }
            r += 3;
        }
        r
    }

    /// Three rows per pass from row `r`, group by group: each activation
    /// word serves three rows (12 of the 12 registers inline assembly may
    /// use here). Returns the rows done.
    fn triples(&self, out: &mut [f32], mut r: usize) -> usize {
        let (wp, xp, cols, groups) = (
            self.w.as_ptr(),
            self.packed.as_ptr(),
            self.cols,
            self.groups,
        );
        while r + 3 <= out.len() {
            let mut acc = [0.0f32; 3];
            for g in 0..groups {
                let at = g * self.group;
                // SAFETY: rows r..r + 3, group g: in range (checked in matvec_i8).
                let d = unsafe {
                    triple_blocks(
                        wp.add(r * cols + at),
                        wp.add((r + 1) * cols + at),
                        wp.add((r + 2) * cols + at),
                        xp.add(at / 2),
                        self.group / 8,
                    )
                };
                // SAFETY: g < groups <= xs.len().
                let s = unsafe { *self.xs.get_unchecked(g) };
                for (i, (a, d)) in acc.iter_mut().zip(d).enumerate() {
                    *a += d as f32 * (self.scale((r + i) * groups + g) * s);
                }
            }
            out[r..r + 3].copy_from_slice(&acc);
            r += 3;
        }
        r
    }

    /// The last one or two rows from row `r`.
    fn tail(&self, out: &mut [f32], mut r: usize) {
        let (wp, xp, cols, groups, group) = (
            self.w.as_ptr(),
            self.packed.as_ptr(),
            self.cols,
            self.groups,
            self.group,
        );
        while r + 2 <= out.len() {
            let (mut acc_a, mut acc_b) = (0.0f32, 0.0f32);
            for g in 0..groups {
                // SAFETY: rows r and r + 1, group g: in range (checked in matvec_i8).
                let (da, db) = unsafe {
                    pair_blocks(
                        wp.add(r * cols + g * group),
                        wp.add((r + 1) * cols + g * group),
                        xp.add(g * group / 2),
                        group / 8,
                    )
                };
                // SAFETY: g < groups <= xs.len().
                let s = unsafe { *self.xs.get_unchecked(g) };
                acc_a += da as f32 * (self.scale(r * groups + g) * s);
                acc_b += db as f32 * (self.scale((r + 1) * groups + g) * s);
            }
            out[r] = acc_a;
            out[r + 1] = acc_b;
            r += 2;
        }
        if r < out.len() {
            let row = &self.w[r * cols..][..cols];
            let mut acc = 0.0f32;
            for (g, &s) in self.xs.iter().enumerate().take(groups) {
                let at = g * group;
                let d = dot_packed(&row[at..at + group], &self.packed[at / 2..(at + group) / 2]);
                acc += d as f32 * (self.scale(r * groups + g) * s);
            }
            out[r] = acc;
        }
    }
}

/// int8 matvec over [`Int8Layout::Interleaved4`] weights with one scale per
/// row, four rows per pass: each 8-byte load brings a word of two rows, each
/// activation word serves four rows (19 instructions per 16 multiply-adds).
/// The same result as [`super::portable::matvec_i8_rows4`]; `None` (nothing
/// written) if the weights or scales are not word-aligned or the sizes do
/// not fit.
///
/// [`Int8Layout::Interleaved4`]: crate::weights::Int8Layout::Interleaved4
pub fn matvec_i8_rows4(
    out: &mut [f32],
    m: super::Int8Rows<'_>,
    packed: &[u32],
    xs: &[f32],
) -> Option<()> {
    let rows = out.len();
    let cols = m.cols;
    let groups = m.checked_groups(rows, packed.len() * 2, xs.len(), 8)?;
    let aligned = m.weights.as_ptr().align_offset(4) == 0;
    if groups != 1 || !rows.is_multiple_of(4) || !cols.is_multiple_of(8) || !aligned {
        return None;
    }
    let sc: &[f32] = bytemuck::try_cast_slice(&m.scales[..rows * 4]).ok()?;
    let s = xs[0];
    let (wp, xp) = (m.weights.as_ptr(), packed.as_ptr());
    for (b, (o4, s4)) in out.chunks_exact_mut(4).zip(sc.chunks_exact(4)).enumerate() {
        // SAFETY: block b's 4·cols bytes are within the weights (checked
        // above) and word-aligned; `packed` holds cols / 2 words; cols / 8 ≥ 1.
        let d = unsafe { quad_blocks_rows4(wp.add(b * 4 * cols), xp, cols / 8) };
        for ((o, d), &ws) in o4.iter_mut().zip(d).zip(s4) {
            *o = d as f32 * (ws * s);
        }
    }
    Some(())
}

/// Four interleaved rows' dot products over `blocks` blocks of 8 columns:
/// an odd block first, then two blocks (four times 4 columns) per loop.
///
/// # Safety
/// `w` (word-aligned) must be readable for `blocks * 32` bytes and `x`
/// (word-aligned) for `blocks * 4` words; `blocks` at least 1.
#[inline(always)]
unsafe fn quad_blocks_rows4(w: *const u8, x: *const u32, blocks: usize) -> [i32; 4] {
    let (mut s0, mut s1, mut s2, mut s3) = (0i32, 0i32, 0i32, 0i32);
    // Four columns of the four rows: one word of activations pairs, a word
    // of each row.
    macro_rules! four_columns {
        () => {
            concat!(
                "ldrd {x0}, {x1}, [{xp}], #8\n",
                "ldrd {w0}, {w1}, [{wp}], #8\n",
                "sxtb16 {t}, {w0}\n",
                "smlad {s0}, {t}, {x0}, {s0}\n",
                "sxtb16 {w0}, {w0}, ror #8\n",
                "smlad {s0}, {w0}, {x1}, {s0}\n",
                "sxtb16 {t}, {w1}\n",
                "smlad {s1}, {t}, {x0}, {s1}\n",
                "sxtb16 {w1}, {w1}, ror #8\n",
                "smlad {s1}, {w1}, {x1}, {s1}\n",
                "ldrd {w0}, {w1}, [{wp}], #8\n",
                "sxtb16 {t}, {w0}\n",
                "smlad {s2}, {t}, {x0}, {s2}\n",
                "sxtb16 {w0}, {w0}, ror #8\n",
                "smlad {s2}, {w0}, {x1}, {s2}\n",
                "sxtb16 {t}, {w1}\n",
                "smlad {s3}, {t}, {x0}, {s3}\n",
                "sxtb16 {w1}, {w1}, ror #8\n",
                "smlad {s3}, {w1}, {x1}, {s3}\n",
            )
        };
    }
    core::arch::asm!(
        "lsrs {n}, {n}, #1",
        "bcc 2f",
        four_columns!(),
        four_columns!(),
        "cmp {n}, #0",
        "beq 3f",
        "2:",
        four_columns!(),
        four_columns!(),
        four_columns!(),
        four_columns!(),
        "subs {n}, {n}, #1",
        "bne 2b",
        "3:",
        wp = inout(reg) w => _,
        xp = inout(reg) x => _,
        n = inout(reg) blocks => _,
        s0 = inout(reg) s0,
        s1 = inout(reg) s1,
        s2 = inout(reg) s2,
        s3 = inout(reg) s3,
        w0 = out(reg) _,
        w1 = out(reg) _,
        x0 = out(reg) _,
        x1 = out(reg) _,
        t = out(reg) _,
        options(nostack, readonly),
    );
    [s0, s1, s2, s3]
}

/// Three rows' dot products over `blocks` blocks of 8 weights with the same
/// packed activations.
///
/// # Safety
/// `a`, `b` and `c` must be readable for `blocks * 8` bytes and `x`
/// (word-aligned) for `blocks * 4` words; `blocks` at least 1.
#[inline(always)]
unsafe fn triple_blocks(
    a: *const u8,
    b: *const u8,
    c: *const u8,
    x: *const u32,
    blocks: usize,
) -> [i32; 3] {
    let (mut sa, mut sb, mut sc) = (0i32, 0i32, 0i32);
    core::arch::asm!(
        "2:",
        "ldrd {x0}, {x1}, [{xp}], #8",
        "ldr {w}, [{pa}], #4",
        "sxtb16 {t}, {w}",
        "smlad {sa}, {t}, {x0}, {sa}",
        "sxtb16 {t}, {w}, ror #8",
        "smlad {sa}, {t}, {x1}, {sa}",
        "ldr {w}, [{pb}], #4",
        "sxtb16 {t}, {w}",
        "smlad {sb}, {t}, {x0}, {sb}",
        "sxtb16 {t}, {w}, ror #8",
        "smlad {sb}, {t}, {x1}, {sb}",
        "ldr {w}, [{pc}], #4",
        "sxtb16 {t}, {w}",
        "smlad {sc}, {t}, {x0}, {sc}",
        "sxtb16 {t}, {w}, ror #8",
        "smlad {sc}, {t}, {x1}, {sc}",
        "ldrd {x0}, {x1}, [{xp}], #8",
        "ldr {w}, [{pa}], #4",
        "sxtb16 {t}, {w}",
        "smlad {sa}, {t}, {x0}, {sa}",
        "sxtb16 {t}, {w}, ror #8",
        "smlad {sa}, {t}, {x1}, {sa}",
        "ldr {w}, [{pb}], #4",
        "sxtb16 {t}, {w}",
        "smlad {sb}, {t}, {x0}, {sb}",
        "sxtb16 {t}, {w}, ror #8",
        "smlad {sb}, {t}, {x1}, {sb}",
        "ldr {w}, [{pc}], #4",
        "sxtb16 {t}, {w}",
        "smlad {sc}, {t}, {x0}, {sc}",
        "sxtb16 {t}, {w}, ror #8",
        "smlad {sc}, {t}, {x1}, {sc}",
        "subs {n}, {n}, #1",
        "bne 2b",
        pa = inout(reg) a => _,
        pb = inout(reg) b => _,
        pc = inout(reg) c => _,
        xp = inout(reg) x => _,
        n = inout(reg) blocks => _,
        sa = inout(reg) sa,
        sb = inout(reg) sb,
        sc = inout(reg) sc,
        w = out(reg) _,
        x0 = out(reg) _,
        x1 = out(reg) _,
        t = out(reg) _,
        options(nostack, readonly),
    );
    [sa, sb, sc]
}

/// Two rows' dot products over `blocks` blocks of 8 weights with the same
/// packed activations (each activation word loaded once for both).
///
/// # Safety
/// `a` and `b` must be readable for `blocks * 8` bytes and `x` (word-aligned)
/// for `blocks * 4` words.
#[inline(always)]
unsafe fn pair_blocks(a: *const u8, b: *const u8, x: *const u32, blocks: usize) -> (i32, i32) {
    let (mut sa, mut sb) = (0i32, 0i32);
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
        pa = inout(reg) a => _,
        pb = inout(reg) b => _,
        xp = inout(reg) x => _,
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
    (sa, sb)
}

/// `out[t] = dot(rows[t·stride..][..len], x) as f32` for every `t <
/// out.len()`, `x` packed 16-bit lane pairs (int8 or 16-bit values): the
/// loop of [`dot_packed`] without a call per row. Rows out of range, or a
/// `len` that is not a multiple of 8, take the checked path.
pub fn dot_rows(out: &mut [f32], rows: &[u8], stride: usize, len: usize, x: &[u32]) {
    let n = out.len();
    let fits = n == 0 || rows.len() >= (n - 1) * stride + len;
    if len == 0 || !len.is_multiple_of(8) || x.len() < len / 2 || !fits {
        for (t, o) in out.iter_mut().enumerate() {
            let row = rows.get(t * stride..t * stride + len).unwrap_or(&[]);
            *o = dot_packed(row, x) as f32;
        }
        return;
    }
    let (rp, xp, blocks) = (rows.as_ptr(), x.as_ptr(), len / 8);
    for (t, o) in out.iter_mut().enumerate() {
        // SAFETY: row t lies within `rows` (checked above), `x` holds
        // `blocks * 4` words, `blocks` >= 1.
        *o = unsafe { single_blocks(rp.add(t * stride), xp, blocks) } as f32;
    }
}

/// [`dot_rows`] for two vectors at once: `out_a[t]` with `xa`, `out_b[t]`
/// with `xb`, each row loaded and sign-extended once for both (two query
/// heads sharing a KV head: 9 instructions per 4 bytes of row instead of 12).
pub fn dot_rows_pair(out: [&mut [f32]; 2], rows: &[u8], stride: usize, len: usize, x: [&[u32]; 2]) {
    let [out_a, out_b] = out;
    let [xa, xb] = x;
    let n = out_a.len().min(out_b.len());
    let fits = n == 0 || rows.len() >= (n - 1) * stride + len;
    if len == 0 || !len.is_multiple_of(8) || xa.len().min(xb.len()) < len / 2 || !fits {
        dot_rows(out_a, rows, stride, len, xa);
        dot_rows(out_b, rows, stride, len, xb);
        return;
    }
    let (rp, blocks) = (rows.as_ptr(), len / 8);
    for (t, (oa, ob)) in out_a.iter_mut().zip(out_b.iter_mut()).enumerate() {
        // SAFETY: row t lies within `rows` (checked above), `xa` and `xb`
        // hold `blocks * 4` words, `blocks` >= 1.
        let (a, b) = unsafe { pair_x_blocks(rp.add(t * stride), xa.as_ptr(), xb.as_ptr(), blocks) };
        *oa = a as f32;
        *ob = b as f32;
    }
}

/// One row's dot products with two packed vectors over `blocks` blocks of 8.
///
/// # Safety
/// `w` readable for `blocks * 8` bytes, `xa` and `xb` (word-aligned) for
/// `blocks * 4` words, `blocks` at least 1.
#[inline(always)]
unsafe fn pair_x_blocks(w: *const u8, xa: *const u32, xb: *const u32, blocks: usize) -> (i32, i32) {
    let (mut sa, mut sb) = (0i32, 0i32);
    core::arch::asm!(
        "2:",
        "ldr {w}, [{wp}], #4",
        "sxtb16 {hi}, {w}, ror #8",
        "sxtb16 {w}, {w}",
        "ldrd {x0}, {x1}, [{pa}], #8",
        "smlad {sa}, {w}, {x0}, {sa}",
        "smlad {sa}, {hi}, {x1}, {sa}",
        "ldrd {x0}, {x1}, [{pb}], #8",
        "smlad {sb}, {w}, {x0}, {sb}",
        "smlad {sb}, {hi}, {x1}, {sb}",
        "ldr {w}, [{wp}], #4",
        "sxtb16 {hi}, {w}, ror #8",
        "sxtb16 {w}, {w}",
        "ldrd {x0}, {x1}, [{pa}], #8",
        "smlad {sa}, {w}, {x0}, {sa}",
        "smlad {sa}, {hi}, {x1}, {sa}",
        "ldrd {x0}, {x1}, [{pb}], #8",
        "smlad {sb}, {w}, {x0}, {sb}",
        "smlad {sb}, {hi}, {x1}, {sb}",
        "subs {n}, {n}, #1",
        "bne 2b",
        wp = inout(reg) w => _,
        pa = inout(reg) xa => _,
        pb = inout(reg) xb => _,
        n = inout(reg) blocks => _,
        sa = inout(reg) sa,
        sb = inout(reg) sb,
        w = out(reg) _,
        hi = out(reg) _,
        x0 = out(reg) _,
        x1 = out(reg) _,
        options(nostack, readonly),
    );
    (sa, sb)
}

/// One row's dot product over `blocks` blocks of 8 weights.
///
/// # Safety
/// `w` readable for `blocks * 8` bytes, `x` (word-aligned) for `blocks * 4`
/// words, `blocks` at least 1.
#[inline(always)]
unsafe fn single_blocks(w: *const u8, x: *const u32, blocks: usize) -> i32 {
    let mut acc = 0i32;
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
        wp = inout(reg) w => _,
        xp = inout(reg) x => _,
        n = inout(reg) blocks => _,
        acc = inout(reg) acc,
        w = out(reg) _,
        x0 = out(reg) _,
        x1 = out(reg) _,
        t = out(reg) _,
        options(nostack, readonly),
    );
    acc
}

/// [`super::quantize`] of one group (`x.len()` a multiple of 4, at most
/// `q.len()`), writing the int8 values to `q` and, if given, their lane
/// pairs ([`super::pack_pairs`]) to `packed`; returns the scale. The same
/// bits as the portable code: the largest magnitude is an unsigned maximum
/// of the bits without their sign (a NaN, which the portable code skips,
/// returns `None` so that it takes over), and `round(r)` half away from zero
/// is `(k + [k > 0]) >> 1` for `k = trunc(2r)`, which is exact.
pub fn quantize_group(x: &[f32], q: &mut [i8], packed: Option<&mut [u32]>) -> Option<f32> {
    let n = x.len();
    if n == 0
        || !n.is_multiple_of(4)
        || q.len() < n
        || packed.as_ref().is_some_and(|p| p.len() < n / 2)
    {
        return None;
    }
    let mut max_bits: u32 = 0;
    // SAFETY: reads `n` floats of `x` (n a multiple of 4, n ≥ 4).
    unsafe {
        core::arch::asm!(
            "2:",
            "ldrd {a}, {b}, [{xp}], #8",
            "ldrd {c}, {d}, [{xp}], #8",
            "bic {a}, {a}, #0x80000000",
            "cmp {a}, {m}",
            "it hi",
            "movhi {m}, {a}",
            "bic {b}, {b}, #0x80000000",
            "cmp {b}, {m}",
            "it hi",
            "movhi {m}, {b}",
            "bic {c}, {c}, #0x80000000",
            "cmp {c}, {m}",
            "it hi",
            "movhi {m}, {c}",
            "bic {d}, {d}, #0x80000000",
            "cmp {d}, {m}",
            "it hi",
            "movhi {m}, {d}",
            "subs {n}, {n}, #1",
            "bne 2b",
            xp = inout(reg) x.as_ptr() => _,
            n = inout(reg) n / 4 => _,
            m = inout(reg) max_bits,
            a = out(reg) _,
            b = out(reg) _,
            c = out(reg) _,
            d = out(reg) _,
            options(nostack, readonly),
        );
    }
    if max_bits > 0x7f80_0000 {
        return None; // a NaN: the portable code skips it
    }
    let max = f32::from_bits(max_bits);
    if !(max > 0.0 && max.is_finite()) {
        q[..n].fill(0);
        if let Some(p) = packed {
            p[..n / 2].fill(0);
        }
        return Some(0.0);
    }
    // 2·(127 / max): doubling is exact, so trunc(x · inv2) = trunc(2r).
    let inv2 = 2.0 * (127.0 / max);
    let mut scratch = [0u32; 2];
    let (pp, pstep) = match packed {
        Some(p) => (p.as_mut_ptr(), 8usize),
        None => (scratch.as_mut_ptr(), 0usize),
    };
    // SAFETY: reads `n` floats of `x`, writes `n` bytes of `q` and (with a
    // step of 8) `n / 2` words of `packed`, or twice the two scratch words.
    unsafe {
        core::arch::asm!(
            "vmov s4, {inv}",
            "2:",
            "vldm {xp}!, {{s0-s3}}",
            "vmul.f32 s0, s0, s4",
            "vmul.f32 s1, s1, s4",
            "vmul.f32 s2, s2, s4",
            "vmul.f32 s3, s3, s4",
            "vcvt.s32.f32 s0, s0",
            "vcvt.s32.f32 s1, s1",
            "vcvt.s32.f32 s2, s2",
            "vcvt.s32.f32 s3, s3",
            "vmov {a}, {b}, s0, s1",
            "vmov {c}, {d}, s2, s3",
            "cmp {a}, #0",
            "it gt",
            "addgt {a}, {a}, #1",
            "ssat {a}, #8, {a}, asr #1",
            "cmp {b}, #0",
            "it gt",
            "addgt {b}, {b}, #1",
            "ssat {b}, #8, {b}, asr #1",
            "cmp {c}, #0",
            "it gt",
            "addgt {c}, {c}, #1",
            "ssat {c}, #8, {c}, asr #1",
            "cmp {d}, #0",
            "it gt",
            "addgt {d}, {d}, #1",
            "ssat {d}, #8, {d}, asr #1",
            "strb {a}, [{qp}], #1",
            "strb {b}, [{qp}], #1",
            "strb {c}, [{qp}], #1",
            "strb {d}, [{qp}], #1",
            "pkhbt {a}, {a}, {c}, lsl #16",
            "pkhbt {b}, {b}, {d}, lsl #16",
            "strd {a}, {b}, [{pp}]",
            "add {pp}, {pp}, {step}",
            "subs {n}, {n}, #1",
            "bne 2b",
            xp = inout(reg) x.as_ptr() => _,
            qp = inout(reg) q.as_mut_ptr() => _,
            pp = inout(reg) pp => _,
            step = in(reg) pstep,
            n = inout(reg) n / 4 => _,
            inv = in(reg) inv2.to_bits(),
            a = out(reg) _,
            b = out(reg) _,
            c = out(reg) _,
            d = out(reg) _,
            out("s0") _,
            out("s1") _,
            out("s2") _,
            out("s3") _,
            out("s4") _,
            options(nostack),
        );
    }
    Some(max / 127.0)
}
