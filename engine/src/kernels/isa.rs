//! Which instruction-set extensions the kernels use, chosen at run time on
//! the desktop (CPUID, no operating system needed) and at compile time on a
//! microcontroller.

/// A family of kernels. Every family gives bit-identical int8 results (integer
/// sums are exact and the few float operations around them run in the same
/// order everywhere); the float paths of the x86 families are bit-identical to
/// the portable ones too (they keep its eight-lane summation order and use no
/// fused multiply-add).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust: the reference, and the fallback everywhere.
    Portable,
    /// x86-64 with AVX2 and F16C: 256-bit integer and float kernels.
    Avx2,
    /// x86-64 with AVX-512 VNNI (and VL, BW): `vpdpbusd` for the int8 dot products.
    Avx512Vnni,
    /// ARMv7E-M (Cortex-M4/M7) with the DSP extension: `SXTB16` + `SMLAD`
    /// (only where the engine was built with its `dsp` feature).
    ArmDsp,
}

/// Every family, fastest first.
pub const ALL: [Isa; 4] = [Isa::Avx512Vnni, Isa::Avx2, Isa::ArmDsp, Isa::Portable];

impl Isa {
    /// The fastest family this processor has.
    pub fn best() -> Isa {
        ALL.into_iter()
            .find(|isa| isa.is_available())
            .unwrap_or(Isa::Portable)
    }

    /// Whether this processor (and this build) can run the family.
    #[inline]
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Avx2 => x86_features().avx2,
            Isa::Avx512Vnni => x86_features().avx512_vnni,
            Isa::ArmDsp => cfg!(all(target_arch = "arm", feature = "dsp")),
        }
    }

    /// An x86 family this processor has.
    #[inline]
    pub fn is_x86(self) -> bool {
        matches!(self, Isa::Avx2 | Isa::Avx512Vnni) && self.is_available()
    }

    /// Every family this processor can run (for tests that compare them).
    pub fn available() -> impl Iterator<Item = Isa> {
        ALL.into_iter().filter(|isa| isa.is_available())
    }
}

/// The x86 features the kernels use, as detected.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct X86Features {
    /// AVX2 and F16C, with the OS saving YMM state.
    pub avx2: bool,
    /// AVX-512 F, BW, VL and VNNI on top, with the OS saving ZMM state.
    pub avx512_vnni: bool,
}

#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn x86_features() -> X86Features {
    use core::sync::atomic::{AtomicU8, Ordering};
    const UNKNOWN: u8 = 0xff;
    static CACHE: AtomicU8 = AtomicU8::new(UNKNOWN);
    let bits = match CACHE.load(Ordering::Relaxed) {
        UNKNOWN => {
            let f = detect_x86();
            let bits = u8::from(f.avx2) | (u8::from(f.avx512_vnni) << 1);
            CACHE.store(bits, Ordering::Relaxed);
            bits
        }
        bits => bits,
    };
    X86Features {
        avx2: bits & 1 != 0,
        avx512_vnni: bits & 2 != 0,
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn x86_features() -> X86Features {
    X86Features::default()
}

/// CPUID leaves 1 and 7 plus XGETBV (the OS must save the wide registers).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code, unused_unsafe)]
fn detect_x86() -> X86Features {
    use core::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
    // SAFETY: CPUID exists on every x86-64 processor.
    let (leaf1, max_leaf) = unsafe { (__cpuid(1), __cpuid(0).eax) };
    let bit = |reg: u32, n: u32| reg & (1 << n) != 0;
    let osxsave = bit(leaf1.ecx, 27);
    if !osxsave || max_leaf < 7 {
        return X86Features::default();
    }
    // SAFETY: OSXSAVE is set, so XGETBV is enabled.
    let xcr0 = unsafe { xgetbv0() };
    // SAFETY: leaf 7 exists (max_leaf >= 7).
    let leaf7 = unsafe { __cpuid_count(7, 0) };
    let ymm = xcr0 & 0b110 == 0b110;
    let zmm = ymm && xcr0 & 0b1110_0000 == 0b1110_0000;
    let avx2 = ymm && bit(leaf1.ecx, 28) && bit(leaf1.ecx, 29) && bit(leaf7.ebx, 5);
    let avx512 = zmm && bit(leaf7.ebx, 16) && bit(leaf7.ebx, 30) && bit(leaf7.ebx, 31);
    return X86Features {
        avx2,
        avx512_vnni: avx2 && avx512 && bit(leaf7.ecx, 11),
    };

    #[target_feature(enable = "xsave")]
    unsafe fn xgetbv0() -> u64 {
        _xgetbv(0)
    }
}
