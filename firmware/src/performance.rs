// What the board plays, as constants. `build.rs` includes this file too (to
// compute the tokens the on-target test expects), so it uses full paths only.

/// Seed of the sampler: same seed, same music, on the board and on the host.
pub const SEED: u64 = 2026;

/// Sampling: temperature, top-k, top-p — the best mean overlap with the
/// validation chorales of 24 settings, with the model's piece plan
/// (`tools/sampling-sweep.sh`, README): temperature 0.9, top-k off, top-p 0.9.
pub const SAMPLER: kantor_engine::sampler::SamplerConfig = kantor_engine::sampler::SamplerConfig {
    temperature: 0.9,
    top_k: 0,
    top_p: 0.9,
};

/// Attention-sink positions the sliding KV cache keeps.
pub const SINKS: usize = 4;
