//! The GPU sampler (`Recorder::sample`, shaders/sample.wgsl) against a plain-Rust f64 reference
//! of the filtered distribution `model::generate::sample` draws from, on every device of
//! `common::all_gpus()`: greedy = CPU argmax (first maximum), determinism, chi-square fits of
//! thousands of draws (one workgroup per draw, many per submit), log-probs, and that filtered
//! tokens are never drawn.

mod common;

use edgerl::Error;
use edgerl::gpu::sample::{SAMPLE_OUT_WORDS, Sampled, SamplerSettings};
use edgerl::gpu::{Gpu, Recorder};

fn label(gpu: &Gpu) -> String {
    format!(
        "{} ({}, {}-byte bindings)",
        gpu.adapter.backend, gpu.adapter.name, gpu.max_binding
    )
}

fn settings(temperature: f32, top_k: usize, top_p: f32, min_p: f32, seed: u64) -> SamplerSettings {
    SamplerSettings {
        temperature,
        top_k,
        top_p,
        min_p,
        seed,
    }
}

/// `draws` draws with steps step .. step+draws, in one submit (several dispatches where the
/// output would not fit one binding).
fn gpu_draws(
    gpu: &Gpu,
    logits: &[f32],
    s: &SamplerSettings,
    step: u64,
    draws: usize,
) -> edgerl::Result<Vec<Sampled>> {
    let row = gpu.upload(bytemuck::cast_slice(logits), "logits")?;
    let per = ((gpu.max_binding as usize) / (SAMPLE_OUT_WORDS * 4)).min(draws);
    let mut outs = Vec::new();
    let mut r = Recorder::new(gpu);
    let mut done = 0;
    while done < draws {
        let n = per.min(draws - done);
        let out = gpu.alloc((n * SAMPLE_OUT_WORDS * 4) as u64, "samples")?;
        r.sample(&row, logits.len(), s, step + done as u64, n, &out)?;
        outs.push((out, n));
        done += n;
    }
    r.submit()?;
    let mut all = Vec::new();
    for (out, n) in outs {
        let bytes = gpu.read(&out.buffer, 0, (n * SAMPLE_OUT_WORDS * 4) as u64)?;
        let words: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        all.extend(Sampled::from_words(&words));
    }
    Ok(all)
}

fn cpu_argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// log softmax(x / t) in f64.
fn cpu_log_softmax(x: &[f32], t: f64) -> Vec<f64> {
    let z: Vec<f64> = x.iter().map(|&v| v as f64 / t).collect();
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    z.iter().map(|v| v - lse).collect()
}

/// The distribution `model::generate::sample` draws from (probability per token, 0 where
/// filtered), in f64. Panics if a filter boundary is so close that f32 could decide it
/// differently (then the test data must change, not the tolerance).
fn cpu_filtered(x: &[f32], s: &SamplerSettings) -> Vec<f64> {
    let t = s.temperature as f64;
    let mut cand: Vec<(usize, f64)> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| (i, v as f64 / t))
        .collect();
    cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if s.top_k > 0 {
        cand.truncate(s.top_k);
    }
    let m = cand[0].1;
    let mut probs: Vec<f64> = cand.iter().map(|c| (c.1 - m).exp()).collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    let mut keep = probs.len();
    if s.min_p > 0.0 {
        let floor = probs[0] * s.min_p as f64;
        for p in &probs {
            assert!(
                (p / floor - 1.0).abs() > 1e-4,
                "min-p boundary too close to call"
            );
        }
        keep = probs.iter().take_while(|&&p| p >= floor).count().max(1);
    }
    if s.top_p < 1.0 {
        let mut acc = 0.0;
        let mut n = 0;
        for p in &probs[..keep] {
            acc += p;
            n += 1;
            assert!(
                (acc - s.top_p as f64).abs() > 1e-4,
                "top-p boundary too close to call"
            );
            if acc >= s.top_p as f64 {
                break;
            }
        }
        keep = n.max(1);
    }
    let mass: f64 = probs[..keep].iter().sum();
    let mut out = vec![0.0; x.len()];
    for i in 0..keep {
        out[cand[i].0] = probs[i] / mass;
    }
    out
}

/// Pearson chi-square of `counts` against `p` (cells with expected count < 5 pooled), and
/// its degrees of freedom.
fn chi_square(counts: &[usize], p: &[f64], n: usize) -> (f64, usize) {
    let mut cells: Vec<(f64, f64)> = Vec::new();
    let (mut pool_o, mut pool_e) = (0.0, 0.0);
    for (i, &pi) in p.iter().enumerate() {
        if pi == 0.0 {
            continue;
        }
        let e = pi * n as f64;
        if e < 5.0 {
            pool_o += counts[i] as f64;
            pool_e += e;
        } else {
            cells.push((counts[i] as f64, e));
        }
    }
    if pool_e > 0.0 {
        cells.push((pool_o, pool_e));
    }
    let stat = cells.iter().map(|(o, e)| (o - e) * (o - e) / e).sum();
    (stat, cells.len().saturating_sub(1))
}

fn logits(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut r = common::Rng::new(seed);
    (0..n).map(|_| r.f32() * scale).collect()
}

#[test]
fn greedy_is_the_first_argmax() {
    let mut cases: Vec<(String, Vec<f32>)> = Vec::new();
    for n in [1usize, 7, 256, 300, 1000, 70_001] {
        cases.push((format!("random n={n}"), logits(n as u64, n, 4.0)));
    }
    // Ties: the lower index wins, across threads, within a thread, and over the whole row.
    for (n, a, b) in [
        (300usize, 5usize, 261usize),
        (1000, 517, 5),
        (70_001, 69_999, 3),
    ] {
        let mut x = logits(7 + n as u64, n, 1.0);
        x[a] = 2.0;
        x[b] = 2.0;
        cases.push((format!("tie n={n} at {a}, {b}"), x));
    }
    cases.push(("all equal".into(), vec![0.5; 1001]));
    // Masked logits: -inf everywhere but two tied entries in different subgroups and threads.
    let mut masked = vec![f32::NEG_INFINITY; 5000];
    masked[4001] = -3.0;
    masked[300] = -3.0;
    cases.push(("masked to two".into(), masked));
    // The maximum in the last thread of the last subgroup, only once.
    let mut last = vec![-1.0f32; 511];
    last[255] = 1.0;
    cases.push(("max in thread 255".into(), last));
    cases.push((
        "max last".into(),
        (0..70_000).map(|i| i as f32 * 1e-4).collect(),
    ));
    for gpu in common::all_gpus() {
        for (what, x) in &cases {
            // Filters and seeds are ignored at temperature 0.
            let s = settings(0.0, 3, 0.5, 0.2, 99);
            let res = gpu_draws(gpu, x, &s, 0, 3);
            if (x.len() * 4) as u64 > gpu.max_binding {
                assert!(
                    matches!(res, Err(Error::Invalid(_))),
                    "{}: {what}: a row over the binding limit must be refused",
                    label(gpu)
                );
                continue;
            }
            let got = res.unwrap_or_else(|e| panic!("{}: {what}: {e}", label(gpu)));
            let want = cpu_argmax(x);
            let lp = cpu_log_softmax(x, 1.0)[want];
            for d in got {
                assert_eq!(d.id as usize, want, "{}: {what}", label(gpu));
                assert_eq!(d.logprob, 0.0);
                assert_eq!(d.kept, 1);
                assert!(
                    (d.plain_logprob as f64 - lp).abs() < 2e-5,
                    "{}: {what}: plain log-prob {} vs {lp}",
                    label(gpu),
                    d.plain_logprob
                );
            }
        }
    }
}

#[test]
fn draws_repeat_per_seed_and_step_and_vary_otherwise() {
    let x = logits(11, 300, 2.0);
    let s = settings(1.0, 0, 1.0, 0.0, 5);
    let mut per_backend = Vec::new();
    for gpu in common::all_gpus() {
        let a = gpu_draws(gpu, &x, &s, 1000, 256).unwrap();
        let b = gpu_draws(gpu, &x, &s, 1000, 256).unwrap();
        assert_eq!(a, b, "{}: same seed and steps, same draws", label(gpu));
        // A draw depends only on (seed, step): step 1010 alone equals the 11th of the batch.
        let one = gpu_draws(gpu, &x, &s, 1010, 1).unwrap();
        assert_eq!(one[0], a[10], "{}", label(gpu));
        let ids: std::collections::HashSet<u32> = a.iter().map(|d| d.id).collect();
        assert!(
            ids.len() > 50,
            "{}: 256 steps gave {} ids",
            label(gpu),
            ids.len()
        );
        let other = gpu_draws(gpu, &x, &settings(1.0, 0, 1.0, 0.0, 6), 1000, 256).unwrap();
        let same = a.iter().zip(&other).filter(|(p, q)| p.id == q.id).count();
        assert!(
            same < 40,
            "{}: another seed repeated {same} of 256",
            label(gpu)
        );
        // Steps past 2^32 carry into the high word.
        let hi = gpu_draws(gpu, &x, &s, (1u64 << 32) - 2, 4).unwrap();
        let hi2 = gpu_draws(gpu, &x, &s, 1u64 << 32, 2).unwrap();
        assert_eq!(&hi[2..], &hi2[..], "{}", label(gpu));
        per_backend.push((label(gpu), a));
    }
    // The hash is integer arithmetic; only f32 `log` rounding could split near-ties.
    for (l, a) in &per_backend[1..] {
        let diff = a
            .iter()
            .zip(&per_backend[0].1)
            .filter(|(p, q)| p.id != q.id)
            .count();
        assert!(
            diff <= 1,
            "{l} vs {}: {diff} of 256 draws differ",
            per_backend[0].0
        );
    }
}

fn check_distribution(what: &str, x: &[f32], s: &SamplerSettings, draws: usize) {
    let p = cpu_filtered(x, s);
    let lp_plain = cpu_log_softmax(x, s.temperature as f64);
    let kept = p.iter().filter(|&&q| q > 0.0).count();
    for gpu in common::all_gpus() {
        let t0 = std::time::Instant::now();
        let got = gpu_draws(gpu, x, s, 0, draws).unwrap();
        let mut counts = vec![0usize; x.len()];
        for d in &got {
            let i = d.id as usize;
            assert!(
                i < x.len() && p[i] > 0.0,
                "{}: {what}: drew filtered token {i}",
                label(gpu)
            );
            counts[i] += 1;
            assert_eq!(d.kept as usize, kept, "{}: {what}: kept count", label(gpu));
            assert!(
                (d.logprob as f64 - p[i].ln()).abs() < 1e-5,
                "{}: {what}: log p({i}) = {} vs {}",
                label(gpu),
                d.logprob,
                p[i].ln()
            );
            assert!(
                (d.plain_logprob as f64 - lp_plain[i]).abs() < 1e-5,
                "{}: {what}: plain log p({i}) = {} vs {}",
                label(gpu),
                d.plain_logprob,
                lp_plain[i]
            );
        }
        let (stat, df) = chi_square(&counts, &p, draws);
        // About a 1e-5 tail for these df; the draws are deterministic, so no flakes.
        let bound = df as f64 + 6.0 * (2.0 * df as f64).sqrt() + 8.0;
        eprintln!(
            "{}: {what}: {draws} draws, {kept} kept, chi2 {stat:.1} (df {df}, bound {bound:.1}), {:?}",
            label(gpu),
            t0.elapsed()
        );
        assert!(
            stat < bound,
            "{}: {what}: chi-square {stat} over df {df}",
            label(gpu)
        );
    }
}

#[test]
fn temperature_only() {
    check_distribution(
        "T=0.7",
        &logits(21, 50, 2.0),
        &settings(0.7, 0, 1.0, 0.0, 1),
        4000,
    );
}

#[test]
fn top_k() {
    check_distribution(
        "top-k 3",
        &logits(22, 100, 2.0),
        &settings(1.0, 3, 1.0, 0.0, 2),
        2000,
    );
}

#[test]
fn top_p() {
    check_distribution(
        "top-p 0.5",
        &logits(23, 50, 2.0),
        &settings(1.0, 0, 0.5, 0.0, 3),
        2000,
    );
}

#[test]
fn min_p() {
    check_distribution(
        "min-p 0.2",
        &logits(24, 50, 2.0),
        &settings(1.3, 0, 1.0, 0.2, 4),
        4000,
    );
}

#[test]
fn all_filters_combined() {
    check_distribution(
        "T=0.9 top-k 12 top-p 0.8 min-p 0.05",
        &logits(25, 300, 3.0),
        &settings(0.9, 12, 0.8, 0.05, 5),
        2000,
    );
}

/// A large row (more than 256 tokens per thread) with filters: draws stay in the top k and
/// their log-probs match.
#[test]
fn large_vocabulary_with_filters() {
    let x = logits(26, 70_001, 5.0);
    let s = settings(1.0, 3, 0.95, 0.0, 7);
    let p = cpu_filtered(&x, &s);
    for gpu in common::all_gpus() {
        if (x.len() * 4) as u64 > gpu.max_binding {
            continue;
        }
        let got = gpu_draws(gpu, &x, &s, 0, 16).unwrap();
        for d in got {
            let i = d.id as usize;
            assert!(p[i] > 0.0, "{}: drew filtered token {i}", label(gpu));
            assert!(
                (d.logprob as f64 - p[i].ln()).abs() < 1e-5,
                "{}",
                label(gpu)
            );
        }
    }
}

/// `Model::sample_next` records the logits row and the sampler in one submit: its greedy id is
/// the first argmax of `row_logits`, and with temperature only its log-prob is the row's
/// log-softmax at the drawn id.
#[test]
fn model_sample_next_matches_row_logits() {
    use edgerl::model::{LoadedModel, SamplingOptions};
    for name in ["llama_f32", "qwen3_f16"] {
        let dir = common::fixtures().join("models").join(name);
        for gpu in common::model_gpus() {
            let m = LoadedModel::open(gpu, &dir, None).unwrap();
            let prompt: Vec<u32> = (1..12).collect();
            let mut cache = m.model.new_cache(gpu, prompt.len()).unwrap();
            let hidden = m.model.forward(gpu, &prompt, &mut cache, None).unwrap();
            for row in [0, 5, prompt.len() - 1] {
                let logits = m.model.row_logits(gpu, &hidden, row).unwrap();
                let greedy = SamplingOptions {
                    temperature: 0.0,
                    ..Default::default()
                };
                let (id, lp) = m.model.sample_next(gpu, &hidden, row, &greedy, 0).unwrap();
                assert_eq!(
                    id as usize,
                    cpu_argmax(&logits),
                    "{name} row {row} on {}",
                    label(gpu)
                );
                assert_eq!(lp, 0.0);
                let warm = SamplingOptions {
                    temperature: 0.8,
                    seed: 3,
                    ..Default::default()
                };
                let want = cpu_log_softmax(&logits, 0.8);
                for step in 0..4 {
                    let (id, lp) = m.model.sample_next(gpu, &hidden, row, &warm, step).unwrap();
                    assert!(
                        (lp as f64 - want[id as usize]).abs() < 1e-4,
                        "{name} row {row}: log p({id}) = {lp} vs {}",
                        want[id as usize]
                    );
                }
            }
        }
    }
}

/// `Model::sample_rows` hands back both log-probs of each draw (the sampler correction reads
/// them): with top-k and min-p on, the drawn token's log-prob under the filtered, renormalised
/// distribution and under the unfiltered one at the sampling temperature (log-softmax of
/// logits / temperature), each against a CPU reference on the row's logits.
#[test]
fn model_sample_rows_return_filtered_and_unfiltered_logprobs() {
    use edgerl::model::{LoadedModel, SamplingOptions};
    let dir = common::fixtures().join("models").join("llama_f32");
    for gpu in common::model_gpus() {
        let m = LoadedModel::open(gpu, &dir, None).unwrap();
        let prompt: Vec<u32> = (1..10).collect();
        let mut cache = m.model.new_cache(gpu, prompt.len()).unwrap();
        let hidden = m.model.forward(gpu, &prompt, &mut cache, None).unwrap();
        let opts = SamplingOptions { temperature: 0.7, top_k: 20, min_p: 0.01, seed: 5, ..Default::default() };
        let s = settings(0.7, 20, 1.0, 0.01, 5);
        let rows = [2usize, prompt.len() - 1];
        let draws: Vec<(usize, &SamplingOptions, u64)> = rows.iter().flat_map(|&r| (0..3).map(move |k| (r, k))).map(|(r, k)| (r, &opts, k)).collect();
        let got = m.model.sample_rows(gpu, &hidden, &draws).unwrap();
        assert_eq!(got.len(), draws.len());
        for (d, &(row, _, step)) in got.iter().zip(&draws) {
            let logits = m.model.row_logits(gpu, &hidden, row).unwrap();
            let plain = cpu_log_softmax(&logits, 0.7);
            let filtered = cpu_filtered(&logits, &s);
            let i = d.id as usize;
            assert!(filtered[i] > 0.0, "row {row} step {step}: drew {i}, outside the kept set");
            assert!((d.plain_logprob as f64 - plain[i]).abs() < 1e-4, "row {row}: plain {} vs {}", d.plain_logprob, plain[i]);
            assert!((d.logprob as f64 - filtered[i].ln()).abs() < 1e-4, "row {row}: filtered {} vs {}", d.logprob, filtered[i].ln());
            assert!(d.logprob >= d.plain_logprob, "renormalising over fewer tokens raises the log-prob");
        }
        // Alike draws share one sampler dispatch; a draw with other settings sends the batch
        // row by row. Both give the same draws.
        let other = SamplingOptions { temperature: 1.3, ..opts };
        let mut mixed = draws.clone();
        mixed.push((rows[0], &other, 9));
        let by_row = m.model.sample_rows(gpu, &hidden, &mixed).unwrap();
        assert_eq!(&by_row[..draws.len()], &got[..], "one dispatch vs row by row on {}", label(gpu));
    }
}

/// `Recorder::sample_rows` (a decoding step's rows in one dispatch, each draw its own row, seed
/// and step) gives each draw exactly what `sample` gives for that row, seed and step; greedy
/// and with every filter, steps past 2^32, rows drawn twice and out of order.
#[test]
fn sample_rows_equals_row_by_row() {
    let n = 300;
    let rows: Vec<Vec<f32>> = (0..3).map(|i| logits(40 + i, n, 3.0)).collect();
    let flat: Vec<f32> = rows.concat();
    let draws = [(2usize, 7u64, 0u64), (0, 7, 1), (1, 8, (1 << 32) + 3), (2, 9, 5), (0, u64::MAX, 2)];
    for gpu in common::all_gpus() {
        for base in [settings(0.0, 0, 1.0, 0.0, 0), settings(0.9, 40, 0.8, 0.02, 0)] {
            let want: Vec<Sampled> = draws
                .iter()
                .map(|&(row, seed, step)| gpu_draws(gpu, &rows[row], &SamplerSettings { seed, ..base }, step, 1).unwrap()[0])
                .collect();
            let what = format!("{}: sample_rows {base:?}", label(gpu));
            let lb = gpu.upload(bytemuck::cast_slice(&flat), "logits rows").unwrap();
            let out = gpu.alloc((draws.len() * SAMPLE_OUT_WORDS * 4) as u64, "samples").unwrap();
            let mut r = Recorder::new(gpu);
            let res = r.sample_rows(&lb, n, &base, &draws, &out);
            if (flat.len() * 4) as u64 > gpu.max_binding {
                assert!(matches!(res, Err(Error::Invalid(_))), "{what}: {res:?}");
                continue;
            }
            res.unwrap();
            r.submit().unwrap();
            let bytes = gpu.read(&out.buffer, 0, out.bytes).unwrap();
            assert_eq!(Sampled::from_words(bytemuck::cast_slice(&bytes)), want, "{what}");
            // A row past the buffer is refused.
            let mut r = Recorder::new(gpu);
            assert!(matches!(r.sample_rows(&lb, n, &base, &[(3, 0, 0)], &out), Err(Error::Invalid(_))), "{what}");
        }
    }
}
