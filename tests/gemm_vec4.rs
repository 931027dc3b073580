//! `gemm`'s vec4 path (`gemm_v4` in shaders/gemm.wgsl: 8 × 8 outputs a thread, operands read
//! as vec4s) against an f64 reference, on every device of `common::all_gpus()`. `Recorder::gemm`
//! takes that path when n, C's offset and ldc, and both operands' offsets and other strides are
//! multiples of 4, each operand contiguous along p (then k % 4 == 0) or across the block (A
//! along i: m % 4 == 0; B along j); every case here is laid out so. Sizes straddle the 4 × 4
//! sub-blocks and the 8 × 8 blocks (m, n ≡ 4 mod 8, m not a multiple of 4 where A is along p,
//! odd k where neither operand is along p), k = 0 and 1, padded strides, offsets, alpha and
//! accumulate. The unaligned path is in tests/backward_kernels.rs.

mod backward;
mod common;

use backward::*;

use edgerl::gpu::Recorder;

/// (m, n, k) for each layout: (A along p, B along p).
fn shapes(a_p: bool, b_p: bool) -> Vec<(usize, usize, usize)> {
    let along_p = a_p || b_p;
    let ms: &[usize] = if a_p {
        &[1, 3, 9, 13, 70]
    } else {
        &[4, 12, 20, 68]
    };
    let ks: &[usize] = if along_p {
        &[0, 4, 16, 44, 132]
    } else {
        &[0, 1, 3, 37, 130]
    };
    let ns = [4, 12, 16, 20, 132];
    // Each m with a spread of n and k, not the full product (GL compiles are slow).
    let mut out = vec![];
    for (mi, &m) in ms.iter().enumerate() {
        for (ni, &n) in ns.iter().enumerate() {
            out.push((m, n, ks[(mi + ni) % ks.len()]));
        }
    }
    out
}

#[test]
fn gemm_vec4_layouts_match_reference() {
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(417);
        let mut r = Recorder::new(gpu);
        let (mut cases, mut keep, mut ran) = (vec![], vec![], 0);
        for a_p in [true, false] {
            for b_p in [true, false] {
                for (si, (m, n, k)) in shapes(a_p, b_p).into_iter().enumerate() {
                    let (alpha, acc) =
                        [(1.0f32, false), (-0.75, true), (2.5, false), (0.5, true)][si % 4];
                    let what = format!(
                        "{}: gemm_v4 m={m} n={n} k={k} a_along_p={a_p} b_along_p={b_p} \
                         alpha={alpha} acc={acc}",
                        label(gpu)
                    );
                    // Padded strides (multiples of 4) so rows / columns do not touch.
                    let (ars, acs, a_len) = if a_p {
                        (k + 4, 1, m * (k + 4))
                    } else {
                        (1, m + 4, k * (m + 4))
                    };
                    let (brs, bcs, b_len) = if b_p {
                        (1, k + 4, n * (k + 4))
                    } else {
                        (n + 4, 1, k * (n + 4))
                    };
                    let (ao, bo, ldc) = (4, 8, n + 8);
                    let co = ldc + 4;
                    let a = rng.vec(ao + a_len + 4);
                    let b = rng.vec(bo + b_len + 4);
                    let c0 = rng.vec(co + m * ldc + 4);
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
                    let atol = 1e-5 + 3e-7 * k as f64;
                    cases.push(Case {
                        what,
                        buf: cb,
                        want,
                        atol,
                        rtol: 1e-5,
                    });
                    keep.push((ab, bb));
                }
            }
        }
        assert!(ran >= 20, "{}: only {ran} gemm_v4 cases fit", label(gpu));
        r.submit().unwrap();
        check_cases(gpu, &cases);
    }
}

/// The calls of `project` / `project_backward` (x·Aᵀ, u·Bᵀ, dyᵀ·u, dy·B, duᵀ·x, du·A) with a
/// token count that is not a multiple of 4 or 8 and widths ≡ 4 mod 8.
#[test]
fn gemm_vec4_lora_calls_match_reference() {
    let (t, rank, din, dout) = (37, 12, 20, 44);
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(419);
        let mut r = Recorder::new(gpu);
        let (mut cases, mut keep) = (vec![], vec![]);
        let calls: [(&str, [usize; 7]); 6] = [
            ("u = x Aᵀ", [t, rank, din, din, 1, 1, din]),
            ("y += u Bᵀ", [t, dout, rank, rank, 1, 1, rank]),
            ("gB += dyᵀ u", [dout, rank, t, 1, dout, rank, 1]),
            ("du = dy B", [t, rank, dout, dout, 1, rank, 1]),
            ("gA += duᵀ x", [rank, din, t, 1, rank, din, 1]),
            ("dx += du A", [t, din, rank, rank, 1, din, 1]),
        ];
        for (ci, (name, [m, n, k, ars, acs, brs, bcs])) in calls.into_iter().enumerate() {
            let what = format!("{}: {name} ({m}×{n}×{k})", label(gpu));
            let (alpha, acc) = if ci % 2 == 0 {
                (1.0f32, false)
            } else {
                (0.375, true)
            };
            let a = rng.vec(m * k);
            let b = rng.vec(k * n);
            let c0 = rng.vec(m * n);
            let (ab, bb, cb) = (up(gpu, &a), up(gpu, &b), up(gpu, &c0));
            let res = r.gemm(
                &ab, 0, ars, acs, &bb, 0, brs, bcs, &cb, 0, n, m, n, k, alpha, acc,
            );
            if !fits(gpu, &[&ab, &bb, &cb]) {
                assert_refused(&what, res);
                continue;
            }
            res.unwrap();
            let mut want = f64s(&c0);
            cpu_gemm(
                &a,
                0,
                ars,
                acs,
                &b,
                0,
                brs,
                bcs,
                &mut want,
                0,
                n,
                m,
                n,
                k,
                alpha as f64,
                acc,
            );
            let atol = 1e-5 + 3e-7 * k as f64;
            cases.push(Case {
                what,
                buf: cb,
                want,
                atol,
                rtol: 1e-5,
            });
            keep.push((ab, bb));
        }
        r.submit().unwrap();
        check_cases(gpu, &cases);
    }
}

/// `gemm_splitk` / `gemm_splitk_v4` (at most 8 rows, at most 64 columns, k ≥ 128: the LoRA x·Aᵀ
/// of decoding rows; a workgroup's threads split k per column, then reduce) against the f64
/// reference: 1..=8 rows across the two four-row halves, columns across the workgroups'
/// column groups, k aligned (vec4 reads, A and B along p) and not, transposed layouts and odd
/// offsets (scalar reads), padded ldc, alpha and accumulate; the vec4 reads through both
/// `gemm_splitk_v4` and the CPU devices' `gemm_lanes_v4` (8 lanes, 8 columns a workgroup).
#[test]
fn gemm_splitk_matches_reference() {
    for gpu in common::all_gpus() {
        for lanes in [false, true] {
            let mut rng = common::Rng::new(433);
            let mut r = Recorder::new(gpu);
            r.gemm_lanes = lanes;
            let (mut cases, mut keep, mut ran) = (vec![], vec![], 0);
            let shapes = [(1, 16, 576), (3, 7, 128), (4, 64, 1540), (5, 1, 131), (8, 33, 256), (7, 16, 1536), (2, 9, 133)];
            for (si, &(m, n, k)) in shapes.iter().enumerate() {
                for along_p in [true, false] {
                    let (alpha, acc) = [(1.0f32, false), (-0.75, true), (2.5, true), (0.5, false)][(si + along_p as usize) % 4];
                    // Along p: A row-major and B = Wᵀ of a row-major W (the LoRA layout), offsets
                    // multiples of 4 (vec4 reads when k is too); else A column-major, B row-major,
                    // odd offsets (scalar reads).
                    let (ao, bo) = if along_p { (4, 8) } else { (3, 5) };
                    let (ars, acs, a_len) = if along_p { (k + 4, 1, m * (k + 4)) } else { (1, m + 1, k * (m + 1)) };
                    let (brs, bcs, b_len) = if along_p { (1, k + 4, n * (k + 4)) } else { (n + 1, 1, k * (n + 1)) };
                    let ldc = n + 3;
                    let co = 2;
                    let what = format!("{}: gemm_splitk lanes={lanes} m={m} n={n} k={k} along_p={along_p} alpha={alpha} acc={acc}", label(gpu));
                    let a = rng.vec(ao + a_len + 4);
                    let b = rng.vec(bo + b_len + 4);
                    let c0 = rng.vec(co + m * ldc + 4);
                    let (ab, bb, cb) = (up(gpu, &a), up(gpu, &b), up(gpu, &c0));
                    let res = r.gemm(&ab, ao, ars, acs, &bb, bo, brs, bcs, &cb, co, ldc, m, n, k, alpha, acc);
                    if !fits(gpu, &[&ab, &bb, &cb]) {
                        assert_refused(&what, res);
                        continue;
                    }
                    res.unwrap();
                    ran += 1;
                    let mut want = f64s(&c0);
                    cpu_gemm(&a, ao, ars, acs, &b, bo, brs, bcs, &mut want, co, ldc, m, n, k, alpha as f64, acc);
                    cases.push(Case { what, buf: cb, want, atol: 1e-5 + 3e-7 * k as f64, rtol: 1e-5 });
                    keep.push((ab, bb));
                }
            }
            // The tiny-binding device refuses most of these (k up to 1540 floats a row).
            let least = if gpu.max_binding == common::TINY_BINDING { 2 } else { 14 };
            assert!(ran >= least, "{}: only {ran} gemm_splitk cases fit", label(gpu));
            r.submit().unwrap();
            check_cases(gpu, &cases);
        }
    }
}
