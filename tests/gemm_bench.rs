//! Timing of `Recorder::gemm` on the LoRA product shapes of SmolLM2-135M (rank 16, hidden 576,
//! intermediate 1536) over 1 and 8 decoding rows (the forward products), the 273 tokens of the
//! demo GRPO step's training pack (a 145-token prompt once, then 8 completions of 16), and 1288
//! (the 8 sequences unshared).
//! Not a check: ignored by default, run with
//! `cargo test --release --test gemm_bench -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use edgerl::gpu::{GpuBuffer, Recorder};

/// (what, m, n, k, a_rs, a_cs, b_rs, b_cs): the calls of `project` / `project_backward`.
fn cases(t: usize, r: usize, din: usize, dout: usize) -> Vec<(String, [usize; 7])> {
    vec![
        (
            format!("u = x Aᵀ      {t}×{r}×{din}"),
            [t, r, din, din, 1, 1, din],
        ),
        (
            format!("y += u Bᵀ     {t}×{dout}×{r}"),
            [t, dout, r, r, 1, 1, r],
        ),
        (
            format!("gB += dyᵀ u   {dout}×{r}×{t}"),
            [dout, r, t, 1, dout, r, 1],
        ),
        (
            format!("du = dy B     {t}×{r}×{dout}"),
            [t, r, dout, dout, 1, r, 1],
        ),
        (
            format!("gA += duᵀ x   {r}×{din}×{t}"),
            [r, din, t, 1, r, din, 1],
        ),
        (
            format!("dx += du A    {t}×{din}×{r}"),
            [t, din, r, r, 1, din, 1],
        ),
    ]
}

#[test]
#[ignore]
fn gemm_lora_shapes_timing() {
    let gpu = &common::backends().normal[0];
    let r = 16;
    let reps = 8;
    // 1 and 8 rows: decoding one sequence and a group of 8 (the forward products only).
    for t in [1, 8, 273, 1288] {
        let mut total = 0.0;
        for (din, dout) in [(576, 576), (576, 1536), (1536, 576)] {
            let all = cases(t, r, din, dout);
            let n_cases = if t <= 8 { 2 } else { all.len() };
            for (what, [m, n, k, ars, acs, brs, bcs]) in all.into_iter().take(n_cases) {
                let buf = |len: usize| -> GpuBuffer {
                    let v: Vec<f32> = (0..len)
                        .map(|i| ((i * 7919) % 211) as f32 / 211.0 - 0.5)
                        .collect();
                    gpu.upload(bytemuck::cast_slice(&v), "bench").unwrap()
                };
                let (a, b, c) = (buf(m * k), buf(k * n), buf(m * n));
                let run = |n_disp: usize| {
                    let mut rec = Recorder::new(gpu);
                    for i in 0..n_disp {
                        rec.gemm(
                            &a,
                            0,
                            ars,
                            acs,
                            &b,
                            0,
                            brs,
                            bcs,
                            &c,
                            0,
                            n,
                            m,
                            n,
                            k,
                            0.5,
                            i % 2 == 1,
                        )
                        .unwrap();
                    }
                    rec.submit().unwrap();
                    gpu.wait().unwrap();
                };
                run(1); // builds the pipeline
                let mut best = f64::MAX;
                for _ in 0..5 {
                    let t0 = Instant::now();
                    run(reps);
                    best = best.min(t0.elapsed().as_secs_f64() / reps as f64);
                }
                total += best;
                let gflops = 2.0 * (m * n * k) as f64 / best / 1e9;
                eprintln!("{what:32} {:8.3} ms  {gflops:6.2} GFLOP/s", best * 1e3);
            }
        }
        eprintln!("total at {t} tokens {:.3} ms", total * 1e3);
    }
}

/// `bench::time_best` (every `edgerl bench` figure) leaves untimed the runs in which a kernel
/// was built: a first execution runs slow on lavapipe, and the build itself could spend the
/// two-second budget so that the slow run was the only one reported.
#[test]
fn timing_leaves_out_runs_that_build_kernels() {
    let gpu = edgerl::gpu::Gpu::new(&Default::default()).unwrap(); // its own: nothing built
    let (t, k, n) = (3, 64, 40);
    let bytes: Vec<u8> = (0..n * k).flat_map(|i| (i as f32 * 0.01).to_le_bytes()).collect();
    let w = edgerl::gpu::Tensor::from_bytes(&gpu, "w", edgerl::gpu::DType::F32, n, k, &bytes).unwrap();
    let x = gpu.upload(bytemuck::cast_slice(&vec![0.5f32; t * k]), "x").unwrap();
    let y = gpu.alloc((t * n * 4) as u64, "y").unwrap();
    let calls = std::cell::Cell::new(0);
    let built = std::cell::Cell::new(Vec::new());
    let op = |r: &mut Recorder| {
        calls.set(calls.get() + 1);
        let before = gpu.kernels_built();
        r.linear(&x, t, &w, None, &y, false)?;
        let mut b = built.take();
        b.push(gpu.kernels_built() > before);
        built.set(b);
        Ok(())
    };
    let (best, runs) = edgerl::bench::time_best(&gpu, 3, 1, &op).unwrap();
    let built = built.take();
    assert!(built[0], "the first run should have built the product's kernel");
    let builds = built.iter().filter(|&&b| b).count();
    assert_eq!(runs, 3, "three timed runs");
    assert_eq!(calls.get(), runs + builds, "the runs that built were timed: {built:?}");
    assert!(best.is_finite() && best > 0.0);
}
