//! The Kantor MIDI sequencer on an STM32F405 board: generate Bach-style
//! music forever and play it out of a DIN MIDI port.
//!
//! Built with the `qemu` feature it instead plays a fixed number of tokens,
//! prints figures over semihosting and exits — the image the QEMU test runs.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod board;

#[cfg(target_os = "none")]
mod app {
    use cortex_m_rt::{entry, exception, ExceptionFrame};
    use cortex_m_semihosting::hprintln;
    use kantor_engine::model::Model;
    use kantor_firmware::sequencer::{Budget, Sequencer};
    use kantor_firmware::settings::{generator, MODEL, SESSION_MEMORY};

    use crate::board::selected::{self as board, memory, Board};

    #[entry]
    fn main() -> ! {
        memory::paint_stack();
        let (Some(core), Some(device)) = (
            cortex_m::Peripherals::take(),
            stm32f4::stm32f405::Peripherals::take(),
        ) else {
            board::reset();
        };
        #[allow(unused_mut)]
        let Board {
            midi,
            mut clock,
            core_hz,
        } = Board::init(core, device);

        let model = match Model::from_bytes(MODEL) {
            Ok(m) => m,
            Err(e) => panic!("the linked model does not load: {e} ({e:?})"),
        };
        let Some((sram, ccm)) = kantor_firmware::session_memory::take() else {
            board::reset();
        };

        #[cfg(feature = "qemu")]
        let (calibration, profile) = (
            qemu::calibrate(&mut clock),
            qemu::profile(&model, sram, ccm, &mut clock),
        );

        let generator = match generator(&model, sram, ccm) {
            Ok(g) => g,
            Err(e) => panic!("session: {e} (SESSION_MEMORY is {SESSION_MEMORY})"),
        };
        let mut sequencer = Sequencer::new(generator, midi, clock);

        #[cfg(not(feature = "qemu"))]
        {
            let _ = core_hz;
            // Plays forever: the KV cache slides, the sampler never runs out.
            let _ = sequencer.run(Budget::Forever);
            board::reset()
        }
        #[cfg(feature = "qemu")]
        {
            #[cfg(not(feature = "soak"))]
            let budget = Budget::Tokens(kantor_firmware::settings::TEST_TOKENS);
            #[cfg(feature = "soak")]
            let budget = Budget::Seconds(kantor_firmware::settings::SOAK_SECONDS);
            let report = match sequencer.run(budget) {
                Ok(r) => r,
                Err(never) => match never {},
            };
            qemu::print_report(&report, calibration, profile, core_hz, &model);
            cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
            board::reset()
        }
    }

    /// Measurements only the QEMU image makes.
    #[cfg(feature = "qemu")]
    mod qemu {
        use cortex_m_semihosting::hprintln;
        use kantor_engine::grammar::Grammar;
        use kantor_engine::model::Model;
        use kantor_engine::sampler::Sampler;
        use kantor_engine::session::Session;
        use kantor_engine::vocab::BOS_ID;
        use kantor_firmware::clock::Clock;
        use kantor_firmware::sequencer::Report;
        use kantor_firmware::settings::{session_options, SAMPLER, SEED, SESSION_MEMORY};

        use crate::board::selected::{memory, SysTickClock};

        /// The figures the QEMU test reads, over semihosting.
        pub fn print_report(
            report: &Report,
            calibration: (u64, u64),
            profile: [Phases; 2],
            core_hz: u32,
            model: &Model<'_>,
        ) {
            hprintln!(
                "KANTOR-REPORT tokens={} ill_formed={} dropped={} messages={} clocks={} bytes={} evictions={} pieces={} elapsed_us={}",
                report.tokens,
                report.ill_formed,
                report.dropped_notes,
                report.messages,
                report.clocks,
                report.bytes,
                report.evictions,
                report.pieces,
                report.elapsed_us
            );
            hprintln!(
                "KANTOR-REPORT generate_cycles={} max_token_cycles={} max_token={} calibration_instructions={} calibration_cycles={} core_hz={}",
                report.generate_cycles,
                report.max_token_cycles,
                report.max_token,
                calibration.0,
                calibration.1,
                core_hz
            );
            let [early, late] = profile;
            hprintln!(
                "KANTOR-REPORT profile_steps={} forward_cycles={} grammar_cycles={} sample_cycles={}",
                early.steps,
                early.forward,
                early.grammar,
                early.sample
            );
            hprintln!(
                "KANTOR-REPORT late_steps={} late_forward_cycles={} late_grammar_cycles={} late_sample_cycles={}",
                late.steps,
                late.forward,
                late.grammar,
                late.sample
            );
            hprintln!(
                "KANTOR-REPORT flash_used={} static_ram={} static_ccm={} stack_high_water={} session_memory={} session_needed={}",
                memory::flash_used(),
                memory::static_ram(),
                memory::static_ccm(),
                memory::stack_high_water(),
                SESSION_MEMORY,
                Session::memory_required(&model, session_options(&model))
            );
        }

        /// (instructions, SysTick cycles) of a loop of known length: under
        /// QEMU's `-icount` this converts cycles into instructions.
        pub fn calibrate(clock: &mut SysTickClock) -> (u64, u64) {
            const ITERATIONS: u32 = 1_000_000;
            let start = clock.cycles();
            // SAFETY: a register-only countdown loop of exactly two instructions per iteration.
            unsafe {
                core::arch::asm!("2:", "subs {0}, {0}, #1", "bne 2b", inout(reg) ITERATIONS => _, options(nomem, nostack));
            }
            (2 * u64::from(ITERATIONS), clock.cycles() - start)
        }

        /// SysTick cycles of the three parts of a generation step, summed
        /// over some steps.
        #[derive(Clone, Copy, Default)]
        pub struct Phases {
            pub steps: u64,
            pub forward: u64,
            pub grammar: u64,
            pub sample: u64,
        }

        /// The three parts of a generation step as the generator runs them,
        /// over the first 64 steps from a fresh cache and over the next 64
        /// (where attention covers 65 to 128 positions).
        pub fn profile(
            model: &Model<'_>,
            sram: &mut [u8],
            ccm: &mut [u8],
            clock: &mut SysTickClock,
        ) -> [Phases; 2] {
            const STEPS: u64 = if cfg!(feature = "short") { 2 } else { 64 };
            let mut phases = [Phases::default(); 2];
            let regions = &mut [sram, ccm];
            let Ok(mut session) = Session::new_in(model, session_options(model), regions) else {
                return phases;
            };
            let mut sampler = Sampler::new(SAMPLER, SEED);
            let mut rules = Grammar::new(true);
            let vocab = model.config.vocab_size;
            let mut token = BOS_ID;
            for step in 0..2 * STEPS {
                // The generator's step, its parts timed apart.
                let t0 = clock.cycles();
                rules.accept(token, &model.bpe, |_| {});
                let allowed = rules.allowed(&model.bpe, vocab);
                let t1 = clock.cycles();
                let _ = session.forward_masked(token, allowed);
                let t2 = clock.cycles();
                token = session.sample(&mut sampler);
                let t3 = clock.cycles();
                let phase = &mut phases[usize::from(step >= STEPS)];
                phase.steps += 1;
                phase.grammar += t1 - t0;
                phase.forward += t2 - t1;
                phase.sample += t3 - t2;
            }
            phases
        }
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        // On a board without a debugger the semihosting call faults, and the
        // HardFault handler resets: either way the board restarts.
        hprintln!("KANTOR-PANIC {}", info);
        board::reset()
    }

    #[exception]
    unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
        board::reset()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("kantor-firmware runs on the STM32F405: build it for thumbv7em-none-eabihf (see the README)");
    std::process::exit(1);
}
