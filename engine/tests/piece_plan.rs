//! The generator's piece plan on the shipped student: every piece keeps to
//! the voices drawn for it and plays its drawn opening bars again, and the
//! file's own plan (the training pieces' counts) is read.

use kantor_engine::generator::Generator;
use kantor_engine::model::Model;
use kantor_engine::plan::PiecePlan;
use kantor_engine::sampler::{Sampler, SamplerConfig};
use kantor_engine::session::{Session, SessionOptions};
use kantor_engine::stream::{voice_channel, MidiMessage};

fn student() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware/model/student.safetensors"
    );
    std::fs::read(path).expect("the shipped student")
}

/// Note-ons (tick, channel, key) of the first piece generated under `plan`.
fn first_piece(bytes: &[u8], plan: PiecePlan, seed: u64) -> Vec<(u32, u8, u8)> {
    let model = Model::from_bytes(bytes).unwrap();
    let options = SessionOptions::for_model(&model);
    let mut memory = vec![0u8; Session::memory_required(&model, options)];
    let session = Session::new(&model, options, &mut memory).unwrap();
    let sampler = Sampler::new(SamplerConfig::default(), seed);
    let mut generator: Generator<'_, '_, 256> =
        Generator::new(session, sampler, true).with_plan(plan, seed);
    let mut notes = Vec::new();
    for _ in 0..1500 {
        let id = generator.step().unwrap();
        while let Some(m) = generator.pop_message() {
            if let MidiMessage::NoteOn { channel, key, .. } = m.message {
                notes.push((m.tick, channel, key));
            }
        }
        if id == kantor_engine::vocab::EOS_ID || generator.decoder().now() > 48 * 10 {
            break;
        }
    }
    notes
}

#[test]
fn pieces_keep_their_drawn_voices_and_repeat_their_opening() {
    let bytes = student();
    let mut plan = PiecePlan::free();
    plan.voice_counts[5] = 1; // six voices
    plan.repeat_bars[3] = 1; // three bars again
    for seed in [1, 2, 3] {
        let notes = first_piece(&bytes, plan, seed);
        let channels: Vec<u8> = (0..16).map(voice_channel).collect();
        let top = channels[5];
        assert!(
            notes.iter().all(|n| channels[..6].contains(&n.1)),
            "seed {seed}"
        );
        assert!(
            notes.iter().any(|n| n.0 == notes[0].0 && n.1 == top),
            "seed {seed}"
        );
        // 4/4 bars of 48 ticks: bars 3-5 are bars 0-2 again.
        let bars = |from: u32, to: u32| -> Vec<(u32, u8, u8)> {
            notes
                .iter()
                .filter(|n| (from * 48..to * 48).contains(&n.0))
                .map(|n| (n.0 - from * 48, n.1, n.2))
                .collect()
        };
        assert!(!bars(0, 3).is_empty(), "seed {seed}");
        assert_eq!(bars(0, 3), bars(3, 6), "seed {seed}");
        assert_ne!(bars(0, 3), bars(6, 9), "seed {seed}: the piece goes on");
    }
}

#[test]
fn the_shipped_file_carries_its_training_pieces_plan() {
    let bytes = student();
    let plan = Model::from_bytes(&bytes).unwrap().plan;
    let pieces: u32 = plan.voice_counts.iter().sum();
    assert!(pieces > 100, "{plan:?}");
    // Mostly four-part; about half repeat their opening.
    assert!(plan.voice_counts[3] * 10 > pieces * 7, "{plan:?}");
    assert_eq!(plan.repeat_bars.iter().sum::<u32>(), pieces);
    let repeating = pieces - plan.repeat_bars[0];
    assert!(
        repeating * 4 > pieces && repeating * 4 < pieces * 3,
        "{plan:?}"
    );
}

/// The logits after a generator's `Bos`, the second piece's when `pieces`
/// is 2, and where its cache stands then.
fn logits_after_bos(bytes: &[u8], pieces: usize) -> (Vec<f32>, usize, u32) {
    let model = Model::from_bytes(bytes).unwrap();
    let options = SessionOptions::for_model(&model);
    let mut memory = vec![0u8; Session::memory_required(&model, options)];
    let session = Session::new(&model, options, &mut memory).unwrap();
    let mut generator: Generator<'_, '_, 256> =
        Generator::new(session, Sampler::new(SamplerConfig::default(), 7), true);
    generator.feed(kantor_engine::vocab::BOS_ID).unwrap();
    let mut seen = 1;
    while seen < pieces && generator.tokens() < 20_000 {
        if generator.step().unwrap() == kantor_engine::vocab::BOS_ID {
            seen += 1;
        }
        while generator.pop_message().is_some() {}
    }
    assert_eq!(seen, pieces, "the student never ended its piece");
    let session = generator.session();
    (
        session.logits().to_vec(),
        session.position(),
        generator.tokens(),
    )
}

#[test]
fn each_piece_starts_from_an_empty_cache() {
    let bytes = student();
    let (first, at_first, _) = logits_after_bos(&bytes, 1);
    let (second, at_second, tokens) = logits_after_bos(&bytes, 2);
    assert!(tokens > 2, "a piece was played before the second Bos");
    assert_eq!((at_first, at_second), (1, 1));
    // Bit for bit the logits of a fresh start: nothing of the first piece
    // is left in the cache.
    let bits = |l: &[f32]| l.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&second), bits(&first));
}
