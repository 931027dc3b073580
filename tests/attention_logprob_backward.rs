//! `attention_backward` and `logprob_grad_chunk` (with the entropy slot of `lse_chunk`)
//! against f64 references and finite differences, on every device of `common::all_gpus()`
//! (see tests/backward_kernels.rs for the conventions).

mod backward;
mod common;

use backward::*;

use edgerl::gpu::{GpuBuffer, Recorder};

// ---------------------------------------------------------------------------------------------
// attention_backward

/// The keys each query sees: causal (0 ..= i), or one list per query (packed sequences). Either
/// way a query's list holds the keys at positions 0, 1, .. up to its own, in that order.
type Keys<'a> = Option<&'a [Vec<usize>]>;

/// Query i's keys; with a sliding window W > 0 the last W of them (positions P - W + 1 ..= P).
fn keys_of(keys: Keys, i: usize, window: usize) -> Vec<usize> {
    let all: Vec<usize> = keys.map_or_else(|| (0..=i).collect(), |k| k[i].clone());
    let skip = if window == 0 {
        0
    } else {
        all.len().saturating_sub(window)
    };
    all[skip..].to_vec()
}

/// Causal (or `keys`-masked) attention over positions 0 .. t in f64, with a sliding `window`
/// (0: none): out [t, heads, hd].
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
    keys: Keys,
    window: usize,
) -> Vec<f64> {
    let mut out = vec![0.0; t * heads * hd];
    for i in 0..t {
        let ks = keys_of(keys, i, window);
        for h in 0..heads {
            let (kvh, qb) = (h / (heads / kv), (i * heads + h) * hd);
            let s: Vec<f64> = ks
                .iter()
                .map(|&j| {
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
                out[qb + d] = ks
                    .iter()
                    .zip(&e)
                    .map(|(&j, e)| e * v[(j * kv + kvh) * hd + d])
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
    keys: Keys,
    window: usize,
) -> [Vec<f64>; 3] {
    let out = cpu_attn(q, k, v, t, heads, kv, hd, scale, keys, window);
    let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
    for i in 0..t {
        let ks = keys_of(keys, i, window);
        for h in 0..heads {
            let (kvh, qb) = (h / (heads / kv), (i * heads + h) * hd);
            let s: Vec<f64> = ks
                .iter()
                .map(|&j| {
                    (0..hd)
                        .map(|d| q[qb + d] * k[(j * kv + kvh) * hd + d])
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
            let dsum: f64 = (0..hd).map(|d| dout[qb + d] * out[qb + d]).sum();
            for (&j, &sj) in ks.iter().zip(&s) {
                let kb = (j * kv + kvh) * hd;
                let p = (sj - m).exp() / z;
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
    // (heads, kv_heads, hd, t, q_gain, finite differences, window)
    let configs = [
        (4, 2, 16, 1, 1.0, false, 0),
        (4, 2, 16, 6, 1.0, true, 0),
        (4, 2, 16, 40, 6.0, false, 0),
        (6, 1, 24, 5, 1.0, true, 0),
        (6, 1, 24, 23, 1.0, false, 0),
        (6, 1, 128, 37, 4.0, false, 0),
        (3, 3, 24, 17, 1.0, false, 0),
        (2, 1, 128, 3, 1.0, true, 0),
        (1, 1, 4, 2, 1.0, true, 0),
        // Qwen2.5-0.5B's grouping and head size over a longer sequence.
        (14, 2, 64, 150, 1.0, false, 0),
        // head_dim 256 (Gemma 3): the 8-thread kernels on CPU devices.
        (4, 1, 256, 5, 1.0, true, 0),
        (2, 2, 256, 40, 4.0, false, 0),
        // head_dim 128 past the tiled kernels' loop budget (8 heads a KV head): those too.
        (8, 1, 128, 200, 1.0, false, 0),
    ];
    check_causal_backward(241, &configs, 3);
}

/// The same with sliding windows (Gemma 3's local layers): W = 1, windows shorter and longer
/// than a 64-key block or tile, one short of the sequence, past it (no window), by finite
/// differences on the tiny shapes; tiled (head_dim a multiple of 8 up to 128) and per-row.
#[test]
fn windowed_attention_backward_and_finite_differences() {
    // (heads, kv_heads, hd, t, q_gain, finite differences, window)
    let configs = [
        (2, 1, 8, 9, 1.0, true, 3),
        (1, 1, 4, 5, 1.0, true, 1),
        (2, 1, 8, 7, 1.0, true, 6),
        (4, 2, 16, 40, 6.0, false, 1),
        (6, 1, 24, 23, 1.0, false, 7),
        (6, 1, 128, 37, 4.0, false, 16),
        (4, 2, 16, 70, 1.0, false, 65),
        (3, 1, 200, 20, 1.0, false, 9),
        (14, 2, 64, 150, 1.0, false, 64),
        (2, 1, 8, 6, 1.0, false, 100),
        (4, 1, 256, 30, 1.0, false, 7),
    ];
    check_causal_backward(263, &configs, 3);
}

/// Runs (heads, kv_heads, hd, t, q_gain, finite differences, window) cases of the causal
/// forward and backward on every device, per-row and tiled; at least `min_ran` must fit the
/// small-binding devices.
fn check_causal_backward(
    seed: u64,
    configs: &[(usize, usize, usize, usize, f32, bool, usize)],
    min_ran: usize,
) {
    for (gpu, general) in common::all_gpus().flat_map(|g| [(g, false), (g, true)]) {
        let mut rng = common::Rng::new(seed);
        let mut cases = vec![];
        let mut ran = 0;
        for &(heads, kv, hd, t, q_gain, fd, window) in configs {
            // A submit and wait per case: the GL backend holds its context lock while it
            // waits, and other tests on the same device time out past 6 s.
            let mut r = Recorder::new(gpu);
            r.general_attention = general;
            let what = format!(
                "{}: attention_backward heads={heads} kv={kv} hd={hd} t={t} window={window} q_gain={q_gain} general={general}",
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
                        None, window,
                    ),
                );
                continue;
            }
            ran += 1;
            r.attention(&qb, &kb, &vb, &ob, t, heads, kv, hd, 0, scale, window)
                .unwrap();
            r.attention_backward(
                &qb, &kb, &vb, &ob, &db, &dqb, &dkb, &dvb, &sb, t, heads, kv, hd, scale, None,
                window,
            )
            .unwrap();
            let (q64, k64, v64, d64) = (f64s(&q), f64s(&k), f64s(&v), f64s(&dout));
            let s = scale as f64;
            let mut want = cpu_attn_bwd(&q64, &k64, &v64, &d64, t, heads, kv, hd, s, None, window);
            if window > 0 && window < t {
                let full = cpu_attn_bwd(&q64, &k64, &v64, &d64, t, heads, kv, hd, s, None, 0);
                window_matters(&what, &want, &full);
            }
            let grads = [("dq", dqb), ("dk", dkb), ("dv", dvb)];
            if fd {
                let loss = |q: &[f64], k: &[f64], v: &[f64]| {
                    cpu_attn(q, k, v, t, heads, kv, hd, s, None, window)
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
            r.submit().unwrap();
            gpu.wait().unwrap();
        }
        assert!(ran >= min_ran, "{}: only {ran} attention cases fit", label(gpu));
        check_cases(gpu, &cases);
    }
}

/// A window shorter than the sequence must change the gradients, or the windowed cases could
/// not tell a kernel that ignores it.
fn window_matters(what: &str, windowed: &[Vec<f64>; 3], full: &[Vec<f64>; 3]) {
    let diff = windowed
        .iter()
        .zip(full)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f64::max);
    assert!(diff > 1e-3, "{what}: the window changes the reference gradients by only {diff}");
}

#[test]
fn attention_backward_rejects_bad_arguments() {
    for gpu in common::all_gpus() {
        let b = || gpu.alloc(4096, "x").unwrap();
        let (q, k, v, o, d, dq, dk, dv, s) = (b(), b(), b(), b(), b(), b(), b(), b(), b());
        let mut r = Recorder::new(gpu);
        assert!(
            r.attention_backward(&q, &k, &v, &o, &d, &dq, &dk, &dv, &s, 1, 4, 3, 16, 1.0, None, 0)
                .is_err(),
            "heads not a multiple of kv_heads"
        );
        assert!(
            r.attention_backward(&q, &k, &v, &o, &d, &dq, &dk, &dv, &s, 1, 2, 1, 320, 1.0, None, 0)
                .is_err(),
            "head_dim over 256"
        );
        assert_refused(
            "dq aliasing q",
            r.attention_backward(&q, &k, &v, &o, &d, &q, &dk, &dv, &s, 2, 2, 1, 16, 1.0, None, 0),
        );
        assert_refused(
            "buffers too small",
            r.attention_backward(&q, &k, &v, &o, &d, &dq, &dk, &dv, &s, 64, 2, 1, 16, 1.0, None, 0),
        );
        assert!(r.is_empty(), "refused calls must record nothing");
    }
}

/// Packed sequences (a prompt, then completions that each see the prompt and themselves): the
/// forward output and dq, dk, dv against the f64 reference with that mask, and finite
/// differences on the smallest case. The spans come from `Pack`, the mask from the lengths.
#[test]
fn packed_attention_forward_and_backward() {
    // (heads, kv_heads, hd, prompt, completion lengths, finite differences, window)
    let configs: [PackedCase; 7] = [
        (2, 1, 8, 3, &[3, 1, 2], true, 0),
        // head_dim 256 (Gemma 3) and 128: the forward's 8-thread kernel on CPU devices.
        (4, 1, 256, 20, &[6, 1, 9], false, 0),
        (4, 2, 16, 5, &[4, 1, 7, 2], false, 0),
        (6, 1, 24, 1, &[3, 3], false, 0),
        // Completions without inputs (one token) and a prompt longer than a 64-key block.
        (2, 2, 64, 70, &[1, 1, 5, 1], false, 0),
        (14, 2, 64, 90, &[9; 8], false, 0),
        (3, 1, 128, 4, &[], false, 0),
    ];
    check_packed(517, &configs);
    for gpu in common::all_gpus() {
        // Spans shorter than the sequence are refused.
        let b = || gpu.alloc(4096, "x").unwrap();
        let (q, k, v, o) = (b(), b(), b(), b());
        let short = up_u32(gpu, &[0, 2, 0, 2]);
        let packing = edgerl::gpu::Packing {
            prefix: 1,
            spans: &short,
            decode: false,
            host_spans: None,
        };
        assert_refused(
            "spans shorter than the sequence",
            r_refuse(gpu, |r| r.attention_packed(&q, &k, &v, &o, 3, 2, 1, 16, 1.0, &packing, 0)),
        );
    }
}

/// Packed sequences with sliding windows (Gemma 3's local layers, positions restarting after the
/// prompt in each completion): windows shorter than the prompt, across the prompt / segment
/// boundary (prompt keys then seen by the first queries of every segment), W = 1, segments
/// longer than a 64-query tile, one key short of the sequence; tiled and per-row; finite
/// differences on the smallest.
#[test]
fn windowed_packed_attention_forward_and_backward() {
    // (heads, kv_heads, hd, prompt, completion lengths, finite differences, window)
    let configs: [PackedCase; 12] = [
        (2, 1, 8, 3, &[3, 1, 2], true, 2),
        (2, 1, 8, 4, &[4, 1, 3], true, 5),
        (4, 2, 16, 5, &[4, 1, 7, 2], false, 3),
        (4, 2, 16, 5, &[4, 1, 7, 2], false, 7),
        (6, 1, 24, 1, &[3, 3], false, 1),
        (2, 2, 64, 70, &[1, 1, 5, 1], false, 8),
        (2, 2, 64, 70, &[1, 1, 5, 1], false, 72),
        (14, 2, 64, 90, &[9; 8], false, 40),
        (14, 2, 64, 90, &[9; 8], false, 95),
        (4, 2, 16, 100, &[80, 3, 70], false, 120),
        (3, 1, 200, 30, &[12, 40], false, 35),
        (2, 1, 256, 30, &[12, 5], false, 9),
    ];
    check_packed(521, &configs);
}

/// A window past every position is no window: forward and gradients bit for bit as with 0.
#[test]
fn packed_window_past_the_sequence_is_none() {
    for (gpu, general) in common::all_gpus().flat_map(|g| [(g, false), (g, true)]) {
        let mut rng = common::Rng::new(523);
        let (heads, kv, hd) = (4, 2, 16);
        let pack = edgerl::model::pack::Pack::new(&[5; 6], &[&[7; 9], &[7; 12]]).unwrap();
        let t = pack.len();
        let (q, k, v, dout) = (
            rng.vec(t * heads * hd),
            rng.vec(t * kv * hd),
            rng.vec(t * kv * hd),
            rng.vec(t * heads * hd),
        );
        let (qb, kb, vb, db) = (up(gpu, &q), up(gpu, &k), up(gpu, &v), up(gpu, &dout));
        if !fits(gpu, &[&qb, &kb, &vb, &db]) {
            continue;
        }
        let spans = up_u32(gpu, &pack.spans);
        let packing = edgerl::gpu::Packing {
            prefix: pack.prefix,
            spans: &spans,
            decode: false,
            host_spans: None,
        };
        let mut r = Recorder::new(gpu);
        r.general_attention = general;
        let mut outs = vec![];
        for window in [0, t, t + 5] {
            let alloc = |n: usize| up(gpu, &vec![f32::NAN; n]);
            let (ob, dqb, dkb, dvb, sb) = (
                alloc(q.len()),
                alloc(q.len()),
                alloc(k.len()),
                alloc(k.len()),
                alloc(t * heads * 2),
            );
            r.attention_packed(&qb, &kb, &vb, &ob, t, heads, kv, hd, 0.25, &packing, window)
                .unwrap();
            r.attention_backward(
                &qb, &kb, &vb, &ob, &db, &dqb, &dkb, &dvb, &sb, t, heads, kv, hd, 0.25,
                Some(&packing), window,
            )
            .unwrap();
            outs.push([ob, dqb, dkb, dvb]);
        }
        r.submit().unwrap();
        let read = |bs: &[GpuBuffer; 4]| -> Vec<Vec<u32>> {
            bs.iter()
                .map(|b| {
                    let n = (b.bytes / 4) as usize;
                    gpu.read_f32(b, n).unwrap().iter().map(|x| x.to_bits()).collect()
                })
                .collect()
        };
        let none = read(&outs[0]);
        assert!(none.iter().flatten().all(|&b| f32::from_bits(b).is_finite()));
        for o in &outs[1..] {
            assert!(
                read(o) == none,
                "{}: general={general}: a window past the sequence changed the results",
                label(gpu)
            );
        }
    }
}

/// (heads, kv_heads, hd, prompt, completion lengths, finite differences, window)
type PackedCase = (usize, usize, usize, usize, &'static [usize], bool, usize);

/// Packed forward and backward (spans from `Pack`, the mask from the lengths) against the f64
/// reference with the window, on every device, tiled and per-row.
fn check_packed(seed: u64, configs: &[PackedCase]) {
    for (gpu, general) in common::all_gpus().flat_map(|g| [(g, false), (g, true)]) {
        let mut rng = common::Rng::new(seed);
        let mut cases = vec![];
        for &(heads, kv, hd, prompt, lens, fd, window) in configs {
            // A submit and wait per case (see attention_backward_gqa_and_finite_differences).
            let mut r = Recorder::new(gpu);
            r.general_attention = general;
            let what = format!(
                "{}: packed attention heads={heads} kv={kv} hd={hd} prompt={prompt} completions={lens:?} window={window} general={general}",
                label(gpu)
            );
            let comps: Vec<Vec<u32>> = lens.iter().map(|&n| vec![7; n]).collect();
            let refs: Vec<&[u32]> = comps.iter().map(|c| &c[..]).collect();
            let pack = edgerl::model::pack::Pack::new(&vec![5; prompt], &refs).unwrap();
            let t = pack.len();
            // The mask from the lengths alone: a completion's inputs are its tokens but the last.
            let mut keys: Vec<Vec<usize>> = (0..prompt).map(|i| (0..=i).collect()).collect();
            for &n in lens {
                let start = keys.len();
                for i in start..start + n.saturating_sub(1) {
                    keys.push((0..prompt).chain(start..=i).collect());
                }
            }
            assert_eq!(keys.len(), t, "{what}: packed length");
            // Each query's list runs over positions 0 ..= its own, as the window assumes.
            for (i, ks) in keys.iter().enumerate() {
                assert_eq!(ks.len() as u32, pack.positions[i] + 1, "{what}: query {i}'s keys");
            }
            let scale = 1.0 / (hd as f32).sqrt();
            let q = rng.vec(t * heads * hd);
            let (k, v, dout) = (rng.vec(t * kv * hd), rng.vec(t * kv * hd), rng.vec(t * heads * hd));
            let (qb, kb, vb, db) = (up(gpu, &q), up(gpu, &k), up(gpu, &v), up(gpu, &dout));
            let alloc = |n: usize| up(gpu, &vec![f32::NAN; n]);
            let (ob, dqb, dkb, dvb, sb) = (
                alloc(q.len()),
                alloc(q.len()),
                alloc(k.len()),
                alloc(k.len()),
                alloc(t * heads * 2),
            );
            if !fits(gpu, &[&qb, &kb, &vb, &db, &ob, &dqb, &dkb, &dvb, &sb]) {
                continue;
            }
            let spans = up_u32(gpu, &pack.spans);
            let packing = edgerl::gpu::Packing {
                prefix: pack.prefix,
                spans: &spans,
                decode: false,
                host_spans: None,
            };
            r.attention_packed(&qb, &kb, &vb, &ob, t, heads, kv, hd, scale, &packing, window)
                .unwrap();
            r.attention_backward(
                &qb, &kb, &vb, &ob, &db, &dqb, &dkb, &dvb, &sb, t, heads, kv, hd, scale,
                Some(&packing), window,
            )
            .unwrap();
            let (q64, k64, v64, d64) = (f64s(&q), f64s(&k), f64s(&v), f64s(&dout));
            let s = scale as f64;
            let ks = Some(&keys[..]);
            let out = cpu_attn(&q64, &k64, &v64, t, heads, kv, hd, s, ks, window);
            let mut want = cpu_attn_bwd(&q64, &k64, &v64, &d64, t, heads, kv, hd, s, ks, window);
            if window > 0 && window < t {
                let full = cpu_attn_bwd(&q64, &k64, &v64, &d64, t, heads, kv, hd, s, ks, 0);
                window_matters(&what, &want, &full);
            }
            if fd {
                let loss = |q: &[f64], k: &[f64], v: &[f64]| {
                    cpu_attn(q, k, v, t, heads, kv, hd, s, ks, window)
                        .iter()
                        .zip(&d64)
                        .map(|(o, g)| o * g)
                        .sum::<f64>()
                };
                let fds = [
                    fd_grad(&q64, 1e-4, |x| loss(x, &k64, &v64)),
                    fd_grad(&k64, 1e-4, |x| loss(&q64, x, &v64)),
                    fd_grad(&v64, 1e-4, |x| loss(&q64, &k64, x)),
                ];
                for (i, fdv) in fds.into_iter().enumerate() {
                    let exact: Vec<f32> = want[i].iter().map(|&x| x as f32).collect();
                    close(&format!("{what}: gradient {i} vs finite differences"), &exact, &fdv, 1e-6, 1e-5);
                    want[i] = fdv;
                }
            }
            let atol = 2e-7 * ((t * heads / kv * hd) as f64).sqrt();
            cases.push(Case {
                what: format!("{what}: out"),
                buf: ob,
                want: out,
                atol: 1e-5,
                rtol: 1e-5,
            });
            for ((name, buf), want) in [("dq", dqb), ("dk", dkb), ("dv", dvb)].into_iter().zip(want) {
                cases.push(Case {
                    what: format!("{what}: {name}"),
                    buf,
                    want,
                    atol,
                    rtol: 1e-5,
                });
            }
            r.submit().unwrap();
            gpu.wait().unwrap();
        }
        check_cases(gpu, &cases);
    }
}

fn r_refuse(
    gpu: &edgerl::gpu::Gpu,
    f: impl FnOnce(&mut Recorder) -> edgerl::Result<()>,
) -> edgerl::Result<()> {
    let mut r = Recorder::new(gpu);
    let res = f(&mut r);
    assert!(r.is_empty(), "a refused call must record nothing");
    res
}

/// `gather_rows` as a gather and as the summing transpose (rows shared, rows with no source).
#[test]
fn gather_rows_gathers_and_sums() {
    use edgerl::gpu::rows::{gather_index, scatter_index};
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(9);
        let (rows, width) = (7, 37);
        let src = rng.vec(rows * width);
        let sources = [6u32, 2, 2, 0, 5, 2];
        let n = sources.len();
        let mut r = Recorder::new(gpu);
        let (sb, gb, tb) = (
            up(gpu, &src),
            up(gpu, &vec![f32::NAN; n * width]),
            up(gpu, &vec![f32::NAN; rows * width]),
        );
        let gi = up_u32(gpu, &gather_index(&sources));
        let si = up_u32(gpu, &scatter_index(&sources, rows).unwrap());
        r.gather_rows(&sb, &gi, &gb, n, width).unwrap();
        r.gather_rows(&gb, &si, &tb, rows, width).unwrap();
        r.submit().unwrap();
        let gathered: Vec<f64> = sources
            .iter()
            .flat_map(|&s| src[s as usize * width..][..width].iter().map(|&x| x as f64))
            .collect();
        let mut summed = vec![0.0; rows * width];
        for (i, &s) in sources.iter().enumerate() {
            for c in 0..width {
                summed[s as usize * width + c] += gathered[i * width + c];
            }
        }
        check_cases(
            gpu,
            &[
                Case {
                    what: format!("{}: gather", label(gpu)),
                    buf: gb,
                    want: gathered,
                    atol: 0.0,
                    rtol: 0.0,
                },
                Case {
                    what: format!("{}: summed back", label(gpu)),
                    buf: tb,
                    want: summed,
                    atol: 1e-6,
                    rtol: 1e-6,
                },
            ],
        );
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
