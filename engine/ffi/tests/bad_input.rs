//! Hostile callers: null pointers, short and misaligned buffers, handles that
//! are not generators, out-of-range arguments, corrupt, truncated and random
//! model bytes, and random call sequences. Every call must return a status
//! code (never panic, never [`KANTOR_ERROR_PANIC`]), and a generator driven
//! through the C ABI must do exactly what the engine's own `Generator` does.

use std::ffi::CStr;
use std::ptr::{null, null_mut};

use kantor_engine::generator::Generator;
use kantor_engine::model::Model;
use kantor_engine::sampler::{Sampler, SamplerConfig};
use kantor_engine::session::{Session, SessionOptions};
use kantor_engine::stream::MidiMessage;
use kantor_ffi::*;
use proptest::prelude::*;

fn student() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../firmware/model/student.safetensors"
    );
    std::fs::read(path).expect("the shipped student model")
}

fn memory_required(model: &[u8]) -> Result<usize, KantorStatus> {
    let mut size = 0usize;
    match unsafe { kantor_memory_required(model.as_ptr(), model.len(), &mut size) } {
        KANTOR_OK => Ok(size),
        code => Err(code),
    }
}

fn new_generator(model: &[u8], memory: &mut [u8]) -> Result<*mut KantorGenerator, KantorStatus> {
    let mut g = null_mut();
    let code = unsafe {
        kantor_generator_new(
            model.as_ptr(),
            model.len(),
            memory.as_mut_ptr().cast(),
            memory.len(),
            &mut g,
        )
    };
    if code == KANTOR_OK {
        Ok(g)
    } else {
        Err(code)
    }
}

fn step(g: *mut KantorGenerator) -> Result<u16, KantorStatus> {
    let mut token = 0u16;
    match unsafe { kantor_step(g, &mut token) } {
        KANTOR_OK => Ok(token),
        code => Err(code),
    }
}

fn pop_all(g: *mut KantorGenerator) -> Vec<KantorMessage> {
    let mut out = Vec::new();
    let mut batch = [KantorMessage::default(); 5];
    loop {
        let mut n = usize::MAX;
        let code = unsafe { kantor_pop_messages(g, batch.as_mut_ptr(), batch.len(), &mut n) };
        assert_eq!(code, KANTOR_OK);
        out.extend_from_slice(&batch[..n]);
        if n < batch.len() {
            return out;
        }
    }
}

fn stats(g: *mut KantorGenerator) -> KantorStats {
    let mut s = KantorStats::default();
    assert_eq!(unsafe { kantor_stats(g, &mut s) }, KANTOR_OK);
    s
}

/// The engine's own message as the C ABI shows it.
fn as_c(m: kantor_engine::stream::TimedMessage) -> KantorMessage {
    let mut out = KantorMessage {
        tick: m.tick,
        ..KantorMessage::default()
    };
    match m.message {
        MidiMessage::NoteOn {
            channel,
            key,
            velocity,
        } => {
            (out.kind, out.channel, out.key, out.velocity) =
                (KANTOR_NOTE_ON, channel, key, velocity)
        }
        MidiMessage::NoteOff { channel, key } => {
            (out.kind, out.channel, out.key) = (KANTOR_NOTE_OFF, channel, key)
        }
        MidiMessage::Tempo { micros_per_quarter } => {
            (out.kind, out.micros_per_quarter) = (KANTOR_TEMPO, micros_per_quarter)
        }
    }
    out
}

#[test]
fn null_pointers_are_refused_with_a_code() {
    let model = student();
    let size = memory_required(&model).unwrap();
    let mut memory = vec![0u8; size];
    let g = new_generator(&model, &mut memory).unwrap();
    let mut out_size = 0usize;
    let mut out_g = null_mut();
    let mut token = 0u16;
    let mut n = 0usize;
    let mut messages = [KantorMessage::default(); 4];
    let mut s = KantorStats::default();
    let mut sampling = KantorSampling {
        seed: 0,
        temperature: 0.0,
        top_k: 0,
        top_p: 0.0,
        constrained: 0,
    };
    let tokens = [1u16];
    unsafe {
        assert_eq!(kantor_sampling_default(null_mut()), KANTOR_ERROR_NULL);
        assert_eq!(
            kantor_memory_required(null(), 10, &mut out_size),
            KANTOR_ERROR_NULL
        );
        assert_eq!(
            kantor_memory_required(model.as_ptr(), model.len(), null_mut()),
            KANTOR_ERROR_NULL
        );
        let (m, ml, mem, meml) = (
            model.as_ptr(),
            model.len(),
            memory.as_mut_ptr().cast(),
            memory.len(),
        );
        assert_eq!(
            kantor_generator_new(null(), ml, mem, meml, &mut out_g),
            KANTOR_ERROR_NULL
        );
        assert_eq!(
            kantor_generator_new(m, ml, null_mut(), meml, &mut out_g),
            KANTOR_ERROR_NULL
        );
        assert_eq!(
            kantor_generator_new(m, ml, mem, meml, null_mut()),
            KANTOR_ERROR_NULL
        );
        assert_eq!(kantor_sampling_default(&mut sampling), KANTOR_OK);
        assert_eq!(
            kantor_set_sampling(null_mut(), &sampling),
            KANTOR_ERROR_NULL
        );
        assert_eq!(kantor_set_sampling(g, null()), KANTOR_ERROR_NULL);
        assert_eq!(
            kantor_feed(null_mut(), tokens.as_ptr(), 1),
            KANTOR_ERROR_NULL
        );
        assert_eq!(kantor_feed(g, null(), 1), KANTOR_ERROR_NULL);
        assert_eq!(kantor_step(null_mut(), &mut token), KANTOR_ERROR_NULL);
        assert_eq!(kantor_step(g, null_mut()), KANTOR_ERROR_NULL);
        let p = messages.as_mut_ptr();
        assert_eq!(
            kantor_pop_messages(null_mut(), p, 4, &mut n),
            KANTOR_ERROR_NULL
        );
        assert_eq!(
            kantor_pop_messages(g, null_mut(), 4, &mut n),
            KANTOR_ERROR_NULL
        );
        assert_eq!(kantor_pop_messages(g, p, 4, null_mut()), KANTOR_ERROR_NULL);
        assert_eq!(kantor_finish(null_mut()), KANTOR_ERROR_NULL);
        assert_eq!(kantor_stats(null_mut(), &mut s), KANTOR_ERROR_NULL);
        assert_eq!(kantor_stats(g, null_mut()), KANTOR_ERROR_NULL);
    }
    // Nothing above touched the generator: it still starts from scratch.
    assert_eq!(stats(g).tokens, 0);
    assert!(step(g).is_ok());
    assert_eq!(stats(g).tokens, 2, "Bos and one sampled token");
}

#[test]
fn short_buffers_are_refused_and_any_alignment_of_enough_memory_works() {
    let model = student();
    let size = memory_required(&model).unwrap();
    for short in [0, 1, 64, size / 4, size / 2] {
        let mut memory = vec![0u8; short];
        assert_eq!(
            new_generator(&model, &mut memory).err(),
            Some(KANTOR_ERROR_BUFFER_TOO_SMALL),
            "{short} bytes"
        );
    }
    let mut first: Option<Vec<u16>> = None;
    let mut backing = vec![0u8; size + 64];
    for offset in 0..16 {
        let memory = &mut backing[offset..offset + size];
        let g = new_generator(&model, memory).unwrap_or_else(|c| panic!("offset {offset}: {c}"));
        let tokens: Vec<u16> = (0..8).map(|_| step(g).unwrap()).collect();
        match &first {
            None => first = Some(tokens),
            Some(f) => assert_eq!(&tokens, f, "offset {offset}"),
        }
    }
    // A message array of capacity 0 is too short.
    let g = new_generator(&model, &mut backing[..size]).unwrap();
    let mut m = KantorMessage::default();
    let mut n = 0;
    assert_eq!(
        unsafe { kantor_pop_messages(g, &mut m, 0, &mut n) },
        KANTOR_ERROR_BUFFER_TOO_SMALL
    );
}

#[test]
fn pointers_that_are_not_generators_are_refused() {
    let mut zeros = vec![0u64; 4096];
    let mut token = 0;
    let not_one = zeros.as_mut_ptr().cast::<KantorGenerator>();
    assert_eq!(
        unsafe { kantor_step(not_one, &mut token) },
        KANTOR_ERROR_BAD_HANDLE
    );
    let mut noise: Vec<u64> = (0..4096u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let noisy = noise.as_mut_ptr().cast::<KantorGenerator>();
    assert_eq!(unsafe { kantor_finish(noisy) }, KANTOR_ERROR_BAD_HANDLE);
    // A real generator's address plus one byte is misaligned.
    let model = student();
    let mut memory = vec![0u8; memory_required(&model).unwrap()];
    let g = new_generator(&model, &mut memory).unwrap();
    let off = g.cast::<u8>().wrapping_add(1).cast::<KantorGenerator>();
    assert_eq!(unsafe { kantor_finish(off) }, KANTOR_ERROR_BAD_HANDLE);
    assert_eq!(unsafe { kantor_finish(g) }, KANTOR_OK);
}

#[test]
fn bad_sampling_and_tokens_are_refused_and_change_nothing() {
    let model = student();
    let mut memory = vec![0u8; memory_required(&model).unwrap()];
    let g = new_generator(&model, &mut memory).unwrap();
    let mut good = KantorSampling {
        seed: 0,
        temperature: 0.0,
        top_k: 0,
        top_p: 0.0,
        constrained: 0,
    };
    unsafe { kantor_sampling_default(&mut good) };
    assert_eq!(
        good,
        KantorSampling {
            seed: 1,
            temperature: 0.8,
            top_k: 50,
            top_p: 0.95,
            constrained: 1
        }
    );
    for bad in [
        KantorSampling {
            temperature: f32::NAN,
            ..good
        },
        KantorSampling {
            temperature: -0.1,
            ..good
        },
        KantorSampling {
            temperature: f32::INFINITY,
            ..good
        },
        KantorSampling { top_p: 1.5, ..good },
        KantorSampling {
            top_p: -0.5,
            ..good
        },
        KantorSampling {
            top_p: f32::NAN,
            ..good
        },
        KantorSampling {
            constrained: 2,
            ..good
        },
    ] {
        assert_eq!(
            unsafe { kantor_set_sampling(g, &bad) },
            KANTOR_ERROR_BAD_ARGUMENT,
            "{bad:?}"
        );
    }
    // Out-of-range tokens: refused before any is fed.
    let vocab = stats(g).vocab_size as u16;
    let prompt = [1u16, 7, vocab];
    assert_eq!(
        unsafe { kantor_feed(g, prompt.as_ptr(), prompt.len()) },
        KANTOR_ERROR_BAD_ARGUMENT
    );
    assert_eq!(stats(g).tokens, 0);
    assert_eq!(
        unsafe { kantor_set_sampling(g, &good) },
        KANTOR_OK,
        "still before the first token"
    );
    assert_eq!(unsafe { kantor_feed(g, prompt.as_ptr(), 2) }, KANTOR_OK);
    assert_eq!(stats(g).tokens, 2);
    assert_eq!(
        unsafe { kantor_set_sampling(g, &good) },
        KANTOR_ERROR_BAD_STATE
    );
    assert!(step(g).is_ok());
}

#[test]
fn every_status_has_a_message() {
    let texts: Vec<String> = (KANTOR_OK..=KANTOR_ERROR_PANIC)
        .chain([-1, 99])
        .map(|s| {
            unsafe { CStr::from_ptr(kantor_status_message(s)) }
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let distinct: std::collections::HashSet<&String> = texts[..8].iter().collect();
    assert_eq!(distinct.len(), 8, "{texts:?}");
    assert_eq!(texts[8], "unknown status");
    assert_eq!(texts[9], "unknown status");
}

/// Step a generator made from (maybe corrupt) bytes a few times: codes only.
fn exercise(model: &[u8]) -> KantorStatus {
    let size = match memory_required(model) {
        Ok(size) => size,
        Err(code) => return code,
    };
    // A corrupt header can ask for absurd sizes: those are refused here, as an app would.
    if size > 64 << 20 {
        return KANTOR_ERROR_BUFFER_TOO_SMALL;
    }
    let mut memory = vec![0u8; size];
    let g = match new_generator(model, &mut memory) {
        Ok(g) => g,
        Err(code) => return code,
    };
    for _ in 0..3 {
        let code = step(g).err().unwrap_or(KANTOR_OK);
        assert_ne!(code, KANTOR_ERROR_PANIC);
    }
    assert_eq!(unsafe { kantor_finish(g) }, KANTOR_OK);
    pop_all(g);
    KANTOR_OK
}

/// Length of the safetensors header (JSON) plus its 8-byte length prefix.
fn header_end(model: &[u8]) -> usize {
    8 + u64::from_le_bytes(model[..8].try_into().unwrap()) as usize
}

#[derive(Clone, Debug)]
enum Op {
    SetSampling(KantorSampling),
    Feed(Vec<u16>),
    Step,
    Pop(usize),
    Finish,
    Stats,
    Restart,
}

fn sampling() -> impl Strategy<Value = KantorSampling> {
    (
        any::<u64>(),
        prop_oneof![8 => 0.0f32..2.0, 1 => Just(0.0), 1 => Just(f32::NAN), 1 => Just(-1.0), 1 => Just(f32::INFINITY)],
        prop_oneof![0u32..8, 0u32..80, Just(u32::MAX)],
        prop_oneof![6 => 0.0f32..=1.0, 2 => Just(1.0), 1 => Just(1.01), 1 => Just(f32::NAN)],
        prop_oneof![4 => Just(1u32), 1 => Just(0), 1 => Just(7)],
    )
        .prop_map(|(seed, temperature, top_k, top_p, constrained)| KantorSampling {
            seed,
            temperature,
            top_k,
            top_p,
            constrained,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => sampling().prop_map(Op::SetSampling),
        2 => proptest::collection::vec(prop_oneof![0u16..512, any::<u16>()], 0..4).prop_map(Op::Feed),
        6 => Just(Op::Step),
        3 => (0usize..6).prop_map(Op::Pop),
        1 => Just(Op::Finish),
        1 => Just(Op::Stats),
        1 => Just(Op::Restart),
    ]
}

/// What the C ABI promises, computed with the engine's own API.
struct Reference<'m> {
    model: &'m Model<'m>,
    sampler: Sampler,
    constrained: bool,
    generator: Option<Generator<'m, 'm, 128>>,
    memory: Option<&'m mut [u8]>,
}

impl<'m> Reference<'m> {
    fn new(model: &'m Model<'m>, memory: &'m mut [u8]) -> Self {
        Reference {
            model,
            sampler: Sampler::new(SamplerConfig::default(), 1),
            constrained: true,
            generator: None,
            memory: Some(memory),
        }
    }

    fn generator(&mut self) -> &mut Generator<'m, 'm, 128> {
        if self.generator.is_none() {
            let memory = self.memory.take().unwrap();
            let session =
                Session::new(self.model, SessionOptions::for_model(self.model), memory).unwrap();
            self.generator = Some(Generator::new(session, self.sampler, self.constrained));
        }
        self.generator.as_mut().unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_not_a_model(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert_eq!(exercise(&bytes), KANTOR_ERROR_BAD_MODEL);
    }

    #[test]
    fn a_truncated_model_is_refused(cut in 0.0f64..1.0) {
        let model = student();
        let len = (cut * model.len() as f64) as usize;
        prop_assert_eq!(exercise(&model[..len]), KANTOR_ERROR_BAD_MODEL);
    }

    #[test]
    fn a_corrupt_model_gives_codes_never_a_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255, any::<bool>()), 1..6)
    ) {
        let mut model = student();
        let header = header_end(&model);
        for (at, xor, in_header) in flips {
            // Mostly the header (shapes, offsets, configuration), sometimes the weights.
            let i = if in_header { at.index(header) } else { at.index(model.len()) };
            model[i] ^= xor;
        }
        let code = exercise(&model);
        prop_assert!(
            [KANTOR_OK, KANTOR_ERROR_BAD_MODEL, KANTOR_ERROR_BUFFER_TOO_SMALL].contains(&code),
            "status {}", code
        );
    }

    #[test]
    fn random_call_sequences_do_what_the_engine_does(
        first in sampling(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let bytes = student();
        let model = Model::from_bytes(&bytes).unwrap();
        let size = memory_required(&bytes).unwrap();
        let mut memory = vec![0u8; size + 8];
        let mut g = new_generator(&bytes, &mut memory[3..]).unwrap();
        let reference_size = Session::memory_required(&model, SessionOptions::for_model(&model));
        // The reference's memory must outlive the model borrow in its type: leaked (a test).
        let fresh = || &mut *Box::leak(vec![0u8; reference_size].into_boxed_slice());
        let mut reference = Reference::new(&model, fresh());
        for op in std::iter::once(Op::SetSampling(first)).chain(ops) {
            match op {
                Op::SetSampling(s) => {
                    let valid = s.temperature.is_finite() && s.temperature >= 0.0
                        && (0.0..=1.0).contains(&s.top_p) && s.constrained <= 1;
                    let expected = match (valid, reference.generator.is_some()) {
                        (false, _) => KANTOR_ERROR_BAD_ARGUMENT,
                        (true, true) => KANTOR_ERROR_BAD_STATE,
                        (true, false) => {
                            reference.sampler = Sampler::new(
                                SamplerConfig { temperature: s.temperature, top_k: s.top_k as usize, top_p: s.top_p },
                                s.seed,
                            );
                            reference.constrained = s.constrained == 1;
                            KANTOR_OK
                        }
                    };
                    prop_assert_eq!(unsafe { kantor_set_sampling(g, &s) }, expected);
                }
                Op::Feed(tokens) => {
                    let valid = tokens.iter().all(|&t| usize::from(t) < model.config.vocab_size);
                    let code = unsafe { kantor_feed(g, tokens.as_ptr(), tokens.len()) };
                    if valid {
                        prop_assert_eq!(code, KANTOR_OK);
                        let r = reference.generator();
                        for t in tokens {
                            r.feed(t).unwrap();
                        }
                    } else {
                        prop_assert_eq!(code, KANTOR_ERROR_BAD_ARGUMENT);
                    }
                }
                Op::Step => prop_assert_eq!(step(g), Ok(reference.generator().step().unwrap())),
                Op::Pop(capacity) => {
                    let mut out = vec![KantorMessage::default(); capacity.max(1)];
                    let mut n = usize::MAX;
                    let code = unsafe { kantor_pop_messages(g, out.as_mut_ptr(), capacity, &mut n) };
                    if capacity == 0 {
                        prop_assert_eq!(code, KANTOR_ERROR_BUFFER_TOO_SMALL);
                        continue;
                    }
                    prop_assert_eq!(code, KANTOR_OK);
                    let mut expected = Vec::new();
                    if let Some(r) = reference.generator.as_mut() {
                        while expected.len() < capacity {
                            let Some(m) = r.pop_message() else { break };
                            expected.push(as_c(m));
                        }
                    }
                    prop_assert_eq!(&out[..n], &expected[..]);
                }
                Op::Finish => {
                    prop_assert_eq!(unsafe { kantor_finish(g) }, KANTOR_OK);
                    reference.generator().finish();
                }
                Op::Stats => {
                    let s = stats(g);
                    let (tokens, now) = reference
                        .generator
                        .as_ref()
                        .map_or((0, 0), |r| (r.tokens(), r.decoder().now()));
                    prop_assert_eq!((s.tokens, s.now, s.vocab_size), (tokens, now, model.config.vocab_size as u32));
                }
                Op::Restart => {
                    // Again on the same memory: starts afresh; so does the reference.
                    g = new_generator(&bytes, &mut memory[3..]).unwrap();
                    reference = Reference::new(&model, fresh());
                }
            }
        }
    }
}
