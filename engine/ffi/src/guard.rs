//! No panic crosses the C boundary: hosted builds catch it and return
//! [`KANTOR_ERROR_PANIC`]; bare-metal and WebAssembly builds stop in their own
//! panic handler (the engine's hot path is panic-free, so this is a bug).

use crate::abi::KantorStatus;
#[cfg(feature = "std")]
use crate::abi::KANTOR_ERROR_PANIC;

/// Run `body`, turning a panic into [`KANTOR_ERROR_PANIC`].
#[cfg(feature = "std")]
pub(crate) fn catch(body: impl FnOnce() -> KantorStatus) -> KantorStatus {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(KANTOR_ERROR_PANIC)
}

/// Run `body` (a panic stops in the panic handler below).
#[cfg(not(feature = "std"))]
pub(crate) fn catch(body: impl FnOnce() -> KantorStatus) -> KantorStatus {
    body()
}

/// Bare metal: park the core (a debugger shows where). WebAssembly: trap,
/// which the page sees as a `RuntimeError`.
#[cfg(all(
    not(feature = "std"),
    not(test),
    any(target_os = "none", target_arch = "wasm32")
))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    loop {
        core::hint::spin_loop();
    }
}
