//! Online rollouts: G completions of one prompt, sampled on the device. The prompt is prefilled
//! once, and by default the G samples decode together, one forward pass per token for all of
//! them (`model::decode`); the one-at-a-time ways remain for comparison.

use crate::data::dataset::Prompt;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuBuffer};
use crate::lora::Lora;
use super::config::SamplerLogprobs;
use crate::model::decode::{GroupSample, PromptSamples, SharedPrefix};
use crate::model::keep::KeptRollout;
use crate::model::generate::SamplingOptions;
use crate::model::{Model, Tokenizer};

#[derive(Clone, Debug)]
pub struct Completion {
    pub ids: Vec<u32>,
    /// Log-prob of each token under the distribution it was sampled from (temperature and
    /// filters applied, renormalised: vLLM's processed logprobs), as the sampler computed it.
    pub logprobs: Vec<f32>,
    /// Log-prob of each token under the unfiltered distribution at the sampling temperature
    /// (log-softmax of logits / temperature at the drawn id), as the sampler computed it.
    pub plain_logprobs: Vec<f32>,
    pub text: String,
    /// Ended by an EOS token or a stop string (not by the length limit).
    pub finished: bool,
}

/// A dataset row's prompt as token ids, the same for training and evaluation: a string is
/// tokenized with the tokenizer's special tokens (like `score`), chat messages are rendered
/// with the model's chat template and generation prompt.
pub fn prompt_ids(tokenizer: &Tokenizer, prompt: &Prompt) -> Result<Vec<u32>> {
    let (text, special) = prompt_text(tokenizer, prompt)?;
    tokenizer.encode(&text, special)
}

/// The text `prompt_ids` tokenizes, and whether the tokenizer adds its special tokens.
pub fn prompt_text(tokenizer: &Tokenizer, prompt: &Prompt) -> Result<(String, bool)> {
    Ok(match prompt {
        Prompt::Text(t) => (t.clone(), true),
        Prompt::Chat(m) => (tokenizer.messages_text(m)?, false),
        Prompt::Parts(m) => (tokenizer.parts_text(m)?, false),
    })
}

/// A prompt with its image files (a vision-language model's row): ids with the image places
/// expanded, and the image tokens' features from `vision` (`None` without images).
pub fn prompt_with_images(
    gpu: &Gpu,
    tokenizer: &Tokenizer,
    vision: Option<&crate::vision::ImageSide>,
    prompt: &Prompt,
    images: &[std::path::PathBuf],
) -> Result<(Vec<u32>, Option<crate::gpu::GpuBuffer>)> {
    if images.is_empty() {
        return Ok((prompt_ids(tokenizer, prompt)?, None));
    }
    // The tower is checked before any file is read: a text model's error names the cause.
    vision.ok_or_else(crate::vision::model::no_tower)?;
    let decoded = images
        .iter()
        .map(|p| crate::vision::preprocess::RgbImage::open(p))
        .collect::<Result<Vec<_>>>()?;
    prompt_with_pixels(gpu, tokenizer, vision, prompt, &decoded)
}

/// [`prompt_with_images`] of images already decoded (the C ABI's pixels, or files read): the
/// one place a prompt's image places are filled, for `edgerl train` and the sessions alike.
pub fn prompt_with_pixels(
    gpu: &Gpu,
    tokenizer: &Tokenizer,
    vision: Option<&crate::vision::ImageSide>,
    prompt: &Prompt,
    images: &[crate::vision::preprocess::RgbImage],
) -> Result<(Vec<u32>, Option<crate::gpu::GpuBuffer>)> {
    if images.is_empty() {
        return Ok((prompt_ids(tokenizer, prompt)?, None));
    }
    let side = vision.ok_or_else(crate::vision::model::no_tower)?;
    let (text, special) = prompt_text(tokenizer, prompt)?;
    let (ids, features) = side.encode_text(gpu, tokenizer, &text, special, images)?;
    Ok((ids, Some(features)))
}

/// Whether the last of `ids` completed one of the `stop` strings: the text holds a stop string
/// that the text without the last token does not. Such a completion ended as the sampler ends
/// on a stop string, so it counts as finished, not truncated (TRL only knows EOS; stop strings
/// are edgerl's, and `mask_truncated_completions` / `completions/clipped_ratio` treat them like
/// EOS). `decode` is the tokenizer's.
pub fn ends_with_stop(decode: impl Fn(&[u32]) -> Result<String>, stop: &[String], ids: &[u32]) -> Result<bool> {
    if stop.is_empty() || ids.is_empty() {
        return Ok(false);
    }
    let text = decode(ids)?;
    let hit: Vec<&String> = stop.iter().filter(|s| text.contains(s.as_str())).collect();
    if hit.is_empty() {
        return Ok(false);
    }
    let before = decode(&ids[..ids.len() - 1])?;
    Ok(hit.iter().any(|s| !before.contains(s.as_str())))
}

/// The sampling seed of sample `j` of stream `stream`: each gets its own random stream.
pub fn sample_seed(seed: u64, stream: u64, j: usize) -> u64 {
    mix(mix(seed, stream), j as u64)
}

/// SplitMix64 mixing.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub struct GroupSampler<'a> {
    pub gpu: &'a Gpu,
    pub model: &'a Model,
    pub lora: Option<&'a Lora>,
    /// Decodes completions (text, stop strings); `None` leaves `text` empty (benchmarks).
    pub tokenizer: Option<&'a Tokenizer>,
    pub eos: &'a [u32],
    /// Text that ends a completion; the completion keeps the token that completed it.
    pub stop: &'a [String],
    pub max_new_tokens: usize,
    pub opts: SamplingOptions,
    pub decoding: Decoding,
}

/// How a group's samples are decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoding {
    /// All samples together, one forward pass per token over the shared prompt (the default).
    Batched,
    /// One sample after another on top of one prefill of the prompt.
    SharedPrefill,
    /// One sample after another, each prefilling the prompt itself (benchmarks measure what
    /// sharing saves).
    Separate,
}

impl Completion {
    /// The sampler's per-token log-probs that the importance-sampling correction compares the
    /// trainer's with (`sampler_logprobs`).
    pub fn sampler_logps(&self, kind: SamplerLogprobs) -> Vec<f32> {
        match kind {
            SamplerLogprobs::Processed => self.logprobs.clone(),
            SamplerLogprobs::Unfiltered => self.plain_logprobs.clone(),
        }
    }
}

impl GroupSampler<'_> {
    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.map_or(Ok(String::new()), |t| t.decode(ids))
    }

    /// Ends at an EOS token, or at a token that completes a stop string.
    fn finished(&self, ids: &[u32]) -> Result<bool> {
        if ids.last().is_some_and(|id| self.eos.contains(id)) {
            return Ok(true);
        }
        if self.stop.is_empty() {
            return Ok(false);
        }
        let text = self.decode(ids)?;
        Ok(self.stop.iter().any(|s| text.contains(s.as_str())))
    }

    fn sample_batched(&self, prompt: &[u32], images: Option<&GpuBuffer>, g: usize, stream: u64) -> Result<Vec<Completion>> {
        Ok(self.sample_batched_keeping(prompt, images, g, stream, false)?.0)
    }

    fn sample_batched_keeping(
        &self,
        prompt: &[u32],
        images: Option<&GpuBuffer>,
        g: usize,
        stream: u64,
        keep: bool,
    ) -> Result<(Vec<Completion>, Option<KeptRollout>)> {
        let opts: Vec<SamplingOptions> = (0..g)
            .map(|j| SamplingOptions { seed: sample_seed(self.opts.seed, stream, j), ..self.opts.clone() })
            .collect();
        let finished = |_, ids: &[u32]| self.finished(ids);
        let (samples, kept) =
            self.model.sample_group_keeping(self.gpu, prompt, images, &opts, self.max_new_tokens, self.lora, keep, finished)?;
        let completions = samples.into_iter().map(|s| self.completion(s)).collect::<Result<_>>()?;
        Ok((completions, kept))
    }

    /// [`GroupSampler::sample_with_images`], batched, keeping the activations of every row it
    /// ran for a training pass of the group with the same adapter (`Model::saved_from_rollout`).
    pub fn sample_keeping(&self, prompt: &[u32], images: Option<&GpuBuffer>, g: usize, stream: u64) -> Result<(Vec<Completion>, Option<KeptRollout>)> {
        self.sample_batched_keeping(prompt, images, g, stream, true)
    }

    fn completion(&self, s: GroupSample) -> Result<Completion> {
        Ok(Completion {
            finished: self.finished(&s.ids)?,
            text: self.decode(&s.ids)?,
            ids: s.ids,
            logprobs: s.logprobs,
            plain_logprobs: s.plain_logprobs,
        })
    }

    /// `g` completions of each of several prompts, given with their streams, all decoded side
    /// by side after their common prefix, prefilled once (`Model::sample_prompts`): prompt i's
    /// are what `sample(prompt, g, stream)` gives with `Decoding::Batched`, the same seeded
    /// draws, up to rounding (the prompt is prefilled in two pieces).
    pub fn sample_prompts(&self, prompts: &[(&[u32], u64)], g: usize) -> Result<Vec<Vec<Completion>>> {
        let with: Vec<(&[u32], Option<&GpuBuffer>, u64)> = prompts.iter().map(|&(p, s)| (p, None, s)).collect();
        self.sample_prompts_with_images(&with, g)
    }

    /// [`GroupSampler::sample_prompts`] of prompts with their image features (see
    /// `Model::forward_with_images`).
    pub fn sample_prompts_with_images(&self, prompts: &[(&[u32], Option<&GpuBuffer>, u64)], g: usize) -> Result<Vec<Vec<Completion>>> {
        self.side_by_side(None, prompts, g)
    }

    /// `prefix` prefilled once with this sampler's adapter, for `sample_prompts_after`.
    pub fn prefill_prefix(&self, prefix: &[u32]) -> Result<SharedPrefix> {
        self.model.prefill_prefix(self.gpu, prefix, self.lora)
    }

    /// [`GroupSampler::sample_prompts_with_images`] of prompts that all continue `prefix`
    /// (`prefill_prefix`), which they share instead of their own common prefix: with one
    /// prefix for every call (evaluation's, the dataset's), a prompt is prefilled the same way
    /// whatever the prompts decoded beside it.
    pub fn sample_prompts_after(
        &self,
        prefix: &SharedPrefix,
        prompts: &[(&[u32], Option<&GpuBuffer>, u64)],
        g: usize,
    ) -> Result<Vec<Vec<Completion>>> {
        self.side_by_side(Some(prefix), prompts, g)
    }

    fn side_by_side(
        &self,
        prefix: Option<&SharedPrefix>,
        prompts: &[(&[u32], Option<&GpuBuffer>, u64)],
        g: usize,
    ) -> Result<Vec<Vec<Completion>>> {
        let opts: Vec<Vec<SamplingOptions>> = prompts
            .iter()
            .map(|&(_, _, stream)| {
                (0..g)
                    .map(|j| SamplingOptions { seed: sample_seed(self.opts.seed, stream, j), ..self.opts.clone() })
                    .collect()
            })
            .collect();
        let batch: Vec<PromptSamples> = prompts
            .iter()
            .zip(&opts)
            .map(|(&(prompt, images, _), opts)| PromptSamples { prompt, images, opts })
            .collect();
        let finished = |_, _, ids: &[u32]| self.finished(ids);
        let (m, max_new) = (self.model, self.max_new_tokens);
        let samples = match prefix {
            Some(p) => m.sample_prompts_after(self.gpu, p, &batch, max_new, self.lora, finished)?,
            None => m.sample_prompts(self.gpu, &batch, max_new, self.lora, finished)?,
        };
        samples
            .into_iter()
            .map(|group| group.into_iter().map(|s| self.completion(s)).collect())
            .collect()
    }

    /// `g` completions of `prompt`; `stream` distinguishes prompts and steps for the seed.
    pub fn sample(&self, prompt: &[u32], g: usize, stream: u64) -> Result<Vec<Completion>> {
        self.sample_with_images(prompt, None, g, stream)
    }

    /// [`GroupSampler::sample`] of a prompt whose image tokens take `images` (features).
    pub fn sample_with_images(&self, prompt: &[u32], images: Option<&GpuBuffer>, g: usize, stream: u64) -> Result<Vec<Completion>> {
        if prompt.is_empty() {
            return Err(Error::Invalid("the prompt is empty".into()));
        }
        if self.decoding == Decoding::Batched {
            return self.sample_batched(prompt, images, g, stream);
        }
        let p = prompt.len();
        let mut cache = self.model.new_cache(self.gpu, p + self.max_new_tokens)?;
        let prefill = |cache: &mut crate::model::KvCache| -> Result<crate::gpu::GpuBuffer> {
            cache.len = 0;
            self.model.forward_with_images(self.gpu, prompt, images, cache, self.lora)
        };
        let shared = if self.decoding == Decoding::SharedPrefill { Some(prefill(&mut cache)?) } else { None };
        let mut out = Vec::with_capacity(g);
        for j in 0..g {
            let opts = SamplingOptions { seed: sample_seed(self.opts.seed, stream, j), ..self.opts.clone() };
            // Positions past the prompt are rewritten by each sample, so the prompt's keys
            // and values serve every sample of the group.
            let own;
            let prompt_hidden = match &shared {
                Some(h) => {
                    cache.len = p;
                    h
                }
                None => {
                    own = prefill(&mut cache)?;
                    &own
                }
            };
            // Sampled on the GPU: each step reads back a token id and its log-probs.
            let draw = |h: &crate::gpu::GpuBuffer, row: usize, step: u64| -> Result<crate::gpu::sample::Sampled> {
                let d = self.model.sample_rows(self.gpu, h, &[(row, &opts, step)])?;
                d.into_iter().next().ok_or_else(|| Error::Invalid("the sampler drew nothing".into()))
            };
            let mut next = draw(prompt_hidden, p - 1, 0)?;
            let mut ids = Vec::new();
            let mut logprobs = Vec::new();
            let mut plain_logprobs = Vec::new();
            let mut finished = false;
            for step in 0..self.max_new_tokens {
                let id = next.id;
                ids.push(id);
                logprobs.push(next.logprob);
                plain_logprobs.push(next.plain_logprob);
                if self.eos.contains(&id) {
                    finished = true;
                    break;
                }
                if !self.stop.is_empty() {
                    let text = self.decode(&ids)?;
                    if self.stop.iter().any(|s| text.contains(s.as_str())) {
                        finished = true;
                        break;
                    }
                }
                if step + 1 == self.max_new_tokens {
                    break;
                }
                let h = self.model.forward(self.gpu, &[id], &mut cache, self.lora)?;
                next = draw(&h, 0, step as u64 + 1)?;
            }
            let text = self.decode(&ids)?;
            out.push(Completion { ids, logprobs, plain_logprobs, text, finished });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy decoder: id n is the character ('a' + n), 26 is "</a", 27 is "nswer>".
    fn decode(ids: &[u32]) -> Result<String> {
        Ok(ids
            .iter()
            .map(|&i| match i {
                26 => "</a".to_string(),
                27 => "nswer>".to_string(),
                i => char::from(b'a' + i as u8).to_string(),
            })
            .collect())
    }

    #[test]
    fn a_stop_string_completed_by_the_last_token_ends_a_completion() {
        let stop = vec!["</answer>".to_string(), "xy".to_string()];
        assert!(ends_with_stop(decode, &stop, &[0, 26, 27]).unwrap());
        assert!(ends_with_stop(decode, &stop, &[23, 24]).unwrap());
        // Not yet complete, or completed earlier (not by the last token), or no stop strings.
        assert!(!ends_with_stop(decode, &stop, &[0, 26]).unwrap());
        assert!(!ends_with_stop(decode, &stop, &[23, 24, 2]).unwrap());
        assert!(!ends_with_stop(decode, &[], &[23, 24]).unwrap());
        assert!(!ends_with_stop(decode, &stop, &[]).unwrap());
    }
}
