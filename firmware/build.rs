//! Build script: put the memory map (`memory/board.x`, or for the QEMU image
//! `memory/qemu.x`) where the linker finds it as `memory.x`, and point
//! `KANTOR_MODEL` at the model to link into flash (default: the shipped
//! student, `model/student.safetensors`; override with the KANTOR_MODEL
//! environment variable, e.g. a model `host-trainer train` just exported).
//! An int8 model with one scale per row is linked with its layer matrices
//! reordered for the DSP kernel (`Int8Layout::Interleaved4`: the same
//! numbers, four rows' words side by side); the expectations of the
//! on-target test come from the file as it was, so the board checks the
//! reordering too.

use std::path::{Path, PathBuf};

use kantor_engine::generator::Generator;
use kantor_engine::model::Model;
use kantor_engine::sampler::Sampler;
use kantor_engine::session::{Session, SessionOptions};

#[allow(dead_code)]
mod performance {
    include!("src/performance.rs");
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // The board's memory map, or the QEMU image's (its CCM lies elsewhere),
    // each with the `.ccm` section, as the `memory.x` cortex-m-rt's linker
    // script includes. (No memory.x
    // in the package root: the linker would find that one first.)
    let memory = if std::env::var_os("CARGO_FEATURE_QEMU").is_some() {
        "memory/qemu.x"
    } else {
        "memory/board.x"
    };
    let map = std::fs::read_to_string(manifest.join(memory)).unwrap();
    let ccm_section = std::fs::read_to_string(manifest.join("memory/ccm-section.x")).unwrap();
    std::fs::write(out.join("memory.x"), map + "\n" + &ccm_section).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory");

    let model = match std::env::var("KANTOR_MODEL") {
        Ok(path) => {
            std::fs::canonicalize(&path).unwrap_or_else(|e| panic!("KANTOR_MODEL={path}: {e}"))
        }
        Err(_) => manifest.join("model/student.safetensors"),
    };
    assert!(
        model.exists(),
        "model file {} does not exist",
        model.display()
    );
    let linked = board_model(&model, &out.join("board-model.safetensors"));
    println!("cargo:rustc-env=KANTOR_MODEL={}", linked.display());
    println!("cargo:rerun-if-env-changed=KANTOR_MODEL");
    println!("cargo:rerun-if-changed={}", model.display());
    println!("cargo:rerun-if-changed=src/performance.rs");
    let bytes = std::fs::read(&model).unwrap();
    let model = Model::from_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let options = SessionOptions {
        sinks: performance::SINKS,
        ..SessionOptions::for_model(&model)
    };
    expectations(&model, options, &out.join("expected.rs"));
    session_layout(&model, options, &out.join("session_layout.rs"));
}

/// The CCM's size: the part of the session SRAM has no room for goes there.
const CCM_BYTES: usize = 64 * 1024;

/// How the linked model's session splits between SRAM and the CCM: as much
/// as possible in the CCM (nothing else lives there), the rest in SRAM,
/// found by carving the session here with the engine's own first fit.
fn session_layout(model: &Model<'_>, options: SessionOptions, out: &Path) {
    let needed = Session::memory_required(model, options);
    // Room for each region's alignment padding on either side (host or board).
    const SLACK: usize = 64;
    let layout = (needed.saturating_sub(CCM_BYTES)..=needed)
        .step_by(256)
        .find_map(|sram| {
            let (mut a, mut b) = (vec![0u8; sram], vec![0u8; CCM_BYTES]);
            let mut regions = [&mut a[..], &mut b[..]];
            Session::new_in(model, options, &mut regions).ok()?;
            let used = |given: usize, left: usize| (given - left + SLACK).next_multiple_of(8);
            Some((
                used(sram, regions[0].len()),
                used(CCM_BYTES, regions[1].len()).min(CCM_BYTES),
            ))
        });
    let Some((sram, ccm)) = layout else {
        panic!("the model's session ({needed} bytes) fits in no split of SRAM and the CCM");
    };
    let text = format!(
        "/// Of the session's memory, the bytes in SRAM (carved first).\n\
         pub const SESSION_SRAM: usize = {sram};\n\
         /// Of the session's memory, the bytes in the {CCM_BYTES}-byte CCM.\n\
         pub const SESSION_CCM: usize = {ccm};\n"
    );
    std::fs::write(out, text).unwrap();
}

/// The model file the board links: `model` itself, or (int8 with one scale
/// per row) a copy at `out` whose layer matrices are in the DSP kernel's
/// interleaved order, marked by the metadata `int8_layout` = `rows4`.
fn board_model(model: &Path, out: &Path) -> PathBuf {
    use safetensors::tensor::{Dtype, SafeTensors, TensorView};
    let bytes = std::fs::read(model).unwrap();
    let (Ok((_, header)), Ok(file)) = (
        SafeTensors::read_metadata(&bytes),
        SafeTensors::deserialize(&bytes),
    ) else {
        return model.to_path_buf(); // the engine's loader says what is wrong
    };
    let mut metadata = header.metadata().clone().unwrap_or_default();
    let per_row = metadata.get("weights").map(String::as_str) == Some("int8")
        && metadata.get("group_size").map(String::as_str) == Some("row")
        && !metadata.contains_key("int8_layout");
    if !per_row {
        return model.to_path_buf();
    }
    let mut data: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in file.tensors() {
        let shape = view.shape().to_vec();
        let mut bytes = view.data().to_vec();
        if name.starts_with("layers.") && view.dtype() == Dtype::I8 {
            let (rows, cols) = (shape[0], shape[1]);
            assert!(
                rows % 4 == 0 && cols % 8 == 0,
                "{name}: {rows}x{cols} does not fit the interleaved layout"
            );
            let mut mixed = vec![0u8; bytes.len()];
            assert!(kantor_engine::weights::interleave_rows4(
                &bytes, cols, &mut mixed
            ));
            bytes = mixed;
        }
        data.push((name, view.dtype(), shape, bytes));
    }
    metadata.insert("int8_layout".into(), "rows4".into());
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    safetensors::tensor::serialize_to_file(views, Some(metadata), out).unwrap();
    out.to_path_buf()
}

/// What the on-target test checks the board against, computed here on the
/// host with the same engine: the first generated tokens, the bits of the
/// first logits, and bits of `exp`.
fn expectations(model: &Model<'_>, options: SessionOptions, out: &Path) {
    let mut memory = vec![0u8; Session::memory_required(model, options)];
    let mut session = Session::new(model, options, &mut memory).unwrap();
    let logits = session.forward(kantor_engine::vocab::BOS_ID).unwrap();
    let checksum = logits
        .iter()
        .fold(0u32, |s, v| s.rotate_left(5) ^ v.to_bits());
    session.reset();
    let mut generator: Generator<'_, '_, 64> = Generator::new(
        session,
        Sampler::new(performance::SAMPLER, performance::SEED),
        true,
    )
    .with_plan(model.plan, performance::SEED);
    let tokens: Vec<u16> = (0..32).map(|_| generator.step().unwrap()).collect();
    let exp: Vec<(u32, u32)> = [-50.5f32, -3.25, -0.001, 0.0, 0.3333, 1.0, 7.77, 80.0]
        .iter()
        .map(|&x| (x.to_bits(), kantor_engine::kernels::exp(x).to_bits()))
        .collect();
    let text = format!(
        "/// First 32 tokens the board generates (after `Bos`).\n\
         pub const EXPECTED_TOKENS: [u16; 32] = {tokens:?};\n\
         /// Checksum of the bits of the logits after `Bos`.\n\
         pub const EXPECTED_LOGITS_CHECKSUM: u32 = {checksum};\n\
         /// (input bits, `exp` bits).\n\
         pub const EXPECTED_EXP: [(u32, u32); 8] = {exp:?};\n"
    );
    std::fs::write(out, text).unwrap();
}
