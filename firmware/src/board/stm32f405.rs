//! STM32F405 boards (Adafruit Feather STM32F405, Olimex STM32-H405,
//! Netduino Plus 2 — the board QEMU emulates as `netduinoplus2`).
//!
//! * Clock: the internal 16 MHz oscillator through the PLL to 168 MHz (no
//!   crystal needed, so any F405 board works); if the PLL does not lock —
//!   QEMU does not emulate the RCC — it stays at 16 MHz.
//! * MIDI out: USART1 TX on PA9 (alternate function 7), 31,250 baud, 8N1.
//!   Wire PA9 through 10 Ω to DIN pin 5, and pin 4 through 33 Ω to 3.3 V
//!   (the 3.3 V transmitter of the MIDI 1.0 electrical specification,
//!   CA-033); DIN pin 2 to ground.
//! * Time: SysTick interrupts every millisecond; between them the counter
//!   gives sub-millisecond time and a cycle count for profiling.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use embedded_hal::delay::DelayNs;
use kantor_firmware::clock::Clock;
use stm32f4::stm32f405 as pac;

/// MIDI's serial rate.
pub const MIDI_BAUD: u32 = 31_250;

static MILLIS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    MILLIS.fetch_add(1, Ordering::Relaxed);
}

/// The peripherals the sequencer uses.
pub struct Board {
    /// MIDI output.
    pub midi: MidiUart,
    /// Time source.
    pub clock: SysTickClock,
    /// Core clock in Hz.
    pub core_hz: u32,
}

impl Board {
    /// Configure clocks, the MIDI UART and SysTick.
    pub fn init(core: cortex_m::Peripherals, device: pac::Peripherals) -> Board {
        let (core_hz, apb2_hz) = configure_clocks(&device.RCC, &device.FLASH);

        // PA9 as USART1_TX (AF7).
        device.RCC.ahb1enr().modify(|_, w| w.gpioaen().set_bit());
        device.GPIOA.moder().modify(|_, w| w.moder9().alternate());
        device.GPIOA.afrh().modify(|_, w| w.afrh9().af7());
        device.RCC.apb2enr().modify(|_, w| w.usart1en().set_bit());
        let usart = device.USART1;
        // 16x oversampling: BRR = f_APB2 / baud (mantissa and fraction together).
        usart
            .brr()
            .write(|w| unsafe { w.bits((apb2_hz / MIDI_BAUD) as u16) });
        usart.cr1().write(|w| w.ue().set_bit().te().set_bit());

        let mut syst = core.SYST;
        let reload = core_hz / 1000 - 1;
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(reload);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();

        Board {
            midi: MidiUart { usart },
            clock: SysTickClock {
                reload,
                high: 0,
                last_millis: 0,
            },
            core_hz,
        }
    }
}

/// Try the PLL (HSI 16 MHz / 16 × 336 / 2 = 168 MHz); returns (core, APB2) Hz.
fn configure_clocks(rcc: &pac::RCC, flash: &pac::FLASH) -> (u32, u32) {
    const HSI: u32 = 16_000_000;
    flash.acr().modify(|_, w| {
        unsafe { w.latency().bits(5) }
            .prften()
            .set_bit()
            .icen()
            .set_bit()
            .dcen()
            .set_bit()
    });
    rcc.pllcfgr().write(|w| unsafe {
        w.pllsrc()
            .hsi()
            .pllm()
            .bits(16)
            .plln()
            .bits(336)
            .pllp()
            .div2()
            .pllq()
            .bits(7)
    });
    rcc.cr().modify(|_, w| w.pllon().set_bit());
    let mut locked = false;
    for _ in 0..100_000 {
        if rcc.cr().read().pllrdy().bit_is_set() {
            locked = true;
            break;
        }
    }
    if !locked {
        return (HSI, HSI);
    }
    rcc.cfgr()
        .modify(|_, w| w.ppre1().div4().ppre2().div2().sw().pll());
    for _ in 0..100_000 {
        if rcc.cfgr().read().sws().is_pll() {
            return (168_000_000, 84_000_000);
        }
    }
    (HSI, HSI)
}

/// USART1's transmitter as an `embedded-io` writer.
pub struct MidiUart {
    usart: pac::USART1,
}

impl embedded_io::ErrorType for MidiUart {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for MidiUart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &b in buf {
            while self.usart.sr().read().txe().bit_is_clear() {}
            self.usart.dr().write(|w| unsafe { w.bits(u16::from(b)) });
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        while self.usart.sr().read().tc().bit_is_clear() {}
        Ok(())
    }
}

/// SysTick as a clock: milliseconds from the interrupt, the rest from the counter.
pub struct SysTickClock {
    reload: u32,
    high: u64,
    last_millis: u32,
}

impl SysTickClock {
    /// (milliseconds, counter ticks into the current millisecond), read
    /// consistently: with interrupts masked, a wrap whose interrupt is still
    /// pending is counted here.
    fn read(&mut self) -> (u64, u32) {
        let (millis, current) = cortex_m::interrupt::free(|_| {
            let mut millis = MILLIS.load(Ordering::Relaxed);
            let mut current = SYST::get_current();
            if SCB::is_pendst_pending() {
                // The counter wrapped and the SysTick handler has not run yet.
                millis = millis.wrapping_add(1);
                current = SYST::get_current();
            }
            (millis, current)
        });
        if millis < self.last_millis {
            self.high += 1 << 32;
        }
        self.last_millis = millis;
        (
            self.high + u64::from(millis),
            self.reload - current.min(self.reload),
        )
    }
}

impl DelayNs for SysTickClock {
    fn delay_ns(&mut self, ns: u32) {
        let deadline = self.now_us() + u64::from(ns).div_ceil(1000);
        while self.now_us() < deadline {
            // Sleep until the next SysTick (or other) interrupt.
            cortex_m::asm::wfi();
        }
    }
}

impl Clock for SysTickClock {
    fn now_us(&mut self) -> u64 {
        let (ms, ticks) = self.read();
        ms * 1000 + u64::from(ticks) * 1000 / u64::from(self.reload + 1)
    }

    fn cycles(&mut self) -> u64 {
        let (ms, ticks) = self.read();
        ms * u64::from(self.reload + 1) + u64::from(ticks)
    }
}

/// Reset the chip.
pub fn reset() -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}

/// Memory figures of the running image (reported by the `qemu` build).
#[cfg_attr(not(feature = "qemu"), allow(dead_code))]
pub mod memory {
    use core::ptr::{addr_of, addr_of_mut};

    extern "C" {
        static mut __sheap: u32;
        static _stack_start: u32;
        static __sdata: u32;
        static __edata: u32;
        static __sidata: u32;
        static __ebss: u32;
        static __sccm: u32;
        static __eccm: u32;
    }

    const PAINT: u32 = 0xC0FF_EE11;
    const FLASH_START: usize = 0x0800_0000;

    /// Fill the free stack below the current stack pointer with a pattern.
    pub fn paint_stack() {
        let bottom = addr_of_mut!(__sheap) as usize;
        let sp = cortex_m::register::msp::read() as usize - 64;
        let mut addr = bottom;
        while addr < sp {
            // SAFETY: [__sheap, sp - 64) is unused RAM between the statics and
            // the live stack (no heap in this firmware).
            unsafe { core::ptr::write_volatile(addr as *mut u32, PAINT) };
            addr += 4;
        }
    }

    /// Deepest the stack has been since [`paint_stack`], in bytes.
    pub fn stack_high_water() -> usize {
        let bottom = addr_of_mut!(__sheap) as usize;
        let top = addr_of!(_stack_start) as usize;
        let mut addr = bottom;
        // SAFETY: reads of RAM between the statics and the stack top.
        while addr < top && unsafe { core::ptr::read_volatile(addr as *const u32) } == PAINT {
            addr += 4;
        }
        top - addr
    }

    /// Flash used: code, constants (the model) and the initial values of `.data`.
    pub fn flash_used() -> usize {
        let data = addr_of!(__edata) as usize - addr_of!(__sdata) as usize;
        addr_of!(__sidata) as usize + data - FLASH_START
    }

    /// Static RAM: `.data` and `.bss`.
    pub fn static_ram() -> usize {
        addr_of!(__ebss) as usize - addr_of!(__sdata) as usize
    }

    /// Statics in the CCM (`.ccm`).
    pub fn static_ccm() -> usize {
        addr_of!(__eccm) as usize - addr_of!(__sccm) as usize
    }
}
