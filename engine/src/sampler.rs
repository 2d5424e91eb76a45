//! Choosing the next token: temperature → top-k → top-p (nucleus), with a
//! deterministic generator seeded by the caller.
//!
//! Masked tokens have logit −∞ (see [`crate::grammar`]); NaN counts as
//! masked. If every token is masked the sampler falls back to a uniform
//! choice among the first `k` candidates in id order (or the whole
//! vocabulary when top-k is off). Candidates are ranked by logit with ties
//! broken by id, a total order, so the choice is the same on every platform
//! and with every sorting algorithm. Only the tokens the grammar left in
//! are ranked (a selection, then a sort of the best k).

/// A small, fast, deterministic random generator (xorshift64*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator from a seed (any value; 0 is remapped).
    pub const fn new(seed: u64) -> Self {
        Rng {
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    /// A float in `[0, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / 16_777_216.0
    }
}

/// Sampling settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; 0 (or less) picks the most likely token.
    pub temperature: f32,
    /// Keep only the `k` most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches `top_p` (1 = off).
    pub top_p: f32,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.8,
            top_k: 50,
            top_p: 0.95,
        }
    }
}

/// A sampler: settings plus the random generator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampler {
    /// Settings.
    pub config: SamplerConfig,
    /// Random state.
    pub rng: Rng,
}

impl Sampler {
    /// A sampler with a seed.
    pub fn new(config: SamplerConfig, seed: u64) -> Self {
        Sampler {
            config,
            rng: Rng::new(seed),
        }
    }

    /// Choose a token from `logits` (overwritten). `order` is scratch with
    /// room for one index per logit.
    pub fn sample(&mut self, logits: &mut [f32], order: &mut [u16]) -> u16 {
        let n = logits.len().min(order.len()).min(usize::from(u16::MAX));
        let logits = &mut logits[..n];
        let order = &mut order[..n];
        for v in logits.iter_mut() {
            if v.is_nan() {
                *v = f32::NEG_INFINITY;
            } else if *v == f32::INFINITY {
                *v = f32::MAX;
            }
        }
        let k = match self.config.top_k {
            0 => n,
            k => k.min(n),
        };
        if k == 0 {
            return 0;
        }
        let Some(candidates) = top_k(logits, order, k) else {
            // Everything is masked: uniform over the first k ids.
            return (self.rng.next_u32() % k as u32) as u16;
        };
        let t = self.config.temperature;
        if t.is_nan() || t <= 0.0 {
            return candidates[0]; // greedy
        }
        self.draw(logits, candidates, t)
    }

    /// Draw from the nucleus of `candidates` (in rank order) at temperature
    /// `t`, reusing `logits` to hold their probabilities.
    fn draw(&mut self, logits: &mut [f32], candidates: &[u16], t: f32) -> u16 {
        let best = logits[usize::from(candidates[0])];
        // Bounded so that 1/t is finite and positive (t = ∞ acts as 10⁶).
        let inv_t = 1.0 / t.clamp(1e-6, 1e6);
        let mut total = 0.0f32;
        for &c in candidates.iter() {
            let p = crate::kernels::exp_nonpositive((logits[usize::from(c)] - best) * inv_t);
            // A masked candidate (−∞) has probability 0, never NaN.
            let p = if p > 0.0 { p } else { 0.0 };
            logits[usize::from(c)] = p;
            total += p;
        }
        // Nucleus: the shortest prefix reaching top_p of the mass.
        let target = self.config.top_p.clamp(0.0, 1.0) * total;
        let mut kept = candidates.len();
        let mut mass = 0.0f32;
        for (i, &c) in candidates.iter().enumerate() {
            mass += logits[usize::from(c)];
            if mass >= target {
                kept = i + 1;
                break;
            }
        }
        let nucleus = &candidates[..kept];
        let nucleus_mass: f32 = nucleus.iter().fold(0.0, |s, &c| s + logits[usize::from(c)]);
        let r = self.rng.next_f32() * nucleus_mass;
        let mut acc = 0.0f32;
        for &c in nucleus {
            acc += logits[usize::from(c)];
            if r < acc {
                return c;
            }
        }
        // Only reachable through rounding: the most likely candidate.
        candidates[0]
    }
}

/// The `k` best tokens of `logits` in rank order (ties by id), held in
/// `order`; `None` when every token is masked. Only tokens that can be
/// chosen are ranked: a masked token (−∞) has probability 0 wherever it
/// would rank, so leaving it out changes no choice, and a grammar mask
/// leaves few tokens in.
fn top_k<'o>(logits: &[f32], order: &'o mut [u16], k: usize) -> Option<&'o [u16]> {
    let by_rank = |a: &u16, b: &u16| {
        let (la, lb) = (logits[usize::from(*a)], logits[usize::from(*b)]);
        lb.total_cmp(&la).then(a.cmp(b))
    };
    let mut live = 0;
    for (id, &l) in logits.iter().enumerate() {
        if l > f32::NEG_INFINITY {
            order[live] = id as u16;
            live += 1;
        }
    }
    if live == 0 {
        return None;
    }
    let live = &mut order[..live];
    Some(if k < live.len() {
        live.select_nth_unstable_by(k - 1, by_rank);
        let top = &mut live[..k];
        top.sort_unstable_by(by_rank);
        top
    } else {
        live.sort_unstable_by(by_rank);
        live
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_many(config: SamplerConfig, logits: &[f32], n: usize) -> [usize; 8] {
        let mut s = Sampler::new(config, 42);
        let mut counts = [0usize; 8];
        let mut order = [0u16; 8];
        for _ in 0..n {
            let mut l = [0.0f32; 8];
            l[..logits.len()].copy_from_slice(logits);
            counts[usize::from(s.sample(&mut l[..logits.len()], &mut order))] += 1;
        }
        counts
    }

    #[test]
    fn greedy_picks_the_best_and_breaks_ties_by_id() {
        let config = SamplerConfig {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
        };
        assert_eq!(sample_many(config, &[0.1, 3.0, 3.0, -1.0], 5)[1], 5);
    }

    #[test]
    fn top_k_and_top_p_cut_the_tail() {
        let logits = [4.0, 3.0, 2.0, 1.0, 0.0];
        let top2 = SamplerConfig {
            temperature: 1.0,
            top_k: 2,
            top_p: 1.0,
        };
        let c = sample_many(top2, &logits, 2000);
        assert_eq!(c[2] + c[3] + c[4], 0);
        assert!(c[0] > c[1] && c[1] > 300, "{c:?}");
        // p(0) = 0.64 of the total: top_p = 0.5 keeps only token 0.
        let nucleus = SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.5,
        };
        assert_eq!(sample_many(nucleus, &logits, 500)[0], 500);
        // With everything on, the empirical frequencies follow the softmax.
        let all = SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        };
        let c = sample_many(all, &logits, 20_000);
        let p0 = c[0] as f32 / 20_000.0;
        assert!((p0 - 0.636).abs() < 0.02, "{p0}");
    }

    #[test]
    fn masked_and_nan_tokens_are_never_chosen_unless_all_are() {
        let ninf = f32::NEG_INFINITY;
        let c = sample_many(SamplerConfig::default(), &[ninf, f32::NAN, 0.0, ninf], 300);
        assert_eq!(c[2], 300);
        // All masked: uniform over the first k = 2 ids.
        let config = SamplerConfig {
            temperature: 1.0,
            top_k: 2,
            top_p: 0.9,
        };
        let c = sample_many(config, &[ninf; 4], 1000);
        assert_eq!(c[2] + c[3], 0);
        assert!(c[0] > 400 && c[1] > 400, "{c:?}");
        // Top-k off: the whole vocabulary.
        let config = SamplerConfig { top_k: 0, ..config };
        let c = sample_many(config, &[ninf; 4], 1000);
        assert!(c[..4].iter().all(|&n| n > 180), "{c:?}");
    }

    #[test]
    fn same_seed_same_choices() {
        let logits = [0.5, 0.4, 0.3, 0.2, 0.1, 0.0, -0.1, -0.2];
        let a = sample_many(SamplerConfig::default(), &logits, 100);
        let b = sample_many(SamplerConfig::default(), &logits, 100);
        assert_eq!(a, b);
        let mut r = Rng::new(7);
        let first: [u32; 3] = [r.next_u32(), r.next_u32(), r.next_u32()];
        let mut r = Rng::new(7);
        assert_eq!(first, [r.next_u32(), r.next_u32(), r.next_u32()]);
    }
}
