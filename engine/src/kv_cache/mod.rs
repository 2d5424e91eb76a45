//! The static key/value cache, and attention over it.
//!
//! The cache lives in caller-provided slices (see [`crate::session`]) with
//! room for `capacity` positions (the model's context) per layer, stored as
//! f32, f16 ([`float`]) or int8 ([`int8`]: one f32 scale per position and
//! head, values stored transposed so that the weighted sum over positions is
//! an integer dot product). Each precision is one [`KvStore`] variant whose
//! type holds all of that precision's code: writing a position, scoring a
//! query, weighing the values and sliding. [`KvCache`] is what they share:
//! the length, the grouping of query heads and the slide.
//!
//! Generation never stops at the context length. When the cache is full, the
//! first `sinks` positions (attention sinks: the start of the piece) stay, the
//! oldest half of the rest is dropped and the remaining positions move down:
//! the model always sees distances it was trained on, and a player can run
//! forever.
//!
//! Moved keys are not rotated back. RoPE makes a score depend only on the
//! distance between query and key, so the cache counts how far it has slid
//! ([`KvCache::slid`]) and the session rotates each new query and key to its
//! position *plus* that count; only the sinks, which stay put, meet the query
//! rotated back by the slide ([`KvCache::attend`]). A slide is a memory move,
//! and a key is quantized once, when it is written.

pub mod float;
pub mod int8;

pub use float::{FloatKv, FloatValue};
pub use int8::Int8Kv;

use crate::kernels::{rope_rotate_back, Isa};

/// How cache entries are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvPrecision {
    /// 32-bit floats (the reference; matches the trainer).
    F32,
    /// Half floats.
    F16,
    /// int8 with a scale per position and head (a quarter of f32's memory).
    Int8,
}

impl KvPrecision {
    /// Bytes per stored value.
    pub const fn value_bytes(self) -> usize {
        match self {
            KvPrecision::F32 => 4,
            KvPrecision::F16 => 2,
            KvPrecision::Int8 => 1,
        }
    }
}

/// The cache's storage, by precision.
#[derive(Debug)]
pub enum KvStore<'a> {
    /// f32 keys and values.
    F32(FloatKv<'a, f32>),
    /// f16 keys and values (as bits).
    F16(FloatKv<'a, u16>),
    /// int8 keys and transposed values with scales.
    Int8(Int8Kv<'a>),
}

impl KvStore<'_> {
    fn get(&self) -> &dyn Store {
        match self {
            KvStore::F32(s) => s,
            KvStore::F16(s) => s,
            KvStore::Int8(s) => s,
        }
    }

    fn get_mut(&mut self) -> &mut dyn Store {
        match self {
            KvStore::F32(s) => s,
            KvStore::F16(s) => s,
            KvStore::Int8(s) => s,
        }
    }
}

/// What the cache asks of its storage; each precision answers in its own
/// module. Slices out of range are skipped, never indexed.
trait Store {
    /// Store the key and value rows (all heads) of position `slot` of
    /// `layer`; `scratch` holds one head of int8 values.
    fn write(
        &mut self,
        isa: Isa,
        layer: KvLayer,
        slot: usize,
        key: &[f32],
        value: &[f32],
        scratch: &mut [i8],
    );

    /// Scores of each query head of `q` (one or two) against the keys of
    /// `head` at positions `from..from + scores[i].len()`, scaled by
    /// 1/√head_dim, into `scores[i]`.
    fn scores(
        &self,
        isa: Isa,
        head: KvHead,
        q: &[f32],
        from: usize,
        scores: [&mut [f32]; 2],
        scratch: KeyScratch<'_>,
    );

    /// Softmax of each head's first `positions` scores in `scratch.scores`
    /// (a head every `capacity`) and the weighted sum of `head`'s values at
    /// those positions, into `out` (one or two heads).
    fn weigh(
        &self,
        isa: Isa,
        head: KvHead,
        positions: usize,
        out: &mut [f32],
        scratch: &mut AttentionScratch<'_>,
    );

    /// Move `keep` positions of `layer` from `sinks + drop` down to `sinks`.
    fn slide(&mut self, layer: KvLayer, drop: usize, keep: usize);
}

/// Shape of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvShape {
    /// Layers.
    pub layers: usize,
    /// Positions per layer.
    pub capacity: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Width of a head.
    pub head_dim: usize,
    /// Leading positions that are never dropped.
    pub sinks: usize,
}

impl KvShape {
    /// Values per (layer, position): all heads.
    pub fn row(&self) -> usize {
        self.kv_heads * self.head_dim
    }
    /// Values of keys (or of values) in the whole cache.
    pub fn values(&self) -> usize {
        self.layers * self.capacity * self.row()
    }
    /// Scales of keys (or of values) in the whole cache (int8 only).
    pub fn scales(&self) -> usize {
        self.layers * self.capacity * self.kv_heads
    }
    /// Positions dropped when the cache is full.
    pub fn evicted(&self) -> usize {
        (self.capacity.saturating_sub(self.sinks) / 2).max(1)
    }
    /// Positions per row of the transposed int8 values: the capacity rounded
    /// up to a multiple of 16, so that the value dot products run over whole
    /// blocks (the extra positions get weight 0).
    pub fn value_stride(&self) -> usize {
        self.capacity.div_ceil(16) * 16
    }

    /// int8 values in the whole cache (transposed layout).
    pub fn transposed_values(&self) -> usize {
        self.layers * self.row() * self.value_stride()
    }
}

/// One layer of the cache: where its rows lie.
#[derive(Clone, Copy, Debug)]
struct KvLayer {
    shape: KvShape,
    layer: usize,
}

impl KvLayer {
    /// Start of position `slot`'s row (all heads) of keys, or of float values.
    fn row(&self, slot: usize) -> usize {
        (self.layer * self.shape.capacity + slot) * self.shape.row()
    }

    /// KV head `kvh` of this layer.
    fn head(&self, kvh: usize) -> KvHead {
        KvHead {
            shape: self.shape,
            layer: self.layer,
            kvh,
        }
    }
}

/// One KV head of one layer: where its keys, values and scales lie.
#[derive(Clone, Copy, Debug)]
struct KvHead {
    shape: KvShape,
    layer: usize,
    kvh: usize,
}

impl KvHead {
    /// Start of the head's key (or float value) at position `slot`.
    fn key(&self, slot: usize) -> usize {
        let layer = KvLayer {
            shape: self.shape,
            layer: self.layer,
        };
        layer.row(slot) + self.kvh * self.shape.head_dim
    }

    /// Index of the scale at position `slot`: the scales of one head lie
    /// side by side, position after position.
    fn scale(&self, slot: usize) -> usize {
        (self.layer * self.shape.kv_heads + self.kvh) * self.shape.capacity + slot
    }

    /// Start of the transposed int8 value row of the head's dimension `d`.
    fn value_row(&self, d: usize) -> usize {
        let dim = self.kvh * self.shape.head_dim + d;
        (self.layer * self.shape.row() + dim) * self.shape.value_stride()
    }
}

/// Scratch buffers attention needs.
///
/// Attention runs the query heads of a KV head two at a time (each key and
/// value row is read once for both), so the per-head buffers hold two heads,
/// one after the other ([`AttentionScratch::sizes`]).
#[derive(Debug)]
pub struct AttentionScratch<'s> {
    /// One score per cached position, two heads.
    pub scores: &'s mut [f32],
    /// Two query (or value) heads quantized to int8 (int8 caches).
    pub query: &'s mut [i8],
    /// The same, packed for the DSP path.
    pub query_packed: &'s mut [u32],
    /// A query head rotated back by the slide (for the sinks).
    pub head: &'s mut [f32],
    /// Attention weights as 16-bit integers, one per position of a value row
    /// ([`KvShape::value_stride`]; int8 caches), two heads.
    pub weights: &'s mut [i16],
    /// The same, packed for the DSP path.
    pub weights_packed: &'s mut [u32],
}

impl AttentionScratch<'_> {
    /// Lengths of the buffers for `shape`, in field order.
    pub fn sizes(shape: &KvShape) -> [usize; 6] {
        let (hd, vs) = (shape.head_dim, shape.value_stride());
        [2 * shape.capacity, 2 * hd, hd, hd, 2 * vs, vs]
    }
}

/// The buffers an int8 query head is quantized into.
struct KeyScratch<'s> {
    query: &'s mut [i8],
    packed: &'s mut [u32],
}

/// The key/value cache. See the [module documentation](self).
#[derive(Debug)]
pub struct KvCache<'a> {
    store: KvStore<'a>,
    shape: KvShape,
    len: usize,
    slid: u64,
}

/// Cosines and sines (one per RoPE frequency) of the rotation by
/// [`KvCache::slid`] positions: what turns a query at its position in the
/// window into the one the sinks must meet.
#[derive(Clone, Copy, Debug)]
pub struct SlideRotation<'r> {
    /// Cosines.
    pub cos: &'r [f32],
    /// Sines.
    pub sin: &'r [f32],
}

impl<'a> KvCache<'a> {
    /// A cache over `store`, whose slices must have the sizes `shape` implies
    /// (checked by the session that carves them).
    pub fn new(store: KvStore<'a>, shape: KvShape) -> Self {
        KvCache {
            store,
            shape,
            len: 0,
            slid: 0,
        }
    }

    /// Positions dropped by every slide since the cache was cleared: the
    /// RoPE positions of new queries and keys run this far ahead of their
    /// place in the window.
    pub fn slid(&self) -> u64 {
        self.slid
    }

    /// Cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if the next position needs an eviction first.
    pub fn is_full(&self) -> bool {
        self.len >= self.shape.capacity
    }

    /// The shape.
    pub fn shape(&self) -> KvShape {
        self.shape
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.len = 0;
        self.slid = 0;
    }

    fn layer(&self, layer: usize) -> KvLayer {
        KvLayer {
            shape: self.shape,
            layer,
        }
    }

    /// Store the key and value rows (all heads) of position `len` in `layer`.
    /// Does nothing when the cache is full (evict first).
    pub fn write(
        &mut self,
        isa: Isa,
        layer: usize,
        key: &[f32],
        value: &[f32],
        scratch: &mut AttentionScratch<'_>,
    ) {
        if self.is_full() || layer >= self.shape.layers {
            return;
        }
        let (at, slot) = (self.layer(layer), self.len);
        let store = self.store.get_mut();
        store.write(isa, at, slot, key, value, scratch.query);
    }

    /// Count the position just written (after every layer wrote it).
    pub fn advance(&mut self) {
        self.len = (self.len + 1).min(self.shape.capacity);
    }

    /// Attention of all query heads `query` (`n_heads * head_dim`) over the
    /// first `len + 1` positions of `layer` (including the one just
    /// written); the result goes to `out` (same width as `query`). Once the
    /// cache has slid, `slide` is the rotation by [`KvCache::slid`]: the
    /// sinks' scores use each query head rotated back by it.
    ///
    /// Float caches: softmax, then the probability-weighted sum of values in
    /// f32. Int8 caches run on integers (see [`int8`]).
    pub fn attend(
        &self,
        isa: Isa,
        layer: usize,
        query: &[f32],
        out: &mut [f32],
        scratch: &mut AttentionScratch<'_>,
        slide: Option<SlideRotation<'_>>,
    ) {
        let hd = self.shape.head_dim.max(1);
        let slide = slide.filter(|_| self.slid > 0);
        let heads = query.len() / hd;
        let group = (heads / self.shape.kv_heads.max(1)).max(1);
        let mut h = 0;
        while h < heads {
            let kvh = h / group;
            // Two query heads at a time where they share the KV head.
            let n = if h + 1 < heads && (h + 1) / group == kvh {
                2
            } else {
                1
            };
            let range = h * hd..(h + n) * hd;
            if let (Some(q), Some(o)) = (query.get(range.clone()), out.get_mut(range)) {
                let head = self.layer(layer).head(kvh);
                self.attend_heads(isa, head, q, o, scratch, slide);
            }
            h += n;
        }
    }

    /// Attention of one or two query heads (`q` and `out`: that many heads)
    /// over KV head `head`: the window's scores for both at once, then the
    /// sinks' with each query rotated back by the slide.
    fn attend_heads(
        &self,
        isa: Isa,
        head: KvHead,
        q: &[f32],
        out: &mut [f32],
        scratch: &mut AttentionScratch<'_>,
        slide: Option<SlideRotation<'_>>,
    ) {
        let (hd, cap) = (self.shape.head_dim, self.shape.capacity);
        let positions = (self.len + 1).min(cap);
        let sinks = slide.map_or(0, |_| self.shape.sinks.min(positions));
        let store = self.store.get();
        let AttentionScratch {
            scores,
            query,
            query_packed,
            head: back,
            ..
        } = scratch;
        let (sa, sb) = scores.split_at_mut(cap.min(scores.len()));
        let window = [sa, sb].map(|s| s.get_mut(sinks..positions).unwrap_or(&mut []));
        let keys = KeyScratch {
            query,
            packed: query_packed,
        };
        store.scores(isa, head, q, sinks, window, keys);
        if let Some(slide) = slide {
            for (i, qi) in q.chunks_exact(hd).enumerate() {
                let (Some(back), Some(s)) =
                    (back.get_mut(..hd), scores.get_mut(i * cap..i * cap + sinks))
                else {
                    continue;
                };
                back.copy_from_slice(qi);
                rope_rotate_back(back, slide.cos, slide.sin);
                let keys = KeyScratch {
                    query,
                    packed: query_packed,
                };
                store.scores(isa, head, back, 0, [s, &mut []], keys);
            }
        }
        store.weigh(isa, head, positions, out, scratch);
    }

    /// Make room: keep the sinks, drop the oldest [`KvShape::evicted`]
    /// positions after them and move the rest down; [`KvCache::slid`] grows
    /// by as many. Returns the number of positions dropped.
    pub fn evict(&mut self) -> usize {
        let shape = self.shape;
        let drop = shape.evicted().min(self.len.saturating_sub(shape.sinks));
        if drop == 0 {
            return 0;
        }
        let keep = self.len - shape.sinks - drop;
        for layer in 0..shape.layers {
            let at = self.layer(layer);
            self.store.get_mut().slide(at, drop, keep);
        }
        self.len -= drop;
        self.slid = self.slid.saturating_add(drop as u64);
        drop
    }
}

/// `slice[to..to + n] = slice[from..from + n]` (`to < from`); does nothing if out of range.
fn move_within<T: Copy>(slice: &mut [T], from: usize, to: usize, n: usize) {
    if to <= from && from.checked_add(n).is_some_and(|end| end <= slice.len()) {
        slice.copy_within(from..from + n, to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{rope_angles, rope_angles_far, rope_frequencies, rope_rotate};

    const HD: usize = 8;
    const CAP: usize = 16;
    type Head = [f32; HD];

    fn rotated(raw: &Head, position: u64, freq: &[f32]) -> Head {
        let (mut cos, mut sin, mut out) = ([0.0; HD / 2], [0.0; HD / 2], *raw);
        rope_angles(position as f32, freq, &mut cos, &mut sin);
        rope_rotate(&mut out, &cos, &sin);
        out
    }

    /// Write `heads` (raw keys and values) into a cache of precision `kv`
    /// (2 sinks, sliding by 7 whenever full), each key rotated to its place
    /// plus the positions slid, and attend with `raw_q` at the last one's
    /// position. Returns the output and the positions attended over.
    fn attention(kv: KvPrecision, heads: &[(Head, Head)], raw_q: &Head) -> (Head, usize) {
        let shape = KvShape {
            layers: 1,
            capacity: CAP,
            kv_heads: 1,
            head_dim: HD,
            sinks: 2,
        };
        let (mut kf, mut vf) = ([0.0f32; CAP * HD], [0.0f32; CAP * HD]);
        let (mut kh, mut vh) = ([0u16; CAP * HD], [0u16; CAP * HD]);
        let (mut k8, mut v8) = ([0i8; CAP * HD], [0i8; CAP * HD]);
        let (mut ks, mut vs) = ([0.0f32; CAP], [0.0f32; CAP]);
        let store = match kv {
            KvPrecision::F32 => KvStore::F32(FloatKv {
                keys: &mut kf,
                values: &mut vf,
            }),
            KvPrecision::F16 => KvStore::F16(FloatKv {
                keys: &mut kh,
                values: &mut vh,
            }),
            KvPrecision::Int8 => KvStore::Int8(Int8Kv {
                keys: &mut k8,
                values: &mut v8,
                key_scales: &mut ks,
                value_scales: &mut vs,
            }),
        };
        let mut cache = KvCache::new(store, shape);
        let mut freq = [0.0f32; HD / 2];
        rope_frequencies(10_000.0, HD, &mut freq);
        let (mut scores, mut q8, mut qp, mut head) =
            ([0.0; CAP], [0i8; HD], [0u32; HD / 2], [0.0; HD]);
        let (mut w, mut wp) = ([0i16; CAP], [0u32; CAP / 2]);
        let mut scratch = AttentionScratch {
            scores: &mut scores,
            query: &mut q8,
            query_packed: &mut qp,
            head: &mut head,
            weights: &mut w,
            weights_packed: &mut wp,
        };
        let mut out = [0.0f32; HD];
        for (i, (k, v)) in heads.iter().enumerate() {
            if cache.is_full() {
                cache.evict();
            }
            let position = cache.len() as u64 + cache.slid();
            cache.write(
                Isa::Portable,
                0,
                &rotated(k, position, &freq),
                v,
                &mut scratch,
            );
            if i + 1 < heads.len() {
                cache.advance();
                continue;
            }
            let (mut cos, mut sin) = ([0.0; HD / 2], [0.0; HD / 2]);
            rope_angles_far(cache.slid(), &freq, &mut cos, &mut sin);
            let slide = SlideRotation {
                cos: &cos,
                sin: &sin,
            };
            let q = rotated(raw_q, position, &freq);
            cache.attend(Isa::Portable, 0, &q, &mut out, &mut scratch, Some(slide));
        }
        (out, cache.len() + 1)
    }

    #[test]
    fn a_slid_cache_attends_like_a_fresh_cache_of_the_kept_positions() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            f32::from((seed >> 16) as u16) / 16384.0 - 2.0
        };
        let heads: [(Head, Head); 33] = core::array::from_fn(|_| {
            (
                core::array::from_fn(|_| next()),
                core::array::from_fn(|_| next()),
            )
        });
        let q: Head = core::array::from_fn(|_| next());
        for (kv, tolerance) in [
            (KvPrecision::F32, 1e-5),
            (KvPrecision::F16, 1e-2),
            (KvPrecision::Int8, 5e-2),
        ] {
            // 33 heads into 16 places: the cache slides three times.
            let (slid, positions) = attention(kv, &heads, &q);
            assert!(positions < CAP && positions > 2);
            // What it keeps: the two sinks and the newest heads, which a
            // cache that never slid holds at their places in the window.
            let mut kept: heapless::Vec<(Head, Head), CAP> = heapless::Vec::new();
            let newest = &heads[heads.len() - (positions - 2)..];
            for h in heads[..2].iter().chain(newest) {
                kept.push(*h).unwrap();
            }
            let (fresh, fresh_positions) = attention(kv, &kept, &q);
            assert_eq!(fresh_positions, positions);
            for (a, b) in slid.iter().zip(&fresh) {
                assert!((a - b).abs() <= tolerance, "{kv:?}: {slid:?} vs {fresh:?}");
            }
        }
    }

    #[test]
    fn the_slide_is_only_a_move_and_counts_the_positions_dropped() {
        let (heads, q) = ([([0.5f32; HD], [0.25f32; HD]); 17], [1.0f32; HD]);
        let (_, positions) = attention(KvPrecision::F32, &heads, &q);
        // 16 fill the cache; the 17th drops 7 after the 2 sinks.
        assert_eq!(positions, CAP - 7 + 1);
    }
}
