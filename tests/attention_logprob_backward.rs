//! `attention_backward` and `logprob_grad_chunk` (with the entropy slot of `lse_chunk`)
//! against f64 references and finite differences, on every device of `common::all_gpus()`
//! (see tests/backward_kernels.rs for the conventions).

mod backward;
mod common;

use backward::*;

use edgerl::gpu::{GpuBuffer, Recorder};

// ---------------------------------------------------------------------------------------------
// attention_backward

/// Causal attention over positions 0 .. t in f64: out [t, heads, hd].
#[allow(clippy::too_many_arguments)]
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
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
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
        // Qwen2.5-0.5B's grouping and head size over a longer sequence.
        (14, 2, 64, 150, 1.0, false),
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
            let mut want = cpu_attn_bwd(&q64, &k64, &v64, &d64, t, heads, kv, hd, scale as f64);
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
                for (i, fdv) in fds.into_iter().enumerate() {
                    let exact: Vec<f32> = want[i].iter().map(|&x| x as f32).collect();
                    let name = grads[i].0;
                    close(
                        &format!("{what}: {name} reference vs finite differences"),
                        &exact,
                        &fdv,
                        1e-6,
                        1e-5,
                    );
                    want[i] = fdv; // the GPU is compared with the finite differences themselves
                }
            }
            // The longest row sums t·group terms of size ~|dout|·|v| and ~hd-long dot products.
            let atol = 2e-7 * ((t * heads / kv * hd) as f64).sqrt();
            for ((name, buf), want) in grads.into_iter().zip(want) {
                let by = if fd { " by finite differences" } else { "" };
                cases.push(Case {
                    what: format!("{what}: {name}{by}"),
                    buf,
                    want,
                    atol,
                    rtol: 1e-5,
                });
            }
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

/// Per row of z (f64): (p, lse, lp, H).
fn softmax_row(z: &[f64], target: u32) -> (Vec<f64>, f64, f64, f64) {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
    let p: Vec<f64> = z.iter().map(|x| (x - lse).exp()).collect();
    let lp = if target == NO_TARGET {
        0.0
    } else {
        z[target as usize] - lse
    };
    let h = lse - p.iter().zip(z).map(|(p, z)| p * z).sum::<f64>();
    (p, lse, lp, h)
}

/// Σ_t a_t lp_t + b_t H_t with z = logits * inv_temp.
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
            let (_, _, lp, h) = softmax_row(&z, targets[i]);
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
        let (p, lse, _, h) = softmax_row(&z, targets[i]);
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
                if let Some((v0, c, b)) = chunks.iter().find(|(_, _, b)| !fits(gpu, &[b])) {
                    let res = r.logprob_grad_chunk(b, &tb, &sb, &cb, t, *c, *v0, inv_temp);
                    assert_refused(&what, res);
                    assert!(r.is_empty());
                    continue;
                }
                r.lse_init(&sb, t).unwrap();
                for (v0, c, b) in &chunks {
                    r.lse_chunk(b, &tb, &sb, t, *c, *v0, inv_temp).unwrap();
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
                // p and H come through f32: lse and E_p[z] = w / s each carry ~1e-7·|z|.
                let zmax = logits
                    .iter()
                    .fold(0f64, |a, &l| a.max((l * inv_temp).abs() as f64));
                close(&what, &got, &want, 2e-7 + 1e-8 * zmax, 1e-5);
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
