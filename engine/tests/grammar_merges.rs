//! The remembered grammar masks with the shipped student's BPE merges: the
//! same sets as checking every token afresh, along random walks.

use kantor_engine::grammar::{mask_disallowed, Grammar};
use kantor_engine::model::Model;
use kantor_engine::voicing::Voicing;

fn student() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware/model/student.safetensors"
    );
    std::fs::read(path).expect("the shipped student")
}

#[test]
fn remembered_masks_equal_fresh_ones_with_merges() {
    let bytes = student();
    let model = Model::from_bytes(&bytes).unwrap();
    let (bpe, vocab) = (model.bpe, model.config.vocab_size);
    for voicing in [Voicing::free(), Voicing::new(4), Voicing::new(2)] {
        let mut grammar = Grammar::new(true).with_voicing(voicing);
        let mut seed = 11u32;
        let mut merged = 0;
        for step in 0..1500 {
            let mut fresh = vec![0.0f32; vocab];
            let n = mask_disallowed(&mut fresh, grammar.decoder(), grammar.voicing(), &bpe);
            let mut cached = vec![0.0f32; vocab];
            assert_eq!(grammar.mask(&mut cached, &bpe), n, "step {step}");
            let bits = |l: &[f32]| l.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&cached), bits(&fresh), "step {step}");
            let allowed: Vec<u16> = (0..vocab as u16)
                .filter(|&i| fresh[usize::from(i)].is_finite())
                .collect();
            // Merged tokens where there are any, to walk into their states.
            let merges: Vec<u16> = allowed
                .iter()
                .copied()
                .filter(|&i| usize::from(i) >= kantor_engine::vocab::VOCAB_SIZE)
                .collect();
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let pool = if !merges.is_empty() && seed & 0x100 != 0 {
                &merges
            } else {
                &allowed
            };
            let id = pool[(seed >> 9) as usize % pool.len()];
            merged += usize::from(usize::from(id) >= kantor_engine::vocab::VOCAB_SIZE);
            assert!(grammar.accept(id, &bpe, |_| {}).well_formed, "step {step}");
        }
        assert!(merged > 300, "{merged} merged tokens taken");
    }
}
