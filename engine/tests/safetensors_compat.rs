//! Files written by the `safetensors` crate read back, in place, as the same
//! tensors and metadata in the engine's no-alloc parser.

use std::collections::HashMap;

use kantor_engine::safetensors::{Dtype, SafeTensors};
use safetensors::tensor::TensorView;

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn engine_reads_what_the_safetensors_crate_writes() {
    let tensors = [
        (
            "tok_embeddings.weight",
            safetensors::Dtype::I8,
            vec![7, 16],
            bytes(112, 1),
        ),
        (
            "tok_embeddings.scales",
            safetensors::Dtype::F32,
            vec![7, 2],
            bytes(56, 2),
        ),
        (
            "layers.0.attention.wq.weight",
            safetensors::Dtype::F16,
            vec![16, 16],
            bytes(512, 3),
        ),
        (
            "norm.weight",
            safetensors::Dtype::F32,
            vec![16],
            bytes(64, 4),
        ),
        (
            "bpe.merges",
            safetensors::Dtype::U16,
            vec![3, 2],
            bytes(12, 5),
        ),
        ("empty", safetensors::Dtype::F32, vec![0, 4], vec![]),
    ];
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let metadata: HashMap<String, String> = [
        ("format", "kantor-1"),
        ("dim", "16"),
        ("note", "é \"quoted\""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let file = safetensors::serialize(views, Some(metadata)).unwrap();

    let st = SafeTensors::parse(&file).unwrap();
    assert_eq!(st.len(), tensors.len());
    for (name, dtype, shape, data) in &tensors {
        let t = st.tensor(name).unwrap_or_else(|| panic!("{name} missing"));
        let expected = match dtype {
            safetensors::Dtype::I8 => Dtype::I8,
            safetensors::Dtype::F16 => Dtype::F16,
            safetensors::Dtype::F32 => Dtype::F32,
            safetensors::Dtype::U16 => Dtype::U16,
            _ => unreachable!(),
        };
        assert_eq!(t.dtype, expected, "{name}");
        assert_eq!(t.shape.dims(), shape.as_slice(), "{name}");
        assert_eq!(t.data, data.as_slice(), "{name}");
    }
    assert_eq!(st.metadata("format"), Some("kantor-1"));
    assert_eq!(st.metadata("dim"), Some("16"));
    assert!(st.metadata("note").is_some());

    // Every truncation of the file is rejected, none panics.
    for cut in 0..file.len() {
        assert!(SafeTensors::parse(&file[..cut]).is_err(), "cut at {cut}");
    }
    // Flipping any header byte never panics (it may still parse: a digit for a digit).
    let header_end = 8 + u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    for i in 0..header_end {
        let mut bad = file.clone();
        bad[i] ^= 0x55;
        let _ = SafeTensors::parse(&bad);
    }
}
