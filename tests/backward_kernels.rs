//! The backward kernels of `edgerl::gpu::backward` for the linear and elementwise layers
//! (`gemm`, `matmul_backward_input`, `rmsnorm_backward`, `silu_mul_backward`) against plain-Rust
//! references, on every device of `common::all_gpus()`: Vulkan (lavapipe) and GL (llvmpipe),
//! each also with a 4096-byte binding limit, where anything larger must be refused with
//! `Error::Invalid` and weights split into several row pieces.
//!
//! Two kinds of check: an exact analytic reference in f64 on awkward sizes (odd, prime, larger
//! than a workgroup or tile, several weight pieces), and finite differences on tiny shapes: the
//! f64 CPU forward, perturbed by ±h, against the GPU gradient. Attention and the log-prob
//! gradient are in tests/attention_logprob_backward.rs, optimizers in tests/optim_kernels.rs.

mod backward;
mod common;

use backward::*;

use std::ops::Range;

use edgerl::gpu::{DType, GpuBuffer, Recorder, Tensor};

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// gemm

/// Every transpose combination (by strides), offsets into A, B and C, ldc wider than n (the
/// columns around the block and the rows before it must keep their contents), alpha, accumulate.
#[test]
fn gemm_transposes_offsets_accumulate() {
    let shapes = [
        (1, 1, 1),
        (3, 5, 7),
        (17, 2, 33),
        (16, 16, 16),
        (40, 19, 61),
        (5, 130, 3),
        (2, 3, 0),
        // The LoRA shapes: many rows and few columns, few rows and many columns (the
        // workgroup's threads shift between the two), and several workgroups both ways.
        (130, 8, 40),
        (8, 150, 37),
        (70, 70, 5),
    ];
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(201);
        let mut r = Recorder::new(gpu);
        let (mut cases, mut keep, mut ran) = (vec![], vec![], 0);
        for (si, &(m, n, k)) in shapes.iter().enumerate() {
            for ta in [false, true] {
                for tb in [false, true] {
                    let (alpha, acc) = [(1.0f32, false), (-0.75, true), (2.5, false), (0.5, true)]
                        [(si + 2 * ta as usize + tb as usize) % 4];
                    let what = format!(
                        "{}: gemm m={m} n={n} k={k} ta={ta} tb={tb} alpha={alpha} acc={acc}",
                        label(gpu)
                    );
                    let (ao, bo, co, ldc) = (3, 5, 2 + n, n + 4);
                    // A stored [m, k] or (transposed) [k, m]; B stored [k, n] or [n, k].
                    let (ars, acs) = if ta { (1, m) } else { (k, 1) };
                    let (brs, bcs) = if tb { (1, k) } else { (n, 1) };
                    let a = rng.vec(ao + m * k + 2);
                    let b = rng.vec(bo + k * n + 1);
                    let c0 = rng.vec(co + m * ldc + 3);
                    let (ab, bb, cb) = (up(gpu, &a), up(gpu, &b), up(gpu, &c0));
                    let res = r.gemm(
                        &ab, ao, ars, acs, &bb, bo, brs, bcs, &cb, co, ldc, m, n, k, alpha, acc,
                    );
                    if !fits(gpu, &[&ab, &bb, &cb]) {
                        assert_refused(&what, res);
                        continue;
                    }
                    res.unwrap();
                    ran += 1;
                    let mut want = f64s(&c0);
                    cpu_gemm(
                        &a,
                        ao,
                        ars,
                        acs,
                        &b,
                        bo,
                        brs,
                        bcs,
                        &mut want,
                        co,
                        ldc,
                        m,
                        n,
                        k,
                        alpha as f64,
                        acc,
                    );
                    cases.push(Case {
                        what,
                        buf: cb,
                        want,
                        atol: 1e-5 + 3e-7 * k as f64,
                        rtol: 1e-5,
                    });
                    keep.push((ab, bb));
                }
            }
        }
        assert!(ran >= 12, "{}: only {ran} gemm cases fit", label(gpu));
        r.submit().unwrap();
        check_cases(gpu, &cases);
    }
}

/// The LoRA chain y = s·(x Aᵀ) Bᵀ and its gradients through `gemm` alone, against finite
/// differences of L = Σ G ⊙ y: u = x Aᵀ, dB = s Gᵀ u, du = s G B, dA = duᵀ x, dx = du A.
#[test]
fn gemm_lora_gradients_match_finite_differences() {
    let (t, d, rank, out, s) = (5, 7, 3, 6, 0.5f32);
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(203);
        let (x, a, b, g) = (
            rng.vec(t * d),
            rng.vec(rank * d),
            rng.vec(out * rank),
            rng.vec(t * out),
        );
        let bufs: Vec<GpuBuffer> = [&x, &a, &b, &g].iter().map(|v| up(gpu, v)).collect();
        let (xb, ab, bb, gb) = (&bufs[0], &bufs[1], &bufs[2], &bufs[3]);
        let alloc = |n: usize| gpu.alloc((n * 4) as u64, "grad").unwrap();
        let (u, du, da, db, dx) = (
            alloc(t * rank),
            alloc(t * rank),
            alloc(rank * d),
            alloc(out * rank),
            alloc(t * d),
        );
        let mut r = Recorder::new(gpu);
        r.gemm(
            xb, 0, d, 1, ab, 0, 1, d, &u, 0, rank, t, rank, d, 1.0, false,
        )
        .unwrap(); // x Aᵀ
        r.gemm(
            gb, 0, 1, out, &u, 0, rank, 1, &db, 0, rank, out, rank, t, s, false,
        )
        .unwrap(); // s Gᵀ u
        r.gemm(
            gb, 0, out, 1, bb, 0, rank, 1, &du, 0, rank, t, rank, out, s, false,
        )
        .unwrap(); // s G B
        r.gemm(
            &du, 0, 1, rank, xb, 0, d, 1, &da, 0, d, rank, d, t, 1.0, false,
        )
        .unwrap(); // duᵀ x
        r.gemm(
            &du, 0, rank, 1, ab, 0, d, 1, &dx, 0, d, t, d, rank, 1.0, false,
        )
        .unwrap(); // du A
        r.submit().unwrap();
        let loss = |x: &[f64], a: &[f64], b: &[f64]| -> f64 {
            let mut l = 0.0;
            for i in 0..t {
                let u: Vec<f64> = (0..rank)
                    .map(|q| (0..d).map(|c| x[i * d + c] * a[q * d + c]).sum())
                    .collect();
                for o in 0..out {
                    let y: f64 = (0..rank).map(|q| u[q] * b[o * rank + q]).sum::<f64>() * s as f64;
                    l += g[i * out + o] as f64 * y;
                }
            }
            l
        };
        let (x64, a64, b64) = (f64s(&x), f64s(&a), f64s(&b));
        let what = |n: &str| format!("{}: LoRA {n} by finite differences", label(gpu));
        let h = 1e-4;
        let want_x = fd_grad(&x64, h, |v| loss(v, &a64, &b64));
        let want_a = fd_grad(&a64, h, |v| loss(&x64, v, &b64));
        let want_b = fd_grad(&b64, h, |v| loss(&x64, &a64, v));
        for (n, buf, want) in [
            ("dx", &dx, want_x),
            ("dA", &da, want_a),
            ("dB", &db, want_b),
        ] {
            close(
                &what(n),
                &gpu.read_f32(buf, want.len()).unwrap(),
                &want,
                2e-5,
                1e-4,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// matmul_backward_input

/// dx[i, c] (+)= Σ_j dy[i*ldy + j] W[rows.start + j, c]
#[allow(clippy::too_many_arguments)]
fn cpu_matmul_bwd(
    dy: &[f32],
    t: usize,
    ldy: usize,
    w: &[f32],
    k: usize,
    rows: Range<usize>,
    dx: &mut [f64],
    acc: bool,
) {
    for i in 0..t {
        for c in 0..k {
            let s: f64 = rows
                .clone()
                .enumerate()
                .map(|(j, r)| dy[i * ldy + j] as f64 * w[r * k + c] as f64)
                .sum();
            dx[i * k + c] = s + if acc { dx[i * k + c] } else { 0.0 };
        }
    }
}

/// The register-blocked input gradient (k a multiple of 32, dy rows on 16 bytes) over row
/// counts around its 4-row and 32-row steps, weight-row counts that are not multiples of 4,
/// and sub-ranges whose dy column offset is or is not a multiple of 4; on the tiny-binding
/// devices pieces straddle the ranges, so blocked and general dispatches mix in one sum.
#[test]
fn matmul_backward_input_blocked() {
    let v = 300;
    // (rows, ldy)
    let ranges: [(Range<usize>, usize); 4] =
        [(0..300, 300), (4..131, 128), (50..141, 92), (297..300, 4)];
    for gpu in common::all_gpus() {
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let mut rng = common::Rng::new(223 + dtype.code() as u64);
            let mut r = Recorder::new(gpu);
            let mut cases = vec![];
            let mut weights = vec![];
            for k in [32, 96] {
                let (w, seen) = weight(gpu, dtype, v, k, &rng.vec(v * k));
                for t in [1, 3, 6, 33] {
                    for (rows, ldy) in &ranges {
                        for acc in [false, true] {
                            let what = format!(
                                "{}: matmul_backward_input {dtype:?} t={t} k={k} rows {rows:?} ldy={ldy} acc={acc}",
                                label(gpu)
                            );
                            let dy = rng.vec(t * ldy);
                            let dx0 = rng.vec(t * k);
                            let (dyb, dxb) = (up(gpu, &dy), up(gpu, &dx0));
                            let res =
                                r.matmul_backward_input(&dyb, t, *ldy, &w, rows.clone(), &dxb, acc);
                            if !fits(gpu, &[&dyb, &dxb]) {
                                assert_refused(&what, res);
                                continue;
                            }
                            res.unwrap_or_else(|e| panic!("{what}: {e}"));
                            let mut want = f64s(&dx0);
                            cpu_matmul_bwd(&dy, t, *ldy, &seen, k, rows.clone(), &mut want, acc);
                            cases.push((
                                Case {
                                    what,
                                    buf: dxb,
                                    want,
                                    atol: 1e-5 + 3e-7 * rows.len() as f64,
                                    rtol: 1e-5,
                                },
                                dyb,
                            ));
                        }
                    }
                }
                weights.push(w);
            }
            r.submit().unwrap();
            for (c, _) in &cases {
                check_cases(gpu, std::slice::from_ref(c));
            }
        }
    }
}

/// Row sub-ranges that straddle pieces of f32/f16/bf16 weights split by the 4096-byte limit,
/// ldy wider than the range, accumulate on and off (off must still sum every piece), and an
/// empty range (zeroes dx, or leaves it with accumulate).
#[test]
fn matmul_backward_input_across_pieces() {
    let (t, k, v) = (3, 16, 300);
    let ranges: [(Range<usize>, usize); 6] = [
        (50..140, 97),
        (120..137, 20),
        (0..300, 300),
        (299..300, 3),
        (63..66, 5),
        (10..10, 4),
    ];
    for gpu in common::all_gpus() {
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let mut rng = common::Rng::new(211 + dtype.code() as u64);
            let (w, seen) = weight(gpu, dtype, v, k, &rng.vec(v * k));
            if is_tiny(gpu) {
                assert!(
                    pieces_touched(&w, &(50..140)) >= 2 && pieces_touched(&w, &(0..300)) >= 3,
                    "{dtype:?}: ranges should straddle pieces"
                );
            }
            let mut r = Recorder::new(gpu);
            let mut cases = vec![];
            for (rows, ldy) in &ranges {
                for acc in [false, true] {
                    let what = format!(
                        "{}: matmul_backward_input {dtype:?} rows {rows:?} ldy={ldy} acc={acc}",
                        label(gpu)
                    );
                    let dy = rng.vec(t * ldy);
                    let dx0 = rng.vec(t * k);
                    let (dyb, dxb) = (up(gpu, &dy), up(gpu, &dx0));
                    r.matmul_backward_input(&dyb, t, *ldy, &w, rows.clone(), &dxb, acc)
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    let mut want = f64s(&dx0);
                    cpu_matmul_bwd(&dy, t, *ldy, &seen, k, rows.clone(), &mut want, acc);
                    cases.push((
                        Case {
                            what,
                            buf: dxb,
                            want,
                            atol: 1e-5 + 3e-7 * rows.len() as f64,
                            rtol: 1e-5,
                        },
                        dyb,
                    ));
                }
            }
            r.submit().unwrap();
            for (c, _) in &cases {
                check_cases(gpu, std::slice::from_ref(c));
            }
        }
    }
}

/// Odd, prime and larger-than-a-tile t, k, n through the whole weight, against the exact
/// reference, and dx = ∂/∂x Σ dy ⊙ (x Wᵀ) by finite differences on a tiny shape.
#[test]
fn matmul_backward_input_grid_and_finite_differences() {
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(213);
        let mut r = Recorder::new(gpu);
        let mut cases = vec![];
        for (ti, &t) in [1, 5, 17, 33].iter().enumerate() {
            for &k in &[1, 7, 67] {
                for (ni, &n) in [1, 61, 130].iter().enumerate() {
                    let dtype = [DType::F32, DType::F16, DType::BF16][(ti + ni) % 3];
                    let what = format!(
                        "{}: matmul_backward_input {dtype:?} t={t} k={k} n={n}",
                        label(gpu)
                    );
                    let (w, seen) = weight(gpu, dtype, n, k, &rng.vec(n * k));
                    let dy = rng.vec(t * n);
                    let (dyb, dxb) = (up(gpu, &dy), up(gpu, &vec![f32::NAN; t * k]));
                    let res = r.matmul_backward_input(&dyb, t, n, &w, 0..n, &dxb, false);
                    if !fits(gpu, &[&dyb, &dxb]) {
                        assert_refused(&what, res);
                        continue;
                    }
                    res.unwrap();
                    let mut want = vec![0.0; t * k];
                    cpu_matmul_bwd(&dy, t, n, &seen, k, 0..n, &mut want, false);
                    cases.push((
                        Case {
                            what,
                            buf: dxb,
                            want,
                            atol: 1e-5 + 3e-7 * n as f64,
                            rtol: 1e-5,
                        },
                        dyb,
                        w,
                    ));
                }
            }
        }
        // Finite differences: t=3, k=5, weight rows 2..9 of 11 (bf16), dy with ldy 9.
        let (t, k, n, rows, ldy) = (3, 5, 11, 2..9, 9);
        let x = rng.vec(t * k);
        let dy = rng.vec(t * ldy);
        let (w, seen) = weight(gpu, DType::BF16, n, k, &rng.vec(n * k));
        let (dyb, dxb) = (up(gpu, &dy), up(gpu, &vec![0.0; t * k]));
        r.matmul_backward_input(&dyb, t, ldy, &w, rows.clone(), &dxb, false)
            .unwrap();
        let loss = |x: &[f64]| -> f64 {
            let mut l = 0.0;
            for i in 0..t {
                for (j, row) in rows.clone().enumerate() {
                    let y: f64 = (0..k)
                        .map(|c| x[i * k + c] * seen[row * k + c] as f64)
                        .sum();
                    l += dy[i * ldy + j] as f64 * y;
                }
            }
            l
        };
        let want = fd_grad(&f64s(&x), 1e-3, loss);
        cases.push((
            Case {
                what: format!(
                    "{}: matmul_backward_input by finite differences",
                    label(gpu)
                ),
                buf: dxb,
                want,
                atol: 1e-5,
                rtol: 1e-4,
            },
            dyb,
            w,
        ));
        r.submit().unwrap();
        for (c, _, _) in &cases {
            check_cases(gpu, std::slice::from_ref(c));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// rmsnorm_backward

fn cpu_rmsnorm(x: &[f64], w: &[f32], rows: usize, d: usize, eps: f32) -> Vec<f64> {
    let mut y = vec![0.0; rows * d];
    for i in 0..rows {
        let xr = &x[i * d..(i + 1) * d];
        let r = 1.0 / (xr.iter().map(|v| v * v).sum::<f64>() / d as f64 + eps as f64).sqrt();
        for c in 0..d {
            y[i * d + c] = xr[c] * r * w[c] as f64;
        }
    }
    y
}

fn cpu_rmsnorm_bwd(x: &[f32], w: &[f32], dy: &[f32], rows: usize, d: usize, eps: f32) -> Vec<f64> {
    let mut dx = vec![0.0; rows * d];
    for i in 0..rows {
        let xr = &x[i * d..(i + 1) * d];
        let r = 1.0
            / (xr.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / d as f64 + eps as f64).sqrt();
        let dot: f64 = (0..d)
            .map(|c| w[c] as f64 * dy[i * d + c] as f64 * xr[c] as f64)
            .sum();
        for c in 0..d {
            dx[i * d + c] =
                r * w[c] as f64 * dy[i * d + c] as f64 - xr[c] as f64 * r * r * r * dot / d as f64;
        }
    }
    dx
}

#[test]
fn rmsnorm_backward_sizes_and_finite_differences() {
    let shapes = [(1, 1), (3, 7), (5, 64), (2, 65), (4, 257), (1, 896), (2, 5)];
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(221);
        let mut r = Recorder::new(gpu);
        let mut cases = vec![];
        for (si, &(rows, d)) in shapes.iter().enumerate() {
            let (eps, acc) = ([1e-6f32, 1e-5, 0.1][si % 3], si % 2 == 1);
            let what = format!(
                "{}: rmsnorm_backward rows={rows} d={d} eps={eps} acc={acc}",
                label(gpu)
            );
            let x: Vec<f32> = rng.vec(rows * d).iter().map(|v| v * 3.0).collect();
            let w: Vec<f32> = rng.vec(d).iter().map(|v| 1.0 + v).collect();
            let dy = rng.vec(rows * d);
            let dx0 = rng.vec(rows * d);
            let (xb, wb, dyb, dxb) = (up(gpu, &x), up(gpu, &w), up(gpu, &dy), up(gpu, &dx0));
            let res = r.rmsnorm_backward(&xb, &wb, &dyb, &dxb, rows, d, eps, acc);
            if !fits(gpu, &[&xb, &dyb, &dxb]) {
                assert_refused(&what, res);
                continue;
            }
            res.unwrap();
            let mut want = cpu_rmsnorm_bwd(&x, &w, &dy, rows, d, eps);
            if acc {
                want.iter_mut().zip(&dx0).for_each(|(a, &b)| *a += b as f64);
            }
            cases.push(Case {
                what,
                buf: dxb,
                want,
                atol: 2e-6,
                rtol: 1e-5,
            });
            // Finite differences of Σ dy ⊙ rmsnorm(x) on the small shapes.
            if rows * d <= 70 {
                let loss = |xv: &[f64]| {
                    cpu_rmsnorm(xv, &w, rows, d, eps)
                        .iter()
                        .zip(&dy)
                        .map(|(y, &g)| y * g as f64)
                        .sum::<f64>()
                };
                let fd = fd_grad(&f64s(&x), 1e-4, loss);
                let dxb2 = gpu.alloc((rows * d * 4) as u64, "dx").unwrap();
                r.rmsnorm_backward(&xb, &wb, &dyb, &dxb2, rows, d, eps, false)
                    .unwrap();
                cases.push(Case {
                    what: format!(
                        "{}: rmsnorm_backward rows={rows} d={d} by finite differences",
                        label(gpu)
                    ),
                    buf: dxb2,
                    want: fd,
                    atol: 1e-5,
                    rtol: 1e-4,
                });
            }
        }
        r.submit().unwrap();
        check_cases(gpu, &cases);
    }
}

/// More than 32768 rows: the 2-D workgroup fold.
#[test]
fn rmsnorm_backward_two_d_fold() {
    for gpu in common::normal_gpus() {
        let mut rng = common::Rng::new(223);
        let (rows, d) = (40_000, 3);
        let (x, w, dy) = (rng.vec(rows * d), rng.vec(d), rng.vec(rows * d));
        let (xb, wb, dyb, dxb) = (
            up(gpu, &x),
            up(gpu, &w),
            up(gpu, &dy),
            up(gpu, &vec![f32::NAN; rows * d]),
        );
        let mut r = Recorder::new(gpu);
        r.rmsnorm_backward(&xb, &wb, &dyb, &dxb, rows, d, 1e-5, false)
            .unwrap();
        r.submit().unwrap();
        close(
            &format!("{}: rmsnorm_backward 2-D fold", label(gpu)),
            &gpu.read_f32(&dxb, rows * d).unwrap(),
            &cpu_rmsnorm_bwd(&x, &w, &dy, rows, d, 1e-5),
            1e-5,
            1e-4,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// silu_mul_backward

fn silu(g: f64) -> f64 {
    g / (1.0 + (-g).exp())
}

#[test]
fn silu_mul_backward_exact_and_finite_differences() {
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(231);
        let mut r = Recorder::new(gpu);
        let mut cases = vec![];
        for n in [1, 255, 256, 257, 70000] {
            let what = format!("{}: silu_mul_backward n={n}", label(gpu));
            let gate: Vec<f32> = rng.vec(n).iter().map(|v| v * 12.0).collect();
            let (upv, da) = (rng.vec(n), rng.vec(n));
            // One element past n must stay untouched.
            let (dg0, du0) = (vec![7.0f32; n + 1], vec![-7.0f32; n + 1]);
            let (gb, ub, dab, dgb, dub) = (
                up(gpu, &gate),
                up(gpu, &upv),
                up(gpu, &da),
                up(gpu, &dg0),
                up(gpu, &du0),
            );
            let res = r.silu_mul_backward(&gb, &ub, &dab, &dgb, &dub, n);
            if !fits(gpu, &[&gb, &dgb]) {
                assert_refused(&what, res);
                continue;
            }
            res.unwrap();
            let mut want_g: Vec<f64> = (0..n)
                .map(|i| {
                    let (g, s) = (gate[i] as f64, 1.0 / (1.0 + (-gate[i] as f64).exp()));
                    da[i] as f64 * upv[i] as f64 * s * (1.0 + g * (1.0 - s))
                })
                .collect();
            let mut want_u: Vec<f64> = (0..n)
                .map(|i| da[i] as f64 * silu(gate[i] as f64))
                .collect();
            // n = 257: finite differences of Σ da ⊙ silu(gate) ⊙ up instead, elementwise (each
            // input feeds one output).
            if n == 257 {
                for i in 0..n {
                    let f = |g: f64, u: f64| da[i] as f64 * silu(g) * u;
                    let (g, u, h) = (gate[i] as f64, upv[i] as f64, 1e-4);
                    want_g[i] = (f(g + h, u) - f(g - h, u)) / (2.0 * h);
                    want_u[i] = (f(g, u + h) - f(g, u - h)) / (2.0 * h);
                }
            }
            want_g.push(7.0);
            want_u.push(-7.0);
            cases.push(Case {
                what: format!("{what} dgate"),
                buf: dgb,
                want: want_g,
                atol: 1e-6,
                rtol: 1e-5,
            });
            cases.push(Case {
                what: format!("{what} dup"),
                buf: dub,
                want: want_u,
                atol: 1e-6,
                rtol: 1e-5,
            });
        }
        r.submit().unwrap();
        check_cases(gpu, &cases);
    }
}

// ---------------------------------------------------------------------------------------------
// GELU (tanh approximation) gating, Gemma's MLP, and the embedding scale

fn gelu_tanh(g: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * g * (1.0 + (c * (g + 0.044715 * g * g * g)).tanh())
}

#[test]
fn gelu_tanh_mul_forward_backward_and_finite_differences() {
    use edgerl::gpu::Activation;
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(232);
        let mut r = Recorder::new(gpu);
        let mut cases = vec![];
        for n in [1, 257, 1000] {
            let what = format!("{}: gelu_tanh n={n}", label(gpu));
            // Past ±15 the tanh argument is clamped: include large gates of both signs.
            let mut gate: Vec<f32> = rng.vec(n).iter().map(|v| v * 8.0).collect();
            if n > 4 {
                gate[..4].copy_from_slice(&[40.0, -40.0, 1e-3, -3.5]);
            }
            let (upv, da) = (rng.vec(n), rng.vec(n));
            let (gb, ub, fwd) = (up(gpu, &gate), up(gpu, &upv), up(gpu, &upv));
            let (dab, dgb, dub) = (up(gpu, &da), up(gpu, &vec![0.0; n]), up(gpu, &vec![0.0; n]));
            r.act_mul(Activation::GeluTanh, &gb, &fwd, n).unwrap();
            r.act_mul_backward(Activation::GeluTanh, &gb, &ub, &dab, &dgb, &dub, n)
                .unwrap();
            let f = |i: usize, g: f64, u: f64| da[i] as f64 * gelu_tanh(g) * u;
            let h = 1e-4;
            let want_fwd = (0..n)
                .map(|i| gelu_tanh(gate[i] as f64) * upv[i] as f64)
                .collect();
            // Finite differences of Σ da ⊙ gelu(gate) ⊙ up (each input feeds one output).
            let want_g = (0..n)
                .map(|i| {
                    let (g, u) = (gate[i] as f64, upv[i] as f64);
                    (f(i, g + h, u) - f(i, g - h, u)) / (2.0 * h)
                })
                .collect();
            let want_u = (0..n)
                .map(|i| da[i] as f64 * gelu_tanh(gate[i] as f64))
                .collect();
            for (part, buf, want) in [
                ("forward", fwd, want_fwd),
                ("dgate", dgb, want_g),
                ("dup", dub, want_u),
            ] {
                cases.push(Case {
                    what: format!("{what} {part}"),
                    buf,
                    want,
                    atol: 1e-5,
                    rtol: 1e-4,
                });
            }
        }
        // b *= s (the √hidden embedding scale), over an awkward length.
        let x = rng.vec(1000);
        let xb = up(gpu, &x);
        r.scale(&xb, 999, 25.298).unwrap();
        let mut want: Vec<f64> = x.iter().map(|&v| v as f64 * 25.298f32 as f64).collect();
        want[999] = x[999] as f64;
        cases.push(Case {
            what: format!("{}: scale", label(gpu)),
            buf: xb,
            want,
            atol: 1e-6,
            rtol: 1e-6,
        });
        r.submit().unwrap();
        check_cases(gpu, &cases);
    }
}

// ---------------------------------------------------------------------------------------------
// misuse

/// Misuse is refused with `Error::Invalid` before anything is recorded.
#[test]
fn backward_wrappers_refuse_misuse() {
    for gpu in common::all_gpus() {
        let b = |n: usize| gpu.alloc((n * 4) as u64, "x").unwrap();
        let (x, y, z, w4) = (b(16), b(16), b(16), b(4));
        let wt = Tensor::from_f32(gpu, "w", 4, 4, &[0.0; 16]).unwrap();
        let mut r = Recorder::new(gpu);
        assert_refused(
            "gemm C is A",
            r.gemm(&x, 0, 4, 1, &y, 0, 4, 1, &x, 0, 4, 4, 4, 4, 1.0, false),
        );
        assert_refused(
            "gemm A out of bounds",
            r.gemm(&x, 1, 4, 1, &y, 0, 4, 1, &z, 0, 4, 4, 4, 4, 1.0, false),
        );
        assert_refused(
            "gemm C rows overlap",
            r.gemm(&x, 0, 4, 1, &y, 0, 4, 1, &z, 0, 2, 4, 4, 4, 1.0, false),
        );
        assert_refused(
            "matmul_backward_input rows past the weight",
            r.matmul_backward_input(&x, 4, 4, &wt, 2..5, &y, false),
        );
        assert_refused(
            "matmul_backward_input dx too small",
            r.matmul_backward_input(&x, 4, 4, &wt, 0..4, &w4, false),
        );
        assert_refused(
            "rmsnorm_backward dx is dy",
            r.rmsnorm_backward(&x, &w4, &y, &y, 4, 4, 1e-5, false),
        );
        assert_refused(
            "silu_mul_backward dgate is dup",
            r.silu_mul_backward(&x, &y, &z, &w4, &w4, 4),
        );
        assert_refused(
            "adamw step 0",
            r.adamw(&x, &y, &z, &w4, 4, 1e-3, 0.9, 0.999, 1e-8, 0.0, 0, 1.0),
        );
        assert_refused(
            "sum_squares slot past the end",
            r.sum_squares(&x, 16, &w4, 4),
        );
        assert_refused(
            "logprob_grad_chunk state too small",
            r.logprob_grad_chunk(&x, &y, &w4, &z, 4, 4, 0, 1.0),
        );
        assert!(r.is_empty(), "refused calls must record nothing");
    }
}
