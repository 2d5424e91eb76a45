//! `cargo run --release -p kantor-bench`: tokens per second and memory of the
//! engine (int8, f16, f32) and of the candle model (CPU, f32), one thread,
//! for each model preset. Weights are random: speed does not depend on them.
//!
//! * engine: incremental decoding with the KV cache, one token per forward
//!   pass, over a full context;
//! * candle scoring: one forward pass over a full context window (the
//!   trainer's evaluation mode);
//! * candle generation: one token per forward pass without a KV cache (the
//!   trainer's `generate --run` mode), over half a context on average.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clap::Parser;
use host_trainer::bpe::Bpe;
use host_trainer::config::ModelConfig;
use host_trainer::corpus::{base_sequences, bpe_sequences, Corpus, LoadOptions};
use host_trainer::export::{export, FloatWeights, Precision};
use host_trainer::model::{ids_tensor, Mode, Transformer};
use kantor_engine::model::Model;
use kantor_engine::session::{Session, SessionOptions};

#[derive(Parser)]
struct Args {
    /// Presets to measure.
    #[arg(long, value_delimiter = ',', default_values_t = ["tiny".to_string(), "student".to_string(), "teacher".to_string()])]
    presets: Vec<String>,
    /// Seconds per measurement (at least one pass).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
}

/// Run `f` (which processes `tokens` tokens) repeatedly for about `seconds`; tokens/s.
fn rate(seconds: f64, tokens: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    let mut done = 0usize;
    while done == 0 || start.elapsed() < Duration::from_secs_f64(seconds) {
        f()?;
        done += tokens;
    }
    Ok(done as f64 / start.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    // One thread for candle (it follows rayon's variable), as for the engine.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let args = Args::parse();
    // A real BPE table and real token ids: the bundled chorales.
    let corpus = Corpus::load(Path::new("data/bach-chorales-midi"), LoadOptions::default())?;
    let bpe = Bpe::train(&base_sequences(corpus.train.iter().map(|e| &e.piece)), 512);
    let stream: Vec<u16> = bpe_sequences(corpus.valid.iter().map(|e| &e.piece), &bpe).concat();
    println!("| preset | params | engine int8 tok/s | engine f16 tok/s | engine f32 tok/s | candle f32 scoring tok/s | candle f32 generation tok/s | engine RAM int8 KV (KiB) | engine RAM f32 KV (KiB) | int8 weights file (KiB) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for preset in &args.presets {
        let config = ModelConfig {
            vocab_size: bpe.vocab_size(),
            dropout: 0.0,
            ..ModelConfig::preset(preset)?
        };
        let varmap = VarMap::new();
        let model = Transformer::new(
            &config,
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        )?;
        let weights = {
            let data = varmap.data().lock().expect("lock");
            FloatWeights::from_tensors(data.iter().map(|(k, v)| (k, v.as_tensor())))?
        };
        let context = config.context;
        let ids: Vec<u16> = stream.iter().copied().cycle().take(context).collect();

        let mut engine_rates = Vec::new();
        let mut memory_kib = Vec::new();
        for precision in [
            Precision::Int8 { group_size: 64 },
            Precision::F16,
            Precision::F32,
        ] {
            let bytes = export(&weights, &config, &bpe, precision)?;
            let m = Model::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
            let options = SessionOptions::for_model(&m);
            let needed = Session::memory_required(&m, options);
            let mut memory = vec![0u8; needed];
            let mut session =
                Session::new(&m, options, &mut memory).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let r = rate(args.seconds, ids.len(), || {
                session.reset();
                for &t in &ids {
                    session.forward(t).map_err(|e| anyhow::anyhow!("{e:?}"))?;
                }
                Ok(())
            })?;
            engine_rates.push(r);
            memory_kib.push((needed as f64 / 1024.0, bytes.len() as f64 / 1024.0));
        }
        let window = ids_tensor(std::slice::from_ref(&ids), &Device::Cpu)?;
        let scoring = rate(args.seconds, context, || {
            model.forward(&window, Mode::Eval)?;
            Ok(())
        })?;
        let half = (context / 2).max(1);
        let generation = rate(args.seconds, 8, || {
            for i in 0..8 {
                let w = ids_tensor(&[ids[..half + i].to_vec()], &Device::Cpu)?;
                model.forward(&w, Mode::Eval)?;
            }
            Ok(())
        })?;
        println!(
            "| {preset} | {:.2} M | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0} |",
            config.parameters() as f64 / 1e6,
            engine_rates[0],
            engine_rates[1],
            engine_rates[2],
            scoring,
            generation,
            memory_kib[0].0,
            // f32 session: the run state plus an f32 KV cache.
            memory_kib[2].0,
            memory_kib[0].1,
        );
    }
    Ok(())
}
