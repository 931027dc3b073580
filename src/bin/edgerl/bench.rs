//! `edgerl bench`: its options and the dispatch to `edgerl::bench`.

use edgerl::gpu::{DType, Gpu};
use edgerl::{Error, Result};

use crate::parse_dtype;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// smollm2-135m, qwen2.5-0.5b, qwen2.5-1.5b, qwen3-0.6b, gemma3-270m or llama3.2-1b; with
    /// --train also smolvlm-256m (a vision-language shape: its tower over one screenshot, then
    /// the step with the image features).
    #[arg(long, default_value = "qwen2.5-0.5b")]
    shape: String,
    #[arg(long, default_value = "f16")]
    dtype: String,
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    #[arg(long, default_value_t = 16)]
    decode_tokens: usize,
    /// Benchmark one GRPO training step instead of inference.
    #[arg(long)]
    train: bool,
    /// Benchmark group sampling (G completions of one prompt) with and without a shared prefill.
    #[arg(long, conflicts_with = "train")]
    rollout: bool,
    /// Training: completions in the group (G).
    #[arg(long, default_value_t = 8)]
    completions: usize,
    /// Training: tokens per completion.
    #[arg(long, default_value_t = 256)]
    completion_tokens: usize,
    /// Training: LoRA rank on all seven projections.
    #[arg(long, default_value_t = 16)]
    rank: usize,
    /// Training: keep every layer's activations instead of recomputing them.
    #[arg(long)]
    no_checkpointing: bool,
    /// Training: completions per packed forward/backward pass (default: the whole group;
    /// 1 trains each completion alone, prompt included).
    #[arg(long, requires = "train")]
    pack_size: Option<usize>,
    /// Training a vision-language shape: the screenshot's longest edge in pixels (4:3), which
    /// the processor resizes to: 512 is one tile; SmolVLM's own 2048 is 13 tiles of 512.
    #[arg(long, default_value_t = 512, requires = "train")]
    image_px: usize,
    /// Use the workgroup-per-row attention kernels instead of the tiled ones.
    #[arg(long)]
    general_attention: bool,
    /// The decode products' kernel: auto (split on GPUs, run on CPU devices), blocked (a
    /// thread per 4 columns over all of k), run (blocked, but 2-63 rows of quantized weights
    /// through the tiled kernel in 8-lane workgroups), split (16 threads a column), general (a
    /// workgroup a column, at most 4 rows).
    #[arg(long, default_value = "auto")]
    matvec: String,
    /// Benchmark the weight matmul alone (GFLOP/s against the device's FMA peak) over the
    /// standard shapes and dtypes; --t, --k, --n and --dtypes narrow the grid.
    #[arg(long, conflicts_with_all = ["train", "rollout"])]
    matmul: bool,
    /// --matmul: rows of x (default 1, 8, 64 and 256).
    #[arg(long, requires = "matmul")]
    t: Option<usize>,
    /// --matmul: inner dimension (with --n; default the SmolLM2 and Qwen2.5-0.5B shapes).
    #[arg(long, requires_all = ["matmul", "n"])]
    k: Option<usize>,
    /// --matmul: output columns (with --k).
    #[arg(long, requires_all = ["matmul", "k"])]
    n: Option<usize>,
    /// --matmul: comma-separated weight dtypes (default f32,f16,q4_1,q8_0).
    #[arg(long, requires = "matmul")]
    dtypes: Option<String>,
    /// --matmul: most timed runs per case.
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Prefill/decode (no other mode): timed runs, each a prefill of the prompt then the
    /// decode steps; the figures are their means (as llama-bench's -r).
    #[arg(long, default_value_t = 3, conflicts_with_all = ["train", "rollout", "matmul", "suite", "reductions"])]
    repetitions: usize,
    /// Everything in one run, as JSON: the matmul grid and FMA peak, then prefill, decode,
    /// batched sampling of G and one GRPO step for SmolLM2-135M (Q4_1), Qwen2.5-0.5B (f16)
    /// and Qwen2.5-1.5B (Q4_0) shapes, with --prompt-tokens, --decode-tokens,
    /// --completions, --completion-tokens and --rank.
    #[arg(long, conflicts_with_all = ["train", "rollout", "matmul", "pack_size"])]
    suite: bool,
    /// The reducing kernels (norms, log-softmax chunks, sampler, decode attention, sums of
    /// squares) in their portable and subgroup forms side by side, then decoding both ways
    /// (SmolLM2 shapes, --prompt-tokens and --decode-tokens); needs a device with subgroups.
    #[arg(long, conflicts_with_all = ["train", "rollout", "matmul", "suite"])]
    reductions: bool,
}

pub fn run(a: BenchArgs) -> Result<()> {
    let BenchArgs { shape, dtype, prompt_tokens, decode_tokens, train, rollout, completions, completion_tokens, rank, no_checkpointing, pack_size, image_px, general_attention, matvec, matmul, t, k, n, dtypes, iters, repetitions, suite, reductions } = a;
    let matvec = edgerl::gpu::MatvecForm::parse(&matvec)? as u8;
    if reductions {
        if prompt_tokens == 0 || decode_tokens == 0 {
            return Err(Error::Invalid("--prompt-tokens and --decode-tokens must be at least 1".into()));
        }
        let r = edgerl::bench::reductions_bench(prompt_tokens, decode_tokens)?;
        println!("{}", serde_json::to_string_pretty(&r).map_err(|e| Error::Invalid(e.to_string()))?);
        return Ok(());
    }
    if suite {
        if [prompt_tokens, decode_tokens, completions, completion_tokens, rank].contains(&0) {
            return Err(Error::Invalid("token counts, --completions and --rank must be at least 1".into()));
        }
        let gpu = Gpu::from_env()?;
        gpu.matvec_form.store(matvec, std::sync::atomic::Ordering::Relaxed);
        let r = edgerl::bench::suite(&gpu, prompt_tokens, decode_tokens, completions, completion_tokens, rank, !no_checkpointing)?;
        println!("{}", serde_json::to_string_pretty(&r).map_err(|e| Error::Invalid(e.to_string()))?);
        return Ok(());
    }
    if matmul {
        let dts = match dtypes {
            Some(list) => list
                .split(',')
                .map(|d| {
                    parse_dtype(&Some(d.trim().to_string()))
                        .map(|d| d.unwrap_or(DType::F16))
                })
                .collect::<Result<Vec<_>>>()?,
            None => edgerl::bench::MATMUL_DTYPES.to_vec(),
        };
        let shapes = match (k, n) {
            (Some(k), Some(n)) => vec![(k, n)],
            _ => edgerl::bench::MATMUL_SHAPES.to_vec(),
        };
        let ts = t.map_or(edgerl::bench::MATMUL_TS.to_vec(), |t| vec![t]);
        if ts.contains(&0) || shapes.iter().any(|&(k, n)| k == 0 || n == 0) {
            return Err(Error::Invalid("--t, --k and --n must be at least 1".into()));
        }
        let gpu = Gpu::from_env()?;
        gpu.matvec_form.store(matvec, std::sync::atomic::Ordering::Relaxed);
        let r = edgerl::bench::matmul_report(&gpu, &dts, &shapes, &ts, iters)?;
        let json = serde_json::to_string_pretty(&r);
        println!("{}", json.map_err(|e| Error::Invalid(e.to_string()))?);
        return Ok(());
    }
    let dtype = parse_dtype(&Some(dtype))?.unwrap_or(DType::F16);
    if prompt_tokens == 0 || (train && (completions == 0 || completion_tokens == 0 || rank == 0)) {
        return Err(Error::Invalid("token counts, --completions and --rank must be at least 1".into()));
    }
    let gpu = Gpu::from_env()?;
    gpu.general_attention
        .store(general_attention, std::sync::atomic::Ordering::Relaxed);
    gpu.matvec_form.store(matvec, std::sync::atomic::Ordering::Relaxed);
    let json = if rollout {
        let r = edgerl::bench::rollout_bench(&gpu, &shape, dtype, prompt_tokens, completions, completion_tokens)?;
        serde_json::to_string_pretty(&r)
    } else if train && edgerl::model::presets::vision_preset(&shape).is_some() {
        let r = edgerl::bench::vision_train_bench(&gpu, &shape, dtype, image_px, prompt_tokens, completions, completion_tokens, rank, !no_checkpointing, pack_size)?;
        serde_json::to_string_pretty(&r)
    } else if train {
        let r = edgerl::bench::train_bench(&gpu, &shape, dtype, prompt_tokens, completions, completion_tokens, rank, !no_checkpointing, pack_size, general_attention)?;
        serde_json::to_string_pretty(&r)
    } else {
        let r = edgerl::bench::forward_bench(&gpu, &shape, dtype, prompt_tokens, decode_tokens, repetitions)?;
        serde_json::to_string_pretty(&r)
    };
    println!("{}", json.map_err(|e| Error::Invalid(e.to_string()))?);
    print_profile(&gpu);
    Ok(())
}

/// EDGERL_PROFILE=1: where the time went, by kernel (each dispatch timed alone), on stderr.
pub fn print_profile(gpu: &Gpu) {
    let rows = gpu.profile_report();
    let total: f64 = rows.iter().map(|r| r.2).sum();
    for (name, n, secs) in rows {
        eprintln!("{name:<32} {n:>8} dispatches {secs:>9.2} s {:>5.1} %", 100.0 * secs / total.max(1e-12));
    }
}
