//! The session's memory on the board: its SRAM part a static in `.bss`,
//! its CCM part a static in `.ccm` (the section `firmware/memory/*.x`
//! place in the core-coupled memory), sized by `build.rs` for the linked
//! model ([`SESSION_SRAM`], [`SESSION_CCM`]). The crate's only `unsafe`.

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::settings::{SESSION_CCM, SESSION_SRAM};

/// The board's session memory, (SRAM part, CCM part), zeroed: `Some` on the
/// first call only, so that no two users ever share it.
pub fn take() -> Option<(&'static mut [u8], &'static mut [u8])> {
    /// Bytes at a word-pair boundary, as the session's buffers are carved.
    #[repr(C, align(8))]
    struct Aligned<const N: usize>([u8; N]);

    static TAKEN: AtomicBool = AtomicBool::new(false);
    #[allow(unsafe_code)] // a `static mut`, handed out once by `take`
    static mut SRAM: Aligned<SESSION_SRAM> = Aligned([0; SESSION_SRAM]);
    /// Not initialised at reset (section `.ccm` is NOLOAD): zeroed below.
    #[allow(unsafe_code)] // the section memory/*.x places in the CCM
    #[link_section = ".ccm"]
    static mut CCM: MaybeUninit<Aligned<SESSION_CCM>> = MaybeUninit::uninit();

    if TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    #[allow(unsafe_code)]
    // SAFETY: TAKEN lets this run once, so these are the only references to
    // SRAM and CCM; the CCM part is zeroed before it is read as bytes.
    unsafe {
        let ccm = &mut *addr_of_mut!(CCM);
        ccm.as_mut_ptr().write_bytes(0, 1);
        Some((&mut (*addr_of_mut!(SRAM)).0, &mut ccm.assume_init_mut().0))
    }
}
