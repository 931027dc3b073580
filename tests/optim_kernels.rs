//! The optimizer and norm kernels (`adamw`, `sgd`, `sum_squares`, `zero`) against CPU replicas
//! of torch.optim's formulas, on every device of `common::all_gpus()`.

mod backward;
mod common;

use backward::*;

use edgerl::gpu::Recorder;

// ---------------------------------------------------------------------------------------------
// optimizers, norms, zero

/// torch.optim.AdamW's single-tensor step, in f32 as torch computes it on CPU (scalars in f64).
#[allow(clippy::too_many_arguments)]
fn cpu_adamw(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    wd: f32,
    step: u32,
    scale: f32,
) {
    let (lr64, b164, b264) = (lr as f64, b1 as f64, b2 as f64);
    let decay = (1.0 - lr64 * wd as f64) as f32;
    let w1 = (1.0 - b164) as f32;
    let step_size = (lr64 / (1.0 - b164.powi(step as i32))) as f32;
    let bc2_sqrt = (1.0 - b264.powi(step as i32)).sqrt() as f32;
    for i in 0..p.len() {
        let gi = g[i] * scale;
        p[i] *= decay;
        m[i] = if w1.abs() < 0.5 {
            m[i] + w1 * (gi - m[i])
        } else {
            gi - (gi - m[i]) * (1.0 - w1)
        };
        v[i] = v[i] * b2 + (1.0 - b264) as f32 * gi * gi;
        p[i] -= step_size * (m[i] / (v[i].sqrt() / bc2_sqrt + eps));
    }
}

/// `close`, with each element's relative tolerance taken of `scale` (the size of the operands
/// that produced it) rather than of the result.
fn close_scaled(what: &str, got: &[f32], want: &[f64], scale: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = atol + rtol * scale[i].max(w.abs());
        assert!(
            g.is_finite() && (g as f64 - w).abs() <= tol,
            "{what}: element {i}: got {g}, want {w} (tol {tol:e})"
        );
    }
}

#[test]
fn adamw_and_sgd_match_torch_formulas() {
    // (lr, beta1, beta2, eps, weight_decay, grad_scale)
    let configs = [
        (1e-3f32, 0.9f32, 0.999f32, 1e-8f32, 0.01f32, 1.0f32),
        (5e-2, 0.5, 0.99, 1e-6, 0.0, 0.25),
        (1e-4, 0.3, 0.9, 1e-8, 0.1, 3.0),
    ];
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(261);
        for n in [1, 257, 70000] {
            for (ci, &(lr, b1, b2, eps, wd, gs)) in configs.iter().enumerate() {
                let what = format!("{}: adamw n={n} config {ci}", label(gpu));
                let mut p = rng.vec(n);
                let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
                let (pb, mb, vb) = (up(gpu, &p), up(gpu, &m), up(gpu, &v));
                if !fits(gpu, &[&pb]) {
                    let gb = up(gpu, &rng.vec(n));
                    assert_refused(
                        &what,
                        Recorder::new(gpu).adamw(&pb, &gb, &mb, &vb, n, lr, b1, b2, eps, wd, 1, gs),
                    );
                    continue;
                }
                let p0 = p.clone();
                for step in 1..=3u32 {
                    let g = rng.vec(n);
                    let gb = up(gpu, &g);
                    let mut r = Recorder::new(gpu);
                    r.adamw(&pb, &gb, &mb, &vb, n, lr, b1, b2, eps, wd, step, gs)
                        .unwrap();
                    r.submit().unwrap();
                    let (p_prev, m_prev) = (p.clone(), m.clone());
                    cpu_adamw(&mut p, &g, &mut m, &mut v, lr, b1, b2, eps, wd, step, gs);
                    // Tolerances scale with the operands, not the result: where m's two terms
                    // (or p and its update) nearly cancel, a GPU that fuses a multiply-add
                    // (NVIDIA does) rounds once where the replica rounds twice, an ulp of the
                    // operands apart, which is many ulps of the small result.
                    let m_scale: Vec<f64> = (0..n)
                        .map(|i| m_prev[i].abs() as f64 + (g[i] * gs).abs() as f64)
                        .collect();
                    let p_scale: Vec<f64> = (0..n)
                        .map(|i| p_prev[i].abs() as f64 + (p_prev[i] - p[i]).abs() as f64)
                        .collect();
                    if step == 1 {
                        // Independent anchor: the first bias-corrected step is lr·sign(g) (|g| ≫ eps).
                        let big = |&i: &usize| (g[i] * gs).abs() > 1e-2;
                        for i in (0..n.min(50)).filter(big) {
                            let want = p0[i] * (1.0 - lr * wd) - lr * g[i].signum();
                            assert!(
                                (p[i] - want).abs() <= lr * 1e-3 + 1e-6,
                                "{what}: step 1 should move by lr·sign(g)"
                            );
                        }
                    }
                    close_scaled(
                        &format!("{what} step {step} param"),
                        &gpu.read_f32(&pb, n).unwrap(),
                        &f64s(&p),
                        &p_scale,
                        1e-7,
                        1e-6,
                    );
                    close_scaled(
                        &format!("{what} step {step} m"),
                        &gpu.read_f32(&mb, n).unwrap(),
                        &f64s(&m),
                        &m_scale,
                        1e-9,
                        1e-6,
                    );
                    close(
                        &format!("{what} step {step} v"),
                        &gpu.read_f32(&vb, n).unwrap(),
                        &f64s(&v),
                        1e-12,
                        1e-6,
                    );
                }
            }
            // SGD: p - lr·(g·scale + wd·p), one correctly rounded f32 step on each side.
            let (p, g) = (rng.vec(n), rng.vec(n));
            let (pb, gb) = (up(gpu, &p), up(gpu, &g));
            let what = format!("{}: sgd n={n}", label(gpu));
            let mut r = Recorder::new(gpu);
            let res = r.sgd(&pb, &gb, n, 0.1, 0.01, 0.5);
            if !fits(gpu, &[&pb]) {
                assert_refused(&what, res);
                continue;
            }
            res.unwrap();
            r.submit().unwrap();
            let want: Vec<f64> = p
                .iter()
                .zip(&g)
                .map(|(&p, &g)| (p - 0.1 * (g * 0.5 + 0.01 * p)) as f64)
                .collect();
            close(&what, &gpu.read_f32(&pb, n).unwrap(), &want, 1e-7, 1e-6);
        }
    }
}

/// Several tensors' Σ x² into slots of one buffer (the others keep their values), in order with
/// `zero`: a cleared buffer then accumulated into must hold just the accumulated product.
#[test]
fn sum_squares_slots_and_zero_ordering() {
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(271);
        let sizes = [0, 1, 255, 257, 1000, 70000];
        let out = up(gpu, &vec![-1.0; sizes.len() + 2]);
        let mut r = Recorder::new(gpu);
        let mut want = vec![-1.0f64; sizes.len() + 2];
        let mut keep = vec![];
        for (slot, &n) in sizes.iter().enumerate() {
            let x: Vec<f32> = rng.vec(n.max(1)).iter().map(|v| v * 3.0).collect();
            let xb = up(gpu, &x);
            let res = r.sum_squares(&xb, n, &out, slot + 1);
            if !fits(gpu, &[&xb]) {
                assert_refused(&format!("{}: sum_squares n={n}", label(gpu)), res);
                continue;
            }
            res.unwrap();
            want[slot + 1] = x[..n].iter().map(|&v| v as f64 * v as f64).sum();
            keep.push(xb);
        }
        // zero, then gemm accumulating into the zeroed buffer, then zero a second buffer after use.
        let (a, b) = (rng.vec(6), rng.vec(6));
        let (ab, bb, cb) = (up(gpu, &a), up(gpu, &b), up(gpu, &[5.0; 4]));
        r.zero(&cb);
        r.gemm(&ab, 0, 3, 1, &bb, 0, 2, 1, &cb, 0, 2, 2, 2, 3, 1.0, true)
            .unwrap();
        let scratch = up(gpu, &[9.0; 8]);
        r.zero(&scratch);
        r.submit().unwrap();
        close(
            &format!("{}: sum_squares slots", label(gpu)),
            &gpu.read_f32(&out, want.len()).unwrap(),
            &want,
            1e-6,
            1e-5,
        );
        let mut c = vec![0.0; 4];
        cpu_gemm(&a, 0, 3, 1, &b, 0, 2, 1, &mut c, 0, 2, 2, 2, 3, 1.0, false);
        close(
            &format!("{}: zero then accumulate", label(gpu)),
            &gpu.read_f32(&cb, 4).unwrap(),
            &c,
            1e-6,
            1e-6,
        );
        assert_eq!(gpu.read_f32(&scratch, 8).unwrap(), vec![0.0; 8]);
    }
}
