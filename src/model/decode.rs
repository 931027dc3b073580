//! Batched decoding of the samples of one prompt: the prompt's keys and values are in the KV
//! cache once, each sample owns a segment of the cache after them, and one forward pass per
//! step runs every unfinished sample's last token (`gpu::Packing::decode`). On a GPU one pass
//! over the weights then serves G tokens instead of one. `sample_prompts` decodes different
//! prompts side by side the same way (evaluation): the prompts' common prefix (a chat template's
//! system prompt, shared instructions) is prefilled once in the shared slots, and each sample's
//! segment holds the rest of its own prompt, then its tokens.

use crate::error::{Error, Result};
use crate::gpu::sample::{SAMPLE_OUT_WORDS, Sampled, SamplerSettings};
use crate::gpu::{Gpu, GpuBuffer, Packing, Recorder};
use super::adapter::Lora;

use super::forward::{KvCache, Model};
use super::generate::SamplingOptions;
use super::keep::{KeptRollout, RowActivations};
use super::layer::{Kv, Scratch};

/// One row of a batched decode step.
#[derive(Clone, Copy, Debug)]
pub struct DecodeRow {
    pub id: u32,
    pub position: usize,
    /// Where its key and value go in the cache.
    pub slot: usize,
    /// The first cache slot of its sample's segment: it sees the shared prefix, then
    /// `segment .. = slot`.
    pub segment: usize,
}

/// Rows a pass of `prefill_suffixes` takes when it prefills a batch's prompts together (their
/// activations are what a prefill of that many tokens needs).
pub const PREFILL_ROWS: usize = 512;

/// How `sample_prompts_after` prefills each prompt's tokens after the shared prefix
/// (`Gpu::prompt_prefill`). The two agree within rounding (tests/shared_prefix.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptPrefill {
    /// One `forward` per prompt on a scratch cache holding the prefix. The default on GPUs,
    /// where `Together` is not measured yet (`edgerl bench --rollout` times both).
    OneByOne,
    /// Every text prompt's tokens as rows of `forward_rows`, `PREFILL_ROWS` a pass: a few
    /// passes for a batch instead of one per prompt. The default on CPU devices: on lavapipe
    /// `edgerl eval` of 16 screens took 16.4-16.7 s so against 17.8-18.7 s one by one (the
    /// rows' attention in the decode kernel, which walks only each row's own keys).
    Together,
}

impl PromptPrefill {
    /// What `gpu` takes now: the form set last, else the device's default.
    pub fn of(gpu: &Gpu) -> Self {
        match gpu.prompt_prefill.load(std::sync::atomic::Ordering::Relaxed) {
            1 => PromptPrefill::OneByOne,
            2 => PromptPrefill::Together,
            _ if gpu.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu) => PromptPrefill::Together,
            _ => PromptPrefill::OneByOne,
        }
    }
    /// Makes `gpu` take this form from now on.
    pub fn set(self, gpu: &Gpu) {
        gpu.prompt_prefill.store(self as u8 + 1, std::sync::atomic::Ordering::Relaxed);
    }
    /// Makes `gpu` take its device's default again.
    pub fn reset(gpu: &Gpu) {
        gpu.prompt_prefill.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Model {
    /// Runs one token per row on top of `cache`, whose first `prefix` slots are the shared
    /// prompt; writes each row's key and value at its slot. Returns the final-normed hidden
    /// states [rows, hidden].
    pub fn forward_rows(
        &self,
        gpu: &Gpu,
        rows: &[DecodeRow],
        prefix: usize,
        cache: &KvCache,
        lora: Option<&Lora>,
    ) -> Result<GpuBuffer> {
        self.forward_rows_keeping(gpu, rows, prefix, cache, lora, false).map(|(out, _)| out)
    }

    /// [`Model::forward_rows`]; with `keep`, also what the backward pass of these rows reads:
    /// each layer's input and activations, and the residual entering the final norm
    /// (`RowActivations`).
    pub(crate) fn forward_rows_keeping(
        &self,
        gpu: &Gpu,
        rows: &[DecodeRow],
        prefix: usize,
        cache: &KvCache,
        lora: Option<&Lora>,
        keep: bool,
    ) -> Result<(GpuBuffer, Option<RowActivations>)> {
        let c = &self.cfg;
        let t = rows.len();
        for r in rows {
            if r.slot >= cache.max || r.segment > r.slot || r.segment < prefix {
                return Err(Error::Invalid(format!(
                    "decode row {r:?}: outside the KV cache of {} after a prefix of {prefix}",
                    cache.max
                )));
            }
        }
        let ids: Vec<u32> = rows.iter().map(|r| r.id).collect();
        let positions: Vec<u32> = rows.iter().map(|r| r.position as u32).collect();
        let host_spans: Vec<u32> = rows
            .iter()
            .flat_map(|r| [r.segment as u32, r.slot as u32 + 1])
            .collect();
        let slots: Vec<usize> = rows.iter().map(|r| r.slot).collect();
        let (x, ropes) = self.embed_tokens_at(gpu, &ids, &positions)?;
        let spans = gpu.upload(bytemuck::cast_slice(&host_spans), "decode spans")?;
        let packing = Packing {
            prefix,
            spans: &spans,
            decode: true,
            host_spans: Some(&host_spans),
        };
        let rank = lora.map_or(1, |l| l.cfg.r);
        let bytes = (t * c.hidden_size * 4) as u64;
        let shared = if keep { None } else { Some(Scratch::new(gpu, c, t, rank)?) };
        let (mut inputs, mut layers) = (Vec::new(), Vec::new());
        let out = gpu.alloc(bytes, "final hidden")?;
        let mut r = Recorder::new(gpu);
        self.record_embed(&mut r, &ids, &x, None)?;
        for li in 0..self.layers.len() {
            let kv = Kv::Slots {
                k: &cache.k[li],
                v: &cache.v[li],
                slots: &slots,
                packing: &packing,
                keep,
            };
            let s = match &shared {
                Some(s) => s,
                None => {
                    let input = gpu.alloc(bytes, "kept layer input")?;
                    r.copy(&x, 0, &input, 0, bytes);
                    inputs.push(input);
                    layers.push(Scratch::new(gpu, c, t, rank)?);
                    &layers[li]
                }
            };
            self.record_layer(&mut r, li, &x, s, lora, &ropes, kv)?;
        }
        r.rmsnorm(&x, &self.norm, &out, t, c.hidden_size, c.rms_norm_eps)?;
        r.submit()?;
        let kept = keep.then(|| {
            inputs.push(x);
            RowActivations { inputs, layers }
        });
        Ok((out, kept))
    }

    /// One draw per entry of `draws` = (row of `hidden`, options, step counter), every row's
    /// logits computed once, all in one submit and one read-back. Each draw is what
    /// `sample_next` would give for that row, options and step; besides the id and its
    /// log-prob under the filtered distribution it was drawn from, each `Sampled` carries the
    /// id's log-prob under the unfiltered distribution at the sampling temperature.
    pub fn sample_rows(
        &self,
        gpu: &Gpu,
        hidden: &GpuBuffer,
        draws: &[(usize, &SamplingOptions, u64)],
    ) -> Result<Vec<Sampled>> {
        let vocab = self.cfg.vocab_size;
        let mut rows: Vec<usize> = draws.iter().map(|d| d.0).collect();
        rows.sort_unstable();
        rows.dedup();
        let at = |row: &usize| rows.binary_search(row).map_err(|_| Error::Invalid("draw row".into()));
        let words = (SAMPLE_OUT_WORDS * 4) as u64;
        // Draws that differ at most in their seed (a group's samples), with every row's logits
        // in one binding: one sampler dispatch over [rows, vocab].
        let settings: Vec<SamplerSettings> = draws.iter().map(|d| SamplerSettings::from(d.1)).collect();
        let unseeded = |s: &SamplerSettings| SamplerSettings { seed: 0, ..*s };
        let alike = settings.iter().all(|s| unseeded(s) == unseeded(&settings[0]));
        if !draws.is_empty() && alike && (rows.len() * vocab * 4) as u64 <= gpu.max_binding {
            for d in draws {
                d.1.validate()?;
            }
            let all = gpu.alloc((rows.len() * vocab * 4) as u64, "logits rows")?;
            let out = gpu.alloc(words * draws.len() as u64, "sampled tokens")?;
            let mut r = Recorder::new(gpu);
            self.record_rows_logits_into(&mut r, hidden, &rows, &all)?;
            let keyed = draws
                .iter()
                .zip(&settings)
                .map(|(d, s)| Ok((at(&d.0)?, s.seed, d.2)))
                .collect::<Result<Vec<_>>>()?;
            r.sample_rows(&all, vocab, &settings[0], &keyed, &out)?;
            r.submit()?;
            let bytes = gpu.read(&out.buffer, 0, words * draws.len() as u64)?;
            return Ok(Sampled::from_words(bytemuck::cast_slice(&bytes)));
        }
        let logits: Vec<GpuBuffer> = rows
            .iter()
            .map(|_| gpu.alloc((vocab * 4) as u64, "logits row"))
            .collect::<Result<_>>()?;
        let one = gpu.alloc(words, "sampled token")?;
        let all = gpu.alloc(words * draws.len() as u64, "sampled tokens")?;
        let mut r = Recorder::new(gpu);
        self.record_rows_logits(&mut r, hidden, &rows, &logits)?;
        for (i, (row, opts, step)) in draws.iter().enumerate() {
            opts.validate()?;
            let at = at(row)?;
            r.sample(
                &logits[at],
                vocab,
                &SamplerSettings::from(*opts),
                *step,
                1,
                &one,
            )?;
            r.copy(&one, 0, &all, i as u64 * words, words);
        }
        r.submit()?;
        let bytes = gpu.read(&all.buffer, 0, words * draws.len() as u64)?;
        Ok(Sampled::from_words(bytemuck::cast_slice(&bytes)))
    }
}

/// One sample of `sample_group`: its tokens, each token's log-prob under the distribution it
/// was drawn from (temperature and filters, renormalised: what vLLM calls processed
/// logprobs), and under the unfiltered distribution at the sampling temperature.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupSample {
    pub ids: Vec<u32>,
    pub logprobs: Vec<f32>,
    pub plain_logprobs: Vec<f32>,
}

/// A sample's state in `sample_group`.
struct Sample {
    s: GroupSample,
    done: bool,
}

impl Sample {
    fn push(&mut self, d: &Sampled) {
        self.s.ids.push(d.id);
        self.s.logprobs.push(d.logprob);
        self.s.plain_logprobs.push(d.plain_logprob);
    }
}

impl Model {
    /// `opts.len()` samples of `prompt`, at most `max_new` tokens each, decoded together.
    /// `finished(j, ids)` says whether sample j stops after its newest token (EOS, stop
    /// strings). Returns each sample's tokens and their log-probs (`GroupSample`).
    pub fn sample_group(
        &self,
        gpu: &Gpu,
        prompt: &[u32],
        opts: &[SamplingOptions],
        max_new: usize,
        lora: Option<&Lora>,
        finished: impl FnMut(usize, &[u32]) -> Result<bool>,
    ) -> Result<Vec<GroupSample>> {
        self.sample_group_with_images(gpu, prompt, None, opts, max_new, lora, finished)
    }

    /// [`Model::sample_group`] of a prompt whose image tokens take `images` (image features,
    /// see `forward_with_images`): the images are run once, in the shared prefill.
    #[allow(clippy::too_many_arguments)]
    pub fn sample_group_with_images(
        &self,
        gpu: &Gpu,
        prompt: &[u32],
        images: Option<&GpuBuffer>,
        opts: &[SamplingOptions],
        max_new: usize,
        lora: Option<&Lora>,
        finished: impl FnMut(usize, &[u32]) -> Result<bool>,
    ) -> Result<Vec<GroupSample>> {
        let samples = self.sample_group_keeping(gpu, prompt, images, opts, max_new, lora, false, finished)?;
        Ok(samples.0)
    }

    /// [`Model::sample_group_with_images`]; with `keep`, also the activations of every row it
    /// ran, which a training pass of the group with the same adapter takes instead of its
    /// forward pass (`KeptRollout`, `Model::saved_from_rollout`). The prompt is then prefilled
    /// as a packed pass is run (`forward_saving_with_images`) and the decode steps keep their
    /// layers' activations apart.
    #[allow(clippy::too_many_arguments)]
    pub fn sample_group_keeping(
        &self,
        gpu: &Gpu,
        prompt: &[u32],
        images: Option<&GpuBuffer>,
        opts: &[SamplingOptions],
        max_new: usize,
        lora: Option<&Lora>,
        keep: bool,
        mut finished: impl FnMut(usize, &[u32]) -> Result<bool>,
    ) -> Result<(Vec<GroupSample>, Option<KeptRollout>)> {
        let (p, g) = (prompt.len(), opts.len());
        if p == 0 {
            return Err(Error::Invalid("the prompt is empty".into()));
        }
        if g == 0 || max_new == 0 {
            return Ok((vec![GroupSample::default(); g], None));
        }
        // Cache: the prompt, then max_new - 1 slots per sample (its last token is never run).
        let seg = max_new - 1;
        let mut cache = self.new_cache(gpu, p + g * seg.max(1))?;
        let mut kept = None;
        let first = if keep {
            let k = self.prefill_keeping(gpu, prompt, images, &mut cache, lora)?;
            let draws: Vec<(usize, &SamplingOptions, u64)> = opts.iter().map(|o| (p - 1, o, 0)).collect();
            let first = self.sample_rows(gpu, k.prompt_hidden(), &draws)?;
            kept = Some(k);
            first
        } else {
            let hidden = self.forward_with_images(gpu, prompt, images, &mut cache, lora)?;
            let draws: Vec<(usize, &SamplingOptions, u64)> = opts.iter().map(|o| (p - 1, o, 0)).collect();
            self.sample_rows(gpu, &hidden, &draws)?
        };
        let mut samples: Vec<Sample> = first
            .iter()
            .map(|d| {
                let mut s = Sample { s: GroupSample::default(), done: false };
                s.push(d);
                s
            })
            .collect();
        for (j, s) in samples.iter_mut().enumerate() {
            s.done = max_new == 1 || finished(j, &s.s.ids)?;
        }
        for step in 1..max_new {
            let active: Vec<usize> = (0..g).filter(|&j| !samples[j].done).collect();
            if active.is_empty() {
                break;
            }
            let rows: Vec<DecodeRow> = active
                .iter()
                .map(|&j| DecodeRow {
                    id: *samples[j].s.ids.last().unwrap_or(&0),
                    position: p + step - 1,
                    slot: p + j * seg + step - 1,
                    segment: p + j * seg,
                })
                .collect();
            let (h, acts) = self.forward_rows_keeping(gpu, &rows, p, &cache, lora, kept.is_some())?;
            let draws: Vec<(usize, &SamplingOptions, u64)> = active
                .iter()
                .enumerate()
                .map(|(row, &j)| (row, &opts[j], step as u64))
                .collect();
            let next = self.sample_rows(gpu, &h, &draws)?;
            if let (Some(k), Some(acts)) = (kept.as_mut(), acts) {
                k.push_step(active.clone(), rows.iter().map(|r| r.id).collect(), acts, h);
            }
            for (&j, d) in active.iter().zip(&next) {
                let s = &mut samples[j];
                s.push(d);
                s.done = step + 1 == max_new || finished(j, &s.s.ids)?;
            }
        }
        Ok((samples.into_iter().map(|s| s.s).collect(), kept))
    }
}

/// One prompt of `sample_prompts`: its ids, and the options of each of its samples.
#[derive(Clone, Copy, Debug)]
pub struct PromptSamples<'a> {
    pub prompt: &'a [u32],
    /// The features of the prompt's image tokens (a vision-language model's prompt).
    pub images: Option<&'a GpuBuffer>,
    pub opts: &'a [SamplingOptions],
}

/// A prompt prefix's keys and values, prefilled once (`Model::prefill_prefix`) and shared by
/// every `sample_prompts_after` call whose prompts continue it: evaluation prefills the
/// dataset's common prefix once for all its batches.
pub struct SharedPrefix {
    ids: Vec<u32>,
    /// `None` for the empty prefix (nothing shared).
    cache: Option<KvCache>,
}

impl SharedPrefix {
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The length of the longest prefix every prompt starts with that still leaves each prompt at
/// least one token of its own (its last hidden state gives its first draw); 0 without prompts.
pub fn common_prefix_len(prompts: &[&[u32]]) -> usize {
    let Some((first, rest)) = prompts.split_first() else {
        return 0;
    };
    let shared = rest.iter().fold(first.len(), |l, p| {
        l.min(first.iter().zip(p.iter()).take_while(|(a, b)| a == b).count())
    });
    let shortest = prompts.iter().map(|p| p.len()).min().unwrap_or(0);
    shared.min(shortest.saturating_sub(1))
}

/// Sample k of `sample_prompts`: its prompt, its index among the prompt's options, and the
/// first cache slot of its segment (the prompt's tokens after the shared prefix, then
/// max_new - 1 slots).
#[derive(Clone, Copy)]
struct Owner {
    prompt: usize,
    sample: usize,
    start: usize,
}

impl Model {
    /// Prefills `ids` once (with `lora`, which every `sample_prompts_after` on it must use too)
    /// for `sample_prompts_after`. An empty `ids` shares nothing.
    pub fn prefill_prefix(&self, gpu: &Gpu, ids: &[u32], lora: Option<&Lora>) -> Result<SharedPrefix> {
        if ids.is_empty() {
            return Ok(SharedPrefix { ids: Vec::new(), cache: None });
        }
        let mut cache = self.new_cache(gpu, ids.len())?;
        self.forward(gpu, ids, &mut cache, lora)?;
        Ok(SharedPrefix { ids: ids.to_vec(), cache: Some(cache) })
    }

    /// The samples of several different prompts, decoded side by side after their common
    /// prefix, which is prefilled once: see `sample_prompts_after`. The prefix is this batch's
    /// (up to the first image token of a prompt with images), so a prompt's results can differ
    /// with its neighbours by rounding (a prefill in two pieces adds in another order);
    /// `sample_prompts_after` with a fixed prefix does not.
    pub fn sample_prompts(
        &self,
        gpu: &Gpu,
        prompts: &[PromptSamples],
        max_new: usize,
        lora: Option<&Lora>,
        finished: impl FnMut(usize, usize, &[u32]) -> Result<bool>,
    ) -> Result<Vec<Vec<GroupSample>>> {
        let ids: Vec<&[u32]> = prompts.iter().map(|p| p.prompt).collect();
        // Image features go in a prompt's own tokens, never in the prefix.
        let before_images = prompts.iter().map(|p| self.text_before_images(p)).min().unwrap_or(0);
        let l = common_prefix_len(&ids).min(before_images);
        let prefix = self.prefill_prefix(gpu, ids.first().map_or(&[][..], |p| &p[..l]), lora)?;
        self.sample_prompts_after(gpu, &prefix, prompts, max_new, lora, finished)
    }

    /// A prompt's tokens before its first image token (all of them without images).
    fn text_before_images(&self, p: &PromptSamples) -> usize {
        match (p.images, self.cfg.image_token_id) {
            (Some(_), Some(image)) => p.prompt.iter().position(|&id| id == image).unwrap_or(p.prompt.len()),
            _ => p.prompt.len(),
        }
    }

    /// The samples of several different prompts that all continue `prefix`, decoded side by
    /// side: the prefix's keys and values are in the cache once, every sample owns a segment
    /// holding the rest of its prompt (prefilled once per prompt on top of the prefix, as
    /// `forward` continues a cache), then its own tokens; one forward pass per step runs every
    /// unfinished sample of every prompt (`forward_rows`). Sample j of prompt i draws as in
    /// `sample_group(prompts[i].prompt, prompts[i].opts, ..)`: the same options and step
    /// counters, so the same seeded draws. `finished(i, j, ids)` says whether that sample stops
    /// after its newest token. The cache holds the prefix and Σ samples × (prompt − prefix +
    /// max_new − 1) positions.
    pub fn sample_prompts_after(
        &self,
        gpu: &Gpu,
        prefix: &SharedPrefix,
        prompts: &[PromptSamples],
        max_new: usize,
        lora: Option<&Lora>,
        mut finished: impl FnMut(usize, usize, &[u32]) -> Result<bool>,
    ) -> Result<Vec<Vec<GroupSample>>> {
        self.check_continues(prefix, prompts)?;
        let n: usize = prompts.iter().map(|p| p.opts.len()).sum();
        if n == 0 || max_new == 0 {
            return Ok(prompts.iter().map(|p| vec![GroupSample::default(); p.opts.len()]).collect());
        }
        let l = prefix.len();
        let mut owners: Vec<Owner> = Vec::with_capacity(n);
        let mut total = l;
        for (i, p) in prompts.iter().enumerate() {
            for j in 0..p.opts.len() {
                owners.push(Owner { prompt: i, sample: j, start: total });
                total += p.prompt.len() - l + max_new - 1;
            }
        }
        let cache = self.new_cache(gpu, total)?;
        let lasts = self.prefill_suffixes(gpu, prefix, prompts, &owners, &cache, lora)?;
        let opts = |k: usize| &prompts[owners[k].prompt].opts[owners[k].sample];
        let draws: Vec<(usize, &SamplingOptions, u64)> =
            (0..n).map(|k| (owners[k].prompt, opts(k), 0)).collect();
        let first = self.sample_rows(gpu, &lasts, &draws)?;
        let mut samples: Vec<Sample> = Vec::with_capacity(n);
        for (k, d) in first.iter().enumerate() {
            let mut s = Sample { s: GroupSample::default(), done: false };
            s.push(d);
            s.done = max_new == 1 || finished(owners[k].prompt, owners[k].sample, &s.s.ids)?;
            samples.push(s);
        }
        for step in 1..max_new {
            let active: Vec<usize> = (0..n).filter(|&k| !samples[k].done).collect();
            if active.is_empty() {
                break;
            }
            let rows: Vec<DecodeRow> = active
                .iter()
                .map(|&k| {
                    let o = owners[k];
                    let at = prompts[o.prompt].prompt.len() + step - 1;
                    DecodeRow {
                        id: *samples[k].s.ids.last().unwrap_or(&0),
                        position: at,
                        slot: o.start + at - l,
                        segment: o.start,
                    }
                })
                .collect();
            let hs = self.forward_rows(gpu, &rows, l, &cache, lora)?;
            let draws: Vec<(usize, &SamplingOptions, u64)> = active
                .iter()
                .enumerate()
                .map(|(r, &k)| (r, opts(k), step as u64))
                .collect();
            let next = self.sample_rows(gpu, &hs, &draws)?;
            for (&k, d) in active.iter().zip(&next) {
                let s = &mut samples[k];
                s.push(d);
                s.done = step + 1 == max_new || finished(owners[k].prompt, owners[k].sample, &s.s.ids)?;
            }
        }
        let mut out: Vec<Vec<GroupSample>> = prompts.iter().map(|p| Vec::with_capacity(p.opts.len())).collect();
        for (k, s) in samples.into_iter().enumerate() {
            out[owners[k].prompt].push(s.s);
        }
        Ok(out)
    }

    /// Every prompt is nonempty, starts with `prefix` and has a token after it, and keeps its
    /// image tokens after it (the prefix was prefilled without image features).
    fn check_continues(&self, prefix: &SharedPrefix, prompts: &[PromptSamples]) -> Result<()> {
        for (i, p) in prompts.iter().enumerate() {
            if p.prompt.is_empty() {
                return Err(Error::Invalid("the prompt is empty".into()));
            }
            if p.prompt.len() <= prefix.len() || !p.prompt.starts_with(&prefix.ids) {
                return Err(Error::Invalid(format!(
                    "prompt {i} ({} tokens) does not continue the shared prefix of {} tokens: it must start with it and have a token of its own after it",
                    p.prompt.len(),
                    prefix.len()
                )));
            }
            if self.text_before_images(p) < prefix.len() {
                return Err(Error::Invalid(format!(
                    "prompt {i} has images, but an image token lies in the shared prefix of {} tokens: image features can only go after it",
                    prefix.len()
                )));
            }
        }
        Ok(())
    }

    /// Copies the prefix into the cache's first slots, prefills each prompt's tokens after it
    /// once and copies their keys and values into its samples' segments. Returns each prompt's
    /// last hidden state, row i. `PromptPrefill::Together`: text prompts are prefilled
    /// together, as rows of `forward_rows` written straight into their first sample's segment
    /// (each row sees the prefix and its prompt's rows up to itself), `PREFILL_ROWS` rows a
    /// pass. Otherwise, and in a batch with images, one prompt at a time on a scratch cache
    /// holding the prefix (so positions and attention continue it).
    fn prefill_suffixes(
        &self,
        gpu: &Gpu,
        prefix: &SharedPrefix,
        prompts: &[PromptSamples],
        owners: &[Owner],
        cache: &KvCache,
        lora: Option<&Lora>,
    ) -> Result<GpuBuffer> {
        let (l, h) = (prefix.len(), self.cfg.hidden_size);
        let row = (self.cfg.num_kv_heads * self.cfg.head_dim * 4) as u64;
        let together = PromptPrefill::of(gpu) == PromptPrefill::Together && prompts.iter().all(|p| p.images.is_none());
        let longest = prompts.iter().map(|p| p.prompt.len()).max().unwrap_or(1);
        let mut scratch = if together { None } else { Some(self.new_cache(gpu, longest)?) };
        if let Some(pc) = &prefix.cache {
            let mut r = Recorder::new(gpu);
            for li in 0..self.layers.len() {
                for dst in scratch.iter().chain([cache]) {
                    r.copy(&pc.k[li], 0, &dst.k[li], 0, l as u64 * row);
                    r.copy(&pc.v[li], 0, &dst.v[li], 0, l as u64 * row);
                }
            }
            r.submit()?;
        }
        let lasts = gpu.alloc((prompts.len() * h * 4) as u64, "prompts' last hidden")?;
        // Each prompt's own tokens, once: in its first sample's segment (together) or in the
        // scratch cache; then copied into its other samples' segments.
        let firsts: Vec<Option<&Owner>> =
            (0..prompts.len()).map(|i| owners.iter().find(|o| o.prompt == i)).collect();
        if together {
            let rows: Vec<(usize, DecodeRow)> = prompts
                .iter()
                .zip(&firsts)
                .enumerate()
                .filter_map(|(i, (p, o))| o.map(|o| (i, p, o)))
                .flat_map(|(i, p, o)| {
                    (l..p.prompt.len()).map(move |at| {
                        let (id, slot) = (p.prompt[at], o.start + at - l);
                        (i, DecodeRow { id, position: at, slot, segment: o.start })
                    })
                })
                .collect();
            // Rows of one prompt may span two passes: the earlier pass wrote the keys and
            // values the later rows see.
            for chunk in rows.chunks(PREFILL_ROWS) {
                let batch: Vec<DecodeRow> = chunk.iter().map(|&(_, d)| d).collect();
                let hidden = self.forward_rows(gpu, &batch, l, cache, lora)?;
                let mut r = Recorder::new(gpu);
                for (k, &(i, d)) in chunk.iter().enumerate() {
                    if d.position + 1 == prompts[i].prompt.len() {
                        r.copy(&hidden, (k * h * 4) as u64, &lasts, (i * h * 4) as u64, (h * 4) as u64);
                    }
                }
                r.submit()?;
            }
        }
        for (i, p) in prompts.iter().enumerate() {
            let Some(first) = firsts[i] else { continue };
            let own = p.prompt.len() - l;
            let mut r = Recorder::new(gpu);
            let (src, from) = match scratch.as_mut() {
                Some(scratch) => {
                    scratch.len = l;
                    let hidden = self.forward_with_images(gpu, &p.prompt[l..], p.images, scratch, lora)?;
                    r.copy(&hidden, ((own - 1) * h * 4) as u64, &lasts, (i * h * 4) as u64, (h * 4) as u64);
                    (&*scratch, l)
                }
                None => (cache, first.start),
            };
            let others: Vec<&Owner> =
                owners.iter().filter(|o| o.prompt == i && (!together || o.start != first.start)).collect();
            let bytes = own as u64 * row;
            // A buffer cannot be copied into itself: within the cache, through `hop`.
            let hop = if !together || others.is_empty() { None } else { Some(gpu.alloc(bytes, "prompt keys or values")?) };
            for li in 0..self.layers.len() {
                for (from_kv, to_kv) in [(&src.k[li], &cache.k[li]), (&src.v[li], &cache.v[li])] {
                    let (from_buf, from_at) = match &hop {
                        Some(hop) => {
                            r.copy(from_kv, from as u64 * row, hop, 0, bytes);
                            (hop, 0)
                        }
                        None => (from_kv, from as u64 * row),
                    };
                    for o in &others {
                        r.copy(from_buf, from_at, to_kv, o.start as u64 * row, bytes);
                    }
                }
            }
            r.submit()?;
        }
        Ok(lasts)
    }
}
