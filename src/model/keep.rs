//! A group's sampling pass kept for its training pass. With the adapter unchanged between the
//! two, the packed forward pass of a GRPO step recomputes exactly what sampling computed: the
//! prompt's rows in the prefill, each completion token's row in the decode step that ran it.
//! Sampling can keep those activations instead (`Model::sample_group_keeping`) and the step
//! rearranges them into the pack's order (`Model::saved_from_rollout`), skipping its forward
//! pass. The decode steps' activations come from the decode kernels, so they agree with a
//! packed forward pass up to rounding, as the sampler's log-probs do.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuBuffer, Recorder};
use super::adapter::Lora;
use super::forward::{KvCache, Model};
use super::layer::Scratch;
use super::pack::Pack;
use super::train::Saved;

/// What the backward pass of some rows reads: each layer's input, then the residual entering
/// the final norm (`inputs`, one more than `layers`), and each layer's activations.
pub struct RowActivations {
    pub(crate) inputs: Vec<GpuBuffer>,
    pub(crate) layers: Vec<Scratch>,
}

/// One decode step: which sample each row belongs to and the token it ran.
struct KeptStep {
    samples: Vec<usize>,
    ids: Vec<u32>,
}

/// One layer's kept activations (the last entry of `KeptRollout::layers`: the residual entering
/// the final norm, no scratch): the prompt's rows, then each decode step's.
struct KeptLayer {
    prompt_input: GpuBuffer,
    prompt: Option<Scratch>,
    steps: Vec<(GpuBuffer, Option<Scratch>)>,
}

/// The activations of one group's sampling (`Model::sample_group_keeping`).
pub struct KeptRollout {
    /// Prompt tokens.
    p: usize,
    /// The width of the x·Aᵀ rows its scratches were made with.
    rank: usize,
    /// Per layer and one more; `None` once released into a pack (`saved_from_rollout`).
    layers: Vec<Option<KeptLayer>>,
    /// Final-normed hidden states: the prompt's [p, hidden], then each step's.
    hidden: Vec<GpuBuffer>,
    /// The prompt pass's spans (its `Saved`).
    _spans: GpuBuffer,
    /// Decode step s + 1 ran token s of each unfinished sample.
    steps: Vec<KeptStep>,
}

impl KeptRollout {
    pub(crate) fn push_step(&mut self, samples: Vec<usize>, ids: Vec<u32>, acts: RowActivations, hidden: GpuBuffer) {
        let mut scratches = acts.layers.into_iter();
        for (layer, input) in self.layers.iter_mut().zip(acts.inputs) {
            if let Some(l) = layer {
                l.steps.push((input, scratches.next()));
            }
        }
        self.hidden.push(hidden);
        self.steps.push(KeptStep { samples, ids });
    }

    /// The prompt's final-normed hidden states [p, hidden].
    pub(crate) fn prompt_hidden(&self) -> &GpuBuffer {
        &self.hidden[0]
    }
}

impl Model {
    /// Prefills `prompt` into `cache` as a packed pass runs it, every activation kept: the
    /// start of a `KeptRollout`.
    pub(crate) fn prefill_keeping(
        &self,
        gpu: &Gpu,
        prompt: &[u32],
        images: Option<&GpuBuffer>,
        cache: &mut KvCache,
        lora: Option<&Lora>,
    ) -> Result<KeptRollout> {
        let p = prompt.len();
        if p > cache.max {
            return Err(Error::Invalid(format!("a prompt of {p} tokens in a KV cache of {}", cache.max)));
        }
        let pack = Pack::new(prompt, &[])?;
        let saved = self.forward_saving_with_images(gpu, &pack, images, lora, true)?;
        let layers = saved.layers.as_ref().ok_or_else(|| Error::Invalid("prefill kept no activations".into()))?;
        let row = (self.cfg.num_kv_heads * self.cfg.head_dim * 4) as u64;
        let mut r = Recorder::new(gpu);
        for (li, s) in layers.iter().enumerate() {
            r.copy(s.k_roped(), 0, &cache.k[li], 0, p as u64 * row);
            r.copy(&s.v, 0, &cache.v[li], 0, p as u64 * row);
        }
        r.submit()?;
        cache.len = p;
        let Saved { inputs, hidden, layers, spans, .. } = saved;
        let mut scratches = layers.unwrap_or_default().into_iter();
        let layers = inputs
            .into_iter()
            .map(|prompt_input| Some(KeptLayer { prompt_input, prompt: scratches.next(), steps: Vec::new() }))
            .collect();
        Ok(KeptRollout { p, rank: lora.map_or(1, |l| l.cfg.r), layers, hidden: vec![hidden], _spans: spans, steps: Vec::new() })
    }

    /// What `forward_saving_with_images(pack, .., keep_activations = true)` returns, put
    /// together from `kept`: the pack's prompt is the kept prompt and its completion k is
    /// sample `samples[k]` of the kept group, as sampled. An error when they are not. With
    /// `release` (the group's last pack) each layer's kept activations are freed once copied,
    /// so the group's activations are not held twice; `kept` serves no other pack then.
    pub fn saved_from_rollout(
        &self,
        gpu: &Gpu,
        kept: &mut KeptRollout,
        pack: &Pack,
        samples: &[usize],
        release: bool,
    ) -> Result<Saved> {
        let (c, t, p) = (&self.cfg, pack.len(), pack.prefix);
        let mismatch = |what: &str| Error::Invalid(format!("the kept rollout does not match the pack: {what}"));
        if p != kept.p || samples.len() != pack.completions.len() {
            return Err(mismatch("another prompt or number of completions"));
        }
        if kept.layers.len() != self.layers.len() + 1 || kept.layers.iter().any(Option::is_none) {
            return Err(mismatch("its activations went into an earlier pack"));
        }
        // (pack row, decode step, row of that step) of every completion row.
        let mut moves = Vec::with_capacity(t - p);
        let mut at = p;
        for (range, &j) in pack.completions.iter().zip(samples) {
            for s in 0..range.len().saturating_sub(1) {
                let step = kept.steps.get(s).ok_or_else(|| mismatch("a completion longer than its sample"))?;
                let i = step.samples.iter().position(|&x| x == j).ok_or_else(|| mismatch("a sample that had stopped"))?;
                if pack.ids.get(at) != Some(&step.ids[i]) {
                    return Err(mismatch("another token"));
                }
                moves.push((at, s, i));
                at += 1;
            }
        }
        if at != t {
            return Err(mismatch("rows left over"));
        }
        let (h, rank) = (c.hidden_size, kept.rank);
        let f = |n: usize| (n * 4) as u64;
        let mut inputs = Vec::with_capacity(kept.layers.len());
        let mut kept_layers = Vec::with_capacity(self.layers.len());
        for li in 0..kept.layers.len() {
            let Some(k) = &kept.layers[li] else { continue };
            let mut r = Recorder::new(gpu);
            let input = gpu.alloc(f(t * h), "saved layer input")?;
            gather(&mut r, &moves, p, &input, &k.prompt_input, &|s| &k.steps[s].0, h);
            inputs.push(input);
            if let Some(prompt) = &k.prompt {
                let scratch = Scratch::new(gpu, c, t, rank)?;
                let from_prompt = prompt.row_buffers(c, rank);
                let from_steps: Vec<Vec<(&GpuBuffer, usize)>> = k
                    .steps
                    .iter()
                    .map(|(_, s)| s.as_ref().map(|s| s.row_buffers(c, rank)).ok_or_else(|| mismatch("a step without a layer")))
                    .collect::<Result<_>>()?;
                for (b, &(dst, w)) in scratch.row_buffers(c, rank).iter().enumerate() {
                    gather(&mut r, &moves, p, dst, from_prompt[b].0, &|s| from_steps[s][b].0, w);
                }
                kept_layers.push(scratch);
            }
            r.submit()?;
            if release {
                kept.layers[li] = None;
            }
        }
        let hidden = gpu.alloc(f(t * h), "final hidden")?;
        let mut r = Recorder::new(gpu);
        gather(&mut r, &moves, p, &hidden, &kept.hidden[0], &|s| &kept.hidden[s + 1], h);
        r.submit()?;
        if release {
            kept.hidden.clear();
        }
        let spans = gpu.upload(bytemuck::cast_slice(&pack.spans), "packed spans")?;
        Ok(Saved { t, spans, inputs, hidden, layers: Some(kept_layers) })
    }
}

/// One buffer of a pack put together: the prompt's `p` rows of width `w` at 0, then each
/// (pack row, step, row of that step) of `moves` from `step(s)`.
fn gather<'a>(
    r: &mut Recorder,
    moves: &[(usize, usize, usize)],
    p: usize,
    dst: &GpuBuffer,
    prompt: &GpuBuffer,
    step: &dyn Fn(usize) -> &'a GpuBuffer,
    w: usize,
) {
    let f = |n: usize| (n * 4) as u64;
    r.copy(prompt, 0, dst, 0, f(p * w));
    for &(row, s, i) in moves {
        r.copy(step(s), f(i * w), dst, f(row * w), f(w));
    }
}
