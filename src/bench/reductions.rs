//! `edgerl bench --reductions`: the kernels that reduce across a workgroup (norms, the chunked
//! log-softmax, the sampler, decode attention, the gradient norm's sums), timed in one run on
//! two devices over the same adapter: the portable tree through workgroup memory and the
//! subgroup form (`shaders/reduce*.wgsl`); then decoding on SmolLM2's shapes both ways.

use super::{forward_bench, time_best};
use crate::error::{Error, Result};
use crate::gpu::sample::SamplerSettings;
use crate::gpu::{DType, Gpu, GpuBuffer, GpuOptions, Recorder};

#[derive(Debug, serde::Serialize)]
pub struct ReductionOp {
    pub op: String,
    pub portable_us: f64,
    pub subgroup_us: f64,
    /// portable time / subgroup time.
    pub speedup: f64,
}

#[derive(Debug, serde::Serialize)]
pub struct ReductionsReport {
    pub backend: String,
    pub adapter: String,
    pub subgroup_sizes: (u32, u32),
    pub ops: Vec<ReductionOp>,
    /// SmolLM2-135M shapes (Q4_1, random weights), prompt then one-token decode steps.
    pub decode_portable_tokens_per_s: f64,
    pub decode_subgroup_tokens_per_s: f64,
}

/// One timed operation: its name and the recording to repeat (on buffers of that device).
type Op<'a> = (String, Box<dyn Fn(&mut Recorder) -> Result<()> + 'a>);

fn random(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 4.0 - 2.0
        })
        .collect()
}

fn buf(gpu: &Gpu, n: usize, seed: u32) -> Result<GpuBuffer> {
    gpu.upload(bytemuck::cast_slice(&random(n, seed)), "bench data")
}

/// The operations, recorded against `gpu`'s buffers.
fn ops(gpu: &Gpu) -> Result<Vec<Op<'_>>> {
    let mut out: Vec<Op> = Vec::new();
    for (rows, d) in [(1usize, 576usize), (8, 896), (256, 896), (256, 1536)] {
        let (x, w, y) = (buf(gpu, rows * d, 1)?, buf(gpu, d, 2)?, gpu.alloc((rows * d * 4) as u64, "y")?);
        let dy = buf(gpu, rows * d, 3)?;
        out.push((format!("rmsnorm rows {rows} d {d}"), Box::new(move |r| r.rmsnorm(&x, &w, &y, rows, d, 1e-6))));
        if rows == 256 {
            let (x, w, dx) = (buf(gpu, rows * d, 1)?, buf(gpu, d, 2)?, gpu.alloc((rows * d * 4) as u64, "dx")?);
            out.push((format!("rmsnorm_backward rows {rows} d {d}"), Box::new(move |r| r.rmsnorm_backward(&x, &w, &dy, &dx, rows, d, 1e-6, false))));
        }
    }
    for (t, c) in [(8usize, 8192usize), (64, 8192)] {
        let logits = buf(gpu, t * c, 4)?;
        let targets = gpu.upload(bytemuck::cast_slice(&(0..t as u32).map(|i| i * 97).collect::<Vec<_>>()), "targets")?;
        let state = gpu.alloc((t * 16) as u64, "state")?;
        out.push((format!("lse_chunk t {t} chunk {c}"), Box::new(move |r| {
            r.lse_init(&state, t)?;
            r.lse_chunk(&logits, &targets, &state, t, c, 0, 1.0)
        })));
    }
    for (vocab, name) in [(49152usize, "SmolLM2"), (151936, "Qwen2.5")] {
        for (label, top_k, top_p) in [("temperature 1", 0usize, 1.0f32), ("top-k 50, top-p 0.9", 50, 0.9)] {
            let logits = buf(gpu, vocab, 5)?;
            let o = gpu.alloc(16 * 8, "draws")?;
            let s = SamplerSettings { temperature: 1.0, top_k, top_p, min_p: 0.0, seed: 7 };
            out.push((format!("sample {name} vocab {vocab}, {label}, 8 draws"), Box::new(move |r| r.sample(&logits, vocab, &s, 0, 8, &o))));
        }
    }
    // Decode attention (one query against the cache) at Qwen2.5-0.5B's heads.
    for ctx in [64usize, 512] {
        let (heads, kv, hd) = (14usize, 2usize, 64usize);
        let q = buf(gpu, heads * hd, 6)?;
        let (k, v) = (buf(gpu, ctx * kv * hd, 7)?, buf(gpu, ctx * kv * hd, 8)?);
        let o = gpu.alloc((heads * hd * 4) as u64, "out")?;
        out.push((format!("attention decode 14/2 heads hd 64, {ctx} keys"), Box::new(move |r| r.attention(&q, &k, &v, &o, 1, heads, kv, hd, ctx - 1, 0.125, 0))));
    }
    let n = 1 << 20;
    let (x, o) = (buf(gpu, n, 9)?, gpu.alloc(4, "sum")?);
    out.push((format!("sum_squares n {n}"), Box::new(move |r| r.sum_squares(&x, n, &o, 0))));
    Ok(out)
}

/// Both forms on the device `GpuOptions::from_env` picks; fails where it has no subgroups.
pub fn reductions_bench(prompt_tokens: usize, decode_tokens: usize) -> Result<ReductionsReport> {
    let opts = GpuOptions::from_env()?;
    let fast = Gpu::new(&GpuOptions { portable: false, ..opts.clone() })?;
    if !fast.features.subgroups {
        return Err(Error::Invalid(format!(
            "{} has no subgroups: there is only the portable form to time",
            fast.adapter.name
        )));
    }
    let portable = Gpu::new(&GpuOptions { portable: true, ..opts })?;
    let (p_ops, f_ops) = (ops(&portable)?, ops(&fast)?);
    let mut rows = Vec::new();
    for ((name, p_op), (_, f_op)) in p_ops.iter().zip(&f_ops) {
        // Warm-up builds the pipelines; then rounds alternating the two devices, the best of
        // each, with enough repeats a submission that dispatch overhead is not all that counts.
        let (w, _) = time_best(&portable, 1, 1, p_op.as_ref())?;
        time_best(&fast, 1, 1, f_op.as_ref())?;
        let reps = ((0.01 / w.max(1e-7)) as usize).clamp(4, 256);
        let (mut p, mut f) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..3 {
            p = p.min(time_best(&portable, 2, reps, p_op.as_ref())?.0);
            f = f.min(time_best(&fast, 2, reps, f_op.as_ref())?.0);
        }
        rows.push(ReductionOp { op: name.clone(), portable_us: p * 1e6, subgroup_us: f * 1e6, speedup: p / f });
    }
    drop((p_ops, f_ops));
    let dp = forward_bench(&portable, "smollm2-135m", DType::Q4_1, prompt_tokens, decode_tokens, 1)?;
    let df = forward_bench(&fast, "smollm2-135m", DType::Q4_1, prompt_tokens, decode_tokens, 1)?;
    Ok(ReductionsReport {
        backend: fast.adapter.backend.clone(),
        adapter: fast.adapter.name.clone(),
        subgroup_sizes: fast.features.subgroup_sizes,
        ops: rows,
        decode_portable_tokens_per_s: dp.decode_tokens_per_s,
        decode_subgroup_tokens_per_s: df.decode_tokens_per_s,
    })
}
