//! The inference-only decode kernels against CPU references (f64) on awkward sizes, on every
//! backend `common::all_gpus()` gives (Vulkan and GL, each also with a 4096-byte binding limit,
//! and Vulkan's portable kernels): `Recorder::rope_kv` (rope of q and k, k and v stored into
//! the KV cache at contiguous or scattered slots), and the head_dim-64 decode attention of CPU
//! devices (`attention_decode_hd64`, taken by `Recorder::attention` for a few queries; every test
//! device is a CPU device), with the per-row kernel (`general_attention`) beside it.

mod common;

use edgerl::Error;
use edgerl::gpu::kernels::KvRows;
use edgerl::gpu::{Gpu, GpuBuffer, Recorder};

fn up_f32(gpu: &Gpu, data: &[f32], what: &str) -> GpuBuffer {
    gpu.upload(bytemuck::cast_slice(data), what).unwrap()
}

/// cos/sin for positions `positions`, laid out [2, t, hd/2] with cos first.
fn cos_sin(positions: &[usize], hd: usize) -> Vec<f32> {
    let (t, half) = (positions.len(), hd / 2);
    let mut cs = vec![0f32; 2 * t * half];
    for (i, &pos) in positions.iter().enumerate() {
        for j in 0..half {
            let a = pos as f64 * 10000f64.powf(-(2.0 * j as f64) / hd as f64);
            cs[i * half + j] = a.cos() as f32;
            cs[t * half + i * half + j] = a.sin() as f32;
        }
    }
    cs
}

/// "Rotate half" rope of x [t, heads, hd] in f64.
fn cpu_rope(x: &[f32], cs: &[f32], t: usize, heads: usize, hd: usize) -> Vec<f32> {
    let half = hd / 2;
    let mut y = x.to_vec();
    for i in 0..t {
        for h in 0..heads {
            let base = (i * heads + h) * hd;
            for j in 0..half {
                let c = cs[i * half + j] as f64;
                let s = cs[t * half + i * half + j] as f64;
                let (x1, x2) = (x[base + j] as f64, x[base + j + half] as f64);
                y[base + j] = (x1 * c - x2 * s) as f32;
                y[base + j + half] = (x2 * c + x1 * s) as f32;
            }
        }
    }
    y
}

/// rope_kv against the CPU: q roped in place, k roped and v copied into their cache slots,
/// every other cache row left as it was (NaN here). Slots contiguous from p0, or scattered
/// (batched decoding: given through the decode spans).
#[test]
fn rope_kv_matches_rope_and_copies() {
    // (t, heads, kv_heads, hd, slots: None = contiguous from p0 = 3, cache rows)
    type Case = (usize, usize, usize, usize, Option<&'static [usize]>, usize);
    // head_dim a multiple of 8 takes the vec4 kernel, else (2, 12) a pair a thread.
    let cases: [Case; 8] = [
        (1, 1, 1, 2, None, 4),
        (4, 4, 2, 12, Some(&[5, 0, 9, 2]), 10),
        (1, 9, 3, 64, None, 5),
        (5, 4, 2, 16, None, 11),
        (3, 6, 1, 128, None, 6),
        (3, 3, 3, 24, Some(&[7, 0, 4]), 9),
        (8, 9, 3, 64, Some(&[3, 19, 35, 51, 67, 83, 99, 115]), 130),
        (7, 14, 2, 64, Some(&[12, 1, 30, 2, 9, 40, 41]), 42),
    ];
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(97);
        for &(t, heads, kv, hd, scattered, rows) in &cases {
            let what = format!(
                "{} {}: rope_kv t={t} heads={heads} kv={kv} hd={hd} slots={scattered:?}",
                gpu.adapter.backend, gpu.max_binding
            );
            let slots: Vec<usize> = match scattered {
                Some(s) => s.to_vec(),
                None => (3..3 + t).collect(),
            };
            let cs = cos_sin(&slots.iter().map(|s| s * 7 + 1).collect::<Vec<_>>(), hd);
            let (q, k, v) = (rng.vec(t * heads * hd), rng.vec(t * kv * hd), rng.vec(t * kv * hd));
            let row = kv * hd;
            let cache = vec![f32::NAN; rows * row];
            let (qb, kb, vb, csb) = (up_f32(gpu, &q, "q"), up_f32(gpu, &k, "k"), up_f32(gpu, &v, "v"), up_f32(gpu, &cs, "cs"));
            let (kcb, vcb) = (up_f32(gpu, &cache, "kc"), up_f32(gpu, &cache, "vc"));
            // Decoding spans: [segment start, slot + 1] per row.
            let spans: Vec<u32> = slots.iter().flat_map(|&s| [0, s as u32 + 1]).collect();
            let sb = gpu.upload(bytemuck::cast_slice(&spans), "spans").unwrap();
            let at = match scattered {
                Some(_) => KvRows::Slots { spans: &sb, max_slot: *slots.iter().max().unwrap() },
                None => KvRows::At(3),
            };
            let mut r = Recorder::new(gpu);
            let res = r.rope_kv(&qb, &kb, &vb, &csb, &kcb, &vcb, t, heads, kv, hd, at);
            if [&qb, &kb, &vb, &csb, &kcb, &vcb, &sb].iter().any(|b| b.bytes > gpu.max_binding) {
                assert!(matches!(res, Err(Error::Invalid(_))), "{what}: past the binding limit: {res:?}");
                continue;
            }
            res.unwrap();
            r.submit().unwrap();
            let want_q = cpu_rope(&q, &cs, t, heads, hd);
            let roped_k = cpu_rope(&k, &cs, t, kv, hd);
            let mut want_kc = cache.clone();
            let mut want_vc = cache.clone();
            for (i, &s) in slots.iter().enumerate() {
                want_kc[s * row..][..row].copy_from_slice(&roped_k[i * row..][..row]);
                want_vc[s * row..][..row].copy_from_slice(&v[i * row..][..row]);
            }
            let check = |what: &str, qb: &GpuBuffer, kcb: &GpuBuffer, vcb: &GpuBuffer| {
                let got_q = gpu.read_f32(qb, q.len()).unwrap();
                common::assert_close(&format!("{what}: q"), &got_q, &want_q, 1e-6, 1e-6);
                for (name, buf, want) in [("k cache", kcb, &want_kc), ("v cache", vcb, &want_vc)] {
                    let got = gpu.read_f32(buf, want.len()).unwrap();
                    for (j, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                        let ok = if w.is_nan() { g.is_nan() } else { (g - w).abs() <= 1e-6 + 1e-6 * w.abs() };
                        assert!(ok, "{what}: {name} element {j} (row {}): got {g}, want {w}", j / row);
                    }
                }
            };
            check(&what, &qb, &kcb, &vcb);
            // rope_qkv (head_dim a multiple of 8): q, k and v side by side in each row of one
            // buffer, as one product of stacked weights leaves them; q roped into its own.
            if hd % 8 != 0 {
                continue;
            }
            let mut qkv = Vec::new();
            for i in 0..t {
                qkv.extend(&q[i * heads * hd..][..heads * hd]);
                qkv.extend(&k[i * row..][..row]);
                qkv.extend(&v[i * row..][..row]);
            }
            let (qkvb, qo) = (up_f32(gpu, &qkv, "qkv"), up_f32(gpu, &vec![f32::NAN; q.len()], "q out"));
            let (kcb, vcb) = (up_f32(gpu, &cache, "kc"), up_f32(gpu, &cache, "vc"));
            let at = match scattered {
                Some(_) => KvRows::Slots { spans: &sb, max_slot: *slots.iter().max().unwrap() },
                None => KvRows::At(3),
            };
            let mut r = Recorder::new(gpu);
            let res = r.rope_qkv(&qkvb, &qo, &csb, &kcb, &vcb, t, heads, kv, hd, at);
            if qkvb.bytes > gpu.max_binding {
                assert!(matches!(res, Err(Error::Invalid(_))), "{what}: past the binding limit: {res:?}");
                continue;
            }
            res.unwrap();
            r.submit().unwrap();
            check(&format!("{what} (rope_qkv)"), &qo, &kcb, &vcb);
        }
    }
}

#[test]
fn rope_kv_refuses_bad_shapes() {
    let gpu = &common::backends().normal[0];
    let b = |n: usize| gpu.alloc((n * 4) as u64, "buf").unwrap();
    let (q, k, v, cs, kc, vc) = (b(2 * 6), b(6), b(6), b(6), b(3 * 6), b(3 * 6));
    let mut r = Recorder::new(gpu);
    // Odd head_dim.
    let res = r.rope_kv(&q, &k, &v, &cs, &kc, &vc, 1, 2, 1, 3, KvRows::At(0));
    assert!(matches!(res, Err(Error::Invalid(_))), "{res:?}");
    // A slot past the cache.
    let res = r.rope_kv(&q, &k, &v, &cs, &kc, &vc, 1, 2, 1, 6, KvRows::At(3));
    assert!(matches!(res, Err(Error::Invalid(_))), "{res:?}");
    let spans = gpu.upload(bytemuck::cast_slice(&[0u32, 4]), "spans").unwrap();
    let res = r.rope_kv(&q, &k, &v, &cs, &kc, &vc, 1, 2, 1, 6, KvRows::Slots { spans: &spans, max_slot: 3 });
    assert!(matches!(res, Err(Error::Invalid(_))), "{res:?}");
    // Spans shorter than the rows.
    let res = r.rope_kv(&q, &k, &v, &cs, &kc, &vc, 2, 1, 1, 6, KvRows::Slots { spans: &spans, max_slot: 0 });
    assert!(matches!(res, Err(Error::Invalid(_))), "{res:?}");
    // In range: accepted.
    r.rope_kv(&q, &k, &v, &cs, &kc, &vc, 1, 2, 1, 6, KvRows::At(2)).unwrap();
    // rope_qkv: head_dim not a multiple of 8; a stacked row short of q|k|v (4 heads × 8).
    let res = r.rope_qkv(&b(4 * 6), &q, &cs, &kc, &vc, 1, 2, 1, 6, KvRows::At(0));
    assert!(matches!(res, Err(Error::Invalid(_))), "{res:?}");
    let (q8, cs8, kc8, vc8) = (b(2 * 8), b(8), b(3 * 8), b(3 * 8));
    let res = r.rope_qkv(&b(3 * 8), &q8, &cs8, &kc8, &vc8, 1, 2, 1, 8, KvRows::At(0));
    assert!(matches!(res, Err(Error::Invalid(_))), "{res:?}");
    r.rope_qkv(&b(4 * 8), &q8, &cs8, &kc8, &vc8, 1, 2, 1, 8, KvRows::At(2)).unwrap();
    r.submit().unwrap();
}

/// Causal softmax(q·k·scale)·v per head in f64: q [t, heads, hd], row i sees the keys `keys[i]`
/// of the caches [slots, kv, hd], the last of them its own position; with a window W > 0 only
/// the last W of them.
#[allow(clippy::too_many_arguments)]
fn cpu_attention(
    q: &[f32],
    kc: &[f32],
    vc: &[f32],
    keys: &[Vec<usize>],
    heads: usize,
    kv: usize,
    hd: usize,
    scale: f32,
    window: usize,
) -> Vec<f32> {
    let t = keys.len();
    let mut out = vec![0f32; t * heads * hd];
    for (i, ks) in keys.iter().enumerate() {
        let ks = if window > 0 && ks.len() > window { &ks[ks.len() - window..] } else { &ks[..] };
        for h in 0..heads {
            let kvh = h / (heads / kv);
            let qv = &q[(i * heads + h) * hd..][..hd];
            let scores: Vec<f64> = ks
                .iter()
                .map(|&s| {
                    let kr = &kc[(s * kv + kvh) * hd..][..hd];
                    qv.iter().zip(kr).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() * scale as f64
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for d in 0..hd {
                let acc: f64 = ks.iter().zip(&e).map(|(&s, w)| w * vc[(s * kv + kvh) * hd + d] as f64).sum();
                out[(i * heads + h) * hd + d] = (acc / z) as f32;
            }
        }
    }
    out
}

/// head_dim 64, a few queries: decode steps and short prefills against caches whose unused
/// rows are NaN (so reading one shows), GQA groups of 1, 3 and 7, contexts short, across and far
/// past the 64-key blocks, windows; peaked scores exercise the running max.
#[test]
fn attention_hd64_decode_matches_cpu() {
    // (heads, kv_heads, p0, t, window)
    let cases = [
        (1, 1, 0, 1, 0),
        (9, 3, 0, 3, 0),
        (9, 3, 63, 1, 0),
        (9, 3, 64, 1, 0),
        (9, 3, 127, 2, 0),
        (14, 2, 200, 5, 0),
        (9, 3, 700, 1, 0),
        (3, 3, 1500, 15, 0),
        (9, 3, 130, 1, 1),
        (9, 3, 130, 4, 70),
        (4, 2, 300, 2, 64),
    ];
    let hd = 64;
    for (gpu, general) in common::all_gpus().flat_map(|g| [(g, false), (g, true)]) {
        let mut rng = common::Rng::new(131);
        let mut r = Recorder::new(gpu);
        r.general_attention = general;
        let mut checks = Vec::new();
        for &(heads, kv, p0, t, window) in &cases {
            for gain in [1.0f32, 8.0] {
                let what = format!(
                    "{} {}: hd64 attention heads={heads} kv={kv} p0={p0} t={t} window={window} gain={gain} general={general}",
                    gpu.adapter.backend, gpu.max_binding
                );
                let rows = p0 + t + 5;
                let filled = (p0 + t) * kv * hd;
                let (mut kc, mut vc) = (rng.vec(rows * kv * hd), rng.vec(rows * kv * hd));
                kc[filled..].iter_mut().for_each(|v| *v = f32::NAN);
                vc[filled..].iter_mut().for_each(|v| *v = f32::NAN);
                let q: Vec<f32> = rng.vec(t * heads * hd).iter().map(|v| v * gain).collect();
                let scale = 0.125;
                let (qb, kb, vb) = (up_f32(gpu, &q, "q"), up_f32(gpu, &kc, "k"), up_f32(gpu, &vc, "v"));
                let ob = up_f32(gpu, &vec![f32::NAN; q.len()], "out");
                let res = r.attention(&qb, &kb, &vb, &ob, t, heads, kv, hd, p0, scale, window);
                if [&qb, &kb, &vb, &ob].iter().any(|b| b.bytes > gpu.max_binding) {
                    assert!(matches!(res, Err(Error::Invalid(_))), "{what}: {res:?}");
                    continue;
                }
                res.unwrap();
                let keys: Vec<Vec<usize>> = (0..t).map(|i| (0..=p0 + i).collect()).collect();
                checks.push((what, ob, cpu_attention(&q, &kc, &vc, &keys, heads, kv, hd, scale, window)));
            }
        }
        r.submit().unwrap();
        for (what, ob, want) in &checks {
            let got = gpu.read_f32(ob, want.len()).unwrap();
            common::assert_close(what, &got, want, 2e-5, 1e-5);
        }
    }
}

/// head_dim 64 batched decoding (a group's samples: the shared prompt, then each sample's own
/// segment of the cache, unwritten slots NaN), with windows inside a segment and across the
/// prompt / segment boundary.
#[test]
fn attention_hd64_batched_decode_matches_cpu() {
    // (heads, kv_heads, prefix, segment, each sample's filled length)
    let configs: [(usize, usize, usize, usize, &[usize]); 3] = [
        (9, 3, 128, 16, &[1, 5, 16, 9, 2, 12, 7, 3]),
        (4, 1, 70, 70, &[70, 1, 33]),
        (2, 2, 1, 3, &[3]),
    ];
    let hd = 64;
    for (gpu, general) in common::all_gpus().flat_map(|g| [(g, false), (g, true)]) {
        let mut rng = common::Rng::new(137);
        let mut r = Recorder::new(gpu);
        r.general_attention = general;
        let mut checks = Vec::new();
        for (&(heads, kv, prefix, seg, filled), window) in configs.iter().flat_map(|c| [0, 1, 10, 100].map(|w| (c, w))) {
            let what = format!(
                "{} {}: hd64 batched decode heads={heads} kv={kv} prefix={prefix} filled={filled:?} window={window} general={general}",
                gpu.adapter.backend, gpu.max_binding
            );
            let t = filled.len();
            let slots = prefix + t * seg;
            let row = kv * hd;
            let (mut kc, mut vc) = (rng.vec(slots * row), rng.vec(slots * row));
            let mut keys = Vec::new();
            let mut spans = Vec::new();
            for (j, &n) in filled.iter().enumerate() {
                let start = prefix + j * seg;
                for s in start + n..start + seg {
                    kc[s * row..][..row].iter_mut().for_each(|v| *v = f32::NAN);
                    vc[s * row..][..row].iter_mut().for_each(|v| *v = f32::NAN);
                }
                keys.push((0..prefix).chain(start..start + n).collect::<Vec<_>>());
                spans.extend([start as u32, (start + n) as u32]);
            }
            let q = rng.vec(t * heads * hd);
            let scale = 0.125;
            let (qb, kb, vb) = (up_f32(gpu, &q, "q"), up_f32(gpu, &kc, "k"), up_f32(gpu, &vc, "v"));
            let ob = up_f32(gpu, &vec![f32::NAN; q.len()], "out");
            let sb = gpu.upload(bytemuck::cast_slice(&spans), "spans").unwrap();
            if [&qb, &kb, &vb, &ob].iter().any(|b| b.bytes > gpu.max_binding) {
                continue;
            }
            let packing = edgerl::gpu::Packing { prefix, spans: &sb, decode: true, host_spans: None };
            r.attention_packed(&qb, &kb, &vb, &ob, t, heads, kv, hd, scale, &packing, window).unwrap();
            checks.push((what, ob, cpu_attention(&q, &kc, &vc, &keys, heads, kv, hd, scale, window)));
        }
        r.submit().unwrap();
        for (what, ob, want) in &checks {
            let got = gpu.read_f32(ob, want.len()).unwrap();
            common::assert_close(what, &got, want, 2e-5, 1e-5);
        }
    }
}

/// Timing (not a check), ignored by default: a decode token's decode attention on SmolLM2-135M's
/// shape (30 layers of 9 heads over 3 KV heads, head_dim 64) after a 144-token context, one
/// sequence and a group of 8 (128-token prompt, 16 tokens each), per-row kernel
/// (`general_attention`) against the head_dim-64 one, alternating, medians of REPS (default 9):
/// `cargo test --release --test decode_kernels -- --ignored --nocapture`.
#[test]
#[ignore]
fn decode_attention_speed() {
    let reps: usize = std::env::var("REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(9);
    let gpu = &common::backends().normal[0];
    let (heads, kv, hd, layers) = (9, 3, 64, 30);
    let mut rng = common::Rng::new(5);
    let rows = 128 + 8 * 16;
    let (kc, vc) = (up_f32(gpu, &rng.vec(rows * kv * hd), "k"), up_f32(gpu, &rng.vec(rows * kv * hd), "v"));
    let spans: Vec<u32> = (0..8u32).flat_map(|j| [128 + 16 * j, 128 + 16 * j + 12]).collect();
    let sb = gpu.upload(bytemuck::cast_slice(&spans), "spans").unwrap();
    for t in [1usize, 8] {
        let qb = up_f32(gpu, &rng.vec(t * heads * hd), "q");
        let ob = up_f32(gpu, &vec![0.0; t * heads * hd], "out");
        let mut times = [vec![], vec![]];
        for rep in 0..2 * reps + 2 {
            let general = rep % 2 == 0;
            let mut r = Recorder::new(gpu);
            r.general_attention = general;
            for _ in 0..layers {
                if t == 1 {
                    r.attention(&qb, &kc, &vc, &ob, 1, heads, kv, hd, 143, 0.125, 0).unwrap();
                } else {
                    let packing = edgerl::gpu::Packing { prefix: 128, spans: &sb, decode: true, host_spans: None };
                    r.attention_packed(&qb, &kc, &vc, &ob, t, heads, kv, hd, 0.125, &packing, 0).unwrap();
                }
            }
            let t0 = std::time::Instant::now();
            r.submit().unwrap();
            gpu.wait().unwrap();
            if rep >= 2 {
                times[general as usize].push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        for ts in &mut times {
            ts.sort_by(f64::total_cmp);
        }
        eprintln!(
            "decode attention, {t} queries × {layers} layers: head_dim-64 kernel {:.2} ms, per-row kernel {:.2} ms (medians)",
            times[0][reps / 2],
            times[1][reps / 2]
        );
    }
}
