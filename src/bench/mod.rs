//! Benchmarks (never part of the test suite's pass/fail): prefill and decode throughput and
//! peak device bytes for a model of a given shape with random weights.

use std::time::Instant;

mod reductions;
mod vision;
pub use reductions::{ReductionOp, ReductionsReport, reductions_bench};
pub use vision::{VisionTrainBench, vision_train_bench};

use crate::error::Result;
use crate::gpu::{DType, Gpu};
use crate::model::generate::SamplingOptions;
use crate::model::decode::PromptPrefill;
use crate::model::{Model, presets};

#[derive(Debug, serde::Serialize)]
pub struct ForwardBench {
    pub shape: String,
    pub dtype: DType,
    pub backend: String,
    pub adapter: String,
    /// The decode products' kernel form (`MatvecForm`, settled for the device).
    pub matvec: &'static str,
    pub weight_bytes: u64,
    pub load_seconds: f64,
    pub prompt_tokens: usize,
    /// Prefill + decode runs timed (llama-bench's `-r`); the seconds and tokens/s below are
    /// their means (tokens/s: the mean of each run's, as llama-bench's `avg_ts`).
    pub repetitions: usize,
    pub prefill_seconds: f64,
    pub prefill_tokens_per_s: f64,
    pub prefill_tokens_per_s_runs: Vec<f64>,
    pub decode_tokens: usize,
    pub decode_seconds: f64,
    pub decode_tokens_per_s: f64,
    pub decode_tokens_per_s_runs: Vec<f64>,
    /// Peak bytes of all buffers edgerl allocated, weights included.
    pub peak_device_bytes: u64,
}

pub fn forward_bench(
    gpu: &Gpu,
    shape: &str,
    dtype: DType,
    prompt_tokens: usize,
    decode_tokens: usize,
    repetitions: usize,
) -> Result<ForwardBench> {
    if repetitions == 0 {
        return Err(crate::Error::Invalid("bench: --repetitions must be at least 1".into()));
    }
    let cfg = presets::preset(shape)?;
    let weights = presets::random_weights(&cfg, dtype, 1);
    gpu.memory.reset_peak();
    let t0 = Instant::now();
    let model = Model::load(gpu, cfg.clone(), &weights, Some(dtype))?;
    gpu.wait()?;
    let load_seconds = t0.elapsed().as_secs_f64();

    let prompt: Vec<u32> = (0..prompt_tokens)
        .map(|i| ((i * 7919 + 13) % cfg.vocab_size) as u32)
        .collect();
    let mut cache = model.new_cache(gpu, prompt_tokens + decode_tokens + 1)?;
    let opts = SamplingOptions {
        temperature: 0.0,
        ..Default::default()
    };
    // Warm-up: a prefill of the prompt and a decode step build every pipeline (the two use
    // different kernels), so compile time is not counted.
    {
        let mut warm = model.new_cache(gpu, prompt_tokens + 2)?;
        let h = model.forward(gpu, &prompt, &mut warm, None)?;
        let (id, _) = model.sample_next(gpu, &h, prompt_tokens - 1, &opts, 0)?;
        let h = model.forward(gpu, &[id], &mut warm, None)?;
        model.sample_next(gpu, &h, 0, &opts, 0)?;
    }
    let (mut prefill_runs, mut decode_runs) = (Vec::new(), Vec::new());
    for _ in 0..repetitions {
        cache.len = 0;
        let t1 = Instant::now();
        let hidden = model.forward(gpu, &prompt, &mut cache, None)?;
        let (mut id, _) = model.sample_next(gpu, &hidden, prompt_tokens - 1, &opts, 0)?;
        prefill_runs.push(t1.elapsed().as_secs_f64());

        let t2 = Instant::now();
        for step in 0..decode_tokens {
            let h = model.forward(gpu, &[id], &mut cache, None)?;
            id = model.sample_next(gpu, &h, 0, &opts, step as u64 + 1)?.0;
        }
        decode_runs.push(t2.elapsed().as_secs_f64());
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let rates = |n: usize, v: &[f64]| v.iter().map(|s| n as f64 / s.max(1e-9)).collect::<Vec<_>>();
    let (prefill_rates, decode_rates) = (rates(prompt_tokens, &prefill_runs), rates(decode_tokens, &decode_runs));
    Ok(ForwardBench {
        shape: shape.into(),
        dtype,
        backend: gpu.adapter.backend.clone(),
        adapter: gpu.adapter.name.clone(),
        matvec: crate::gpu::Recorder::new(gpu).matvec.resolve(gpu).name(),
        weight_bytes: model.weight_bytes(),
        load_seconds,
        prompt_tokens,
        repetitions,
        prefill_seconds: mean(&prefill_runs),
        prefill_tokens_per_s: mean(&prefill_rates),
        prefill_tokens_per_s_runs: prefill_rates,
        decode_tokens,
        decode_seconds: mean(&decode_runs),
        decode_tokens_per_s: mean(&decode_rates),
        decode_tokens_per_s_runs: decode_rates,
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
    /// Completions per packed pass (`None`: the whole group, the default).
    pub pack_size: Option<usize>,
    /// The workgroup-per-row attention kernels instead of the tiled ones.
    pub general_attention: bool,
    pub weight_bytes: u64,
    /// Peak of everything edgerl allocated during the step, weights included.
    pub peak_device_bytes: u64,
    /// The peak minus the weights: adapter, optimizer state, activations, scratch.
    pub peak_non_weight_bytes: u64,
    pub non_weight_fraction_of_weights: f64,
    /// `edgerl plan`'s prediction of that peak for the same setting, and what is alive at it
    /// by category (the allocator counts bytes, not what they are for).
    pub planned_peak_bytes: u64,
    pub planned_by_category: Vec<crate::plan::CategoryBytes>,
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
    pack_size: Option<usize>,
    general_attention: bool,
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
    trainer.pack_size = pack_size;
    gpu.general_attention
        .store(general_attention, std::sync::atomic::Ordering::Relaxed);
    let id = |i: usize| ((i * 7919 + 13) % cfg.vocab_size) as u32;
    let group = Group {
        prompt_ids: (0..prompt_tokens).map(id).collect(),
        completions: (0..completions)
            .map(|c| {
                (0..completion_tokens)
                    .map(|i| id(1000 * (c + 1) + i))
                    .collect()
            })
            .collect(),
        // Distinct rewards, so no completion is skipped.
        rewards: (0..completions).map(|c| c as f64).collect(),
        weight: 1.0,
        sampler_logps: None,
        images: None,
    };
    let mut batch = trainer.batch(&[&group]);
    // Warm-up on a tiny batch builds every pipeline, so compile time is not counted.
    {
        let small = Group {
            prompt_ids: vec![1, 2],
            completions: vec![vec![3], vec![4]],
            rewards: vec![0.0, 1.0],
            weight: 1.0,
            sampler_logps: None,
            images: None,
        };
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
    let (planned_peak_bytes, planned_by_category) = {
        let mut input = crate::plan::PlanInput::for_preset(shape, dtype, prompt_tokens, completions, completion_tokens, rank, gpu.max_binding)?;
        input.gradient_checkpointing = gradient_checkpointing;
        input.pack_size = pack_size;
        input.rollouts = false;
        let plan = input.plan()?;
        let step = plan
            .phases
            .iter()
            .filter(|p| !matches!(p.phase, crate::plan::Phase::Rollout | crate::plan::Phase::VisionTower))
            .max_by_key(|p| p.peak_bytes);
        (plan.training_step_peak(), step.map(|p| p.by_category.clone()).unwrap_or_default())
    };
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
        pack_size,
        general_attention,
        weight_bytes,
        peak_device_bytes: peak,
        peak_non_weight_bytes: non_weight,
        non_weight_fraction_of_weights: non_weight as f64 / weight_bytes as f64,
        planned_peak_bytes,
        planned_by_category,
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
    /// The decode products' kernel form (`MatvecForm`, settled for the device).
    pub matvec: &'static str,
    pub prompt_tokens: usize,
    pub completions: usize,
    pub completion_tokens: usize,
    /// Completion tokens per second with the samples decoded together (the default).
    pub batched_tokens_per_s: f64,
    pub batched_seconds: f64,
    /// The decoding steps alone, as llama-batched-bench's S_TG: G over the seconds a step takes
    /// (the run of `completion_tokens` against a run of 2); 0 below 3 tokens.
    pub batched_decode_tokens_per_s: f64,
    /// One sample after another over one prefill of the prompt; each with its own prefill.
    pub shared_tokens_per_s: f64,
    pub shared_seconds: f64,
    pub unshared_tokens_per_s: f64,
    pub unshared_seconds: f64,
    /// unshared / batched.
    pub speedup: f64,
    /// Batched with a rank-16 adapter on all seven projections (as GRPO samples), in seconds.
    pub batched_lora_seconds: f64,
    /// Compute dispatches of one batched decoding step, without and with the adapter: what a
    /// step pays in fixed costs (`Gpu::dispatches`; 0 below 3 tokens).
    pub batched_dispatches_per_step: f64,
    pub batched_lora_dispatches_per_step: f64,
    /// `completions` prompts of `prompt_tokens` (the first half shared), one greedy completion
    /// each, decoded side by side (as `edgerl eval`), their own tokens prefilled together / one
    /// by one (`PromptPrefill`), in seconds.
    pub prompts_together_seconds: f64,
    pub prompts_one_by_one_seconds: f64,
    /// The form edgerl takes by default.
    pub prompt_prefill: String,
}

/// Sampling one group of `completions` (temperature 1, no EOS stop) on random weights: batched,
/// one at a time over a shared prefill, and one at a time with their own prefills, in one run.
pub fn rollout_bench(
    gpu: &Gpu,
    shape: &str,
    dtype: DType,
    prompt_tokens: usize,
    completions: usize,
    completion_tokens: usize,
) -> Result<RolloutBench> {
    use crate::rl::rollout::{Decoding, GroupSampler};
    let cfg = presets::preset(shape)?;
    let weights = presets::random_weights(&cfg, dtype, 1);
    let model = Model::load(gpu, cfg.clone(), &weights, Some(dtype))?;
    let prompt: Vec<u32> = (0..prompt_tokens)
        .map(|i| ((i * 7919 + 13) % cfg.vocab_size) as u32)
        .collect();
    let lora = crate::model::adapter::Lora::init(
        gpu,
        &cfg,
        crate::model::adapter::LoraConfig {
            r: 16,
            alpha: 32.0,
            use_rslora: false,
            targets: crate::model::adapter::Target::ALL.to_vec(),
        },
        0,
    )?;
    // n new tokens a completion, no EOS stop.
    let sampler = |decoding: Decoding, n: usize, temperature: f32| GroupSampler {
        gpu,
        model: &model,
        lora: None,
        tokenizer: None,
        eos: &[],
        stop: &[],
        max_new_tokens: n,
        opts: SamplingOptions { max_new_tokens: n, temperature, ..Default::default() },
        decoding,
    };
    let run = |decoding: Decoding, n: usize| -> Result<f64> {
        let t0 = Instant::now();
        sampler(decoding, n, 1.0).sample(&prompt, completions, 0)?;
        gpu.wait()?;
        Ok(t0.elapsed().as_secs_f64())
    };
    // `f`'s run of n tokens, and per step past the second (against runs of 2; the first may
    // build pipelines): dispatches and seconds.
    let count = |f: &dyn Fn(usize) -> Result<f64>, n: usize| -> Result<(f64, f64, f64)> {
        use std::sync::atomic::Ordering::Relaxed;
        let d0 = gpu.dispatches.load(Relaxed);
        f(2)?;
        let d1 = gpu.dispatches.load(Relaxed);
        let secs = f(n)?;
        let d2 = gpu.dispatches.load(Relaxed);
        let per_step = if n > 2 { ((d2 - d1) as f64 - (d1 - d0) as f64) / (n - 2) as f64 } else { 0.0 };
        let step_secs = if n > 2 { (secs - f(2)?) / (n - 2) as f64 } else { 0.0 };
        Ok((secs, per_step, step_secs))
    };
    run(Decoding::SharedPrefill, 2)?;
    // (The run of 2 builds every pipeline.)
    let (batched, batched_dispatches, batched_step) = count(&|n| run(Decoding::Batched, n), completion_tokens)?;
    let with_lora = |n: usize| -> Result<f64> {
        let t0 = Instant::now();
        GroupSampler { lora: Some(&lora), ..sampler(Decoding::Batched, n, 1.0) }.sample(&prompt, completions, 0)?;
        gpu.wait()?;
        Ok(t0.elapsed().as_secs_f64())
    };
    let (batched_lora, lora_dispatches, _) = count(&with_lora, completion_tokens)?;
    let shared = run(Decoding::SharedPrefill, completion_tokens)?;
    let unshared = run(Decoding::Separate, completion_tokens)?;
    let tokens = (completions * completion_tokens) as f64;
    // Different prompts side by side: the second half of each its own.
    let prompts: Vec<Vec<u32>> = (0..completions)
        .map(|j| {
            let mut p = prompt.clone();
            for (i, id) in p.iter_mut().enumerate().skip(prompt_tokens / 2) {
                *id = ((i * 104_729 + j * 7_907 + 1) % cfg.vocab_size) as u32;
            }
            p
        })
        .collect();
    let side_by_side = |form: PromptPrefill, n: usize| -> Result<f64> {
        let batch: Vec<(&[u32], u64)> = prompts.iter().enumerate().map(|(j, p)| (p.as_slice(), j as u64)).collect();
        form.set(gpu);
        let t0 = Instant::now();
        let res = sampler(Decoding::Batched, n, 0.0).sample_prompts(&batch, 1).and_then(|_| gpu.wait());
        PromptPrefill::reset(gpu);
        res?;
        Ok(t0.elapsed().as_secs_f64())
    };
    side_by_side(PromptPrefill::Together, 2)?;
    side_by_side(PromptPrefill::OneByOne, 2)?;
    let together = side_by_side(PromptPrefill::Together, completion_tokens)?;
    let one_by_one = side_by_side(PromptPrefill::OneByOne, completion_tokens)?;
    Ok(RolloutBench {
        shape: shape.into(),
        dtype,
        backend: gpu.adapter.backend.clone(),
        adapter: gpu.adapter.name.clone(),
        matvec: crate::gpu::Recorder::new(gpu).matvec.resolve(gpu).name(),
        prompt_tokens,
        completions,
        completion_tokens,
        batched_tokens_per_s: tokens / batched,
        batched_seconds: batched,
        batched_decode_tokens_per_s: if batched_step > 0.0 { completions as f64 / batched_step } else { 0.0 },
        shared_tokens_per_s: tokens / shared,
        shared_seconds: shared,
        unshared_tokens_per_s: tokens / unshared,
        unshared_seconds: unshared,
        speedup: unshared / batched,
        batched_lora_seconds: batched_lora,
        batched_dispatches_per_step: batched_dispatches,
        batched_lora_dispatches_per_step: lora_dispatches,
        prompts_together_seconds: together,
        prompts_one_by_one_seconds: one_by_one,
        prompt_prefill: format!("{:?}", PromptPrefill::of(gpu)),
    })
}

/// One weight product y = x Wᵀ through `Recorder::matmul` (the path every projection takes).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatmulBench {
    pub t: usize,
    pub k: usize,
    pub n: usize,
    pub dtype: DType,
    /// 2·t·k·n over the best time of one product.
    pub gflops: f64,
    /// Best time of one product.
    pub seconds: f64,
    /// Products timed (not those that built a kernel).
    pub runs: usize,
}

/// Weight-matmul throughput on the current device, with its arithmetic peak for scale.
#[derive(Debug, serde::Serialize)]
pub struct MatmulReport {
    pub backend: String,
    pub adapter: String,
    /// The decode products' kernel form (`MatvecForm`, settled for the device).
    pub matvec: &'static str,
    pub peak_gflops: f64,
    pub matmul: Vec<MatmulBench>,
    /// The input gradient dx = dy · W (training on a frozen base), at the t ≥ 8 of `matmul`.
    pub backward_input: Vec<MatmulBench>,
}

/// The arithmetic peak in GFLOP/s from `fma_peak` (register-only FMA chains), best of a few runs.
pub fn fma_peak_bench(gpu: &Gpu) -> Result<f64> {
    use crate::gpu::kernels::{FMA_PEAK_FLOPS_PER_ITER, FMA_PEAK_THREADS};
    // 256 workgroups fill a CPU device; a GPU needs far more threads in flight (on an H200
    // 256 × 64 invocations measured 17.4 TFLOP/s, about a quarter of its FP32 rate).
    let cpu = gpu.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu);
    let workgroups = if cpu { 256 } else { 16384 };
    let iters = 4096u32;
    let out = gpu.alloc((workgroups * FMA_PEAK_THREADS * 4) as u64, "fma_peak out")?;
    let run = |iters: u32| -> Result<f64> {
        let mut r = crate::gpu::Recorder::new(gpu);
        r.fma_peak(&out, workgroups, iters)?;
        let t0 = Instant::now();
        r.submit()?;
        gpu.wait()?;
        Ok(t0.elapsed().as_secs_f64())
    };
    run(1)?; // builds the pipeline
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        best = best.min(run(iters)?);
    }
    let flops =
        (workgroups * FMA_PEAK_THREADS) as f64 * iters as f64 * FMA_PEAK_FLOPS_PER_ITER as f64;
    Ok(flops / best / 1e9)
}

/// A random `dtype` weight [n, k], and a deterministic filler for activations.
fn bench_weight(
    gpu: &Gpu,
    dtype: DType,
    n: usize,
    k: usize,
    seed: u64,
) -> Result<(crate::gpu::Tensor, impl FnMut(usize) -> Vec<f32>)> {
    let mut seed = 0x2545_f491_4f6c_dd1du64 ^ seed;
    let mut rand = move |len: usize| -> Vec<f32> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    };
    let bytes = crate::gpu::quant::quantize(dtype, &rand(n * k))?;
    let w = crate::gpu::Tensor::from_bytes(gpu, "bench weight", dtype, n, k, &bytes)?;
    Ok((w, rand))
}

/// Best time of one `op` (recorded `reps` times a submission) over up to `iters` submissions,
/// fewer once two seconds have been spent: runs that built a kernel are not timed and restart
/// that budget (the kernel form depends on n too, and a build of seconds had left one timed
/// run, whose execution on lavapipe also ran slow as a kernel's first does).
pub fn time_best(
    gpu: &Gpu,
    iters: usize,
    reps: usize,
    op: &dyn Fn(&mut crate::gpu::Recorder) -> Result<()>,
) -> Result<(f64, usize)> {
    let mut best = f64::INFINITY;
    let (mut runs, mut builds) = (0, 0);
    let mut start = Instant::now();
    while runs < iters.max(1) && (runs == 0 || start.elapsed().as_secs_f64() < 2.0) {
        let built = gpu.kernels_built();
        let mut r = crate::gpu::Recorder::new(gpu);
        for _ in 0..reps {
            op(&mut r)?;
        }
        let t0 = Instant::now();
        r.submit()?;
        gpu.wait()?;
        let s = t0.elapsed().as_secs_f64() / reps as f64;
        // (Bounded: a run that builds nothing new is timed; a few builds at most otherwise.)
        if gpu.kernels_built() != built && builds < 4 {
            builds += 1;
            start = Instant::now();
            continue;
        }
        best = best.min(s);
        runs += 1;
    }
    Ok((best, runs))
}

/// Products recorded per submission, so that submission overhead does not dominate small ones.
fn reps_for(flops: f64) -> usize {
    ((2e7 / flops).ceil() as usize).clamp(1, 64)
}

/// Times y[t, n] = x[t, k] · Wᵀ for a random `dtype` weight [n, k] (no bias, no accumulate)
/// through `Recorder::linear`, the path every projection takes: the best of up to `iters`
/// submissions (fewer once two seconds have been spent), those that built its kernels untimed.
pub fn matmul_bench(
    gpu: &Gpu,
    dtype: DType,
    t: usize,
    k: usize,
    n: usize,
    iters: usize,
) -> Result<MatmulBench> {
    let (w, mut rand) = bench_weight(gpu, dtype, n, k, (t * 31 + k * 17 + n) as u64)?;
    let x = gpu.upload(bytemuck::cast_slice(&rand(t * k)), "bench x")?;
    let y = gpu.alloc((t * n * 4) as u64, "bench y")?;
    let flops = 2.0 * (t * k * n) as f64;
    let op = |r: &mut crate::gpu::Recorder| r.linear(&x, t, &w, None, &y, false);
    let (best, runs) = time_best(gpu, iters, reps_for(flops), &op)?;
    Ok(MatmulBench {
        t,
        k,
        n,
        dtype,
        gflops: flops / best / 1e9,
        seconds: best,
        runs,
    })
}

/// Times the input gradient dx[t, k] = dy[t, n] · W through
/// `Recorder::matmul_backward_input` (dy rows of n), as `matmul_bench` times the product.
pub fn matmul_backward_bench(
    gpu: &Gpu,
    dtype: DType,
    t: usize,
    k: usize,
    n: usize,
    iters: usize,
) -> Result<MatmulBench> {
    let (w, mut rand) = bench_weight(gpu, dtype, n, k, (t * 37 + k * 13 + n) as u64)?;
    let dy = gpu.upload(bytemuck::cast_slice(&rand(t * n)), "bench dy")?;
    let dx = gpu.alloc((t * k * 4) as u64, "bench dx")?;
    let flops = 2.0 * (t * k * n) as f64;
    let op =
        |r: &mut crate::gpu::Recorder| r.matmul_backward_input(&dy, t, n, &w, 0..n, &dx, false);
    let (best, runs) = time_best(gpu, iters, reps_for(flops), &op)?;
    Ok(MatmulBench {
        t,
        k,
        n,
        dtype,
        gflops: flops / best / 1e9,
        seconds: best,
        runs,
    })
}

/// The standard weight shapes: SmolLM2-135M (k 576: n 1536 for the MLP, n 49152 for the
/// lm_head) and Qwen2.5-0.5B (k 896, n 4864), each at t = 1, 8, 64 and 256.
pub const MATMUL_SHAPES: [(usize, usize); 3] = [(576, 1536), (576, 49152), (896, 4864)];
pub const MATMUL_TS: [usize; 4] = [1, 8, 64, 256];
pub const MATMUL_DTYPES: [DType; 4] = [DType::F32, DType::F16, DType::Q4_1, DType::Q8_0];

/// `fma_peak_bench`, then `matmul_bench` over every (dtype, (k, n), t) given and
/// `matmul_backward_bench` over those with t ≥ 8. Progress goes to stderr.
pub fn matmul_report(
    gpu: &Gpu,
    dtypes: &[DType],
    shapes: &[(usize, usize)],
    ts: &[usize],
    iters: usize,
) -> Result<MatmulReport> {
    let peak_gflops = fma_peak_bench(gpu)?;
    eprintln!("fma_peak: {peak_gflops:.3} GFLOP/s");
    let (mut matmul, mut backward_input) = (Vec::new(), Vec::new());
    let show = |what: &str, b: &MatmulBench| {
        let (d, t, k, n, g, ms) = (b.dtype, b.t, b.k, b.n, b.gflops, b.seconds * 1e3);
        eprintln!("{what} {d:?} t={t} k={k} n={n}: {g:.3} GFLOP/s ({ms:.3} ms)")
    };
    for &dtype in dtypes {
        for &(k, n) in shapes {
            for &t in ts {
                let b = matmul_bench(gpu, dtype, t, k, n, iters)?;
                show("matmul", &b);
                matmul.push(b);
            }
            for &t in ts.iter().filter(|&&t| t >= 8) {
                let b = matmul_backward_bench(gpu, dtype, t, k, n, iters)?;
                show("backward_input", &b);
                backward_input.push(b);
            }
        }
    }
    Ok(MatmulReport {
        backend: gpu.adapter.backend.clone(),
        adapter: gpu.adapter.name.clone(),
        matvec: crate::gpu::Recorder::new(gpu).matvec.resolve(gpu).name(),
        peak_gflops,
        matmul,
        backward_input,
    })
}

/// The benchmark models: SmolLM2-135M's shape in Q4_1 (the demo model's format), a
/// Qwen2.5-0.5B shape in f16 and a Qwen2.5-1.5B shape in Q4_0, all on random weights (speed
/// and memory depend on shapes and formats, not on the values).
pub const SUITE_MODELS: [(&str, DType); 3] = [
    ("smollm2-135m", DType::Q4_1),
    ("qwen2.5-0.5b", DType::F16),
    ("qwen2.5-1.5b", DType::Q4_0),
];

/// One model's figures in `suite`.
#[derive(Debug, serde::Serialize)]
pub struct SuiteModel {
    pub forward: ForwardBench,
    pub rollout: RolloutBench,
    pub train: TrainBench,
}

/// Everything `edgerl bench --suite` measures, in one run on one device.
#[derive(Debug, serde::Serialize)]
pub struct SuiteReport {
    pub backend: String,
    pub adapter: String,
    /// The matmul GFLOP/s next to the device's FMA peak, at each model's hidden size and dtype
    /// (t = 1: decoding one sample; t = G: batched decoding; t = P: prefill).
    pub matmul: MatmulReport,
    pub models: Vec<SuiteModel>,
}

/// Prefill, decode, batched G-way sampling and one GRPO step (LoRA rank `rank` on all seven
/// projections) for each of `SUITE_MODELS`, plus the matmul grid. Progress goes to stderr.
#[allow(clippy::too_many_arguments)]
pub fn suite(gpu: &Gpu, prompt_tokens: usize, decode_tokens: usize, completions: usize, completion_tokens: usize, rank: usize, gradient_checkpointing: bool) -> Result<SuiteReport> {
    let mut shapes = Vec::new();
    let mut dtypes = Vec::new();
    for (shape, dtype) in SUITE_MODELS {
        let c = presets::preset(shape)?;
        shapes.push((c.hidden_size, c.intermediate_size));
        if !dtypes.contains(&dtype) {
            dtypes.push(dtype);
        }
    }
    let mut ts = vec![1, completions, prompt_tokens];
    ts.sort_unstable();
    ts.dedup();
    let matmul = matmul_report(gpu, &dtypes, &shapes, &ts, 3)?;
    let mut models = Vec::new();
    for (shape, dtype) in SUITE_MODELS {
        eprintln!("{shape} {dtype:?}: prefill and decode");
        let forward = forward_bench(gpu, shape, dtype, prompt_tokens, decode_tokens, 1)?;
        eprintln!("{shape} {dtype:?}: sampling a group of {completions}");
        let rollout = rollout_bench(gpu, shape, dtype, prompt_tokens, completions, completion_tokens)?;
        eprintln!("{shape} {dtype:?}: one GRPO step");
        let train = train_bench(gpu, shape, dtype, prompt_tokens, completions, completion_tokens, rank, gradient_checkpointing, None, false)?;
        models.push(SuiteModel { forward, rollout, train });
    }
    Ok(SuiteReport { backend: gpu.adapter.backend.clone(), adapter: gpu.adapter.name.clone(), matmul, models })
}
