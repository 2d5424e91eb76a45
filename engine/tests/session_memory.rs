//! A session carved from several memory regions (a board's SRAM and CCM)
//! computes exactly what a session in one slice computes.

use kantor_engine::model::Model;
use kantor_engine::session::{Session, SessionError, SessionOptions};

fn student() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware/model/student.safetensors"
    );
    std::fs::read(path).expect("the shipped student")
}

/// A model's natural session options and the bytes its session needs.
fn options_and_size(model: &Model<'_>) -> (SessionOptions, usize) {
    let options = SessionOptions::for_model(model);
    (options, Session::memory_required(model, options))
}

/// Logits (as bits) of a fixed token sequence longer than the context.
fn trace(session: &mut Session<'_, '_>, tokens: usize) -> Vec<Vec<u32>> {
    let vocab = session.model().config.vocab_size;
    let mut token = kantor_engine::vocab::BOS_ID;
    let mut out = Vec::new();
    for i in 0..tokens {
        let logits = session.forward(token).unwrap();
        out.push(logits.iter().map(|v| v.to_bits()).collect());
        token = ((i * 37 + 11) % vocab) as u16;
    }
    out
}

#[test]
fn a_session_in_two_regions_gives_the_logits_of_one_in_a_single_slice() {
    let bytes = student();
    let model = Model::from_bytes(&bytes).unwrap();
    let (options, needed) = options_and_size(&model);
    let tokens = model.config.context + 40;

    let mut one = vec![0u8; needed];
    let mut session = Session::new(&model, options, &mut one).unwrap();
    let expected = trace(&mut session, tokens);
    assert!(session.evictions() >= 1, "the cache slid");

    // Two regions of 60 % each: neither holds the session alone, together they do.
    let part = needed * 6 / 10;
    let (mut sram, mut ccm) = (vec![0u8; part], vec![0u8; part]);
    for alone in [&mut sram, &mut ccm] {
        assert!(matches!(
            Session::new(&model, options, alone),
            Err(SessionError::MemoryTooSmall { .. })
        ));
    }
    let mut split = Session::new_in(&model, options, &mut [&mut sram[..], &mut ccm[..]]).unwrap();
    assert_eq!(trace(&mut split, tokens), expected);
}

#[test]
fn regions_that_add_up_but_hold_no_cache_buffer_are_a_clear_error() {
    let bytes = student();
    let model = Model::from_bytes(&bytes).unwrap();
    let (options, needed) = options_and_size(&model);
    // Four regions with more than enough bytes in all, each smaller than the
    // int8 keys (layers × context × kv_dim bytes, over a third of the session).
    let c = &model.config;
    let keys = c.n_layers * c.context * c.kv_dim();
    assert!(keys * 3 > needed);
    let mut regions: Vec<Vec<u8>> = (0..4).map(|_| vec![0u8; keys - 64]).collect();
    let mut slices: Vec<&mut [u8]> = regions.iter_mut().map(|r| &mut r[..]).collect();
    let given = slices.iter().map(|r| r.len()).sum::<usize>();
    assert!(given > needed);
    let err = Session::new_in(&model, options, &mut slices).unwrap_err();
    assert_eq!(err, SessionError::MemoryTooSmall { needed, given });
    let message = err.to_string();
    assert!(message.contains("do not fit in the regions"), "{message}");
}
