//! The shipped student with lying metadata or hostile scales: every file
//! either fails to load with an error or generates without a panic, with
//! every kernel family (per-row and per-group int8, short contexts that
//! slide every few tokens, non-finite scales).

use std::collections::HashMap;

use kantor_engine::generator::Generator;
use kantor_engine::kernels::Isa;
use kantor_engine::model::Model;
use kantor_engine::sampler::{Sampler, SamplerConfig};
use kantor_engine::session::{Session, SessionOptions};
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;

fn student() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware/model/student.safetensors"
    );
    std::fs::read(path).expect("the shipped student")
}

/// The student rewritten: `metadata` entries replaced, every scale tensor
/// passed through `scale`.
fn rewrite(bytes: &[u8], metadata: &[(&str, &str)], scale: impl Fn(f32) -> f32) -> Vec<u8> {
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut meta: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
    for (k, v) in metadata {
        meta.insert(k.to_string(), v.to_string());
    }
    let file = SafeTensors::deserialize(bytes).unwrap();
    let mut data: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in file.tensors() {
        let mut raw = view.data().to_vec();
        if name.ends_with(".scales") {
            for c in raw.chunks_exact_mut(4) {
                let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                c.copy_from_slice(&scale(v).to_le_bytes());
            }
        }
        data.push((name, view.dtype(), view.shape().to_vec(), raw));
    }
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

/// Load and, if that works, generate past the context with every family.
fn exercise(bytes: &[u8]) -> Result<usize, String> {
    let model = Model::from_bytes(bytes).map_err(|e| e.to_string())?;
    let mut notes = 0;
    for isa in Isa::available() {
        let options = SessionOptions {
            isa,
            ..SessionOptions::for_model(&model)
        };
        let mut memory = vec![0u8; Session::memory_required(&model, options)];
        let session = Session::new(&model, options, &mut memory).map_err(|e| format!("{e:?}"))?;
        let mut g: Generator<'_, '_, 64> =
            Generator::new(session, Sampler::new(SamplerConfig::default(), 3), true);
        for _ in 0..model.config.context + 40 {
            g.step().map_err(|e| format!("{e:?}"))?;
            while g.pop_message().is_some() {
                notes += 1;
            }
        }
    }
    Ok(notes)
}

#[test]
fn lying_metadata_is_an_error_or_plays() {
    let bytes = student();
    assert!(exercise(&bytes).unwrap() > 0, "the student itself plays");
    let refused: &[&[(&str, &str)]] = &[
        &[("group_size", "0")],
        &[("group_size", "64")], // the scales are per row
        &[("group_size", "7")],
        &[("group_size", "rows")],
        &[("n_kv_heads", "4")],
        &[("n_heads", "3")],
        &[("dim", "64")],
        &[("hidden_dim", "256")],
        &[("weights", "f16")],
        &[("context", "0")],
        &[("context", "4")], // four sinks need at least eight positions
        &[("vocab_size", "511")],
        &[("rope_theta", "NaN")],
        &[("voice_counts", "1,2")], // 16 counts, one per voice count
        &[("voice_counts", "0,0,0,x,0,0,0,0,0,0,0,0,0,0,0,0")],
        &[("repeat_bars", "-1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0")],
        &[("repeat_bars", "4294967295,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0")],
    ];
    for meta in refused {
        let hostile = rewrite(&bytes, meta, |s| s);
        assert!(exercise(&hostile).is_err(), "{meta:?} should not load");
    }
    // A shorter context than trained slides every few tokens, and plays.
    for context in ["8", "9", "17", "64"] {
        let short = rewrite(&bytes, &[("context", context)], |s| s);
        assert!(exercise(&short).is_ok(), "context {context}");
    }
}

#[test]
fn hostile_scales_never_panic() {
    let bytes = student();
    for scale in [
        |_: f32| f32::NAN,
        |_: f32| f32::INFINITY,
        |s: f32| s * 1e30,
        |_: f32| 0.0,
        |s: f32| -s,
    ] {
        let hostile = rewrite(&bytes, &[], scale);
        // The file is well-formed: it loads, and generation goes on (NaN
        // logits count as masked; the grammar keeps the output playable).
        assert!(exercise(&hostile).is_ok());
    }
}
