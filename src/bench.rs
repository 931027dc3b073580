//! Benchmarks (never part of the test suite's pass/fail): prefill and decode throughput and
//! peak device bytes for a model of a given shape with random weights.

use std::time::Instant;

use crate::error::Result;
use crate::gpu::{DType, Gpu};
use crate::model::generate::{SamplingOptions, sample};
use crate::model::{Model, presets};

#[derive(Debug, serde::Serialize)]
pub struct ForwardBench {
    pub shape: String,
    pub dtype: DType,
    pub backend: String,
    pub adapter: String,
    pub weight_bytes: u64,
    pub load_seconds: f64,
    pub prompt_tokens: usize,
    pub prefill_seconds: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens: usize,
    pub decode_seconds: f64,
    pub decode_tokens_per_s: f64,
    /// Peak bytes of all buffers edgerl allocated, weights included.
    pub peak_device_bytes: u64,
}

pub fn forward_bench(
    gpu: &Gpu,
    shape: &str,
    dtype: DType,
    prompt_tokens: usize,
    decode_tokens: usize,
) -> Result<ForwardBench> {
    let cfg = presets::preset(shape)?;
    let weights = presets::random_weights(&cfg, dtype, 1);
    let t0 = Instant::now();
    let model = Model::load(gpu, cfg.clone(), &weights, Some(dtype))?;
    gpu.wait()?;
    let load_seconds = t0.elapsed().as_secs_f64();

    let prompt: Vec<u32> = (0..prompt_tokens)
        .map(|i| ((i * 7919 + 13) % cfg.vocab_size) as u32)
        .collect();
    let mut cache = model.new_cache(gpu, prompt_tokens + decode_tokens + 1)?;
    // Warm-up: builds every pipeline, so compile time is not counted.
    {
        let mut warm = model.new_cache(gpu, 2)?;
        let h = model.forward(gpu, &prompt[..1], &mut warm, None)?;
        model.row_logits(gpu, &h, 0)?;
    }
    let t1 = Instant::now();
    let hidden = model.forward(gpu, &prompt, &mut cache, None)?;
    let mut logits = model.row_logits(gpu, &hidden, prompt_tokens - 1)?;
    let prefill_seconds = t1.elapsed().as_secs_f64();

    let opts = SamplingOptions {
        temperature: 0.0,
        ..Default::default()
    };
    let t2 = Instant::now();
    for step in 0..decode_tokens {
        let id = sample(&logits, &opts, step as u64);
        let h = model.forward(gpu, &[id], &mut cache, None)?;
        logits = model.row_logits(gpu, &h, 0)?;
    }
    let decode_seconds = t2.elapsed().as_secs_f64();
    Ok(ForwardBench {
        shape: shape.into(),
        dtype,
        backend: gpu.adapter.backend.clone(),
        adapter: gpu.adapter.name.clone(),
        weight_bytes: model.weight_bytes(),
        load_seconds,
        prompt_tokens,
        prefill_seconds,
        prefill_tokens_per_s: prompt_tokens as f64 / prefill_seconds,
        decode_tokens,
        decode_seconds,
        decode_tokens_per_s: decode_tokens as f64 / decode_seconds.max(1e-9),
        peak_device_bytes: gpu.memory.peak(),
    })
}
