//! Hostile bytes → the engine's safetensors reader and model loader: errors
//! are fine, panics are bugs; a file that loads must run forward passes.
#![no_main]

use kantor_engine::model::Model;
use kantor_engine::safetensors::SafeTensors;
use kantor_engine::session::{Session, SessionOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = SafeTensors::parse(data) {
        let _ = file.metadata("format");
        let _ = file.tensor("norm.weight");
    }
    if let Ok(model) = Model::from_bytes(data) {
        let options = SessionOptions::for_model(&model);
        let needed = Session::memory_required(&model, options);
        if needed > 64 << 20 {
            return;
        }
        let mut memory = vec![0u8; needed];
        if let Ok(mut session) = Session::new(&model, options, &mut memory) {
            for t in [1u16, 3, 0, u16::MAX] {
                let _ = session.forward(t);
            }
        }
    }
});
