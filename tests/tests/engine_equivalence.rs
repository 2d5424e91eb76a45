//! The engine runs the trainer's model: f32 logits match candle's to 1e-4,
//! f16 and int8 stay close, and generation is deterministic.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use host_trainer::bpe::Bpe;
use host_trainer::config::ModelConfig;
use host_trainer::export::{export, FloatWeights, Precision};
use host_trainer::model::{ids_tensor, Mode, Transformer};
use kantor_engine::model::Model;
use kantor_engine::session::{Session, SessionOptions};

fn small_config() -> ModelConfig {
    ModelConfig {
        vocab_size: kantor_engine::vocab::VOCAB_SIZE,
        dim: 64,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        hidden_dim: 96,
        context: 32,
        dropout: 0.0,
        ..ModelConfig::preset("tiny").unwrap()
    }
}

/// A randomly initialised candle model (with non-trivial norm gains) and its weights.
fn random_model(config: &ModelConfig, seed: u64) -> (Transformer, FloatWeights) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = Transformer::new(config, vb).unwrap();
    // Perturb every variable deterministically so norms are not all ones.
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let data = varmap.data().lock().unwrap();
    let mut names: Vec<_> = data.keys().cloned().collect();
    names.sort();
    for name in &names {
        let var = &data[name];
        let n = var.elem_count();
        let noise: Vec<f32> = (0..n).map(|_| rng.random_range(-0.08f32..0.08)).collect();
        let base = if name.ends_with("norm.weight") {
            1.0
        } else {
            0.0
        };
        let values: Vec<f32> = noise
            .iter()
            .map(|x| base + x * if base > 0.0 { 3.0 } else { 1.0 })
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    let weights = FloatWeights::from_tensors(data.iter().map(|(k, v)| (k, v.as_tensor()))).unwrap();
    drop(data);
    (model, weights)
}

fn tokens() -> Vec<u16> {
    (0..20u16)
        .map(|i| (i * 37 + 11) % kantor_engine::vocab::VOCAB_SIZE as u16)
        .collect()
}

fn engine_logits(bytes: &[u8], tokens: &[u16]) -> Vec<Vec<f32>> {
    let model = Model::from_bytes(bytes).unwrap();
    let options = SessionOptions::for_model(&model);
    let mut memory = vec![0u8; Session::memory_required(&model, options)];
    let mut session = Session::new(&model, options, &mut memory).unwrap();
    tokens
        .iter()
        .map(|&t| session.forward(t).unwrap().to_vec())
        .collect()
}

fn candle_logits(model: &Transformer, tokens: &[u16]) -> Vec<Vec<f32>> {
    let ids = ids_tensor(&[tokens.to_vec()], &Device::Cpu).unwrap();
    let logits = model.forward(&ids, Mode::Eval).unwrap();
    logits.squeeze(0).unwrap().to_vec2::<f32>().unwrap()
}

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn f32_engine_matches_candle_to_1e_4() {
    let config = small_config();
    let (model, weights) = random_model(&config, 1);
    let bytes = export(&weights, &config, &Bpe::identity(), Precision::F32).unwrap();
    let reference = candle_logits(&model, &tokens());
    let engine = engine_logits(&bytes, &tokens());
    let diff = max_abs_diff(&reference, &engine);
    let scale = reference
        .iter()
        .flatten()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.1, "logits are not trivial: {scale}");
    eprintln!("f32 engine vs candle: max abs logit difference {diff:e} (logits up to {scale})");
    assert!(diff <= 1e-4, "max abs logit difference {diff}");
}

#[test]
fn f16_and_int8_engines_stay_close_to_f32() {
    let config = small_config();
    let (_, weights) = random_model(&config, 2);
    let f32_logits = engine_logits(
        &export(&weights, &config, &Bpe::identity(), Precision::F32).unwrap(),
        &tokens(),
    );
    let f16_logits = engine_logits(
        &export(&weights, &config, &Bpe::identity(), Precision::F16).unwrap(),
        &tokens(),
    );
    let int8 = export(
        &weights,
        &config,
        &Bpe::identity(),
        Precision::Int8 { group_size: 32 },
    )
    .unwrap();
    let int8_logits = engine_logits(&int8, &tokens());
    let scale = f32_logits
        .iter()
        .flatten()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    let d16 = max_abs_diff(&f32_logits, &f16_logits);
    let d8 = max_abs_diff(&f32_logits, &int8_logits);
    eprintln!("f16 {d16}, int8 {d8}, logit scale {scale}");
    assert!(d16 < 0.01 * scale, "f16 {d16} vs scale {scale}");
    assert!(d8 < 0.05 * scale, "int8 {d8} vs scale {scale}");
    assert!(d8 > 0.0, "int8 differs from f32 at all");
    // The int8 path is deterministic: same file, same logits, bit for bit.
    assert_eq!(int8_logits, engine_logits(&int8, &tokens()));
}

#[test]
fn truncated_or_lying_weights_files_are_precise_errors() {
    use kantor_engine::config::ConfigError;
    use kantor_engine::model::LoadError;
    use kantor_engine::weights::TensorProblem;
    let config = small_config();
    let (_, weights) = random_model(&config, 3);
    let good = export(
        &weights,
        &config,
        &Bpe::identity(),
        Precision::Int8 { group_size: 32 },
    )
    .unwrap();
    assert!(Model::from_bytes(&good).is_ok());

    // Every truncation is an error, never a panic.
    for cut in (0..good.len()).step_by(97) {
        assert!(Model::from_bytes(&good[..cut]).is_err(), "cut at {cut}");
    }
    // A header that lies about the configuration.
    let lie = |from: &str, to: &str| -> Vec<u8> {
        let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&good[8..8 + header_len]).unwrap();
        assert!(header.contains(from), "{from} not in header");
        let new_header = header.replacen(from, to, 1);
        assert_eq!(new_header.len(), header.len(), "keep the length");
        let mut bytes = good.clone();
        bytes[8..8 + header_len].copy_from_slice(new_header.as_bytes());
        bytes
    };
    assert!(matches!(
        Model::from_bytes(&lie("\"dim\":\"64\"", "\"dim\":\"32\"")),
        Err(LoadError::Tensor(e)) if e.problem == TensorProblem::Shape
    ));
    assert!(matches!(
        Model::from_bytes(&lie("\"n_heads\":\"4\"", "\"n_heads\":\"3\"")),
        Err(LoadError::Config(ConfigError::Heads))
    ));
    assert!(matches!(
        Model::from_bytes(&lie("\"vocab_size\":\"415\"", "\"vocab_size\":\"416\"")),
        Err(LoadError::VocabMismatch {
            config: 416,
            bpe: 415
        })
    ));
    assert!(matches!(
        Model::from_bytes(&lie("\"format\":\"kantor-1\"", "\"format\":\"kantor-9\"")),
        Err(LoadError::Config(ConfigError::NotAKantorModel))
    ));
    assert!(matches!(
        Model::from_bytes(&lie("norm.weight", "norm.wxight")),
        Err(LoadError::Tensor(e)) if e.problem == TensorProblem::Missing
    ));
    // An int8 tensor declared as another dtype of the same size.
    assert!(matches!(
        Model::from_bytes(&lie("\"dtype\":\"I8\"", "\"dtype\":\"U8\"")),
        Err(LoadError::Tensor(e)) if matches!(e.problem, TensorProblem::Dtype { .. })
    ));
    // Offsets that point past the data.
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut short = good.clone();
    short.truncate(8 + header_len + 10);
    assert!(matches!(
        Model::from_bytes(&short),
        Err(LoadError::Format(_))
    ));
    // A session refuses a token outside the vocabulary instead of indexing out of bounds.
    let model = Model::from_bytes(&good).unwrap();
    let options = SessionOptions::for_model(&model);
    let mut memory = vec![0u8; Session::memory_required(&model, options)];
    let mut session = Session::new(&model, options, &mut memory).unwrap();
    assert!(session.forward(415).is_err());
    let mut small = vec![0u8; 1000];
    assert!(matches!(
        Session::new(&model, options, &mut small),
        Err(kantor_engine::session::SessionError::MemoryTooSmall { .. })
    ));
}
