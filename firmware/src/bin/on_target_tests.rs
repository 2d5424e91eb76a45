//! On-target tests: the engine's kernels and the whole generator, checked on
//! the microcontroller itself against what the host computed at build time.
//! Output and the exit status go through semihosting, so the same binary
//! runs under `probe-rs run` on a board and under QEMU in CI.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod tests {
    use cortex_m_rt::entry;
    use cortex_m_semihosting::{debug, hprintln};
    use kantor_engine::decoder::{Decoder, Event};
    use kantor_engine::kernels::{
        dot_group, dot_i8, dot_packed_portable, exp, matvec, pack_pairs, quantize, quantize_packed,
        Isa, QuantizedVector,
    };
    use kantor_engine::model::Model;
    use kantor_engine::session::Session;
    use kantor_engine::vocab::BOS_ID;
    use kantor_engine::weights::{interleave_rows4, F32Bytes, Int8Layout, Matrix, MatrixData};
    use kantor_firmware::settings::{generator, session_options, MODEL};

    include!(concat!(env!("OUT_DIR"), "/expected.rs"));

    type Outcome = Result<(), &'static str>;
    /// A named test that needs nothing, and one that needs the session memory
    /// (its SRAM and CCM parts).
    type Plain = (&'static str, fn() -> Outcome);
    type WithMemory = (&'static str, fn(&mut [u8], &mut [u8]) -> Outcome);

    struct Rng(u32);
    impl Rng {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            self.0
        }
    }

    fn dsp_dot_product_equals_the_portable_one() -> Outcome {
        if !kantor_engine::kernels::DSP {
            return Err("the engine was built without its DSP kernels");
        }
        let mut rng = Rng(0x1234_5678);
        for len in [8usize, 16, 24, 32, 64, 128] {
            for _ in 0..20 {
                let mut w = [0u8; 128];
                let mut x = [0i8; 128];
                for i in 0..len {
                    w[i] = rng.next() as u8;
                    x[i] = rng.next() as i8;
                }
                x[0] = -128;
                w[1] = 0x80;
                let mut packed = [0u32; 64];
                pack_pairs(&x[..len], &mut packed[..len / 2]);
                let plain = dot_i8(&w[..len], &x[..len]);
                if dot_group(&w[..len], &x[..len], &packed[..len / 2]) != plain
                    || dot_packed_portable(&w[..len], &packed[..len / 2]) != plain
                {
                    return Err("dot products differ");
                }
            }
        }
        Ok(())
    }

    fn multi_row_passes_match_single_rows() -> Outcome {
        // Groups of 32 and one group per row (64); 7 rows: two three-row
        // passes and a single row, fewer rows the pair and single-row paths.
        multi_row_case::<32>()?;
        multi_row_case::<64>()?;
        interleaved_case()
    }

    /// Four-row blocks in the interleaved order the board's model uses: the
    /// same bits as the rows in row order.
    fn interleaved_case() -> Outcome {
        const ROWS: usize = 8;
        const COLS: usize = 48;
        /// Weights and scales word-aligned, as the linked model keeps them.
        #[repr(C, align(4))]
        struct Aligned<const N: usize>([u8; N]);
        let mut rng = Rng(7);
        let mut plain = Aligned([0u8; ROWS * COLS]);
        plain.0.iter_mut().for_each(|v| *v = rng.next() as u8);
        let mut mixed = Aligned([0u8; ROWS * COLS]);
        if !interleave_rows4(&plain.0, COLS, &mut mixed.0) {
            return Err("interleave refused");
        }
        let mut scales = Aligned([0u8; ROWS * 4]);
        for (i, chunk) in scales.0.chunks_exact_mut(4).enumerate() {
            chunk.copy_from_slice(&(0.02 + i as f32 * 0.001).to_le_bytes());
        }
        let mut x = [0.0f32; COLS];
        x.iter_mut()
            .for_each(|v| *v = (rng.next() % 2000) as f32 / 1000.0 - 1.0);
        let (mut xq, mut xs, mut packed) = ([0i8; COLS], [0.0f32; 1], [0u32; COLS / 2]);
        quantize(&x, COLS, &mut xq, &mut xs);
        pack_pairs(&xq, &mut packed);
        let q = QuantizedVector {
            values: &xq,
            packed: &packed,
            scales: &xs,
            group_size: COLS,
        };
        let matrix = |weights, layout| Matrix {
            rows: ROWS,
            cols: COLS,
            data: MatrixData::Int8 {
                weights,
                scales: F32Bytes(&scales.0),
                group_size: COLS,
                layout,
            },
        };
        let (mut a, mut b) = ([0.0f32; ROWS], [0.0f32; ROWS]);
        let by_rows = matrix(&plain.0[..], Int8Layout::Rows);
        matvec(Isa::Portable, &mut a, &by_rows, &x, Some(&q));
        matvec(
            Isa::ArmDsp,
            &mut b,
            &matrix(&mixed.0[..], Int8Layout::Interleaved4),
            &x,
            Some(&q),
        );
        if a.contains(&0.0) || a.map(f32::to_bits) != b.map(f32::to_bits) {
            return Err("interleaved matvec differs");
        }
        Ok(())
    }

    fn multi_row_case<const GROUP: usize>() -> Outcome {
        const ROWS: usize = 7;
        const COLS: usize = 64;
        /// Scales aligned as an exported model keeps them (the DSP path needs it).
        #[repr(C, align(4))]
        struct Scales([u8; ROWS * 2 * 4]);
        let groups = COLS / GROUP;
        let mut rng = Rng(99 + GROUP as u32);
        let mut w = [0u8; ROWS * COLS];
        w.iter_mut().for_each(|v| *v = rng.next() as u8);
        let mut scales = Scales([0u8; ROWS * 2 * 4]);
        for (i, chunk) in scales.0.chunks_exact_mut(4).enumerate() {
            chunk.copy_from_slice(&(0.01 + i as f32 * 0.003).to_le_bytes());
        }
        let mut x = [0.0f32; COLS];
        x.iter_mut()
            .for_each(|v| *v = (rng.next() % 2000) as f32 / 1000.0 - 1.0);
        let (mut xq, mut xs, mut packed) = ([0i8; COLS], [0.0f32; 2], [0u32; COLS / 2]);
        quantize(&x, GROUP, &mut xq, &mut xs[..groups]);
        pack_pairs(&xq, &mut packed);
        let q = QuantizedVector {
            values: &xq,
            packed: &packed,
            scales: &xs[..groups],
            group_size: GROUP,
        };
        for rows in 1..=ROWS {
            let m = Matrix {
                rows,
                cols: COLS,
                data: MatrixData::Int8 {
                    weights: &w[..rows * COLS],
                    scales: F32Bytes(&scales.0[..rows * groups * 4]),
                    group_size: GROUP,
                    layout: Int8Layout::Rows,
                },
            };
            let mut out = [0.0f32; ROWS];
            matvec(Isa::ArmDsp, &mut out[..rows], &m, &x, Some(&q));
            for (r, &o) in out[..rows].iter().enumerate() {
                let mut acc = 0.0f32;
                for g in 0..groups {
                    let at = r * COLS + g * GROUP;
                    let s = &scales.0[(r * groups + g) * 4..][..4];
                    let ws = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                    acc +=
                        dot_i8(&w[at..at + GROUP], &xq[g * GROUP..][..GROUP]) as f32 * (ws * xs[g]);
                }
                if acc.to_bits() != o.to_bits() {
                    return Err("matvec row differs");
                }
            }
        }
        Ok(())
    }

    /// The DSP quantizer against the portable one: random groups, exact
    /// ties (max 127, so r = x), a NaN (skipped), an infinity (all zero),
    /// −0.0 and an all-zero group.
    fn dsp_quantize_has_the_portable_bits() -> Outcome {
        const N: usize = 64;
        let mut rng = Rng(5);
        let mut x = [0.0f32; N];
        for case in 0..6 {
            x.iter_mut()
                .for_each(|v| *v = (rng.next() % 20001) as f32 / 100.0 - 100.0);
            match case {
                1 => {
                    x[0] = 127.0;
                    for (i, v) in x.iter_mut().enumerate().skip(1) {
                        *v = (i as f32 - 32.0) + 0.5; // every one a tie
                    }
                }
                2 => x[9] = f32::NAN,
                3 => x[17] = f32::NEG_INFINITY,
                4 => x[3] = -0.0,
                5 => x.fill(0.0),
                _ => {}
            }
            for group in [4usize, 16, 64] {
                let (mut qa, mut qb) = ([0i8; N], [0i8; N]);
                let (mut sa, mut sb) = ([0.0f32; N / 4], [0.0f32; N / 4]);
                let (mut pa, mut pb) = ([0u32; N / 2], [0u32; N / 2]);
                quantize(&x, group, &mut qa, &mut sa[..N / group]);
                pack_pairs(&qa, &mut pa);
                quantize_packed(
                    Isa::ArmDsp,
                    &x,
                    group,
                    &mut qb,
                    &mut pb,
                    &mut sb[..N / group],
                );
                if qa != qb || pa != pb || sa.map(f32::to_bits) != sb.map(f32::to_bits) {
                    return Err("DSP quantize differs");
                }
            }
        }
        Ok(())
    }

    fn exp_has_the_host_bits() -> Outcome {
        for &(input, output) in EXPECTED_EXP.iter() {
            if exp(f32::from_bits(input)).to_bits() != output {
                return Err("exp differs from the host");
            }
        }
        Ok(())
    }

    fn decoder_survives_garbage() -> Outcome {
        let mut rng = Rng(7);
        let mut decoder = Decoder::new();
        let mut last = 0;
        for _ in 0..20_000 {
            if let Ok(Some(Event::Note(n))) = decoder.push_id((rng.next() % 600) as u16) {
                if n.onset < last {
                    return Err("time went backwards");
                }
                last = n.onset;
            }
        }
        Ok(())
    }

    fn model_computes_the_host_logits_and_tokens(sram: &mut [u8], ccm: &mut [u8]) -> Outcome {
        let model = Model::from_bytes(MODEL).map_err(|_| "model does not load")?;
        {
            let regions = &mut [&mut *sram, &mut *ccm];
            let mut session =
                Session::new_in(&model, session_options(&model), regions).map_err(|_| "session")?;
            let logits = session.forward(BOS_ID).map_err(|_| "forward")?;
            let checksum = logits
                .iter()
                .fold(0u32, |s, v| s.rotate_left(5) ^ v.to_bits());
            if checksum != EXPECTED_LOGITS_CHECKSUM {
                return Err("logits differ from the host");
            }
        }
        let mut g = generator(&model, sram, ccm).map_err(|_| "session")?;
        for &expected in EXPECTED_TOKENS.iter() {
            if g.step().map_err(|_| "step")? != expected {
                return Err("tokens differ from the host");
            }
        }
        Ok(())
    }

    fn generation_slides_past_the_context(sram: &mut [u8], ccm: &mut [u8]) -> Outcome {
        let model = Model::from_bytes(MODEL).map_err(|_| "model does not load")?;
        let mut g = generator(&model, sram, ccm).map_err(|_| "session")?;
        for _ in 0..3 * model.config.context {
            g.step().map_err(|_| "step")?;
            while g.pop_message().is_some() {}
        }
        if g.session().evictions() < 2 {
            return Err("the cache did not slide");
        }
        if g.ill_formed() != 0 {
            return Err("ill-formed tokens under the grammar mask");
        }
        Ok(())
    }

    #[entry]
    fn main() -> ! {
        let (sram, ccm) = kantor_firmware::session_memory::take().expect("main runs once");
        let plain: [Plain; 5] = [
            (
                "dsp_quantize_has_the_portable_bits",
                dsp_quantize_has_the_portable_bits,
            ),
            (
                "dsp_dot_product_equals_the_portable_one",
                dsp_dot_product_equals_the_portable_one,
            ),
            (
                "multi_row_passes_match_single_rows",
                multi_row_passes_match_single_rows,
            ),
            ("exp_has_the_host_bits", exp_has_the_host_bits),
            ("decoder_survives_garbage", decoder_survives_garbage),
        ];
        let with_memory: [WithMemory; 2] = [
            (
                "model_computes_the_host_logits_and_tokens",
                model_computes_the_host_logits_and_tokens,
            ),
            (
                "generation_slides_past_the_context",
                generation_slides_past_the_context,
            ),
        ];
        let mut failed = 0;
        let mut report = |name: &str, outcome: Outcome| match outcome {
            Ok(()) => hprintln!("test {name} ... ok"),
            Err(why) => {
                failed += 1;
                hprintln!("test {name} ... FAILED: {why}");
            }
        };
        let count = plain.len() + with_memory.len();
        for (name, test) in plain {
            report(name, test());
        }
        for (name, test) in with_memory {
            report(name, test(&mut *sram, &mut *ccm));
        }
        hprintln!(
            "on-target test result: {}. {} tests",
            if failed == 0 { "ok" } else { "FAILED" },
            count
        );
        debug::exit(if failed == 0 {
            debug::EXIT_SUCCESS
        } else {
            debug::EXIT_FAILURE
        });
        loop {
            cortex_m::asm::wfi();
        }
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        hprintln!("test panicked: {}", info);
        debug::exit(debug::EXIT_FAILURE);
        loop {
            cortex_m::asm::wfi();
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "the on-target tests run on the STM32F405 (probe-rs) or in QEMU: tools/firmware-qemu.sh"
    );
    std::process::exit(1);
}
