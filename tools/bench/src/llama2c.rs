//! llama2.c side by side: its file formats, written from our float weights,
//! and its two programs (`run.c`, f32; `runq.c`, int8) built around our own
//! timing loop, `tools/bench/llama2c_loop.c`.
//!
//! The formats are those of llama2.c's `export.py` (described in
//! `../shared/peers/README.md`); all numbers little-endian:
//!
//! * `run.c`, legacy version 0: seven `i32` (dim, hidden_dim, n_layers,
//!   n_heads, n_kv_heads, vocab_size — positive: the classifier is the token
//!   embedding —, seq_len), then f32 arrays: token embedding; every layer's
//!   attention norm; every layer's wq, then wk, wv, wo; every layer's ffn
//!   norm; every layer's w1, w2, w3; the final norm; two `[seq_len,
//!   head_size / 2]` RoPE tables (cosines, sines) that run.c skips.
//! * `runq.c`, version 2: a 256-byte header (u32 magic, i32 version, the
//!   seven `i32`, a u8 shared-classifier flag, an i32 group size, zeros),
//!   the f32 norms (attention norms of all layers, ffn norms, final norm),
//!   then the token embedding and every layer's wq, …, wk…, wv…, wo…, w1…,
//!   w2…, w3… each as int8 values followed by its f32 group scales.
//! * tokenizer: an i32 longest token length in bytes, then per token an f32
//!   score, an i32 length and the bytes.
//!
//! Matrices are `[out, in]` row-major on both sides. The quantization is the
//! engine's own ([`quantize_matrix`]: `scale = max|w| / 127` per group), so
//! the engine's int8 file and runq.c's hold the same int8 values and scales.
//! llama2.c rotates interleaved RoPE pairs `(2j, 2j + 1)` of each head where
//! Kantor rotates `(j, j + head_dim / 2)`, at the same frequency
//! `θ^(−2j / head_dim)`: the writers reorder the rows of wq and wk so that
//! llama2.c's pairs are Kantor's ([`interleave_rope_rows`]). Attention scores
//! are dot products within a head, which the reordering leaves alone, so both
//! programs compute the engine's function at every position (speed does not
//! depend on it either way). llama2.c fixes θ = 10000 and the RMSNorm ε =
//! 1e-5; other configurations are refused.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use host_trainer::bpe::Bpe;
use host_trainer::config::ModelConfig;
use host_trainer::export::{matrices, quantize_matrix, FloatWeights};
use kantor_engine::vocab::Token;

/// runq.c's magic number ("ak42" in ASCII, most significant byte first).
const Q80_MAGIC: u32 = 0x616b_3432;
/// runq.c's format version.
const Q80_VERSION: i32 = 2;
/// Bytes of runq.c's header, padding included.
const Q80_HEADER_BYTES: usize = 256;
/// The per-layer matrices in llama2.c's order.
const ATTENTION: [&str; 4] = [
    "attention.wq",
    "attention.wk",
    "attention.wv",
    "attention.wo",
];
const FEED_FORWARD: [&str; 3] = ["feed_forward.w1", "feed_forward.w2", "feed_forward.w3"];

/// Our timing loop, built with each peer source.
const LOOP_SOURCE: &str = include_str!("../llama2c_loop.c");

/// The float weights of one model in llama2.c's order, checked against the
/// configuration's shapes.
struct Ordered<'w> {
    weights: &'w FloatWeights,
    shapes: HashMap<String, (usize, usize)>,
    config: &'w ModelConfig,
}

impl<'w> Ordered<'w> {
    fn new(weights: &'w FloatWeights, config: &'w ModelConfig) -> Result<Self> {
        config.validate()?;
        ensure!(
            config.rope_theta == 10_000.0 && config.norm_eps == 1e-5,
            "llama2.c fixes rope_theta = 10000 and norm_eps = 1e-5; this model has {} and {}",
            config.rope_theta,
            config.norm_eps
        );
        let shapes = matrices(config)
            .into_iter()
            .map(|(name, rows, cols)| (name, (rows, cols)))
            .collect();
        Ok(Ordered {
            weights,
            shapes,
            config,
        })
    }

    fn tensor(&self, name: &str, shape: &[usize]) -> Result<&'w [f32]> {
        let (s, values) = self
            .weights
            .tensors
            .get(name)
            .with_context(|| format!("the model has no tensor {name}"))?;
        ensure!(
            s == shape,
            "tensor {name} has shape {s:?}, the configuration needs {shape:?}"
        );
        Ok(values)
    }

    /// A matrix by its engine name without `.weight`: (values, columns).
    fn matrix(&self, name: &str) -> Result<(&'w [f32], usize)> {
        let &(rows, cols) = self
            .shapes
            .get(name)
            .with_context(|| format!("no matrix {name} in this configuration"))?;
        Ok((self.tensor(&format!("{name}.weight"), &[rows, cols])?, cols))
    }

    /// One kind of matrix (`attention.wq`, …) of every layer, in layer order,
    /// with the rows of wq and wk in llama2.c's RoPE order.
    fn layers(&self, kind: &str) -> Result<Vec<(Cow<'w, [f32]>, usize)>> {
        (0..self.config.n_layers)
            .map(|l| {
                let (values, cols) = self.matrix(&format!("layers.{l}.{kind}"))?;
                let values = if kind == "attention.wq" || kind == "attention.wk" {
                    Cow::Owned(interleave_rope_rows(values, cols, self.config.head_dim()))
                } else {
                    Cow::Borrowed(values)
                };
                Ok((values, cols))
            })
            .collect()
    }

    /// One kind of norm gain (`attention_norm`, `ffn_norm`) of every layer.
    fn layer_norms(&self, kind: &str) -> Result<Vec<&'w [f32]>> {
        (0..self.config.n_layers)
            .map(|l| self.tensor(&format!("layers.{l}.{kind}.weight"), &[self.config.dim]))
            .collect()
    }

    fn final_norm(&self) -> Result<&'w [f32]> {
        self.tensor("norm.weight", &[self.config.dim])
    }
}

/// The rows of a `[heads · head_dim, cols]` query or key matrix reordered
/// per head so that output `2j` is row `j` and output `2j + 1` is row
/// `j + head_dim / 2`: llama2.c's RoPE pair `(2j, 2j + 1)` is then Kantor's
/// pair `(j, j + head_dim / 2)`.
pub fn interleave_rope_rows(values: &[f32], cols: usize, head_dim: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let row = |head: &[f32], r: usize| -> Vec<f32> { head[r * cols..(r + 1) * cols].to_vec() };
    values
        .chunks(head_dim * cols)
        .flat_map(|head| (0..half).flat_map(move |j| [row(head, j), row(head, j + half)]))
        .flatten()
        .collect()
}

/// The seven `i32` of both headers (vocab_size positive: shared classifier).
fn config_header(config: &ModelConfig) -> Result<Vec<u8>> {
    let c = config;
    let mut out = Vec::with_capacity(28);
    for (name, value) in [
        ("dim", c.dim),
        ("hidden_dim", c.hidden_dim),
        ("n_layers", c.n_layers),
        ("n_heads", c.n_heads),
        ("n_kv_heads", c.n_kv_heads),
        ("vocab_size", c.vocab_size),
        ("seq_len", c.context),
    ] {
        let v = i32::try_from(value).with_context(|| format!("{name} {value} is over i32"))?;
        out.extend(v.to_le_bytes());
    }
    Ok(out)
}

fn put_f32(out: &mut Vec<u8>, values: &[f32]) {
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
}

/// `run.c`'s checkpoint (legacy version 0, f32, shared classifier).
pub fn f32_checkpoint(weights: &FloatWeights, config: &ModelConfig) -> Result<Vec<u8>> {
    let w = Ordered::new(weights, config)?;
    let mut out = config_header(config)?;
    put_f32(&mut out, w.matrix("tok_embeddings")?.0);
    for norm in w.layer_norms("attention_norm")? {
        put_f32(&mut out, norm);
    }
    for kind in ATTENTION {
        for (values, _) in w.layers(kind)? {
            put_f32(&mut out, &values);
        }
    }
    for norm in w.layer_norms("ffn_norm")? {
        put_f32(&mut out, norm);
    }
    for kind in FEED_FORWARD {
        for (values, _) in w.layers(kind)? {
            put_f32(&mut out, &values);
        }
    }
    put_f32(&mut out, w.final_norm()?);
    // The legacy RoPE tables (run.c computes its own and skips these):
    // cos and sin of pos · θ^(−2i / head_size), [seq_len, head_size / 2] each.
    let head_size = config.head_dim();
    let angles: Vec<f32> = (0..config.context)
        .flat_map(|pos| {
            (0..head_size / 2).map(move |i| {
                let frequency = config.rope_theta.powf(-((2 * i) as f32) / head_size as f32);
                pos as f32 * frequency
            })
        })
        .collect();
    put_f32(
        &mut out,
        &angles.iter().map(|a| a.cos()).collect::<Vec<_>>(),
    );
    put_f32(
        &mut out,
        &angles.iter().map(|a| a.sin()).collect::<Vec<_>>(),
    );
    Ok(out)
}

/// `runq.c`'s checkpoint (version 2, int8 in groups of `group_size`, shared classifier).
pub fn q80_checkpoint(
    weights: &FloatWeights,
    config: &ModelConfig,
    group_size: usize,
) -> Result<Vec<u8>> {
    let w = Ordered::new(weights, config)?;
    ensure!(
        group_size > 0
            && config.dim.is_multiple_of(group_size)
            && config.hidden_dim.is_multiple_of(group_size),
        "group size {group_size} must divide dim ({}) and hidden_dim ({})",
        config.dim,
        config.hidden_dim
    );
    let mut out = Q80_MAGIC.to_le_bytes().to_vec();
    out.extend(Q80_VERSION.to_le_bytes());
    out.extend(config_header(config)?);
    out.push(1); // shared classifier
    let group = i32::try_from(group_size).context("group size is over i32")?;
    out.extend(group.to_le_bytes());
    out.resize(Q80_HEADER_BYTES, 0);

    for norm in w.layer_norms("attention_norm")? {
        put_f32(&mut out, norm);
    }
    for norm in w.layer_norms("ffn_norm")? {
        put_f32(&mut out, norm);
    }
    put_f32(&mut out, w.final_norm()?);
    let (embedding, cols) = w.matrix("tok_embeddings")?;
    let mut quantized = vec![(Cow::Borrowed(embedding), cols)];
    for kind in ATTENTION.iter().chain(&FEED_FORWARD) {
        quantized.extend(w.layers(kind)?);
    }
    for (values, cols) in quantized {
        let (q, scales) = quantize_matrix(&values, cols, group_size);
        out.extend(q.iter().map(|&v| v as u8));
        put_f32(&mut out, &scales);
    }
    Ok(out)
}

/// The text of one token: the names of its base tokens, each followed by a
/// space (so a merge's text is the concatenation of its two parts', as
/// llama2.c's encoder assumes).
fn token_text(bpe: &Bpe, id: u16) -> Result<String> {
    let base = bpe
        .expansion(id)
        .with_context(|| format!("token {id} is not in the BPE table"))?;
    base.iter()
        .map(|&b| {
            Token::from_id(b)
                .map(|t| format!("{t} "))
                .with_context(|| format!("base token {b} has no name"))
        })
        .collect()
}

/// The tokenizer file for a BPE table (llama2.c reads it for
/// `config.vocab_size` tokens). Scores fall with the id: later merges rank lower.
pub fn tokenizer(bpe: &Bpe) -> Result<Vec<u8>> {
    let texts = (0..bpe.vocab_size())
        .map(|id| token_text(bpe, u16::try_from(id).context("token id over u16")?))
        .collect::<Result<Vec<_>>>()?;
    let longest = texts.iter().map(String::len).max().unwrap_or(0);
    let mut out = i32::try_from(longest)?.to_le_bytes().to_vec();
    for (id, text) in texts.iter().enumerate() {
        out.extend((-(id as f32)).to_le_bytes());
        out.extend(i32::try_from(text.len())?.to_le_bytes());
        out.extend(text.as_bytes());
    }
    Ok(out)
}

/// One of llama2.c's two programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// `run.c`: f32 weights.
    Run,
    /// `runq.c`: int8 weights and activations, f32 KV cache.
    Runq,
}

impl Program {
    fn source(self) -> &'static str {
        match self {
            Program::Run => "run.c",
            Program::Runq => "runq.c",
        }
    }
}

/// run.c and runq.c built around our timing loop, in a temporary directory
/// that also holds the model files.
pub struct Peers {
    dir: tempfile::TempDir,
    run: PathBuf,
    runq: PathBuf,
}

impl Peers {
    /// Build both programs from a checkout holding llama2.c's `run.c` and
    /// `runq.c`: `gcc -Ofast -march=native`, one thread (no `-fopenmp`).
    pub fn build(peer_dir: &Path) -> Result<Peers> {
        if !peer_dir.is_dir() {
            bail!(
                "--peer-llama2c {}: no such directory (expected a llama2.c checkout holding run.c and runq.c, such as ../shared/peers/llama2.c)",
                peer_dir.display()
            );
        }
        for program in [Program::Run, Program::Runq] {
            let source = peer_dir.join(program.source());
            if !source.is_file() {
                bail!(
                    "--peer-llama2c {}: there is no {} (expected a llama2.c checkout holding run.c and runq.c, such as ../shared/peers/llama2.c)",
                    peer_dir.display(),
                    program.source()
                );
            }
        }
        let peer_dir = peer_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", peer_dir.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("kantor-bench-llama2c-")
            .tempdir()?;
        let loop_source = dir.path().join("llama2c_loop.c");
        std::fs::write(&loop_source, LOOP_SOURCE)?;
        let build = |program: Program| -> Result<PathBuf> {
            let binary = dir.path().join(program.source().replace(".c", "-loop"));
            let output = Command::new("gcc")
                .args(["-Ofast", "-march=native", "-I"])
                .arg(&peer_dir)
                .arg(format!("-DPEER_SOURCE=\"{}\"", program.source()))
                .arg(&loop_source)
                .arg("-o")
                .arg(&binary)
                .arg("-lm")
                .output()
                .context("running gcc (needed to build llama2.c)")?;
            if !output.status.success() {
                bail!(
                    "gcc could not build {} with our loop ({}):\n{}",
                    program.source(),
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            Ok(binary)
        };
        let run = build(Program::Run)?;
        let runq = build(Program::Runq)?;
        Ok(Peers { dir, run, runq })
    }

    /// Where to write model and tokenizer files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn binary(&self, program: Program) -> &Path {
        match program {
            Program::Run => &self.run,
            Program::Runq => &self.runq,
        }
    }

    fn call(&self, program: Program, args: &[&std::ffi::OsStr]) -> Result<String> {
        let output = Command::new(self.binary(program))
            .args(args)
            .output()
            .with_context(|| format!("running {}", program.source()))?;
        if !output.status.success() {
            bail!(
                "{} with our loop failed ({}): {}{}",
                program.source(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Tokens per second of whole generations (positions 0..seq_len, greedy,
    /// from `token`), repeated for at least `seconds`.
    pub fn tokens_per_second(
        &self,
        program: Program,
        model: &Path,
        tokenizer: &Path,
        seconds: f64,
        token: u16,
    ) -> Result<f64> {
        let (seconds, token) = (seconds.to_string(), token.to_string());
        let stdout = self.call(
            program,
            &[
                model.as_os_str(),
                tokenizer.as_os_str(),
                "time".as_ref(),
                seconds.as_ref(),
                token.as_ref(),
            ],
        )?;
        parse_timing(&stdout).with_context(|| {
            format!(
                "{} with our loop printed {stdout:?}, not its timing line",
                program.source()
            )
        })
    }

    /// The logits after each of `tokens`, fed at positions 0, 1, ….
    pub fn logits(
        &self,
        program: Program,
        model: &Path,
        tokenizer: &Path,
        tokens: &[u16],
        vocab_size: usize,
    ) -> Result<Vec<Vec<f32>>> {
        let out = self.dir().join("logits.f32");
        let tokens: Vec<String> = tokens.iter().map(u16::to_string).collect();
        let mut args = vec![
            model.as_os_str(),
            tokenizer.as_os_str(),
            "check".as_ref(),
            out.as_os_str(),
        ];
        args.extend(tokens.iter().map(std::ffi::OsStr::new));
        self.call(program, &args)?;
        let bytes = std::fs::read(&out)?;
        ensure!(
            bytes.len() == tokens.len() * vocab_size * 4,
            "{} wrote {} bytes of logits, not {} × {vocab_size} f32",
            program.source(),
            bytes.len(),
            tokens.len()
        );
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(values.chunks(vocab_size).map(<[f32]>::to_vec).collect())
    }
}

/// Tokens per second from the loop's "tokens N seconds S …" line.
fn parse_timing(stdout: &str) -> Result<f64> {
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let value = |key: &str| -> Result<f64> {
        let i = words
            .iter()
            .position(|w| *w == key)
            .with_context(|| format!("no {key}"))?;
        let text = words
            .get(i + 1)
            .with_context(|| format!("no value after {key}"))?;
        text.parse::<f64>()
            .with_context(|| format!("{key} {text} is not a number"))
    };
    let (tokens, seconds) = (value("tokens")?, value("seconds")?);
    ensure!(
        tokens > 0.0 && seconds > 0.0,
        "{tokens} tokens in {seconds} s"
    );
    Ok(tokens / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random-looking but fixed weights of `config`'s shapes.
    fn weights(config: &ModelConfig) -> FloatWeights {
        let mut w = FloatWeights::default();
        let mut next = 0u32;
        let mut values = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    next = next.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (next >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect()
        };
        for (name, rows, cols) in matrices(config) {
            let v = values(rows * cols);
            w.tensors
                .insert(format!("{name}.weight"), (vec![rows, cols], v));
        }
        for name in host_trainer::export::norms(config) {
            let v = values(config.dim);
            w.tensors.insert(name, (vec![config.dim], v));
        }
        w
    }

    fn tiny() -> ModelConfig {
        ModelConfig::preset("tiny").unwrap()
    }

    fn i32_at(bytes: &[u8], offset: usize) -> i32 {
        i32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
    }

    fn f32_at(bytes: &[u8], offset: usize) -> f32 {
        f32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
    }

    #[test]
    fn the_f32_checkpoint_has_run_c_layout() {
        let c = tiny();
        let w = weights(&c);
        let bytes = f32_checkpoint(&w, &c).unwrap();
        let header: Vec<i32> = (0..7).map(|i| i32_at(&bytes, 4 * i)).collect();
        assert_eq!(header, [64, 128, 2, 4, 2, 512, 128]);
        // What run.c's memory_map_weights steps over, in floats.
        let (d, h, l, kv, v, s) = (64, 128, 2, 32, 512, 128);
        let hs = d / 4;
        let floats = v * d
            + l * d
            + l * (d * d + 2 * kv * d + d * d)
            + l * d
            + l * 3 * d * h
            + d
            + 2 * s * hs / 2;
        assert_eq!(bytes.len(), 28 + 4 * floats);
        // The first embedding value, layer 1's wk, the final norm, in place.
        let emb = &w.tensors["tok_embeddings.weight"].1;
        assert_eq!(f32_at(&bytes, 28), emb[0]);
        let wk1 = &w.tensors["layers.1.attention.wk.weight"].1;
        let wk_start = 28 + 4 * (v * d + l * d + l * d * d + kv * d);
        assert_eq!(f32_at(&bytes, wk_start + 4 * 5), wk1[5]);
        // Its second row is the engine's row head_dim / 2 (RoPE pairs).
        assert_eq!(f32_at(&bytes, wk_start + 4 * (d + 5)), wk1[hs / 2 * d + 5]);
        let norm = &w.tensors["norm.weight"].1;
        let norm_start = 28 + 4 * (floats - d - 2 * s * hs / 2);
        assert_eq!(f32_at(&bytes, norm_start + 4 * 63), norm[63]);
        // RoPE tables: position 0 has cosines 1, position 1's first pair angle 1.
        let rope = norm_start + 4 * d;
        assert_eq!(f32_at(&bytes, rope), 1.0);
        assert!((f32_at(&bytes, rope + 4 * hs / 2) - 1f32.cos()).abs() < 1e-6);
    }

    /// llama2.c's rotation as its README describes it: interleaved pairs
    /// `(2j, 2j + 1)` at angle `pos · θ^(−2j / head_size)`.
    fn interleaved_rope(head: &mut [f32], pos: f32) {
        let n = head.len();
        for j in 0..n / 2 {
            let angle = pos * 10_000f32.powf(-((2 * j) as f32) / n as f32);
            let (c, s) = (angle.cos(), angle.sin());
            let (a, b) = (head[2 * j], head[2 * j + 1]);
            head[2 * j] = a * c - b * s;
            head[2 * j + 1] = a * s + b * c;
        }
    }

    #[test]
    fn reordered_rows_make_llama2c_rope_the_engines() {
        // Two heads of 8 rows of 3 columns; x = [1, 2, 3].
        let (head_dim, cols) = (8usize, 3usize);
        let w: Vec<f32> = (0..2 * head_dim * cols)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let x = [1.0f32, 2.0, 3.0];
        let apply = |w: &[f32]| -> Vec<f32> {
            w.chunks(cols)
                .map(|r| r.iter().zip(&x).map(|(a, b)| a * b).sum())
                .collect()
        };
        let pos = 5.0;
        let mut engine = apply(&w);
        let mut frequencies = [0f32; 4];
        let (mut cos, mut sin) = ([0f32; 4], [0f32; 4]);
        kantor_engine::kernels::rope_frequencies(10_000.0, head_dim, &mut frequencies);
        kantor_engine::kernels::rope_angles(pos, &frequencies, &mut cos, &mut sin);
        for h in engine.chunks_mut(head_dim) {
            kantor_engine::kernels::rope_rotate(h, &cos, &sin);
        }
        let mut peer = apply(&interleave_rope_rows(&w, cols, head_dim));
        for h in peer.chunks_mut(head_dim) {
            interleaved_rope(h, pos);
        }
        // Same values, the peer's in interleaved order.
        for (he, hp) in engine.chunks(head_dim).zip(peer.chunks(head_dim)) {
            for j in 0..head_dim / 2 {
                assert!((he[j] - hp[2 * j]).abs() < 1e-5, "{he:?} {hp:?}");
                assert!((he[j + head_dim / 2] - hp[2 * j + 1]).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn the_q80_checkpoint_has_runq_c_layout() {
        let c = tiny();
        let w = weights(&c);
        let bytes = q80_checkpoint(&w, &c, 64).unwrap();
        assert_eq!(&bytes[..4], b"24ka");
        assert_eq!(i32_at(&bytes, 4), 2);
        let header: Vec<i32> = (0..7).map(|i| i32_at(&bytes, 8 + 4 * i)).collect();
        assert_eq!(header, [64, 128, 2, 4, 2, 512, 128]);
        assert_eq!(bytes[36], 1);
        assert_eq!(i32_at(&bytes, 37), 64);
        assert!(bytes[41..256].iter().all(|&b| b == 0));
        let (d, h, l, kv, v) = (64usize, 128usize, 2usize, 32usize, 512usize);
        let norms = 4 * (2 * l * d + d);
        let weights_n = v * d + l * (2 * d * d + 2 * kv * d + 3 * d * h);
        assert_eq!(bytes.len(), 256 + norms + weights_n + 4 * weights_n / 64);
        // Final norm just before the embedding; the embedding's first group
        // dequantizes back to the float values.
        let emb = &w.tensors["tok_embeddings.weight"].1;
        let start = 256 + norms;
        let scale = f32_at(&bytes, start + v * d);
        let max = emb[..64].iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!((scale - max / 127.0).abs() < 1e-9);
        for i in 0..64 {
            let q = bytes[start + i] as i8;
            assert!((f32::from(q) * scale - emb[i]).abs() <= scale / 2.0 + 1e-7);
        }
        assert_eq!(f32_at(&bytes, start - 4), w.tensors["norm.weight"].1[63]);
        let e = q80_checkpoint(&w, &c, 48).unwrap_err().to_string();
        assert!(e.contains("group size 48"), "{e}");
    }

    #[test]
    fn the_tokenizer_lists_every_token_with_its_text() {
        let first_merge = kantor_engine::vocab::VOCAB_SIZE as u16;
        let merges = vec![[60u16, 61], [first_merge, 62]];
        let bpe = Bpe::from_merges(merges).unwrap();
        let bytes = tokenizer(&bpe).unwrap();
        let mut at = 4;
        let mut texts = Vec::new();
        for id in 0..bpe.vocab_size() {
            assert_eq!(f32_at(&bytes, at), -(id as f32));
            let len = i32_at(&bytes, at + 4) as usize;
            texts.push(String::from_utf8(bytes[at + 8..at + 8 + len].to_vec()).unwrap());
            at += 8 + len;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(texts[1], "Bos ");
        let first = texts[bpe.vocab_size() - 2].clone();
        assert_eq!(first, format!("{}{}", texts[60], texts[61]));
        assert_eq!(texts[bpe.vocab_size() - 1], format!("{first}{}", texts[62]));
        let longest = texts.iter().map(String::len).max().unwrap();
        assert_eq!(i32_at(&bytes, 0) as usize, longest);
    }

    #[test]
    fn missing_weights_and_peer_files_are_clear_errors() {
        let c = tiny();
        let mut w = weights(&c);
        w.tensors.remove("layers.1.feed_forward.w2.weight");
        let e = f32_checkpoint(&w, &c).unwrap_err().to_string();
        assert!(e.contains("layers.1.feed_forward.w2"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = Peers::build(dir.path()).err().unwrap().to_string();
        assert!(e.contains("no run.c"), "{e}");
        let e = Peers::build(&dir.path().join("absent"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no such directory"), "{e}");
    }

    #[test]
    fn timing_lines_parse() {
        let r = parse_timing("tokens 256 seconds 0.5 tokens_per_second 512.0 last_token 3\n");
        assert_eq!(r.unwrap(), 512.0);
        assert!(parse_timing("achieved tok/s: 12").is_err());
    }
}
