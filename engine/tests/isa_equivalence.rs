//! Every kernel family this processor has gives the portable family's logits
//! bit for bit, on the shipped student, over more tokens than its context
//! (so the KV cache slides once) — and the same music.

use kantor_engine::generator::Generator;
use kantor_engine::kernels::Isa;
use kantor_engine::model::Model;
use kantor_engine::sampler::{Sampler, SamplerConfig};
use kantor_engine::session::{Session, SessionOptions};

fn student() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware/model/student.safetensors"
    );
    std::fs::read(path).expect("the shipped student")
}

fn logits_trace(model: &Model<'_>, isa: Isa, tokens: usize) -> Vec<Vec<u32>> {
    let options = SessionOptions {
        isa,
        ..SessionOptions::for_model(model)
    };
    let mut memory = vec![0u8; Session::memory_required(model, options)];
    let mut session = Session::new(model, options, &mut memory).unwrap();
    let mut token = kantor_engine::vocab::BOS_ID;
    let mut trace = Vec::new();
    for i in 0..tokens {
        let logits = session.forward(token).unwrap();
        trace.push(logits.iter().map(|v| v.to_bits()).collect());
        // A fixed, model-independent token sequence.
        token = ((i * 37 + 11) % model.config.vocab_size) as u16;
    }
    assert!(session.evictions() >= 1);
    trace
}

#[test]
fn every_family_gives_the_portable_logits_and_notes() {
    let bytes = student();
    let model = Model::from_bytes(&bytes).unwrap();
    let tokens = model.config.context + 30;
    let reference = logits_trace(&model, Isa::Portable, tokens);
    let families: Vec<Isa> = Isa::available().collect();
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c") {
        assert!(families.contains(&Isa::Avx2), "AVX2 present but not used");
    }
    for &isa in &families {
        let trace = logits_trace(&model, isa, tokens);
        for (step, (a, b)) in trace.iter().zip(&reference).enumerate() {
            assert!(
                a == b,
                "{isa:?}: logits differ from the portable ones at token {step}"
            );
        }
        let notes = |isa| {
            let options = SessionOptions {
                isa,
                ..SessionOptions::for_model(&model)
            };
            let mut memory = vec![0u8; Session::memory_required(&model, options)];
            let session = Session::new(&model, options, &mut memory).unwrap();
            let mut g: Generator<'_, '_, 64> =
                Generator::new(session, Sampler::new(SamplerConfig::default(), 5), true);
            let mut messages = Vec::new();
            for _ in 0..200 {
                g.step().unwrap();
                while let Some(m) = g.pop_message() {
                    messages.push(format!("{m:?}"));
                }
            }
            messages
        };
        assert_eq!(notes(isa), notes(Isa::Portable), "{isa:?}");
    }
}

#[test]
fn a_reset_session_is_a_fresh_one_even_after_slides() {
    let bytes = student();
    let model = Model::from_bytes(&bytes).unwrap();
    let options = SessionOptions::for_model(&model);
    let mut memory = vec![0u8; Session::memory_required(&model, options)];
    let mut session = Session::new(&model, options, &mut memory).unwrap();
    let tokens: Vec<u16> = (0..40)
        .map(|i| ((i * 53 + 7) % model.config.vocab_size) as u16)
        .collect();
    let run = |session: &mut Session<'_, '_>| -> Vec<u32> {
        tokens
            .iter()
            .flat_map(|&t| session.forward(t).unwrap().to_vec())
            .map(f32::to_bits)
            .collect()
    };
    let fresh = run(&mut session);
    // More than twice the context: the cache slides at least twice.
    for i in 0..2 * model.config.context + 44 {
        session
            .forward((i % model.config.vocab_size) as u16)
            .unwrap();
    }
    assert!(session.evictions() >= 2);
    session.reset();
    assert_eq!(run(&mut session), fresh);
}
