//! The sampler correction end to end (issue 18 part 3): online runs record the sampler's
//! per-token log-probs, TRL's truncated / masked importance sampling (and IcePop) weight the
//! policy-gradient terms, and the `sampling/…` metrics are logged each step; offline rollouts
//! without `sampler_logps` are refused clearly, and with them are corrected.

mod common;

use std::path::{Path, PathBuf};

use edgerl::rl::TrainConfig;
use serde_json::{Map, Value};

const METRICS: [&str; 5] = [
    "sampling/sampling_logp_difference/mean",
    "sampling/sampling_logp_difference/max",
    "sampling/importance_sampling_ratio/min",
    "sampling/importance_sampling_ratio/mean",
    "sampling/importance_sampling_ratio/max",
];

fn example(name: &str) -> (TrainConfig, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name).join("run.toml");
    (TrainConfig::from_file(&path).unwrap(), std::fs::read_to_string(&path).unwrap())
}

/// `base` with `extra` keys added before its first table, read as if it were in `dir`.
fn with_keys(name: &str, extra: &str) -> TrainConfig {
    let (_, text) = example(name);
    let (head, tail) = text.split_at(text.find("\n[").unwrap_or(text.len()));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    let path = dir.join(format!("run-is-{}.toml", std::process::id()));
    std::fs::write(&path, format!("{head}\n{extra}\n{tail}")).unwrap();
    let c = TrainConfig::from_file(&path);
    let _ = std::fs::remove_file(&path);
    c.unwrap()
}

fn run(mut cfg: TrainConfig, tag: &str) -> Result<Vec<Map<String, Value>>, String> {
    cfg.output_dir = std::env::temp_dir().join(format!("edgerl-is-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cfg.output_dir);
    let gpu = &common::backends().normal[0];
    let mut steps = Vec::new();
    let r = edgerl::rl::trainer::train(gpu, cfg.clone(), |m| steps.push(m.clone()));
    let _ = std::fs::remove_dir_all(&cfg.output_dir);
    r.map(|_| steps).map_err(|e| e.to_string())
}

fn metric(m: &Map<String, Value>, k: &str) -> f64 {
    m.get(k).and_then(Value::as_f64).unwrap_or_else(|| panic!("{k} missing or not a number: {m:?}"))
}

/// Online runs with the correction on log TRL's metrics, finite and consistent with the mode:
/// the truncated ratios stay at or below C_max, IcePop's are 0 or inside [1/β, β]. The
/// sampler decodes with the same weights the trainer scores with, so the log-prob differences
/// are small (the two numeric paths differ only in rounding).
#[test]
fn online_runs_log_the_sampling_metrics() {
    for (tag, extra, lo, hi) in [
        ("tis", "vllm_importance_sampling_correction = true\nvllm_importance_sampling_mode = \"token_truncate\"\nvllm_importance_sampling_clip_max = 2.0", 0.0, 2.0),
        ("seq", "vllm_importance_sampling_correction = true\nsampler_logprobs = \"unfiltered\"", 0.0, 3.0),
        ("icepop", "icepop_beta = 2.0", 0.5, 2.0),
    ] {
        let cfg = with_keys("tiny-grpo-online", extra);
        let steps = run(cfg.clone(), tag).unwrap();
        assert_eq!(steps.len(), cfg.max_steps);
        for m in &steps {
            for k in METRICS {
                assert!(metric(m, k).is_finite(), "{tag}: {k} = {:?}", m[k]);
            }
            let (dmean, dmax) = (metric(m, METRICS[0]), metric(m, METRICS[1]));
            assert!(0.0 <= dmean && dmean <= dmax, "{tag}: {m:?}");
            let (rmin, rmean, rmax) = (metric(m, METRICS[2]), metric(m, METRICS[3]), metric(m, METRICS[4]));
            assert!(rmin <= rmean && rmean <= rmax && rmax <= hi, "{tag}: {m:?}");
            assert!(rmin == 0.0 || rmin >= lo, "{tag}: {m:?}");
            assert!(metric(m, "loss").is_finite() && metric(m, "grad_norm").is_finite(), "{tag}: {m:?}");
        }
    }
    // Off (the default): no `sampling/…` metrics.
    let (cfg, _) = example("tiny-grpo-online");
    let mut off = cfg.clone();
    off.max_steps = 1;
    let steps = run(off, "off").unwrap();
    assert!(METRICS.iter().all(|k| !steps[0].contains_key(*k)), "{:?}", steps[0]);
}

/// Offline rollouts: without `sampler_logps` the correction is refused, naming the column;
/// with them the run is corrected, and a sampler that agrees with the trainer everywhere
/// (ratio 1) changes nothing.
#[test]
fn offline_rollouts_need_sampler_logps() {
    let cfg = with_keys("tiny-grpo", "vllm_importance_sampling_correction = true");
    let e = run(cfg.clone(), "off-missing").unwrap_err();
    assert!(e.contains("sampler_logps"), "{e}");

    // The same rollouts by token ids, with sampler log-probs: first the trainer's own (ratio 1
    // 1 up to rounding: the fresh adapter is the base model), then shifted.
    let gpu = &common::backends().normal[0];
    let m = edgerl::model::LoadedModel::open(gpu, &cfg.model, None).unwrap();
    let (plain, _) = example("tiny-grpo");
    let groups = {
        let t = edgerl::rl::trainer::Trainer::new(gpu, plain.clone()).unwrap();
        t.read_rollouts().unwrap()
    };
    let dir = std::env::temp_dir().join(format!("edgerl-is-offline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, shift: f32| -> PathBuf {
        let mut text = String::new();
        for g in &groups {
            // The base model's log-probs at temperature 1 (the fresh adapter's B is zero, so
            // they are the trainer's first-use log-probs too), shifted.
            let lps: Vec<Vec<f32>> = g
                .completions
                .iter()
                .map(|c| {
                    let ids: Vec<u32> = g.prompt_ids.iter().chain(c).copied().collect();
                    let p = g.prompt_ids.len();
                    let mut cache = m.model.new_cache(gpu, ids.len()).unwrap();
                    let hidden = m.model.forward(gpu, &ids, &mut cache, None).unwrap();
                    let targets: Vec<Option<u32>> = (0..ids.len()).map(|i| (i + 1 >= p && i + 1 < ids.len()).then(|| ids[i + 1])).collect();
                    let lp = m.model.target_logprobs(gpu, &hidden, &targets, 1.0).unwrap();
                    lp.iter().filter(|x| !x.is_nan()).map(|x| x - shift).collect()
                })
                .collect();
            let line = serde_json::json!({ "prompt_ids": g.prompt_ids, "completion_ids": g.completions, "rewards": g.rewards, "sampler_logps": lps });
            text.push_str(&format!("{line}\n"));
        }
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let mut same = cfg.clone();
    same.rollouts = Some(write("same.jsonl", 0.0));
    same.vllm_importance_sampling_mode = edgerl::rl::config::IsMode::TokenTruncate;
    // One step: later batches are first used by an updated adapter, no longer the sampler.
    same.max_steps = 1;
    let corrected = run(same.clone(), "off-same").unwrap();
    let mut uncorrected_cfg = same.clone();
    uncorrected_cfg.vllm_importance_sampling_correction = false;
    let uncorrected = run(uncorrected_cfg, "off-plain").unwrap();
    for (a, b) in corrected.iter().zip(&uncorrected) {
        assert!(metric(a, METRICS[1]) < 1e-3, "{a:?}");
        assert!((metric(a, "grad_norm") - metric(b, "grad_norm")).abs() <= 1e-3 * metric(b, "grad_norm").max(1e-6), "{a:?} vs {b:?}");
    }
    // The sampler gave every token e^0.5 less probability than the trainer: each token's
    // ratio is e^0.5 ≈ 1.65, truncated at C_max = 1.2; the gradient scales by 1.2 on the
    // first step (before any update moved the policy).
    let mut shifted = same.clone();
    shifted.rollouts = Some(write("shifted.jsonl", 0.5));
    shifted.vllm_importance_sampling_clip_max = Some(1.2);
    let s = run(shifted, "off-shift").unwrap();
    assert!((metric(&s[0], METRICS[0]) - 0.5).abs() < 1e-3, "{:?}", s[0]);
    assert!((metric(&s[0], METRICS[2]) - 1.2).abs() < 1e-9 && (metric(&s[0], METRICS[4]) - 1.2).abs() < 1e-9, "{:?}", s[0]);
    let g0 = metric(&uncorrected[0], "grad_norm");
    assert!((metric(&s[0], "grad_norm") - 1.2 * g0).abs() < 1e-3 * g0, "{} vs 1.2 × {g0}", metric(&s[0], "grad_norm"));
    let _ = std::fs::remove_dir_all(&dir);
}
