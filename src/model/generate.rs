//! Token sampling: greedy at temperature 0, else temperature, top-k, top-p and min-p with a
//! seeded counter-based generator (same seed, same device ⇒ same tokens).

use crate::error::{Error, Result};
use crate::gpu::Gpu;

use super::forward::Model;
use super::adapter::Lora;

#[derive(Clone, Debug)]
pub struct SamplingOptions {
    pub max_new_tokens: usize,
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub min_p: f32,
    pub seed: u64,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        SamplingOptions {
            max_new_tokens: 64,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: 0,
        }
    }
}

/// What the GPU sampler takes of the options (gpu sits below model and doesn't know them).
impl From<&SamplingOptions> for crate::gpu::sample::SamplerSettings {
    fn from(o: &SamplingOptions) -> Self {
        crate::gpu::sample::SamplerSettings {
            temperature: o.temperature,
            top_k: o.top_k,
            top_p: o.top_p,
            min_p: o.min_p,
            seed: o.seed,
        }
    }
}

/// The most new tokens one call may ask for: far beyond any context, small enough that the KV
/// cache's size (prompt + new tokens, times the model's key width) cannot overflow. Without it
/// `usize::MAX` wrapped the cache's length around to a few rows and failed in a kernel check.
pub const MAX_NEW_TOKENS: usize = 1 << 24;

impl SamplingOptions {
    pub fn validate(&self) -> Result<()> {
        if self.max_new_tokens > MAX_NEW_TOKENS {
            return Err(Error::Invalid(format!(
                "--max-new-tokens must be at most {MAX_NEW_TOKENS}, got {}",
                self.max_new_tokens
            )));
        }
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::Invalid(format!(
                "--temperature must be >= 0, got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::Invalid(format!(
                "--top-p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(Error::Invalid(format!(
                "--min-p must be in [0, 1], got {}",
                self.min_p
            )));
        }
        Ok(())
    }
}

/// SplitMix64 of (seed, step): a counter-based draw, so step n's draw doesn't depend on how
/// many numbers earlier steps consumed.
pub fn uniform(seed: u64, step: u64) -> f64 {
    let mut z = seed.wrapping_add(step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Picks the next token from one row of logits on the CPU — the reference the GPU sampler
/// (`Model::sample_next`) is tested against.
pub fn sample(logits: &[f32], o: &SamplingOptions, step: u64) -> u32 {
    let argmax = || {
        let mut best = 0;
        for (i, &v) in logits.iter().enumerate() {
            if v > logits[best] {
                best = i;
            }
        }
        best as u32
    };
    if o.temperature == 0.0 {
        return argmax();
    }
    let mut cand: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as u32, v as f64 / o.temperature as f64))
        .collect();
    cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if o.top_k > 0 {
        cand.truncate(o.top_k);
    }
    let m = cand[0].1;
    let mut probs: Vec<f64> = cand.iter().map(|c| (c.1 - m).exp()).collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    // min-p: drop tokens below min_p × the top probability.
    let mut keep = probs.len();
    if o.min_p > 0.0 {
        let floor = probs[0] * o.min_p as f64;
        keep = probs.iter().take_while(|&&p| p >= floor).count().max(1);
    }
    // top-p: the smallest prefix whose mass reaches top_p.
    if o.top_p < 1.0 {
        let mut acc = 0.0;
        let mut n = 0;
        for p in &probs[..keep] {
            acc += p;
            n += 1;
            if acc >= o.top_p as f64 {
                break;
            }
        }
        keep = n.max(1);
    }
    let mass: f64 = probs[..keep].iter().sum();
    let mut u = uniform(o.seed, step) * mass;
    for i in 0..keep {
        u -= probs[i];
        if u <= 0.0 {
            return cand[i].0;
        }
    }
    cand[keep - 1].0
}

/// Generates up to `max_new_tokens` after `prompt`, stopping at any of `eos`.
pub fn generate(
    gpu: &Gpu,
    model: &Model,
    lora: Option<&Lora>,
    prompt: &[u32],
    eos: &[u32],
    o: &SamplingOptions,
) -> Result<Vec<u32>> {
    generate_with_images(gpu, model, lora, prompt, None, eos, o)
}

/// [`generate`] after a prompt whose image tokens take `images` (image features, see
/// `Model::forward_with_images`).
pub fn generate_with_images(
    gpu: &Gpu,
    model: &Model,
    lora: Option<&Lora>,
    prompt: &[u32],
    images: Option<&crate::gpu::GpuBuffer>,
    eos: &[u32],
    o: &SamplingOptions,
) -> Result<Vec<u32>> {
    o.validate()?;
    if prompt.is_empty() {
        return Err(Error::Invalid("the prompt is empty".into()));
    }
    let mut cache = model.new_cache(gpu, prompt.len() + o.max_new_tokens)?;
    let mut out = Vec::new();
    let mut hidden = model.forward_with_images(gpu, prompt, images, &mut cache, lora)?;
    let mut rows = prompt.len();
    for step in 0..o.max_new_tokens {
        // Sampled on the GPU: only the token id comes back.
        let (id, _) = model.sample_next(gpu, &hidden, rows - 1, o, step as u64)?;
        out.push(id);
        if eos.contains(&id) || step + 1 == o.max_new_tokens {
            break;
        }
        hidden = model.forward(gpu, &[id], &mut cache, lora)?;
        rows = 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(temperature: f32, top_k: usize, top_p: f32, min_p: f32, seed: u64) -> SamplingOptions {
        SamplingOptions {
            max_new_tokens: 1,
            temperature,
            top_k,
            top_p,
            min_p,
            seed,
        }
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(
            sample(&[0.0, 3.0, 3.0, -1.0], &opts(0.0, 0, 1.0, 0.0, 0), 0),
            1
        );
    }

    #[test]
    fn filters_restrict_the_candidates() {
        let logits = [5.0, 4.9, 4.8, -10.0, 0.0];
        for seed in 0..200 {
            let id = sample(&logits, &opts(1.0, 2, 1.0, 0.0, seed), 0);
            assert!(id == 0 || id == 1, "top-k 2 drew {id}");
            let id = sample(&logits, &opts(1.0, 0, 0.3, 0.0, seed), 0);
            assert_eq!(id, 0, "top-p 0.3 keeps only the first token");
            let id = sample(&logits, &opts(1.0, 0, 1.0, 0.5, seed), 0);
            assert!(id <= 2, "min-p 0.5 drew {id}");
        }
    }

    #[test]
    fn seeded_draws_repeat_and_vary() {
        let logits: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.3).collect();
        let draw = |seed| {
            (0..20)
                .map(|s| sample(&logits, &opts(1.0, 0, 1.0, 0.0, seed), s))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn frequencies_follow_the_distribution() {
        // p = softmax([ln 3, 0]) = [0.75, 0.25]
        let logits = [3f32.ln(), 0.0];
        let n = 4000;
        let zeros = (0..n)
            .filter(|&s| sample(&logits, &opts(1.0, 0, 1.0, 0.0, 9), s) == 0)
            .count();
        let f = zeros as f64 / n as f64;
        assert!((f - 0.75).abs() < 0.03, "frequency {f}");
    }
}
