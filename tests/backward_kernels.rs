//! The backward and optimizer kernels of `edgerl::gpu::backward` against plain-Rust references,
//! on every device of `common::all_gpus()` (Vulkan/lavapipe and GL/llvmpipe, each also with a
//! 4096-byte binding limit, where anything larger must be refused with `Error::Invalid`).
//!
//! Two kinds of check: an exact analytic reference in f64 on awkward sizes (odd, prime, larger
//! than a workgroup or tile, weights split into several pieces), and a finite-difference check
//! of every backward on tiny shapes: the f64 CPU forward, perturbed by ±h, against the GPU
//! gradient.

mod common;

use std::ops::Range;

use edgerl::Error;
use edgerl::gpu::{DType, Gpu, GpuBuffer, Recorder, Tensor};
use half::{bf16, f16};

// ---------------------------------------------------------------------------------------------
// helpers

const NO_TARGET: u32 = 0xffff_ffff;

fn is_tiny(gpu: &Gpu) -> bool {
    gpu.max_binding == common::TINY_BINDING
}

fn label(gpu: &Gpu) -> String {
    format!(
        "{} ({}{})",
        gpu.adapter.backend,
        gpu.adapter.name,
        if is_tiny(gpu) {
            ", 4096-byte bindings"
        } else {
            ""
        }
    )
}

fn fits(gpu: &Gpu, bufs: &[&GpuBuffer]) -> bool {
    bufs.iter().all(|b| b.bytes <= gpu.max_binding)
}

fn assert_refused(what: &str, res: edgerl::Result<()>) {
    assert!(
        matches!(res, Err(Error::Invalid(_))),
        "{what}: must be refused with Error::Invalid, got {res:?}"
    );
}

fn up(gpu: &Gpu, data: &[f32]) -> GpuBuffer {
    gpu.upload(bytemuck::cast_slice(data), "test data").unwrap()
}

fn up_u32(gpu: &Gpu, data: &[u32]) -> GpuBuffer {
    gpu.upload(bytemuck::cast_slice(data), "test ids").unwrap()
}

fn close(what: &str, got: &[f32], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = atol + rtol * w.abs();
        assert!(
            g.is_finite() && (g as f64 - w).abs() <= tol,
            "{what}: element {i}: got {g}, want {w} (tol {tol:e})"
        );
    }
}

/// Central differences of `f` at `x`, in f64.
fn fd_grad(x: &[f64], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let x0 = x[i];
            x[i] = x0 + h;
            let fp = f(&x);
            x[i] = x0 - h;
            let fm = f(&x);
            x[i] = x0;
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// A weight tensor of `dtype` and the values the GPU sees (rounded to the dtype).
fn weight(gpu: &Gpu, dtype: DType, rows: usize, cols: usize, vals: &[f32]) -> (Tensor, Vec<f32>) {
    let (bytes, seen): (Vec<u8>, Vec<f32>) = match dtype {
        DType::F32 => (bytemuck::cast_slice(vals).to_vec(), vals.to_vec()),
        DType::F16 => (
            vals.iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect(),
            vals.iter().map(|&v| f16::from_f32(v).to_f32()).collect(),
        ),
        DType::BF16 => (
            vals.iter()
                .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                .collect(),
            vals.iter().map(|&v| bf16::from_f32(v).to_f32()).collect(),
        ),
    };
    (
        Tensor::from_bytes(gpu, "w", dtype, rows, cols, &bytes).unwrap(),
        seen,
    )
}

fn pieces_touched(w: &Tensor, r: &Range<usize>) -> usize {
    w.pieces
        .iter()
        .filter(|p| r.start.max(p.row_start) < r.end.min(p.row_start + p.rows))
        .count()
}

/// One recorded case: the buffer to read back and what it must hold.
struct Case {
    what: String,
    buf: GpuBuffer,
    want: Vec<f64>,
    atol: f64,
    rtol: f64,
}

fn check_cases(gpu: &Gpu, cases: &[Case]) {
    for c in cases {
        let got = gpu.read_f32(&c.buf, c.want.len()).unwrap();
        close(&c.what, &got, &c.want, c.atol, c.rtol);
    }
}

// ---------------------------------------------------------------------------------------------
// gemm

#[allow(clippy::too_many_arguments)]
fn cpu_gemm(
    a: &[f32],
    ao: usize,
    ars: usize,
    acs: usize,
    b: &[f32],
    bo: usize,
    brs: usize,
    bcs: usize,
    c: &mut [f64],
    co: usize,
    ldc: usize,
    m: usize,
    n: usize,
    k: usize,
    alpha: f64,
    acc: bool,
) {
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k)
                .map(|p| a[ao + i * ars + p * acs] as f64 * b[bo + p * brs + j * bcs] as f64)
                .sum();
            let idx = co + i * ldc + j;
            c[idx] = alpha * s + if acc { c[idx] } else { 0.0 };
        }
    }
}

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
            std::mem::forget((xb, wb, dyb)); // kept alive until the end of the test process
        }
        r.submit().unwrap();
        check_cases(gpu, &cases);
    }
}

/// More than 32768 rows: the 2-D workgroup fold.
#[test]
fn rmsnorm_backward_two_d_fold() {
    for gpu in common::backends().normal.iter() {
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
            // Finite differences of Σ da ⊙ silu(gate) ⊙ up, elementwise (each input feeds one output).
            if n == 257 {
                for i in 0..n {
                    let f = |g: f64, u: f64| da[i] as f64 * silu(g) * u;
                    let (g, u, h) = (gate[i] as f64, upv[i] as f64, 1e-4);
                    let fd_g = (f(g + h, u) - f(g - h, u)) / (2.0 * h);
                    let fd_u = (f(g, u + h) - f(g, u - h)) / (2.0 * h);
                    assert!(
                        (fd_g - want_g[i]).abs() < 1e-6 && (fd_u - want_u[i]).abs() < 1e-6,
                        "{what}: reference vs finite differences at {i}"
                    );
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
            std::mem::forget((gb, ub, dab));
        }
        r.submit().unwrap();
        check_cases(gpu, &cases);
    }
}

// ---------------------------------------------------------------------------------------------
// attention_backward

/// Causal attention over positions 0 .. t in f64: out [t, heads, hd].
fn cpu_attn(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    t: usize,
    heads: usize,
    kv: usize,
    hd: usize,
    scale: f64,
) -> Vec<f64> {
    let mut out = vec![0.0; t * heads * hd];
    for i in 0..t {
        for h in 0..heads {
            let (kvh, qb) = (h / (heads / kv), (i * heads + h) * hd);
            let s: Vec<f64> = (0..=i)
                .map(|j| {
                    (0..hd)
                        .map(|d| q[qb + d] * k[(j * kv + kvh) * hd + d])
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for d in 0..hd {
                out[qb + d] = (0..=i)
                    .map(|j| e[j] * v[(j * kv + kvh) * hd + d])
                    .sum::<f64>()
                    / z;
            }
        }
    }
    out
}

/// The analytic backward in f64: (dq, dk, dv).
#[allow(clippy::too_many_arguments)]
fn cpu_attn_bwd(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    dout: &[f64],
    t: usize,
    heads: usize,
    kv: usize,
    hd: usize,
    scale: f64,
) -> [Vec<f64>; 3] {
    let out = cpu_attn(q, k, v, t, heads, kv, hd, scale);
    let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
    for i in 0..t {
        for h in 0..heads {
            let (kvh, qb) = (h / (heads / kv), (i * heads + h) * hd);
            let s: Vec<f64> = (0..=i)
                .map(|j| {
                    (0..hd)
                        .map(|d| q[qb + d] * k[(j * kv + kvh) * hd + d])
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
            let dsum: f64 = (0..hd).map(|d| dout[qb + d] * out[qb + d]).sum();
            for j in 0..=i {
                let kb = (j * kv + kvh) * hd;
                let p = (s[j] - m).exp() / z;
                let dp: f64 = (0..hd).map(|d| dout[qb + d] * v[kb + d]).sum();
                let ds = p * (dp - dsum);
                for d in 0..hd {
                    dq[qb + d] += scale * ds * k[kb + d];
                    dk[kb + d] += scale * ds * q[qb + d];
                    dv[kb + d] += p * dout[qb + d];
                }
            }
        }
    }
    [dq, dk, dv]
}

/// GPU forward (`attention`, p0 = 0) then `attention_backward`, against the f64 reference on
/// GQA shapes, and against finite differences of Σ dout ⊙ out on the tiny ones.
#[test]
fn attention_backward_gqa_and_finite_differences() {
    // (heads, kv_heads, hd, t, q_gain, finite differences)
    let configs = [
        (4, 2, 16, 1, 1.0, false),
        (4, 2, 16, 6, 1.0, true),
        (4, 2, 16, 40, 6.0, false),
        (6, 1, 24, 5, 1.0, true),
        (6, 1, 24, 23, 1.0, false),
        (6, 1, 128, 37, 4.0, false),
        (3, 3, 24, 17, 1.0, false),
        (2, 1, 128, 3, 1.0, true),
        (1, 1, 4, 2, 1.0, true),
    ];
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(241);
        let mut r = Recorder::new(gpu);
        let mut cases = vec![];
        let mut ran = 0;
        for &(heads, kv, hd, t, q_gain, fd) in &configs {
            let what = format!(
                "{}: attention_backward heads={heads} kv={kv} hd={hd} t={t} q_gain={q_gain}",
                label(gpu)
            );
            let scale = 1.0 / (hd as f32).sqrt();
            let q: Vec<f32> = rng.vec(t * heads * hd).iter().map(|v| v * q_gain).collect();
            let (k, v, dout) = (
                rng.vec(t * kv * hd),
                rng.vec(t * kv * hd),
                rng.vec(t * heads * hd),
            );
            let (qb, kb, vb, db) = (up(gpu, &q), up(gpu, &k), up(gpu, &v), up(gpu, &dout));
            let alloc = |n: usize| up(gpu, &vec![f32::NAN; n]);
            let (ob, dqb, dkb, dvb, sb) = (
                alloc(q.len()),
                alloc(q.len()),
                alloc(k.len()),
                alloc(k.len()),
                alloc(t * heads * 2),
            );
            let bufs = [&qb, &kb, &vb, &db, &ob, &dqb, &dkb, &dvb, &sb];
            if !fits(gpu, &bufs) {
                assert_refused(
                    &what,
                    r.attention_backward(
                        &qb, &kb, &vb, &ob, &db, &dqb, &dkb, &dvb, &sb, t, heads, kv, hd, scale,
                    ),
                );
                continue;
            }
            ran += 1;
            r.attention(&qb, &kb, &vb, &ob, t, heads, kv, hd, 0, scale)
                .unwrap();
            r.attention_backward(
                &qb, &kb, &vb, &ob, &db, &dqb, &dkb, &dvb, &sb, t, heads, kv, hd, scale,
            )
            .unwrap();
            let (q64, k64, v64, d64) = (f64s(&q), f64s(&k), f64s(&v), f64s(&dout));
            let exact = cpu_attn_bwd(&q64, &k64, &v64, &d64, t, heads, kv, hd, scale as f64);
            let grads = [("dq", dqb), ("dk", dkb), ("dv", dvb)];
            if fd {
                let s = scale as f64;
                let loss = |q: &[f64], k: &[f64], v: &[f64]| {
                    cpu_attn(q, k, v, t, heads, kv, hd, s)
                        .iter()
                        .zip(&d64)
                        .map(|(o, g)| o * g)
                        .sum::<f64>()
                };
                let h = 1e-4;
                let fds = [
                    fd_grad(&q64, h, |x| loss(x, &k64, &v64)),
                    fd_grad(&k64, h, |x| loss(&q64, x, &v64)),
                    fd_grad(&v64, h, |x| loss(&q64, &k64, x)),
                ];
                for (i, fdv) in fds.iter().enumerate() {
                    close(
                        &format!("{what}: {} reference vs finite differences", grads[i].0),
                        &fdv.iter().map(|&x| x as f32).collect::<Vec<_>>(),
                        &exact[i],
                        1e-6,
                        1e-5,
                    );
                }
            }
            // The longest row sums t·group terms of size ~|dout|·|v| and ~hd-long dot products.
            let atol = 2e-6 * ((t * heads / kv) as f64).sqrt() * (hd as f64).sqrt();
            for ((name, buf), want) in grads.into_iter().zip(exact) {
                cases.push(Case {
                    what: format!(
                        "{what}: {name}{}",
                        if fd {
                            " (finite differences agree)"
                        } else {
                            ""
                        }
                    ),
                    buf,
                    want,
                    atol,
                    rtol: 1e-4,
                });
            }
            std::mem::forget((qb, kb, vb, db, ob, sb));
        }
        assert!(ran >= 3, "{}: only {ran} attention cases fit", label(gpu));
        r.submit().unwrap();
        check_cases(gpu, &cases);
    }
}

#[test]
fn attention_backward_rejects_bad_arguments() {
    for gpu in common::all_gpus() {
        let b = || gpu.alloc(4096, "x").unwrap();
        let (q, k, v, o, d, dq, dk, dv, s) = (b(), b(), b(), b(), b(), b(), b(), b(), b());
        let mut r = Recorder::new(gpu);
        assert!(
            r.attention_backward(&q, &k, &v, &o, &d, &dq, &dk, &dv, &s, 1, 4, 3, 16, 1.0)
                .is_err(),
            "heads not a multiple of kv_heads"
        );
        assert!(
            r.attention_backward(&q, &k, &v, &o, &d, &dq, &dk, &dv, &s, 1, 2, 1, 320, 1.0)
                .is_err(),
            "head_dim over 256"
        );
        assert_refused(
            "dq aliasing q",
            r.attention_backward(&q, &k, &v, &o, &d, &q, &dk, &dv, &s, 2, 2, 1, 16, 1.0),
        );
        assert_refused(
            "buffers too small",
            r.attention_backward(&q, &k, &v, &o, &d, &dq, &dk, &dv, &s, 64, 2, 1, 16, 1.0),
        );
        assert!(r.is_empty(), "refused calls must record nothing");
    }
}

// ---------------------------------------------------------------------------------------------
// logprob_grad_chunk

/// Per row of z (f64): (lse, p, lp, H).
fn softmax_row(z: &[f64], target: u32) -> (Vec<f64>, f64, f64) {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
    let p: Vec<f64> = z.iter().map(|x| (x - lse).exp()).collect();
    let lp = if target == NO_TARGET {
        0.0
    } else {
        z[target as usize] - lse
    };
    let h = lse - p.iter().zip(z).map(|(p, z)| p * z).sum::<f64>();
    (p, lp, h)
}

/// Σ_t a_t lp_t + b_t H_t with z = logits * inv_temp (z as the GPU rounds it when `round`).
fn objective(
    logits: &[f64],
    t: usize,
    v: usize,
    targets: &[u32],
    coefs: &[f32],
    inv_temp: f32,
) -> f64 {
    (0..t)
        .map(|i| {
            let z: Vec<f64> = logits[i * v..(i + 1) * v]
                .iter()
                .map(|l| l * inv_temp as f64)
                .collect();
            let (_, lp, h) = softmax_row(&z, targets[i]);
            coefs[2 * i] as f64 * lp + coefs[2 * i + 1] as f64 * h
        })
        .sum()
}

fn cpu_logprob_grad(
    logits: &[f32],
    t: usize,
    v: usize,
    targets: &[u32],
    coefs: &[f32],
    inv_temp: f32,
) -> Vec<f64> {
    let mut g = vec![0.0; t * v];
    for i in 0..t {
        let z: Vec<f64> = logits[i * v..(i + 1) * v]
            .iter()
            .map(|&l| (l * inv_temp) as f64)
            .collect();
        let (p, _, h) = softmax_row(&z, targets[i]);
        let lse = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max) + 0.0;
        let lse = lse + z.iter().map(|x| (x - lse).exp()).sum::<f64>().ln();
        let (a, b) = (coefs[2 * i] as f64, coefs[2 * i + 1] as f64);
        for j in 0..v {
            let delta = if targets[i] == j as u32 { 1.0 } else { 0.0 };
            g[i * v + j] = inv_temp as f64 * (a * (delta - p[j]) - b * p[j] * (z[j] - lse + h));
        }
    }
    g
}

/// The whole flow in one submit: lse_init, lse_chunk over uneven chunks, then
/// logprob_grad_chunk over the same chunks; the concatenated chunks against the f64 reference,
/// and on the small vocabulary against finite differences of the objective.
#[test]
fn logprob_grad_chunks_and_finite_differences() {
    // (vocab, chunk widths, targets, offset of the logits)
    let cases: [(usize, Vec<usize>, Vec<u32>, f32); 4] = [
        (37, vec![20, 17], vec![36, NO_TARGET, 0, 18, 19], 0.0),
        (
            1000,
            vec![300, 300, 400],
            vec![0, 299, 300, NO_TARGET, 999, 600, 517],
            0.0,
        ),
        (1000, vec![1000], vec![5, NO_TARGET, 998], -300.0),
        (
            301,
            vec![128, 128, 45],
            vec![127, 128, 300, NO_TARGET],
            40.0,
        ),
    ];
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(251);
        for (v, widths, targets, offset) in &cases {
            for inv_temp in [1.0f32, 1.0 / 0.7] {
                let t = targets.len();
                let what = format!(
                    "{}: logprob_grad V={v} chunks={widths:?} offset={offset} inv_temp={inv_temp}",
                    label(gpu)
                );
                let logits: Vec<f32> = rng.vec(t * v).iter().map(|x| x * 6.0 + offset).collect();
                // (a, b) per row: policy-gradient-like, entropy-only, both, and zero.
                let coefs: Vec<f32> = (0..t)
                    .flat_map(|i| {
                        [
                            [1.0, 0.0],
                            [0.0, 0.3],
                            [-0.7, 0.05],
                            [0.0, 0.0],
                            [2.0, -0.2],
                        ][i % 5]
                    })
                    .collect();
                let (tb, sb, cb) = (
                    up_u32(gpu, targets),
                    up(gpu, &vec![0.0; t * 4]),
                    up(gpu, &coefs),
                );
                let chunks: Vec<(usize, usize, GpuBuffer)> = widths
                    .iter()
                    .scan(0, |v0, &c| {
                        let chunk: Vec<f32> = (0..t)
                            .flat_map(|i| logits[i * v + *v0..i * v + *v0 + c].to_vec())
                            .collect();
                        let out = (*v0, c, up(gpu, &chunk));
                        *v0 += c;
                        Some(out)
                    })
                    .collect();
                let mut r = Recorder::new(gpu);
                r.lse_init(&sb, t).unwrap();
                let refused = chunks.iter().any(|(v0, c, b)| {
                    let res = r.lse_chunk(b, &tb, &sb, t, *c, *v0, inv_temp);
                    !fits(gpu, &[b]) && {
                        assert_refused(&what, res);
                        true
                    }
                });
                if refused {
                    let (v0, c, b) = &chunks[0];
                    if !fits(gpu, &[b]) {
                        assert_refused(
                            &what,
                            r.logprob_grad_chunk(b, &tb, &sb, &cb, t, *c, *v0, inv_temp),
                        );
                    }
                    continue;
                }
                for (v0, c, b) in &chunks {
                    r.logprob_grad_chunk(b, &tb, &sb, &cb, t, *c, *v0, inv_temp)
                        .unwrap();
                }
                r.submit().unwrap();
                let mut got = vec![0f32; t * v];
                for (v0, c, b) in &chunks {
                    let g = gpu.read_f32(b, t * c).unwrap();
                    for i in 0..t {
                        got[i * v + v0..i * v + v0 + c].copy_from_slice(&g[i * c..(i + 1) * c]);
                    }
                }
                let want = cpu_logprob_grad(&logits, t, *v, targets, &coefs, inv_temp);
                // p and H come through f32 (lse ± ~1e-6·|z|, E_p[z] from w/s ± ~1e-6·|z|).
                let zmax = logits
                    .iter()
                    .fold(0f64, |a, &l| a.max((l * inv_temp).abs() as f64));
                close(&what, &got, &want, 2e-6 + 1e-7 * zmax, 1e-4);
                if *v <= 40 {
                    let fd = fd_grad(&f64s(&logits), 1e-4, |l| {
                        objective(l, t, *v, targets, &coefs, inv_temp)
                    });
                    close(
                        &format!("{what} by finite differences"),
                        &got,
                        &fd,
                        1e-5,
                        1e-4,
                    );
                }
            }
        }
    }
}

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
                    cpu_adamw(&mut p, &g, &mut m, &mut v, lr, b1, b2, eps, wd, step, gs);
                    if step == 1 {
                        // Independent anchor: the first bias-corrected step is lr·sign(g) (|g| ≫ eps).
                        for i in 0..n.min(50) {
                            let want = p0[i] * (1.0 - lr * wd) - lr * g[i].signum();
                            assert!(
                                (p[i] - want).abs() <= lr * 1e-3 + 1e-6,
                                "{what}: step 1 should move by lr·sign(g)"
                            );
                        }
                    }
                    let wp = f64s(&p);
                    close(
                        &format!("{what} step {step} param"),
                        &gpu.read_f32(&pb, n).unwrap(),
                        &wp,
                        1e-7,
                        1e-6,
                    );
                    close(
                        &format!("{what} step {step} m"),
                        &gpu.read_f32(&mb, n).unwrap(),
                        &f64s(&m),
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
            let res = Recorder::new(gpu).sgd(&pb, &gb, n, 0.1, 0.01, 0.5);
            if !fits(gpu, &[&pb]) {
                assert_refused(&what, res);
                continue;
            }
            let mut r = Recorder::new(gpu);
            r.sgd(&pb, &gb, n, 0.1, 0.01, 0.5).unwrap();
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
