//! One training iteration's buffers replayed on a counter. Each function below allocates and
//! frees what the code it names allocates and frees, in the same order and at the same sizes
//! (rounded as `Gpu::alloc` rounds them), so the peak found here is the `MemoryCounter` peak a
//! run measures, computed from shapes alone. Change one when the code it mirrors changes.

use super::category::{Binding, ByCategory, Category};
use crate::gpu::sample::SAMPLE_OUT_WORDS;
use crate::lora::{LoraConfig, Target};
use crate::model::ModelConfig;

/// `Gpu::alloc`'s size: at least 4 bytes, a multiple of 4.
pub(crate) fn buffer_bytes(bytes: u64) -> u64 {
    bytes.max(4).div_ceil(4) * 4
}

/// A live buffer of the replay.
pub(crate) struct Buf(Category, u64);

pub(crate) struct Sim {
    live: ByCategory,
    /// The live bytes when their total was highest.
    pub peak: ByCategory,
    pub largest: Binding,
}

impl Sim {
    pub fn new() -> Sim {
        Sim {
            live: ByCategory::default(),
            peak: ByCategory::default(),
            largest: Binding::default(),
        }
    }

    pub fn alloc(&mut self, c: Category, bytes: u64, what: &str) -> Buf {
        let bytes = buffer_bytes(bytes);
        self.live.0[c as usize] += bytes;
        if bytes > self.largest.bytes {
            self.largest = Binding {
                bytes,
                what: what.to_string(),
            };
        }
        if self.live.total() > self.peak.total() {
            self.peak = self.live;
        }
        Buf(c, bytes)
    }

    /// Several buffers at once, `bytes` in all (each already `Gpu::alloc`-sized; the caller
    /// sets `largest`).
    pub fn alloc_many(&mut self, c: Category, bytes: u64) -> Buf {
        self.live.0[c as usize] += bytes;
        if self.live.total() > self.peak.total() {
            self.peak = self.live;
        }
        Buf(c, bytes)
    }

    /// A buffer alive for the whole phase (weights, adapter, optimizer state).
    /// (Its pieces are already `Gpu::alloc`-sized, and `largest` is set by the caller.)
    pub fn hold(&mut self, c: Category, bytes: u64) {
        self.live.0[c as usize] += bytes;
        self.peak = self.live;
    }

    pub fn free(&mut self, b: Buf) {
        self.live.0[b.0 as usize] -= b.1;
    }

    pub fn free_all(&mut self, bufs: Vec<Buf>) {
        bufs.into_iter().for_each(|b| self.free(b));
    }

    /// A buffer freed as soon as it is recorded (token ids, `matmul`'s "no bias" placeholder).
    pub fn transient(&mut self, c: Category, bytes: u64, what: &str) {
        let b = self.alloc(c, bytes, what);
        self.free(b);
    }
}

/// The shapes the replay needs, and the binding limit that sets the vocabulary chunks.
pub(crate) struct Shapes {
    h: u64,
    qd: u64,
    kvd: u64,
    inter: u64,
    nh: u64,
    /// Floats per token of a rope table (cos and sin of head_dim/2 frequencies).
    rope: u64,
    vocab: u64,
    layers: usize,
    /// Per-head q/k norms (Qwen3, Gemma 3).
    qk_norm: bool,
    /// Norms on each block's output (Gemma 3).
    sandwich: bool,
    /// Rope tables per pass: 2 when the sliding layers have their own.
    rope_tables: usize,
    max_binding: u64,
}

const F: u64 = 4;

impl Shapes {
    pub fn new(c: &ModelConfig, max_binding: u64) -> Shapes {
        Shapes {
            h: c.hidden_size as u64,
            qd: (c.num_heads * c.head_dim) as u64,
            kvd: (c.num_kv_heads * c.head_dim) as u64,
            inter: c.intermediate_size as u64,
            nh: c.num_heads as u64,
            rope: 2 * (c.head_dim / 2) as u64,
            vocab: c.vocab_size as u64,
            layers: c.num_layers,
            qk_norm: c.qk_norm(),
            sandwich: c.sandwich_norms(),
            rope_tables: 1 + c.local_inv_freq().is_some() as usize,
            max_binding,
        }
    }

    /// `Model::chunk_cols`.
    fn chunk_cols(&self, t: u64) -> u64 {
        (self.max_binding / (t * 4).max(1))
            .clamp(1, 8192)
            .min(self.vocab)
    }
}

/// The adapter's tensors (`Lora::from_values`): A [r, d_in] and B [d_out, r] per target and layer.
pub(crate) fn lora_tensors(c: &ModelConfig, l: &LoraConfig) -> Vec<u64> {
    let r = l.r as u64;
    (0..c.num_layers)
        .flat_map(|_| {
            l.targets.iter().flat_map(|t: &Target| {
                let (d_in, d_out) = t.dims(c);
                [r * d_in as u64, d_out as u64 * r]
            })
        })
        .collect()
}

/// `Scratch::new`.
fn scratch(sim: &mut Sim, s: &Shapes, t: u64, r: u64, c: Category) -> Vec<Buf> {
    let mut v = vec![
        sim.alloc(c, t * s.h * F, "normed input [t, hidden]"),
        sim.alloc(c, t * s.qd * F, "q [t, heads·head_dim]"),
        sim.alloc(c, t * s.kvd * F, "k [t, kv_heads·head_dim]"),
        sim.alloc(c, t * s.kvd * F, "v [t, kv_heads·head_dim]"),
    ];
    if s.qk_norm {
        v.push(sim.alloc(c, t * s.qd * F, "q normed [t, heads·head_dim]"));
        v.push(sim.alloc(c, t * s.kvd * F, "k normed [t, kv_heads·head_dim]"));
    }
    if s.sandwich {
        v.push(sim.alloc(c, t * s.h * F, "attention block out [t, hidden]"));
        v.push(sim.alloc(c, t * s.h * F, "mlp out [t, hidden]"));
        v.push(sim.alloc(c, t * s.h * F, "normed block out [t, hidden]"));
    }
    v.push(sim.alloc(c, t * s.qd * F, "attention out [t, heads·head_dim]"));
    v.push(sim.alloc(c, t * s.h * F, "residual after attention [t, hidden]"));
    v.push(sim.alloc(c, t * s.h * F, "normed mlp input [t, hidden]"));
    for what in [
        "gate [t, intermediate]",
        "up [t, intermediate]",
        "mlp activation [t, intermediate]",
    ] {
        v.push(sim.alloc(c, t * s.inter * F, what));
    }
    // One x·Aᵀ per projection (`Scratch::u`).
    for _ in Target::ALL {
        v.push(sim.alloc(c, t * r.max(1) * F, "lora x·Aᵀ [t, r]"));
    }
    v
}

/// `Model::embed_tokens_at`: the residual stream and the rope tables.
fn embed_tokens(sim: &mut Sim, s: &Shapes, t: u64, x: Category) -> (Buf, Vec<Buf>) {
    let x = sim.alloc(x, t * s.h * F, "residual [t, hidden]");
    (x, ropes(sim, s, t))
}

/// `Model::ropes`: one table per distinct RoPE.
fn ropes(sim: &mut Sim, s: &Shapes, t: u64) -> Vec<Buf> {
    (0..s.rope_tables)
        .map(|_| sim.alloc(Category::Other, t * s.rope * F, "rope table"))
        .collect()
}

/// `Model::record_embed`'s token ids, and the 4-byte placeholder `Recorder::matmul` binds for
/// a missing bias (assumed: some projection has none), both freed once recorded.
fn record_embed(sim: &mut Sim, t: u64) {
    sim.transient(Category::Other, t * F, "token ids");
}
fn no_bias(sim: &mut Sim) {
    sim.transient(Category::Other, 4, "no bias");
}

/// `Model::forward` (a prompt's prefill into the KV cache): returns the final hidden states.
fn forward(sim: &mut Sim, s: &Shapes, t: u64, r: u64) -> Buf {
    let (x, cs) = embed_tokens(sim, s, t, Category::Other);
    let sc = scratch(sim, s, t, r, Category::RecomputedLayer);
    let out = sim.alloc(Category::Other, t * s.h * F, "final hidden [t, hidden]");
    record_embed(sim, t);
    no_bias(sim);
    sim.free(x);
    sim.free_all(cs);
    sim.free_all(sc);
    out
}

/// `Model::forward_rows` (one batched decode step of `t` rows).
fn forward_rows(sim: &mut Sim, s: &Shapes, t: u64, r: u64) -> Buf {
    let (x, cs) = embed_tokens(sim, s, t, Category::Other);
    let spans = sim.alloc(Category::Other, 2 * t * F, "decode spans");
    let sc = scratch(sim, s, t, r, Category::RecomputedLayer);
    let out = sim.alloc(Category::Other, t * s.h * F, "final hidden [t, hidden]");
    record_embed(sim, t);
    no_bias(sim);
    sim.free_all(vec![x, spans]);
    sim.free_all(cs);
    sim.free_all(sc);
    out
}

/// `Model::sample_rows` over `rows` distinct rows and `draws` draws of alike settings (a
/// group's): every row's logits in one buffer and one sampler dispatch where they fit a
/// binding (`record_rows_logits_into`), else row by row (`record_rows_logits`).
fn sample_rows(sim: &mut Sim, s: &Shapes, rows: u64, draws: u64) {
    let words = SAMPLE_OUT_WORDS as u64 * F;
    if rows * s.vocab * F <= s.max_binding {
        let all = sim.alloc(Category::LogitsChunks, rows * s.vocab * F, "logits rows [rows, vocab]");
        let out = sim.alloc(Category::Other, words * draws, "sampled tokens");
        let picked = sim.alloc(Category::Other, rows * s.h * F, "rows to score");
        no_bias(sim);
        sim.free(picked);
        let keys = sim.alloc(Category::Other, 5 * F * draws, "sampler keys");
        sim.free_all(vec![keys, all, out]);
        return;
    }
    let mut bufs: Vec<Buf> = (0..rows)
        .map(|_| sim.alloc(Category::LogitsChunks, s.vocab * F, "logits row [vocab]"))
        .collect();
    bufs.push(sim.alloc(Category::Other, words, "sampled token"));
    bufs.push(sim.alloc(Category::Other, words * draws, "sampled tokens"));
    let picked = sim.alloc(Category::Other, rows * s.h * F, "rows to score");
    let chunk = sim.alloc(
        Category::LogitsChunks,
        rows * s.chunk_cols(rows) * F,
        "logits chunk [rows, chunk]",
    );
    no_bias(sim);
    sim.free_all(vec![picked, chunk]);
    sim.free_all(bufs);
}

/// `Model::forward_rows_keeping` with `keep` (a decode step of `t` rows keeping what the
/// backward pass reads): returns the kept buffers, its final hidden states last.
fn forward_rows_keeping(sim: &mut Sim, s: &Shapes, t: u64, r: u64) -> Vec<Buf> {
    let (x, cs) = embed_tokens(sim, s, t, Category::SavedActivations);
    let spans = sim.alloc(Category::Other, 2 * t * F, "decode spans");
    let out = sim.alloc(Category::SavedActivations, t * s.h * F, "final hidden [t, hidden]");
    record_embed(sim, t);
    let mut kept = vec![x];
    for _ in 0..s.layers {
        kept.push(sim.alloc(Category::SavedActivations, t * s.h * F, "kept layer input [t, hidden]"));
        kept.extend(scratch(sim, s, t, r, Category::SavedActivations));
    }
    no_bias(sim);
    sim.free(spans);
    sim.free_all(cs);
    kept.push(out);
    kept
}

/// The shape of one sampled group (`Model::sample_group`): a `p`-token prompt, `g` samples of
/// `c` tokens.
pub(crate) struct Kept {
    pub p: u64,
    pub g: u64,
    pub c: u64,
}

/// What `Model::sample_group_keeping` keeps of a group (`KeptRollout`), every sample running to
/// the end: the bytes alone.
pub(crate) fn kept_rollout_bytes(s: &Shapes, p: u64, g: u64, c: u64, r: u64) -> u64 {
    let mut sim = Sim::new();
    sample_group_kept(&mut sim, s, p, g, c, r, true);
    sim.live.total()
}

/// `Model::sample_group`: `g` samples of a `p`-token prompt, `c` tokens each, every sample
/// running to the end (the worst case); with `keep`, `Model::sample_group_keeping`.
pub(crate) fn sample_group(sim: &mut Sim, s: &Shapes, p: u64, g: u64, c: u64, r: u64, keep: bool) {
    let kept = sample_group_kept(sim, s, p, g, c, r, keep);
    sim.free_all(kept);
}

/// [`sample_group`], returning what it keeps.
fn sample_group_kept(sim: &mut Sim, s: &Shapes, p: u64, g: u64, c: u64, r: u64, keep: bool) -> Vec<Buf> {
    if g == 0 || c == 0 {
        return Vec::new();
    }
    if keep {
        let slots = p + g * (c - 1).max(1);
        let cache: Vec<Buf> = (0..2 * s.layers)
            .map(|_| sim.alloc(Category::KvCache, slots * s.kvd * F, "KV cache of one layer [slots, kv_heads·head_dim]"))
            .collect();
        let mut kept = forward_saving(sim, s, p, r, true);
        sample_rows(sim, s, 1, g);
        for _ in 1..c {
            kept.extend(forward_rows_keeping(sim, s, g, r));
            sample_rows(sim, s, g, g);
        }
        sim.free_all(cache);
        return kept;
    }
    let slots = p + g * (c - 1).max(1);
    let cache: Vec<Buf> = (0..2 * s.layers)
        .map(|_| {
            sim.alloc(
                Category::KvCache,
                slots * s.kvd * F,
                "KV cache of one layer [slots, kv_heads·head_dim]",
            )
        })
        .collect();
    let hidden = forward(sim, s, p, r);
    sample_rows(sim, s, 1, g);
    if c > 1 {
        let h = forward_rows(sim, s, g, r);
        sample_rows(sim, s, g, g);
        sim.free(h);
    }
    sim.free(hidden);
    sim.free_all(cache);
    Vec::new()
}

/// The bytes of a `KeptRollout` by the pieces `Model::saved_from_rollout` frees one after
/// another: each layer's (and the final residual's), the hidden states, the prompt's spans.
fn kept_pieces(s: &Shapes, k: &Kept, r: u64) -> (Vec<u64>, u64, u64) {
    let scratch_bytes = |t: u64| {
        let mut sim = Sim::new();
        let bufs = scratch(&mut sim, s, t, r, Category::SavedActivations);
        sim.free_all(bufs);
        sim.peak.total()
    };
    let (rows, steps) = (|t: u64| buffer_bytes(t * s.h * F), k.c.saturating_sub(1));
    let mut layers = vec![rows(k.p) + scratch_bytes(k.p) + steps * (rows(k.g) + scratch_bytes(k.g)); s.layers];
    layers.push(rows(k.p) + steps * rows(k.g));
    (layers, rows(k.p) + steps * rows(k.g), buffer_bytes(2 * k.p * F))
}

/// `Model::saved_from_rollout` over `t` packed tokens from the kept `pieces`, freeing each as
/// it is copied when `release`: returns what `Saved` holds.
fn saved_from_rollout(sim: &mut Sim, s: &Shapes, t: u64, r: u64, pieces: Vec<Buf>, release: bool) -> (Vec<Buf>, Vec<Buf>) {
    let mut pieces = pieces.into_iter();
    let mut kept = Vec::new();
    let mut done = |sim: &mut Sim, piece: Option<Buf>| match (piece, release) {
        (Some(b), true) => sim.free(b),
        (Some(b), false) => kept.push(b),
        (None, _) => {}
    };
    let mut saved = Vec::new();
    for li in 0..=s.layers {
        saved.push(sim.alloc(Category::SavedActivations, t * s.h * F, "saved layer input [t, hidden]"));
        if li < s.layers {
            saved.extend(scratch(sim, s, t, r, Category::SavedActivations));
        }
        done(sim, pieces.next());
    }
    saved.push(sim.alloc(Category::SavedActivations, t * s.h * F, "final hidden [t, hidden]"));
    done(sim, pieces.next());
    saved.push(sim.alloc(Category::Other, 2 * t * F, "packed spans"));
    kept.extend(pieces);
    (saved, kept)
}

/// `Model::forward_saving` over `t` packed tokens: returns what `Saved` holds.
fn forward_saving(sim: &mut Sim, s: &Shapes, t: u64, r: u64, keep: bool) -> Vec<Buf> {
    let (x, cs) = embed_tokens(sim, s, t, Category::SavedActivations);
    let mut saved = vec![x, sim.alloc(Category::Other, 2 * t * F, "packed spans")];
    let shared = (!keep).then(|| scratch(sim, s, t, r, Category::RecomputedLayer));
    record_embed(sim, t);
    for _ in 0..s.layers {
        saved.push(sim.alloc(
            Category::SavedActivations,
            t * s.h * F,
            "saved layer input [t, hidden]",
        ));
        if keep {
            saved.extend(scratch(sim, s, t, r, Category::SavedActivations));
        }
        no_bias(sim);
    }
    saved.push(sim.alloc(
        Category::SavedActivations,
        t * s.h * F,
        "final hidden [t, hidden]",
    ));
    sim.free_all(cs);
    sim.free_all(shared.unwrap_or_default());
    saved
}

/// `Model::row_logprobs` (with `logsoftmax_state`) over `n` completion rows: returns what
/// `RowLogprobs` holds.
fn row_logprobs(sim: &mut Sim, s: &Shapes, n: u64) -> Vec<Buf> {
    let h = sim.alloc(Category::Other, n * s.h * F, "completion rows [n, hidden]");
    let index = sim.alloc(Category::Other, (2 * n + 1) * F, "row index");
    let tg = sim.alloc(Category::Other, n * F, "targets");
    let state = sim.alloc(Category::Other, n * 16, "log-softmax state");
    let chunk = sim.alloc(
        Category::LogitsChunks,
        n * s.chunk_cols(n) * F,
        "logits chunk [n, chunk]",
    );
    no_bias(sim);
    sim.free_all(vec![chunk, index]);
    vec![h, tg, state]
}

/// `Model::backward` over `t` packed tokens and `n` completion rows.
fn backward(sim: &mut Sim, s: &Shapes, t: u64, n: u64, r: u64, checkpointing: bool) {
    use Category::{BackwardScratch as B, Other, RecomputedLayer};
    let mut keep = vec![sim.alloc(B, n * 2 * F, "loss coefficients")];
    let dh_rows = sim.alloc(B, n * s.h * F, "d completion rows [n, hidden]");
    let chunk = sim.alloc(
        Category::LogitsChunks,
        n * s.chunk_cols(n) * F,
        "logits chunk [n, chunk]",
    );
    no_bias(sim);
    let dh_all = sim.alloc(B, t * s.h * F, "d final hidden [t, hidden]");
    keep.push(sim.alloc(B, t * s.h * F, "d residual [t, hidden]"));
    keep.push(sim.alloc(Other, (t + 1 + n) * F, "row index"));
    sim.free_all(vec![dh_rows, chunk, dh_all]);
    if checkpointing {
        keep.extend(scratch(sim, s, t, r, RecomputedLayer));
    }
    let (x, cs) = embed_tokens(sim, s, t, Other);
    sim.free(x);
    keep.extend(cs);
    keep.extend(ropes(sim, s, t));
    keep.push(sim.alloc(
        RecomputedLayer,
        t * s.h * F,
        "recomputed residual [t, hidden]",
    ));
    let mut sizes = vec![
        (s.inter, "d activation [t, intermediate]"),
        (s.inter, "d gate [t, intermediate]"),
        (s.inter, "d up [t, intermediate]"),
        (s.h, "d normed [t, hidden]"),
        (s.qd, "d attention out [t, heads·head_dim]"),
        (s.qd, "d q [t, heads·head_dim]"),
        (s.kvd, "d k [t, kv_heads·head_dim]"),
        (s.kvd, "d v [t, kv_heads·head_dim]"),
    ];
    if s.qk_norm {
        sizes.push((s.qd, "d q before norm"));
        sizes.push((s.kvd, "d k before norm"));
    }
    sizes.push((s.nh * 2, "attention stats"));
    sizes.push((r, "d lora u [t, r]"));
    for (w, what) in sizes {
        keep.push(sim.alloc(B, t * w * F, what));
    }
    if checkpointing {
        no_bias(sim);
    }
    sim.free_all(keep);
}

/// One packed forward and backward in `Trainer::step`: `t` tokens, `n` predicted rows. With
/// `rollout`, the group's sampling kept its activations (`Kept`), rearranged instead of a
/// forward pass; `true`: they outlive the pack (other packs of the group follow).
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_pack(
    sim: &mut Sim,
    s: &Shapes,
    t: u64,
    n: u64,
    r: u64,
    checkpointing: bool,
    reference: bool,
    rollout: Option<(Kept, bool)>,
) {
    let (saved, kept) = match rollout {
        Some((k, past)) => {
            let (layers, hidden, spans) = kept_pieces(s, &k, r);
            let pieces = layers.into_iter().chain([hidden, spans]);
            let pieces = pieces.map(|b| sim.alloc_many(Category::SavedActivations, b)).collect();
            let (saved, kept) = saved_from_rollout(sim, s, t, r, pieces, !past);
            // The group's last pack drops what is left (the prompt's spans) at once.
            if past { (saved, kept) } else { sim.free_all(kept); (saved, Vec::new()) }
        }
        None => (forward_saving(sim, s, t, r, !checkpointing), Vec::new()),
    };
    let rows = row_logprobs(sim, s, n);
    if reference {
        // beta > 0: the base model's log-probs, on the first use of a batch.
        let base = forward_saving(sim, s, t, 1, false);
        let base_rows = row_logprobs(sim, s, n);
        sim.free_all(base_rows);
        sim.free_all(base);
    }
    backward(sim, s, t, n, r, checkpointing);
    sim.free_all(rows);
    sim.free_all(saved);
    sim.free_all(kept);
}

/// `Trainer::update`: the gradient norms (the moments are already alive).
pub(crate) fn update(sim: &mut Sim, tensors: usize) {
    sim.transient(Category::Other, tensors as u64 * F, "gradient norms");
}

/// `ImageSide::encode` of the largest prompt (`VisionTower::image_features_on_gpu`): its
/// features buffer, then the tower's scratch and a chunk's uploads, freed after the run.
pub(crate) fn tower_run(sim: &mut Sim, v: &super::VisionLoad) {
    let features = sim.alloc(Category::ImageFeatures, v.features, "image features [image tokens, text hidden]");
    let run = sim.alloc_many(Category::VisionTower, v.tower_run - v.features);
    if v.tower_largest_buffer > sim.largest.bytes {
        sim.largest = Binding {
            bytes: v.tower_largest_buffer,
            what: "vision tower activation (one chunk)".into(),
        };
    }
    sim.free(run);
    sim.free(features);
}
