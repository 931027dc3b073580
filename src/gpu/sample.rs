//! The GPU sampler (`shaders/sample.wgsl`): picks the next token from one row of logits on the
//! device, so decoding reads back one id and its log-probs instead of a vocabulary row.
//!
//! Semantics match the CPU `model::generate::sample` in distribution (not token for token):
//! temperature 0 is greedy (lowest index on ties); otherwise z = logit / temperature and the
//! kept set is top-k ∩ min-p (p ≥ min_p × p_max) ∩ top-p (the smallest sorted prefix of the
//! top-k-renormalised distribution whose mass reaches top_p), from which a token is drawn with
//! probability ∝ exp(z). Top-k and top-p thresholds are exact values found by bisection, so
//! tokens whose z ties the boundary value are all kept (the CPU keeps the lowest indices). The
//! draw is Gumbel-max with a counter-based hash of (seed, step, token), identical on every
//! backend and independent of earlier draws.

use bytemuck::{Pod, Zeroable};

use super::kernels::{Kernel, Recorder, check_fits, groups_2d};
use super::memory::GpuBuffer;
use crate::error::{Error, Result};

/// Uniform of `sample` in `shaders/sample.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct SampleParams {
    pub n: u32,
    pub draws: u32,
    pub greedy: u32,
    pub top_k: u32,
    pub inv_temp: f32,
    pub top_p: f32,
    pub min_p: f32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub step_lo: u32,
    pub step_hi: u32,
    /// 1: draw d samples its own row (`Recorder::sample_rows`); 0: one row for every draw.
    pub rows: u32,
}

/// Words written per draw: id, log p filtered (f32 bits), log p plain (f32 bits), kept count.
pub const SAMPLE_OUT_WORDS: usize = 4;

/// The sampling filters and seed (the fields of `model::SamplingOptions` the sampler uses;
/// the model floor converts).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerSettings {
    /// 0 = greedy.
    pub temperature: f32,
    /// 0 = off.
    pub top_k: usize,
    /// 1 = off.
    pub top_p: f32,
    /// 0 = off.
    pub min_p: f32,
    pub seed: u64,
}

/// One draw read back from the sampler's output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampled {
    pub id: u32,
    /// log p(id) under the temperature-scaled distribution restricted to the kept set and
    /// renormalised (the distribution it was drawn from; 0 for greedy).
    pub logprob: f32,
    /// log p(id) under the temperature-scaled distribution without filters (greedy:
    /// temperature 1).
    pub plain_logprob: f32,
    /// How many tokens the filters kept (1 for greedy).
    pub kept: u32,
}

impl Sampled {
    /// Decodes `draws` draws from the sampler's output words.
    pub fn from_words(words: &[u32]) -> Vec<Sampled> {
        words
            .chunks_exact(SAMPLE_OUT_WORDS)
            .map(|w| Sampled {
                id: w[0],
                logprob: f32::from_bits(w[1]),
                plain_logprob: f32::from_bits(w[2]),
                kept: w[3],
            })
            .collect()
    }
}

impl Recorder<'_> {
    /// Draws `draws` tokens from the row of `n` logits in `logits` (f32), draw d with counter
    /// `step + d`, writing [draws, 4] u32 words to `out` (see `Sampled`). One 256-thread
    /// workgroup per draw; the row must fit one storage binding.
    pub fn sample(
        &mut self,
        logits: &GpuBuffer,
        n: usize,
        s: &SamplerSettings,
        step: u64,
        draws: usize,
        out: &GpuBuffer,
    ) -> Result<()> {
        let params = self.sample_params(logits, n, s, step, draws, out)?;
        let g = groups_2d(self.gpu, draws as u32);
        // `keys` is read only with `rows`: the logits stand in.
        let bufs = [&logits.buffer, &out.buffer, &logits.buffer];
        self.dispatch(Kernel::Sample, &params, &bufs, g)
    }

    /// The sampler's uniforms after checking its inputs (`sample`).
    fn sample_params(
        &self,
        logits: &GpuBuffer,
        n: usize,
        s: &SamplerSettings,
        step: u64,
        draws: usize,
        out: &GpuBuffer,
    ) -> Result<SampleParams> {
        if n == 0 || n > u32::MAX as usize / 2 || draws == 0 {
            return Err(Error::Invalid(format!(
                "sampling {draws} draws over a row of {n} logits"
            )));
        }
        let ok = s.temperature >= 0.0
            && s.temperature.is_finite()
            && s.top_p > 0.0
            && s.top_p <= 1.0
            && (0.0..=1.0).contains(&s.min_p);
        if !ok {
            return Err(Error::Invalid(format!(
                "sampler settings out of range: {s:?}"
            )));
        }
        if logits.bytes < (n * 4) as u64 || out.bytes < (draws * SAMPLE_OUT_WORDS * 4) as u64 {
            return Err(Error::Invalid(format!(
                "sample: buffers of {} and {} bytes are too small for {n} logits and {draws} draws",
                logits.bytes, out.bytes
            )));
        }
        check_fits(self.gpu, "sampler logits row", (n * 4) as u64)?;
        check_fits(
            self.gpu,
            "sampler output",
            (draws * SAMPLE_OUT_WORDS * 4) as u64,
        )?;
        let greedy = s.temperature == 0.0;
        Ok(SampleParams {
            n: n as u32,
            draws: draws as u32,
            greedy: greedy as u32,
            top_k: s.top_k.min(u32::MAX as usize) as u32,
            inv_temp: if greedy { 1.0 } else { 1.0 / s.temperature },
            top_p: s.top_p,
            min_p: s.min_p,
            seed_lo: s.seed as u32,
            seed_hi: (s.seed >> 32) as u32,
            step_lo: step as u32,
            step_hi: (step >> 32) as u32,
            rows: 0,
        })
    }

    /// One draw per entry of `draws` = (row of `logits` [rows, n], seed, step counter), all in
    /// one dispatch: draw d is what `sample` gives for that row with `s` and that seed (`s.seed`
    /// is not used) and step. Writes [draws, 4] u32 words to `out`.
    pub fn sample_rows(
        &mut self,
        logits: &GpuBuffer,
        n: usize,
        s: &SamplerSettings,
        draws: &[(usize, u64, u64)],
        out: &GpuBuffer,
    ) -> Result<()> {
        let rows = draws.iter().map(|d| d.0 + 1).max().unwrap_or(0);
        if logits.bytes < (rows * n * 4) as u64 {
            return Err(Error::Invalid(format!(
                "sample_rows: a logits buffer of {} bytes holds no row {} of {n}",
                logits.bytes,
                rows.saturating_sub(1)
            )));
        }
        check_fits(self.gpu, "sampler logits rows", (rows * n * 4) as u64)?;
        let params = SampleParams {
            seed_lo: 0,
            seed_hi: 0,
            rows: 1,
            ..self.sample_params(logits, n, s, 0, draws.len(), out)?
        };
        let keys: Vec<u32> = draws
            .iter()
            .flat_map(|&(row, seed, step)| {
                [row as u32, seed as u32, (seed >> 32) as u32, step as u32, (step >> 32) as u32]
            })
            .collect();
        let keys = self.gpu.upload(bytemuck::cast_slice(&keys), "sampler keys")?;
        let g = groups_2d(self.gpu, draws.len() as u32);
        self.dispatch(Kernel::Sample, &params, &[&logits.buffer, &out.buffer, &keys.buffer], g)
    }
}
