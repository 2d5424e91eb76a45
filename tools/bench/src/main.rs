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
//!
//! With `--peer-llama2c DIR` it prints instead the engine against
//! llama2.c's `run.c` (f32) and `runq.c` (int8), built from DIR and fed the
//! same weights (see [`llama2c`]), after checking that their logits agree
//! with the engine's.

mod llama2c;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clap::Parser;
use host_trainer::bpe::Bpe;
use host_trainer::config::ModelConfig;
use host_trainer::corpus::{base_sequences, bpe_sequences, Corpus, LoadOptions};
use host_trainer::export::{export, FloatWeights, Precision};
use host_trainer::model::{ids_tensor, Mode, Transformer};
use kantor_engine::kv_cache::KvPrecision;
use kantor_engine::model::Model;
use kantor_engine::session::{Session, SessionOptions};
use kantor_engine::vocab::BOS_ID;

use llama2c::{Peers, Program};

#[derive(Parser)]
struct Args {
    /// Presets to measure.
    #[arg(long, value_delimiter = ',', default_values_t = ["tiny".to_string(), "student".to_string(), "teacher".to_string()])]
    presets: Vec<String>,
    /// Seconds per measurement (at least one pass).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// With --peer-llama2c: measure the engine and the peers in turn this
    /// many times and print the medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Compare with llama2.c instead of candle: a directory holding its
    /// `run.c` and `runq.c` (this repository's benchmarks use
    /// `../shared/peers/llama2.c`).
    #[arg(long, value_name = "DIR")]
    peer_llama2c: Option<PathBuf>,
}

/// Inputs per scale of int8 weights, as the engine ships them.
const GROUP_SIZE: usize = 64;
/// int8 weights as the engine ships them.
const INT8: Precision = Precision::Int8 {
    group_size: GROUP_SIZE,
};

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

/// Random weights of a preset's shape: the candle model and the same weights as floats.
fn random_model(preset: &str, bpe: &Bpe) -> Result<(ModelConfig, Transformer, FloatWeights)> {
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
    Ok((config, model, weights))
}

/// A loaded engine file with a session (the model's natural options unless `kv` is given).
fn with_session<T>(
    bytes: &[u8],
    kv: Option<KvPrecision>,
    f: impl FnOnce(&mut Session<'_, '_>, usize) -> Result<T>,
) -> Result<T> {
    let m = Model::from_bytes(bytes)?;
    let mut options = SessionOptions::for_model(&m);
    if let Some(kv) = kv {
        options.kv = kv;
    }
    let needed = Session::memory_required(&m, options);
    let mut memory = vec![0u8; needed];
    let mut session = Session::new(&m, options, &mut memory)?;
    f(&mut session, needed)
}

/// Engine tokens/s over whole contexts of `ids`, and the session's bytes.
fn engine_rate(
    bytes: &[u8],
    kv: Option<KvPrecision>,
    ids: &[u16],
    seconds: f64,
) -> Result<(f64, usize)> {
    with_session(bytes, kv, |session, needed| {
        let r = rate(seconds, ids.len(), || {
            session.reset();
            for &t in ids {
                session.forward(t)?;
            }
            Ok(())
        })?;
        Ok((r, needed))
    })
}

/// The engine's logits after each of `tokens`, fed from position 0.
fn engine_logits(bytes: &[u8], kv: Option<KvPrecision>, tokens: &[u16]) -> Result<Vec<Vec<f32>>> {
    with_session(bytes, kv, |session, _| {
        session.reset();
        tokens
            .iter()
            .map(|&t| {
                let logits = session.forward(t)?;
                Ok(logits.to_vec())
            })
            .collect()
    })
}

fn main() -> Result<()> {
    // One thread for candle (it follows rayon's variable), as for the engine.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let args = Args::parse();
    // Build the peers first: a wrong directory fails at once.
    let peers = args.peer_llama2c.as_deref().map(Peers::build).transpose()?;
    // A real BPE table and real token ids: the bundled chorales.
    let corpus = Corpus::load(Path::new("data/bach-chorales-midi"), LoadOptions::default())?;
    let bpe = Bpe::train(&base_sequences(corpus.train.iter().map(|e| &e.piece)), 512);
    let stream: Vec<u16> = bpe_sequences(corpus.valid.iter().map(|e| &e.piece), &bpe).concat();
    match peers {
        Some(peers) => against_llama2c(&args, &peers, &bpe, &stream),
        None => against_candle(&args, &bpe, &stream),
    }
}

/// The engine (int8, f16, f32) against candle's CPU model, with memory figures.
fn against_candle(args: &Args, bpe: &Bpe, stream: &[u16]) -> Result<()> {
    println!("| preset | params | engine int8 tok/s | engine f16 tok/s | engine f32 tok/s | candle f32 scoring tok/s | candle f32 generation tok/s | engine RAM int8 KV (KiB) | engine RAM f32 KV (KiB) | int8 weights file (KiB) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for preset in &args.presets {
        let (config, model, weights) = random_model(preset, bpe)?;
        let context = config.context;
        let ids: Vec<u16> = stream.iter().copied().cycle().take(context).collect();

        let mut engine_rates = Vec::new();
        let mut memory_kib = Vec::new();
        for precision in [INT8, Precision::F16, Precision::F32] {
            let bytes = export(&weights, &config, bpe, precision)?;
            let (r, needed) = engine_rate(&bytes, None, &ids, args.seconds)?;
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

/// Positions over which the logits of llama2.c and the engine are compared.
const CHECK_POSITIONS: usize = 16;
/// How close run.c's logits must come to the engine's f32 ones: absolute,
/// or relative to the largest logit once that is over 1.
const F32_TOLERANCE: f32 = 1e-3;
/// The two int8 paths agree to float rounding until one rounds an activation
/// to the next int8 step and the other does not (their float operations run
/// in a different order); from there on they differ by up to the size of the
/// quantization error itself (the teacher: 1.4–2.8 % of the largest logit,
/// even at position 0). So runq.c must be at most this many times as far
/// from the engine's f32 logits as the engine's int8 ones are (a wrong export
/// lands 10–25 times as far).
const INT8_ERROR_FACTOR: f32 = 2.0;

/// Per position: largest |a − b| and largest |b|; an error for non-finite logits.
fn differences(a: &[Vec<f32>], b: &[Vec<f32>]) -> Result<Vec<(f32, f32)>> {
    ensure!(
        a.len() == b.len(),
        "{} positions of logits against {}",
        a.len(),
        b.len()
    );
    a.iter()
        .zip(b)
        .map(|(a, b)| {
            ensure!(a.len() == b.len(), "{} logits against {}", a.len(), b.len());
            ensure!(
                a.iter().chain(b).all(|v| v.is_finite()),
                "non-finite logits"
            );
            let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            let largest = b.iter().fold(0f32, |m, y| m.max(y.abs()));
            Ok((diff, largest))
        })
        .collect()
}

/// The largest of `f` over positions.
fn largest(values: &[(f32, f32)], f: impl Fn(f32, f32) -> f32) -> f32 {
    values.iter().fold(0f32, |m, &(d, l)| m.max(f(d, l)))
}

/// What the check found for one preset.
struct Check {
    /// run.c vs engine f32: max |Δ| at position 0 and over all positions.
    float_first: f32,
    float_all: f32,
    /// The largest f32 logit.
    float_largest: f32,
    /// runq.c vs engine int8, max |Δ| / largest logit: position 0, all positions.
    int8_first: f32,
    int8_all: f32,
    /// Against the engine's f32 logits, max |Δ| / largest logit over all
    /// positions: the engine's int8, runq.c.
    engine_int8_error: f32,
    runq_error: f32,
}

/// Compare llama2.c's logits with the engine's over the same tokens; an error
/// (naming the position) where they differ beyond the tolerances.
fn check_export(
    preset: &str,
    peers: &Peers,
    files: (&Path, &Path, &Path),
    engines: (&[u8], &[u8]),
    tokens: &[u16],
    vocab: usize,
) -> Result<Check> {
    let (float_path, int8_path, tokenizer_path) = files;
    let (float, int8) = engines;
    let engine_float = engine_logits(float, None, tokens)?;
    let run = peers.logits(Program::Run, float_path, tokenizer_path, tokens, vocab)?;
    let float_diffs = differences(&run, &engine_float)?;
    for (pos, &(diff, largest)) in float_diffs.iter().enumerate() {
        ensure!(
            diff <= F32_TOLERANCE * largest.max(1.0),
            "{preset}: run.c's logits at position {pos} differ from the engine's f32 ones by up to {diff:e} (largest logit {largest:e}): the f32 export is wrong"
        );
    }
    // runq.c keeps its KV cache in f32: so does the engine for this check.
    let engine_int8 = engine_logits(int8, Some(KvPrecision::F32), tokens)?;
    let runq = peers.logits(Program::Runq, int8_path, tokenizer_path, tokens, vocab)?;
    let int8_diffs = differences(&runq, &engine_int8)?;
    let engine_error = differences(&engine_int8, &engine_float)?;
    let runq_error = differences(&runq, &engine_float)?;
    for (pos, (&(runq_diff, largest), &(engine_diff, _))) in
        runq_error.iter().zip(&engine_error).enumerate()
    {
        ensure!(
            runq_diff <= INT8_ERROR_FACTOR * engine_diff + F32_TOLERANCE * largest.max(1.0),
            "{preset}: at position {pos} runq.c's logits are up to {runq_diff:e} from the engine's f32 ones, the engine's int8 ones {engine_diff:e}: the int8 export is wrong"
        );
    }
    let relative = |d: f32, l: f32| d / l;
    Ok(Check {
        float_first: float_diffs[0].0,
        float_all: largest(&float_diffs, |d, _| d),
        float_largest: largest(&float_diffs, |_, l| l),
        int8_first: relative(int8_diffs[0].0, int8_diffs[0].1),
        int8_all: largest(&int8_diffs, relative),
        engine_int8_error: largest(&engine_error, relative),
        runq_error: largest(&runq_error, relative),
    })
}

/// The files llama2.c reads: its f32 and int8 checkpoints and its tokenizer.
struct PeerFiles {
    float: PathBuf,
    int8: PathBuf,
    tokenizer: PathBuf,
}

/// The engine against llama2.c's run.c (f32) and runq.c (int8) on the same
/// weights, one thread each, after checking that their logits agree.
fn against_llama2c(args: &Args, peers: &Peers, bpe: &Bpe, stream: &[u16]) -> Result<()> {
    let dir = peers.dir();
    let files = PeerFiles {
        float: dir.join("model-f32.bin"),
        int8: dir.join("model-q80.bin"),
        tokenizer: dir.join("tokenizer.bin"),
    };
    std::fs::write(&files.tokenizer, llama2c::tokenizer(bpe)?)?;
    println!("| preset | engine int8 tok/s | runq.c tok/s | ratio (engine / runq.c) | engine f32 tok/s | run.c tok/s | ratio (engine / run.c) | engine int8, f32 KV tok/s | ratio (engine / runq.c) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut checks = Vec::new();
    for preset in &args.presets {
        let check = llama2c_preset(preset, args, peers, bpe, stream, &files)?;
        checks.push((preset.as_str(), check));
    }
    print_checks(&checks);
    Ok(())
}

/// One preset against llama2.c: export its random weights for both, check
/// the logits, print its row of speeds; what the check found.
fn llama2c_preset(
    preset: &str,
    args: &Args,
    peers: &Peers,
    bpe: &Bpe,
    stream: &[u16],
    files: &PeerFiles,
) -> Result<Check> {
    let (config, _, weights) = random_model(preset, bpe)?;
    let ids: Vec<u16> = stream
        .iter()
        .copied()
        .cycle()
        .take(config.context)
        .collect();
    let int8 = export(&weights, &config, bpe, INT8)?;
    let float = export(&weights, &config, bpe, Precision::F32)?;
    std::fs::write(&files.float, llama2c::f32_checkpoint(&weights, &config)?)?;
    std::fs::write(
        &files.int8,
        llama2c::q80_checkpoint(&weights, &config, GROUP_SIZE)?,
    )?;

    // Bos at position 0 (where RoPE is the identity), then real tokens.
    let tokens: Vec<u16> = std::iter::once(BOS_ID)
        .chain(ids.iter().copied())
        .take(CHECK_POSITIONS.min(config.context))
        .collect();
    let check = check_export(
        preset,
        peers,
        (&files.float, &files.int8, &files.tokenizer),
        (&float, &int8),
        &tokens,
        config.vocab_size,
    )?;
    let timing = (args.seconds, args.rounds);
    print_speeds(preset, timing, peers, files, (&float, &int8), &ids)?;
    Ok(check)
}

/// Measure and print one preset's row of speeds: the engine (int8, f32,
/// int8 with an f32 KV cache) against runq.c and run.c. The five run in
/// turn, `rounds` times over, and each figure is the median of its rounds,
/// so that a spell of load on a shared machine does not fall on one side.
fn print_speeds(
    preset: &str,
    (seconds, rounds): (f64, usize),
    peers: &Peers,
    files: &PeerFiles,
    engines: (&[u8], &[u8]),
    ids: &[u16],
) -> Result<()> {
    let (float, int8) = engines;
    let peer = |program, model: &Path| {
        peers.tokens_per_second(program, model, &files.tokenizer, seconds, BOS_ID)
    };
    let mut measured: [Vec<f64>; 5] = Default::default();
    for _ in 0..rounds.max(1) {
        let round = [
            engine_rate(int8, None, ids, seconds)?.0,
            peer(Program::Runq, &files.int8)?,
            engine_rate(float, None, ids, seconds)?.0,
            peer(Program::Run, &files.float)?,
            engine_rate(int8, Some(KvPrecision::F32), ids, seconds)?.0,
        ];
        for (m, r) in measured.iter_mut().zip(round) {
            m.push(r);
        }
    }
    let [engine_int8, runq, engine_float, run, engine_int8_f32_kv] = measured.map(median);
    println!(
        "| {preset} | {engine_int8:.0} | {runq:.0} | {:.2} | {engine_float:.0} | {run:.0} | {:.2} | {engine_int8_f32_kv:.0} | {:.2} |",
        engine_int8 / runq,
        engine_float / run,
        engine_int8_f32_kv / runq,
    );
    Ok(())
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Print the table of logit checks, one row per preset.
fn print_checks(checks: &[(&str, Check)]) {
    let last = CHECK_POSITIONS - 1;
    println!();
    println!("Logits of Bos at position 0 and of real tokens after it, llama2.c against the engine on the same weights (int8: both with f32 KV caches; relative: to the largest logit):");
    println!();
    println!("| preset | run.c vs engine f32: max abs diff, position 0 | positions 0–{last} | largest logit | runq.c vs engine int8, relative: position 0 | positions 0–{last} | engine int8 vs engine f32, relative, positions 0–{last} | runq.c vs engine f32, relative, positions 0–{last} |");
    println!("|---|---|---|---|---|---|---|---|");
    for (preset, c) in checks {
        println!(
            "| {preset} | {:.2e} | {:.2e} | {:.3} | {:.3} % | {:.2} % | {:.2} % | {:.2} % |",
            c.float_first,
            c.float_all,
            c.float_largest,
            100.0 * c.int8_first,
            100.0 * c.int8_all,
            100.0 * c.engine_int8_error,
            100.0 * c.runq_error,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
