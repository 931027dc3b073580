//! The head_dim-64 paths of the tiled attention kernels (`attention_hd64` and
//! `attention_backward_q_hd64` in shaders/attention_tiled_hd64.wgsl (generated): 4 query rows a thread, the keys
//! split between threads, merged through workgroup memory) against an f64 reference, on every
//! device of `common::all_gpus()`: odd head counts and GQA groups, lengths around and past the
//! 64-query blocks, p0 > 0, sliding windows, packed training (SmolLM2-135M's GRPO shape among
//! them), and batched decoding past `TILED_ATTENTION_MIN_QUERIES` with NaN in the unwritten
//! cache slots.

mod backward;
mod common;

use backward::*;
use edgerl::gpu::Recorder;

const HD: usize = 64;

/// Each query's keys (indices into k, v), positions 0 ..= its own in order; with a window W
/// the last W of them.
fn windowed(all: &[usize], window: usize) -> &[usize] {
    let skip = if window == 0 { 0 } else { all.len().saturating_sub(window) };
    &all[skip..]
}

/// out [t, heads, HD] and the backward (dq, dk, dv) in f64 for the given key lists.
#[allow(clippy::too_many_arguments)]
fn reference(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    dout: Option<&[f64]>,
    heads: usize,
    kv: usize,
    scale: f64,
    keys: &[Vec<usize>],
    window: usize,
) -> (Vec<f64>, [Vec<f64>; 3]) {
    let t = keys.len();
    let mut out = vec![0.0; t * heads * HD];
    let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
    for i in 0..t {
        let ks = windowed(&keys[i], window);
        for h in 0..heads {
            let (kvh, qb) = (h / (heads / kv), (i * heads + h) * HD);
            let s: Vec<f64> = ks
                .iter()
                .map(|&j| (0..HD).map(|d| q[qb + d] * k[(j * kv + kvh) * HD + d]).sum::<f64>() * scale)
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for d in 0..HD {
                out[qb + d] =
                    ks.iter().zip(&e).map(|(&j, e)| e * v[(j * kv + kvh) * HD + d]).sum::<f64>() / z;
            }
            if let Some(g) = dout {
                let dsum: f64 = (0..HD).map(|d| g[qb + d] * out[qb + d]).sum();
                for (&j, &ej) in ks.iter().zip(&e) {
                    let kb = (j * kv + kvh) * HD;
                    let p = ej / z;
                    let dp: f64 = (0..HD).map(|d| g[qb + d] * v[kb + d]).sum();
                    let ds = p * (dp - dsum);
                    for d in 0..HD {
                        dq[qb + d] += scale * ds * k[kb + d];
                        dk[kb + d] += scale * ds * q[qb + d];
                        dv[kb + d] += p * g[qb + d];
                    }
                }
            }
        }
    }
    (out, [dq, dk, dv])
}

/// Causal attention over a cache (prefill from p0), forward only.
#[test]
fn hd64_causal_forward() {
    // (heads, kv_heads, p0, t, window)
    let cases = [
        (9, 3, 0, 16, 0),
        (9, 3, 0, 17, 0),
        (5, 5, 0, 63, 0),
        (7, 1, 0, 65, 0),
        (14, 2, 3, 130, 0),
        (9, 3, 0, 273, 0),
        (9, 3, 40, 100, 7),
        (3, 1, 0, 200, 1),
        (9, 3, 0, 150, 64),
        (6, 2, 10, 77, 100),
        (15, 5, 0, 129, 33),
    ];
    common::each_gpu_in_parallel(|gpu| {
        let mut rng = common::Rng::new(907);
        for &(heads, kv, p0, t, window) in &cases {
            let what = format!("{}: causal heads={heads} kv={kv} p0={p0} t={t} window={window}", label(gpu));
            let n = p0 + t;
            let (q, k, v) = (rng.vec(t * heads * HD), rng.vec(n * kv * HD), rng.vec(n * kv * HD));
            let (qb, kb, vb) = (up(gpu, &q), up(gpu, &k), up(gpu, &v));
            let ob = up(gpu, &vec![f32::NAN; q.len()]);
            if !fits(gpu, &[&qb, &kb, &vb, &ob]) {
                continue;
            }
            let scale = 0.125;
            let mut r = Recorder::new(gpu);
            r.attention(&qb, &kb, &vb, &ob, t, heads, kv, HD, p0, scale, window).unwrap();
            r.submit().unwrap();
            let keys: Vec<Vec<usize>> = (0..t).map(|i| (0..=p0 + i).collect()).collect();
            let (want, _) =
                reference(&f64s(&q), &f64s(&k), &f64s(&v), None, heads, kv, scale as f64, &keys, window);
            close(&what, &gpu.read_f32(&ob, q.len()).unwrap(), &want, 2e-5, 1e-5);
        }
    });
}

/// Packed training sequences (a prompt, then completions seeing the prompt and themselves),
/// and plain causal sequences, forward then backward.
#[test]
fn hd64_training_forward_and_backward() {
    // (heads, kv_heads, prompt, completion lengths (None: causal, no packing), window)
    type Case = (usize, usize, usize, Option<&'static [usize]>, usize);
    let cases: [Case; 8] = [
        (9, 3, 145, Some(&[17; 8]), 0),
        (9, 3, 145, Some(&[17; 8]), 40),
        (5, 1, 1, Some(&[3, 70, 2]), 0),
        (7, 7, 63, Some(&[1, 5, 66]), 9),
        (2, 1, 200, Some(&[2; 20]), 0),
        (9, 3, 65, None, 0),
        (5, 5, 130, None, 13),
        (3, 1, 17, None, 0),
    ];
    common::each_gpu_in_parallel(|gpu| {
        let mut rng = common::Rng::new(911);
        for &(heads, kv, prompt, lens, window) in &cases {
            let what = format!(
                "{}: training heads={heads} kv={kv} prompt={prompt} completions={lens:?} window={window}",
                label(gpu)
            );
            let (t, keys, spans, prefix) = match lens {
                Some(lens) => {
                    let comps: Vec<Vec<u32>> = lens.iter().map(|&n| vec![7; n]).collect();
                    let refs: Vec<&[u32]> = comps.iter().map(|c| &c[..]).collect();
                    let pack = edgerl::model::pack::Pack::new(&vec![5; prompt], &refs).unwrap();
                    let mut keys: Vec<Vec<usize>> = (0..prompt).map(|i| (0..=i).collect()).collect();
                    for &n in lens {
                        let start = keys.len();
                        for i in start..start + n.saturating_sub(1) {
                            keys.push((0..prompt).chain(start..=i).collect());
                        }
                    }
                    assert_eq!(keys.len(), pack.len(), "{what}");
                    (pack.len(), keys, Some(pack.spans.clone()), pack.prefix)
                }
                None => (prompt, (0..prompt).map(|i| (0..=i).collect()).collect(), None, 0),
            };
            let q = rng.vec(t * heads * HD);
            let (k, v, dout) = (rng.vec(t * kv * HD), rng.vec(t * kv * HD), rng.vec(t * heads * HD));
            let (qb, kb, vb, db) = (up(gpu, &q), up(gpu, &k), up(gpu, &v), up(gpu, &dout));
            let nan = |n: usize| up(gpu, &vec![f32::NAN; n]);
            let (ob, dqb, dkb, dvb, sb) = (nan(q.len()), nan(q.len()), nan(k.len()), nan(k.len()), nan(t * heads * 2));
            if !fits(gpu, &[&qb, &kb, &vb, &db, &ob, &dqb, &dkb, &dvb, &sb]) {
                continue;
            }
            let spans_buf = spans.as_ref().map(|s| up_u32(gpu, s));
            let packing = spans_buf.as_ref().map(|s| edgerl::gpu::Packing { prefix, spans: s, decode: false, host_spans: None });
            let scale = 0.125;
            let mut r = Recorder::new(gpu);
            match &packing {
                Some(pk) => r.attention_packed(&qb, &kb, &vb, &ob, t, heads, kv, HD, scale, pk, window).unwrap(),
                None => r.attention(&qb, &kb, &vb, &ob, t, heads, kv, HD, 0, scale, window).unwrap(),
            }
            r.attention_backward(
                &qb, &kb, &vb, &ob, &db, &dqb, &dkb, &dvb, &sb, t, heads, kv, HD, scale,
                packing.as_ref(), window,
            )
            .unwrap();
            r.submit().unwrap();
            let (out, grads) = reference(
                &f64s(&q), &f64s(&k), &f64s(&v), Some(&f64s(&dout)), heads, kv, scale as f64, &keys, window,
            );
            close(&format!("{what}: out"), &gpu.read_f32(&ob, q.len()).unwrap(), &out, 2e-5, 1e-5);
            let atol = 2e-7 * ((t * heads / kv * HD) as f64).sqrt();
            for (name, buf, want) in [("dq", &dqb, &grads[0]), ("dk", &dkb, &grads[1]), ("dv", &dvb, &grads[2])] {
                close(&format!("{what}: {name}"), &gpu.read_f32(buf, want.len()).unwrap(), want, atol.max(1e-5), 1e-4);
            }
        }
    });
}

/// Batched decoding (one query per sample, each seeing the prompt's cache slots and its own
/// segment's filled ones) with at least 16 samples, so the tiled kernel runs; unwritten slots
/// hold NaN and must not leak into any output.
#[test]
fn hd64_batched_decode() {
    // (heads, kv_heads, prefix, segment size, samples)
    let cases = [(9, 3, 70, 9, 20), (5, 1, 3, 4, 16), (7, 7, 130, 17, 33)];
    common::each_gpu_in_parallel(|gpu| {
        let mut rng = common::Rng::new(919);
        for &(heads, kv, prefix, seg, samples) in &cases {
            for window in [0, 5, 80] {
                let what = format!(
                    "{}: decode heads={heads} kv={kv} prefix={prefix} seg={seg} samples={samples} window={window}",
                    label(gpu)
                );
                let filled: Vec<usize> = (0..samples).map(|j| 1 + (j * 7) % seg).collect();
                let slots = prefix + samples * seg;
                let row = kv * HD;
                let (mut k, mut v) = (rng.vec(slots * row), rng.vec(slots * row));
                let mut keys = vec![];
                let mut spans = vec![];
                for (j, &n) in filled.iter().enumerate() {
                    let start = prefix + j * seg;
                    for s in start + n..start + seg {
                        k[s * row..][..row].iter_mut().for_each(|x| *x = f32::NAN);
                        v[s * row..][..row].iter_mut().for_each(|x| *x = f32::NAN);
                    }
                    keys.push((0..prefix).chain(start..start + n).collect::<Vec<_>>());
                    spans.extend([start as u32, (start + n) as u32]);
                }
                let q = rng.vec(samples * heads * HD);
                decode_rows_match(gpu, &what, [&q, &k, &v], (heads, kv, prefix, window), &keys, &spans, false);
            }
        }
    });
}

/// Several prompts prefilled together as decoding rows (eval's batches): each prompt's rows sit
/// in its own cache segment after a shared prefix, row i of a prompt seeing the prefix and its
/// segment up to itself. With the host's spans the tiled kernel takes them on a CPU device
/// even over a cache far past its walking cap (it skips the other prompts' segments), and the
/// others (prompts straddling tiles, one row per segment as in a decoding step) go to the
/// per-row kernel. Unwritten slots hold NaN.
#[test]
fn hd64_prefill_rows_skip_other_segments() {
    // (heads, kv_heads, prefix, each prompt's own rows, unwritten slots after each segment)
    // The first two are tiled (caches past the cap the whole-cache rule checks), the others not.
    let cases: [(usize, usize, usize, &[usize], usize); 5] = [
        (9, 3, 24, &[300, 260, 280], 40),
        (5, 1, 24, &[320, 192], 700),
        (9, 3, 24, &[70, 3, 130, 1, 45], 15),
        (7, 7, 0, &[33, 40], 900),
        (9, 3, 24, &[1; 20], 700),
    ];
    common::each_gpu_in_parallel(|gpu| {
        let mut rng = common::Rng::new(4242);
        for &(heads, kv, prefix, own, spare) in &cases {
            for window in [0, 5, 80] {
                let what = format!("{}: prefill rows heads={heads} kv={kv} prefix={prefix} own={own:?} window={window}", label(gpu));
                let slots = prefix + own.iter().map(|n| n + spare).sum::<usize>();
                let row = kv * HD;
                let (mut k, mut v) = (rng.vec(slots * row), rng.vec(slots * row));
                let (mut keys, mut spans) = (vec![], vec![]);
                let mut start = prefix;
                for &n in own {
                    for s in start + n..start + n + spare {
                        k[s * row..][..row].iter_mut().for_each(|x| *x = f32::NAN);
                        v[s * row..][..row].iter_mut().for_each(|x| *x = f32::NAN);
                    }
                    for i in 0..n {
                        keys.push((0..prefix).chain(start..=start + i).collect::<Vec<_>>());
                        spans.extend([start as u32, (start + i + 1) as u32]);
                    }
                    start += n + spare;
                }
                let q = rng.vec(keys.len() * heads * HD);
                decode_rows_match(gpu, &what, [&q, &k, &v], (heads, kv, prefix, window), &keys, &spans, true);
            }
        }
    });
}

/// Decoding attention of one query per `keys` entry (its cache slots, in order) over the cache
/// k, v with the given spans, against the f64 reference; `host` passes the spans to the kernel
/// choice too. Skipped where the buffers exceed the device's binding limit.
fn decode_rows_match(
    gpu: &edgerl::gpu::Gpu,
    what: &str,
    [q, k, v]: [&[f32]; 3],
    (heads, kv, prefix, window): (usize, usize, usize, usize),
    keys: &[Vec<usize>],
    spans: &[u32],
    host: bool,
) {
    let (qb, kb, vb) = (up(gpu, q), up(gpu, k), up(gpu, v));
    let ob = up(gpu, &vec![f32::NAN; q.len()]);
    if !fits(gpu, &[&qb, &kb, &vb, &ob]) {
        return;
    }
    let sb = up_u32(gpu, spans);
    let packing = edgerl::gpu::Packing { prefix, spans: &sb, decode: true, host_spans: host.then_some(spans) };
    let scale = 0.125;
    let mut r = Recorder::new(gpu);
    r.attention_packed(&qb, &kb, &vb, &ob, keys.len(), heads, kv, HD, scale, &packing, window).unwrap();
    r.submit().unwrap();
    // NaN slots are never among a query's keys, so the reference reads no NaN.
    let (want, _) = reference(&f64s(q), &f64s(k), &f64s(v), None, heads, kv, scale as f64, keys, window);
    close(what, &gpu.read_f32(&ob, q.len()).unwrap(), &want, 2e-5, 1e-5);
}
