//! Benchmarks (never part of the test suite's pass/fail): prefill and decode throughput and
//! peak device bytes for a model of a given shape with random weights.

use std::time::Instant;

use crate::error::Result;
use crate::gpu::{DType, Gpu};
use crate::model::generate::SamplingOptions;
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
    let opts = SamplingOptions { temperature: 0.0, ..Default::default() };
    // Warm-up: builds every pipeline, so compile time is not counted.
    {
        let mut warm = model.new_cache(gpu, 2)?;
        let h = model.forward(gpu, &prompt[..1], &mut warm, None)?;
        model.sample_next(gpu, &h, 0, &opts, 0)?;
    }
    let t1 = Instant::now();
    let hidden = model.forward(gpu, &prompt, &mut cache, None)?;
    let (mut id, _) = model.sample_next(gpu, &hidden, prompt_tokens - 1, &opts, 0)?;
    let prefill_seconds = t1.elapsed().as_secs_f64();

    let t2 = Instant::now();
    for step in 0..decode_tokens {
        let h = model.forward(gpu, &[id], &mut cache, None)?;
        id = model.sample_next(gpu, &h, 0, &opts, step as u64 + 1)?.0;
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

#[derive(Debug, serde::Serialize)]
pub struct TrainBench {
    pub shape: String,
    pub dtype: DType,
    pub backend: String,
    pub adapter: String,
    pub completions: usize,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub lora_rank: usize,
    pub lora_params: usize,
    pub gradient_checkpointing: bool,
    pub weight_bytes: u64,
    /// Peak of everything edgerl allocated during the step, weights included.
    pub peak_device_bytes: u64,
    /// The peak minus the weights: adapter, optimizer state, activations, scratch.
    pub peak_non_weight_bytes: u64,
    pub non_weight_fraction_of_weights: f64,
    pub step_seconds: f64,
    pub tokens_per_s: f64,
}

/// One GRPO step (one group of `completions` sharing a prompt) on random weights with a known
/// model's shapes, LoRA on all seven projections, AdamW.
#[allow(clippy::too_many_arguments)]
pub fn train_bench(
    gpu: &Gpu,
    shape: &str,
    dtype: DType,
    prompt_tokens: usize,
    completions: usize,
    completion_tokens: usize,
    rank: usize,
    gradient_checkpointing: bool,
) -> Result<TrainBench> {
    use crate::rl::TrainConfig;
    use crate::rl::rollouts::Group;
    use crate::rl::trainer::Trainer;
    let cfg = presets::preset(shape)?;
    let weights = presets::random_weights(&cfg, dtype, 1);
    let model = Model::load(gpu, cfg.clone(), &weights, Some(dtype))?;
    let weight_bytes = model.weight_bytes();
    let toml = format!(
        "model = \"<random>\"\noutput_dir = \"<none>\"\nrollouts = \"<none>\"\nloss_type = \"dapo\"\n\
         max_completion_length = {completion_tokens}\nlearning_rate = 1e-5\ngradient_checkpointing = {gradient_checkpointing}\n\
         [lora]\nr = {rank}\nalpha = {}\n",
        2 * rank
    );
    let tc = TrainConfig::from_toml(&toml).map_err(crate::Error::Invalid)?;
    let mut trainer = Trainer::with_model(gpu, tc, model, None, vec![], None)?;
    let id = |i: usize| ((i * 7919 + 13) % cfg.vocab_size) as u32;
    let group = Group {
        prompt_ids: (0..prompt_tokens).map(id).collect(),
        completions: (0..completions).map(|c| (0..completion_tokens).map(|i| id(1000 * (c + 1) + i)).collect()).collect(),
        // Distinct rewards, so no completion is skipped.
        rewards: (0..completions).map(|c| c as f64).collect(),
        weight: 1.0,
    };
    let mut batch = trainer.batch(&[&group]);
    // Warm-up on a tiny batch builds every pipeline, so compile time is not counted.
    {
        let small = Group { prompt_ids: vec![1, 2], completions: vec![vec![3], vec![4]], rewards: vec![0.0, 1.0], weight: 1.0 };
        let mut b = trainer.batch(&[&small]);
        trainer.step(&mut b)?;
    }
    gpu.wait()?;
    gpu.memory.reset_peak();
    let t0 = Instant::now();
    trainer.step(&mut batch)?;
    gpu.wait()?;
    let step_seconds = t0.elapsed().as_secs_f64();
    let peak = gpu.memory.peak();
    let non_weight = peak.saturating_sub(weight_bytes);
    Ok(TrainBench {
        shape: shape.into(),
        dtype,
        backend: gpu.adapter.backend.clone(),
        adapter: gpu.adapter.name.clone(),
        completions,
        prompt_tokens,
        completion_tokens,
        lora_rank: rank,
        lora_params: trainer.lora.num_params(),
        gradient_checkpointing,
        weight_bytes,
        peak_device_bytes: peak,
        peak_non_weight_bytes: non_weight,
        non_weight_fraction_of_weights: non_weight as f64 / weight_bytes as f64,
        step_seconds,
        tokens_per_s: (completions * (prompt_tokens + completion_tokens)) as f64 / step_seconds,
    })
}

#[derive(Debug, serde::Serialize)]
pub struct RolloutBench {
    pub shape: String,
    pub dtype: DType,
    pub backend: String,
    pub adapter: String,
    pub prompt_tokens: usize,
    pub completions: usize,
    pub completion_tokens: usize,
    /// Completion tokens per second with the prompt prefilled once per group.
    pub shared_tokens_per_s: f64,
    pub shared_seconds: f64,
    /// The same group with the prompt prefilled for every sample.
    pub unshared_tokens_per_s: f64,
    pub unshared_seconds: f64,
    pub speedup: f64,
}

/// Sampling one group of `completions` (temperature 1, no EOS stop) on random weights, with
/// and without sharing the prompt's prefill, in the same run.
pub fn rollout_bench(gpu: &Gpu, shape: &str, dtype: DType, prompt_tokens: usize, completions: usize, completion_tokens: usize) -> Result<RolloutBench> {
    use crate::rl::rollout::GroupSampler;
    let cfg = presets::preset(shape)?;
    let weights = presets::random_weights(&cfg, dtype, 1);
    let model = Model::load(gpu, cfg.clone(), &weights, Some(dtype))?;
    let prompt: Vec<u32> = (0..prompt_tokens).map(|i| ((i * 7919 + 13) % cfg.vocab_size) as u32).collect();
    let run = |share: bool, n: usize| -> Result<f64> {
        let s = GroupSampler {
            gpu,
            model: &model,
            lora: None,
            tokenizer: None,
            eos: &[],
            stop: &[],
            max_new_tokens: n,
            opts: SamplingOptions { max_new_tokens: n, temperature: 1.0, ..Default::default() },
            share_prefill: share,
        };
        let t0 = Instant::now();
        s.sample(&prompt, completions, 0)?;
        gpu.wait()?;
        Ok(t0.elapsed().as_secs_f64())
    };
    run(true, 1)?; // builds every pipeline
    let shared = run(true, completion_tokens)?;
    let unshared = run(false, completion_tokens)?;
    let tokens = (completions * completion_tokens) as f64;
    Ok(RolloutBench {
        shape: shape.into(),
        dtype,
        backend: gpu.adapter.backend.clone(),
        adapter: gpu.adapter.name.clone(),
        prompt_tokens,
        completions,
        completion_tokens,
        shared_tokens_per_s: tokens / shared,
        shared_seconds: shared,
        unshared_tokens_per_s: tokens / unshared,
        unshared_seconds: unshared,
        speedup: unshared / shared,
    })
}
