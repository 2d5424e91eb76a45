//! The Cortex-M4 (ARMv7E-M DSP) kernels: per 8 weights two word loads,
//! four `SXTB16` and four `SMLAD` (two 16-bit products each), activations
//! pre-packed into 16-bit lanes by [`super::pack_pairs`].
#![allow(unsafe_code)]

use super::portable::{dot_packed_portable, f32_le};

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

/// int8 matvec with per-(row, group) scales, two rows per pass: the same
/// result as [`super::portable::matvec_i8`] (`packed` is the activations
/// laid out by [`super::pack_pairs`], `group` a multiple of 8).
pub fn matvec_i8(
    out: &mut [f32],
    w: &[u8],
    scales: &[u8],
    cols: usize,
    group: usize,
    packed: &[u32],
    xs: &[f32],
) {
    let groups = cols / group.max(1);
    if group == 0
        || group % 8 != 0
        || cols % group != 0
        || packed.len() < cols / 2
        || xs.len() < groups
        || w.len() < out.len() * cols
        || scales.len() < out.len() * groups * 4
    {
        return;
    }
    let mut pairs = out.chunks_exact_mut(2);
    let mut r = 0;
    for pair in pairs.by_ref() {
        let (ra, rb) = (&w[r * cols..][..cols], &w[(r + 1) * cols..][..cols]);
        let (sa, sb) = (&scales[r * groups * 4..], &scales[(r + 1) * groups * 4..]);
        let (mut acc_a, mut acc_b) = (0.0f32, 0.0f32);
        for (g, &s) in xs.iter().enumerate().take(groups) {
            let at = g * group;
            // SAFETY-free: the slices are in range by the checks above.
            let (da, db) = dot_packed_pair(
                &ra[at..at + group],
                &rb[at..at + group],
                &packed[at / 2..(at + group) / 2],
            );
            acc_a += da as f32 * (f32_le(&sa[g * 4..g * 4 + 4]) * s);
            acc_b += db as f32 * (f32_le(&sb[g * 4..g * 4 + 4]) * s);
        }
        pair[0] = acc_a;
        pair[1] = acc_b;
        r += 2;
    }
    if let Some(o) = pairs.into_remainder().first_mut() {
        let row = &w[r * cols..][..cols];
        let rs = &scales[r * groups * 4..];
        let mut acc = 0.0f32;
        for (g, &s) in xs.iter().enumerate().take(groups) {
            let at = g * group;
            let d = dot_packed(&row[at..at + group], &packed[at / 2..(at + group) / 2]);
            acc += d as f32 * (f32_le(&rs[g * 4..g * 4 + 4]) * s);
        }
        *o = acc;
    }
}
