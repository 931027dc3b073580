//! One training step against PEFT + PyTorch: for every case in tests/fixtures/train (made by
//! make_train_fixtures.py, TRL's loss semantics), `edgerl train` must end with the adapter
//! PyTorch ends with (init − lr·grad for SGD), tensor for tensor, with PEFT's tensor names.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use edgerl::model::weights::{SafetensorsWeights, WeightSource, to_f32};
use edgerl::rl::TrainConfig;

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(common::fixtures().join("train"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("run.toml").exists())
        .collect();
    v.sort();
    assert!(
        v.len() >= 8,
        "expected the committed training cases, found {v:?}"
    );
    v
}

fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let w = SafetensorsWeights::open_file(path).unwrap();
    let mut names: Vec<String> = w.names().map(str::to_string).collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let t = to_f32(&w.get(&n).unwrap().unwrap()).unwrap();
            (n, t)
        })
        .collect()
}

fn norm(x: impl Iterator<Item = f64>) -> f64 {
    x.map(|v| v * v).sum::<f64>().sqrt()
}

/// Runs one case on `gpu`; returns the worst relative error of the update (adapter − init)
/// against PyTorch's, over all tensors.
fn run_case(gpu: &edgerl::gpu::Gpu, dir: &Path, tag: &str) -> f64 {
    run_case_with(gpu, dir, tag, |_| {})
}

fn run_case_with(gpu: &edgerl::gpu::Gpu, dir: &Path, tag: &str, edit: impl FnOnce(&mut TrainConfig)) -> f64 {
    let mut cfg = TrainConfig::from_file(&dir.join("run.toml")).unwrap();
    edit(&mut cfg);
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    cfg.output_dir =
        std::env::temp_dir().join(format!("edgerl-train-{name}-{tag}-{}", std::process::id()));
    let adapter = edgerl::rl::trainer::train(gpu, cfg, |_| {}).unwrap();
    let init = tensors(&dir.join("init_adapter/adapter_model.safetensors"));
    let want = tensors(&dir.join("expected/adapter_model.safetensors"));
    let got = tensors(&adapter.join("adapter_model.safetensors"));
    let names =
        |v: &[(String, Vec<f32>)]| v.iter().map(|(n, _)| n.clone()).collect::<BTreeSet<_>>();
    assert_eq!(names(&got), names(&want), "{name}: tensor names");
    let mut worst: f64 = 0.0;
    for ((n, g), ((_, w), (_, i))) in got.iter().zip(want.iter().zip(&init)) {
        let dw = norm(w.iter().zip(i).map(|(a, b)| (a - b) as f64));
        let err = norm(g.iter().zip(w).map(|(a, b)| (a - b) as f64));
        let rel = err / dw.max(1e-12);
        assert!(dw > 0.0, "{name}: {n} has no update in the reference");
        worst = worst.max(rel);
    }
    eprintln!("{name} on {tag}: worst relative error of the update {worst:.2e}");
    worst
}

#[test]
fn one_step_matches_peft_and_pytorch() {
    let mut bad = Vec::new();
    // Each backend, with real limits and with a 64 KiB binding limit (weights split in pieces).
    for (i, gpu) in common::model_gpus().enumerate() {
        for dir in cases() {
            let worst = run_case(gpu, &dir, &format!("{}-{i}", gpu.adapter.backend));
            if !(worst < 1e-4) {
                bad.push(format!(
                    "{} on {}: update off by {worst:.2e} relative",
                    dir.display(),
                    gpu.adapter.backend
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

/// The logged metrics, step by step, against the reference's (TRL's names and definitions).
#[test]
fn metrics_match_trl() {
    let gpu = &common::backends().normal[0];
    let mut bad = Vec::new();
    for dir in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let mut cfg = TrainConfig::from_file(&dir.join("run.toml")).unwrap();
        cfg.output_dir = std::env::temp_dir().join(format!("edgerl-metrics-{name}-{}", std::process::id()));
        let mut got = Vec::new();
        edgerl::rl::trainer::train(gpu, cfg, |m| got.push(m.clone())).unwrap();
        let want: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected/metrics.json")).unwrap()).unwrap();
        let steps: Vec<serde_json::Value> = match want.get("steps") {
            Some(s) => s.as_array().unwrap().clone(),
            None => vec![want.clone()],
        };
        assert_eq!(got.len(), steps.len(), "{name}: steps logged");
        for (i, (g, w)) in got.iter().zip(&steps).enumerate() {
            for key in [
                "loss", "grad_norm", "entropy", "kl", "learning_rate", "reward", "reward_std", "frac_reward_zero_std",
                "completions/mean_length", "completions/min_length", "completions/max_length", "completions/clipped_ratio",
                "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "num_tokens",
                // The sampler correction's (the is_* cases).
                "sampling/sampling_logp_difference/mean", "sampling/sampling_logp_difference/max",
                "sampling/importance_sampling_ratio/min", "sampling/importance_sampling_ratio/mean",
                "sampling/importance_sampling_ratio/max",
            ] {
                // Per-step entries hold what changes between steps; the rest is in the top level.
                let Some(wv) = w.get(key).or_else(|| want.get(key)).and_then(|v| v.as_f64()) else { continue };
                let gv = g.get(key).and_then(|v| v.as_f64());
                let ok = gv.is_some_and(|gv| (gv - wv).abs() <= 2e-5 + 1e-4 * wv.abs());
                if !ok {
                    bad.push(format!("{name} step {i}: {key} = {gv:?}, want {wv}"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

/// The sampler correction cases (`is_*`, TRL's `vllm_importance_sampling_correction` on made-up
/// sampler log-probs): TRL 1.16 has no IcePop, and edgerl's `icepop_beta = β` is TRL's
/// `token_mask` on [1/β, β], so `is_token_mask_qwen3` ([0.5, 2]) is also IcePop's fixture with
/// β = 2. And the correction matters: without it every case ends elsewhere.
#[test]
fn icepop_is_trls_token_mask_and_the_correction_bites() {
    for gpu in common::normal_gpus() {
        let dir = common::fixtures().join("train/is_token_mask_qwen3");
        let worst = run_case_with(gpu, &dir, &format!("icepop-{}", gpu.adapter.backend), |c| {
            c.vllm_importance_sampling_correction = false;
            c.vllm_importance_sampling_clip_min = None;
            c.vllm_importance_sampling_clip_max = None;
            c.icepop_beta = Some(2.0);
        });
        assert!(worst < 1e-4, "IcePop β = 2 on {}: update off by {worst:.2e}", gpu.adapter.backend);
    }
    let gpu = &common::backends().normal[0];
    for case in ["is_token_truncate_beta_llama", "is_token_mask_qwen3", "is_sequence_mask_two_iterations_qwen2", "is_sequence_truncate_cispo_smollm"] {
        let dir = common::fixtures().join("train").join(case);
        let worst = run_case_with(gpu, &dir, "uncorrected", |c| c.vllm_importance_sampling_correction = false);
        assert!(worst > 1e-2, "{case} without the correction is only {worst:.2e} off: the fixture does not test it");
    }
}

/// Inference with an adapter (KV-cache path, as `score --adapter` runs it) gives PEFT's
/// per-token log-probs of the completions.
#[test]
fn adapter_forward_matches_peft_logprobs() {
    use edgerl::lora::Lora;
    use edgerl::model::LoadedModel;
    let gpu = &common::backends().normal[0];
    for case in [
        "grpo_group_llama",
        "dr_grpo_none_qwen2",
        "dapo_group_t07_qwen3",
        "bnpo_batch_beta_smollm",
        "grpo_group_gemma3",
    ] {
        let dir = common::fixtures().join("train").join(case);
        let cfg = TrainConfig::from_file(&dir.join("run.toml")).unwrap();
        let m = LoadedModel::open(gpu, &cfg.model, None).unwrap();
        let lora = Lora::load_peft(gpu, &dir.join("init_adapter"), &m.model.cfg).unwrap();
        let want: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected/metrics.json")).unwrap()).unwrap();
        let want = want["token_logps"].as_array().unwrap();
        let text = std::fs::read_to_string(dir.join("rollouts.jsonl")).unwrap();
        let mut k = 0;
        for line in text.lines() {
            let g: serde_json::Value = serde_json::from_str(line).unwrap();
            let ids = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect::<Vec<_>>();
            let prompt = ids(&g["prompt_ids"]);
            for c in g["completion_ids"].as_array().unwrap() {
                let mut seq = prompt.clone();
                seq.extend(ids(c));
                let mut cache = m.model.new_cache(gpu, seq.len()).unwrap();
                let hidden = m.model.forward(gpu, &seq, &mut cache, Some(&lora)).unwrap();
                let targets: Vec<Option<u32>> = seq[1..].iter().map(|&i| Some(i)).collect();
                let lp = m.model.target_logprobs(gpu, &hidden, &targets, cfg.temperature as f32).unwrap();
                let got = &lp[prompt.len() - 1..];
                let w: Vec<f32> = want[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
                common::assert_close(&format!("{case} completion {k}"), got, &w, 2e-5, 1e-5);
                k += 1;
            }
        }
        assert_eq!(k, want.len());
    }
}

/// Keeping every layer's activations (no recompute) gives the same step as checkpointing.
#[test]
fn keeping_activations_matches_checkpointing() {
    let gpu = &common::backends().normal[0];
    for case in ["dapo_group_t07_qwen3", "bnpo_batch_beta_smollm", "grpo_group_gemma3"] {
        let dir = common::fixtures().join("train").join(case);
        let worst = run_case_with(gpu, &dir, "keep", |c| c.gradient_checkpointing = edgerl::rl::config::Checkpointing::Off);
        assert!(worst < 1e-4, "{case} without checkpointing: update off by {worst:.2e}");
    }
}

/// README's first command (examples/tiny-grpo) keeps working, and its steps move the adapter.
#[test]
fn readme_example_trains() {
    let gpu = &common::backends().normal[0];
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiny-grpo/run.toml");
    let mut cfg = TrainConfig::from_file(&path).unwrap();
    cfg.output_dir = std::env::temp_dir().join(format!("edgerl-readme-{}", std::process::id()));
    let mut steps = Vec::new();
    let adapter = edgerl::rl::trainer::train(gpu, cfg.clone(), |m| steps.push(m.clone())).unwrap();
    assert_eq!(steps.len(), cfg.max_steps);
    assert!(steps.iter().all(|m| m["grad_norm"].as_f64().unwrap() > 0.0));
    // B starts at zero (PEFT's init), so a trained adapter has non-zero B.
    let b: f64 = tensors(&adapter.join("adapter_model.safetensors"))
        .iter()
        .filter(|(n, _)| n.contains("lora_B"))
        .map(|(_, v)| v.iter().map(|x| x.abs() as f64).sum::<f64>())
        .sum();
    assert!(b > 0.0);
}
