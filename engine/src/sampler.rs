//! Choosing the next token: temperature → top-k → top-p (nucleus), with a
//! deterministic generator seeded by the caller.
//!
//! Masked tokens have logit −∞ (see [`crate::grammar`]); NaN counts as
//! masked. If every token is masked the sampler falls back to a uniform
//! choice among the first `k` candidates in id order (or the whole
//! vocabulary when top-k is off). Candidates are ranked by logit with ties
//! broken by id, a total order, so the choice is the same on every platform
//! and with every sorting algorithm. Only the tokens that can still be
//! chosen are ranked: those the grammar left in (a selection of the best k),
//! and of them only those that can be in the top-p nucleus.

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
        let k = match self.config.top_k {
            0 => n,
            k => k.min(n),
        };
        if k == 0 {
            return 0;
        }
        let live = gather_live(logits, order);
        if live == 0 {
            // Everything is masked: uniform over the first k ids.
            return (self.rng.next_u32() % k as u32) as u16;
        }
        let live = &mut order[..live];
        let t = self.config.temperature;
        if t.is_nan() || t <= 0.0 {
            return best_of(logits, live); // greedy
        }
        // Bounded so that 1/t is finite and positive (t = ∞ acts as 10⁶).
        let inv_t = 1.0 / t.clamp(1e-6, 1e6);
        let top_p = if self.config.top_p.is_nan() {
            1.0
        } else {
            self.config.top_p.clamp(0.0, 1.0)
        };
        let (candidates, ranked) = if k < live.len() {
            live.select_nth_unstable_by(k - 1, |a, b| by_rank(logits, *a, *b));
            let top = &mut live[..k];
            top.sort_unstable_by(|a, b| by_rank(logits, *a, *b));
            (top, k)
        } else {
            let ranked = rank_nucleus(logits, live, inv_t, top_p);
            (live, ranked)
        };
        self.draw(logits, candidates, ranked, inv_t, top_p)
    }

    /// Draw from the nucleus of `candidates` at temperature 1 / `inv_t`,
    /// reusing `logits` to hold their probabilities. The first `ranked`
    /// candidates are in rank order, best first, and hold the nucleus (see
    /// [`rank_nucleus`]); the rest follow in no particular order.
    fn draw(
        &mut self,
        logits: &mut [f32],
        candidates: &[u16],
        ranked: usize,
        inv_t: f32,
        top_p: f32,
    ) -> u16 {
        let best = logits[usize::from(candidates[0])];
        let mut total = 0.0f32;
        for &c in candidates.iter() {
            let p = crate::kernels::exp_nonpositive((logits[usize::from(c)] - best) * inv_t);
            // A masked candidate (−∞) has probability 0, never NaN.
            let p = if p > 0.0 { p } else { 0.0 };
            logits[usize::from(c)] = p;
            total += p;
        }
        // Nucleus: the shortest prefix reaching top_p of the mass (all of
        // the candidates if the ranked ones fall short by rounding).
        let target = top_p * total;
        let mut kept = candidates.len();
        let mut mass = 0.0f32;
        for (i, &c) in candidates.iter().take(ranked).enumerate() {
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

/// Rank order: the higher logit first, ties by the lower id (a total order).
fn by_rank(logits: &[f32], a: u16, b: u16) -> core::cmp::Ordering {
    let (la, lb) = (logits[usize::from(a)], logits[usize::from(b)]);
    lb.total_cmp(&la).then(a.cmp(&b))
}

/// Put the ids of the tokens that can be chosen (logit above −∞; NaN is
/// not) into `order`, in id order, and return how many; a live +∞ becomes
/// the largest finite logit. A masked token has probability 0 wherever it
/// would rank, so leaving it out changes no choice, and a grammar mask
/// leaves few tokens in. Only live logits are read after this, so one pass
/// over the vocabulary is all sampling spends on the masked ones.
fn gather_live(logits: &mut [f32], order: &mut [u16]) -> usize {
    let mut live = 0;
    for (id, l) in logits.iter_mut().enumerate() {
        if *l > f32::NEG_INFINITY {
            if *l == f32::INFINITY {
                *l = f32::MAX;
            }
            order[live] = id as u16;
            live += 1;
        }
    }
    live
}

/// The best of `ids` (not empty) by [`by_rank`].
fn best_of(logits: &[f32], ids: &[u16]) -> u16 {
    ids.iter().copied().fold(ids[0], |best, id| {
        if by_rank(logits, id, best).is_lt() {
            id
        } else {
            best
        }
    })
}

/// Rank the `candidates` (in id order) that can be in the top-`top_p`
/// nucleus, best first, at the front of the slice, and return how many they
/// are; the rest stay behind them, in an order fixed by their ids alone.
/// Ranking only these is what keeps sampling cheap:
/// with top-k off a grammar step leaves hundreds of tokens, of which a few
/// dozen carry the mass.
///
/// Which ones can: with `n` candidates, a token whose weight (relative to
/// the best's 1) is below `(1 − top_p) / (n − 1)` cannot be needed, because
/// all such tokens together hold less than `1 − top_p` of a total that is at
/// least 1. The cut is taken a factor e lower still, a margin for the
/// rounding of the exponential; and should the ranked ones fall short by
/// rounding all the same, [`Sampler::draw`] keeps every candidate. So the
/// choice is the one a full sort would give. Top-p off (1) ranks nothing:
/// the nucleus is every candidate, in any order.
fn rank_nucleus(logits: &[f32], candidates: &mut [u16], inv_t: f32, top_p: f32) -> usize {
    let n = candidates.len();
    if n <= 1 || top_p >= 1.0 {
        // The first candidate must be the best (draw measures from it).
        if let Some(i) = (0..n).reduce(|b, i| {
            if by_rank(logits, candidates[i], candidates[b]).is_lt() {
                i
            } else {
                b
            }
        }) {
            candidates.swap(0, i);
        }
        return 0;
    }
    let best = logits[usize::from(best_of(logits, candidates))];
    let floor = libm::logf((1.0 - top_p) / (n - 1) as f32) - 1.0;
    let mut ranked = 0;
    for i in 0..n {
        if (logits[usize::from(candidates[i])] - best) * inv_t >= floor {
            candidates.swap(ranked, i);
            ranked += 1;
        }
    }
    candidates[..ranked].sort_unstable_by(|a, b| by_rank(logits, *a, *b));
    ranked
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

    /// What ranking every candidate gives: a full sort, then the nucleus.
    fn fully_sorted_choice(config: SamplerConfig, logits: &[f32], rng: &mut Rng) -> u16 {
        let mut ids: heapless::Vec<u16, 300> = (0..logits.len() as u16)
            .filter(|&i| logits[usize::from(i)] > f32::NEG_INFINITY)
            .collect();
        ids.sort_unstable_by(|a, b| by_rank(logits, *a, *b));
        ids.truncate(if config.top_k == 0 {
            ids.len()
        } else {
            config.top_k
        });
        let best = logits[usize::from(ids[0])];
        let w: heapless::Vec<f32, 300> = ids
            .iter()
            .map(|&c| {
                crate::kernels::exp_nonpositive(
                    (logits[usize::from(c)] - best) / config.temperature,
                )
            })
            .collect();
        let total: f32 = w.iter().sum();
        let (mut mass, mut kept) = (0.0f32, ids.len());
        for (i, p) in w.iter().enumerate() {
            mass += p;
            if mass >= config.top_p * total {
                kept = i + 1;
                break;
            }
        }
        let r = rng.next_f32() * w[..kept].iter().sum::<f32>();
        let mut acc = 0.0;
        for (i, p) in w[..kept].iter().enumerate() {
            acc += p;
            if r < acc {
                return ids[i];
            }
        }
        ids[0]
    }

    #[test]
    fn ranking_only_the_possible_nucleus_chooses_as_a_full_sort() {
        // Random logits over 300 tokens, a third masked, peaked or flat.
        let mut gen = Rng::new(99);
        let (mut same, mut draws) = (0usize, 0usize);
        for case in 0..600 {
            let spread = [0.5f32, 3.0, 12.0][case % 3];
            let logits: [f32; 300] = core::array::from_fn(|_| {
                if gen.next_u32().is_multiple_of(3) {
                    f32::NEG_INFINITY
                } else {
                    (gen.next_f32() - 0.5) * spread
                }
            });
            let config = SamplerConfig {
                temperature: [0.7, 0.9, 1.3][case % 3],
                top_k: 0,
                top_p: [0.5, 0.9, 0.95, 0.99][case % 4],
            };
            let mut sampler = Sampler::new(config, case as u64);
            let mut reference = Rng::new(case as u64);
            for _ in 0..5 {
                let mut l = logits;
                let mut order = [0u16; 300];
                let chosen = sampler.sample(&mut l, &mut order);
                draws += 1;
                same += usize::from(chosen == fully_sorted_choice(config, &logits, &mut reference));
            }
        }
        // The totals are summed in another order, so a choice could round
        // apart where a random number falls on a boundary; none of these do.
        assert_eq!(same, draws);
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
