//! `edgerl sft` against TRL's SFTTrainer + PEFT: for every case in tests/fixtures/sft (made by
//! make_sft_fixtures.py), the rows tokenize to TRL's input_ids and labels (and, with `packing`,
//! pack into TRL's packed rows), the adapter after one
//! and after two optimizer steps matches TRL's, and the logged loss, grad_norm, learning_rate,
//! num_tokens, entropy and mean_token_accuracy match SFTTrainer's logs. Then the adapter starts a
//! GRPO run (`init_adapter`).

mod common;

use std::path::{Path, PathBuf};

use edgerl::model::weights::{SafetensorsWeights, WeightSource, to_f32};
use edgerl::rl::sft::{self, SftConfig};
use serde_json::Value;

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(common::fixtures().join("sft"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("run.toml").exists())
        .collect();
    v.sort();
    assert!(
        v.len() >= 3,
        "expected the committed SFT cases, found {v:?}"
    );
    v
}

fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let w = SafetensorsWeights::open_file(path).unwrap();
    let mut names: Vec<String> = w.names().map(str::to_string).collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (n.clone(), to_f32(&w.get(&n).unwrap().unwrap()).unwrap()))
        .collect()
}

fn norm(x: impl Iterator<Item = f64>) -> f64 {
    x.map(|v| v * v).sum::<f64>().sqrt()
}

/// Worst relative error, over the tensors, of the update (adapter − init) against TRL's.
fn update_error(dir: &Path, got: &Path, want: &Path) -> f64 {
    let init = tensors(&dir.join("init_adapter/adapter_model.safetensors"));
    let want = tensors(&want.join("adapter_model.safetensors"));
    let got = tensors(&got.join("adapter_model.safetensors"));
    let names = |v: &[(String, Vec<f32>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want), "{}: tensor names", dir.display());
    let mut worst: f64 = 0.0;
    for ((n, g), ((_, w), (_, i))) in got.iter().zip(want.iter().zip(&init)) {
        let dw = norm(w.iter().zip(i).map(|(a, b)| (a - b) as f64));
        assert!(dw > 0.0, "{n} has no update in the reference");
        worst = worst.max(norm(g.iter().zip(w).map(|(a, b)| (a - b) as f64)) / dw);
    }
    worst
}

fn run(
    gpu: &edgerl::gpu::Gpu,
    dir: &Path,
    steps: usize,
    tag: &str,
) -> (PathBuf, Vec<serde_json::Map<String, Value>>) {
    let mut cfg = SftConfig::from_file(&dir.join("run.toml")).unwrap();
    cfg.train.max_steps = steps;
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    cfg.train.output_dir = std::env::temp_dir().join(format!(
        "edgerl-sft-{name}-{tag}-{steps}-{}",
        std::process::id()
    ));
    let mut got = Vec::new();
    let adapter = sft::sft(gpu, cfg, true, |m| got.push(m.clone())).unwrap();
    (adapter, got)
}

/// Rows tokenize as SFTTrainer prepares them (ids, and which tokens carry loss); with
/// `packing`, they pack into TRL's packed rows (the same sequences in the same rows and order).
#[test]
fn rows_tokenize_as_trl() {
    let mut packed_cases = 0;
    for dir in cases() {
        let cfg = SftConfig::from_file(&dir.join("run.toml")).unwrap();
        let tok = edgerl::model::Tokenizer::open(&cfg.train.model).unwrap();
        let rows = edgerl::data::dataset::read_sft(&cfg.dataset).unwrap();
        let want: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(dir.join("expected/tokens.json")).unwrap(),
        )
        .unwrap();
        let got = sft::batch_rows(&cfg, &tok, &rows, usize::MAX).unwrap();
        packed_cases += cfg.packing.is_some() as usize;
        assert_eq!(got.len(), want.len(), "{}: rows", dir.display());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let list = |k: &str| w[k].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect::<Vec<_>>();
            let ids: Vec<u32> = list("input_ids").iter().map(|&v| v as u32).collect();
            let trained: Vec<bool> = list("labels").iter().map(|&v| v != -100).collect();
            let lengths: Vec<usize> = match w.get("seq_lengths") {
                Some(_) => list("seq_lengths").iter().map(|&v| v as usize).collect(),
                None => vec![ids.len()],
            };
            let concat = |f: &dyn Fn(&sft::Example) -> Vec<i64>| g.iter().flat_map(f).collect::<Vec<_>>();
            assert_eq!(
                g.iter().map(|e| e.ids.len()).collect::<Vec<_>>(),
                lengths,
                "{} row {i}: sequence lengths",
                dir.display()
            );
            assert_eq!(
                concat(&|e| e.ids.iter().map(|&v| v as i64).collect()),
                ids.iter().map(|&v| v as i64).collect::<Vec<_>>(),
                "{} row {i}: ids",
                dir.display()
            );
            assert_eq!(
                concat(&|e| e.trained.iter().map(|&b| b as i64).collect()),
                trained.iter().map(|&b| b as i64).collect::<Vec<_>>(),
                "{} row {i}: trained tokens",
                dir.display()
            );
        }
    }
    assert!(packed_cases >= 1, "expected a committed case with packing");
}

/// One and two optimizer steps end at TRL's adapters; the metrics are SFTTrainer's.
#[test]
fn steps_match_trl_sft_trainer() {
    let mut bad = Vec::new();
    for (gi, gpu) in common::model_gpus().enumerate() {
        let tag = format!("{}-{gi}", gpu.adapter.backend);
        for dir in cases() {
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            let want: Value = serde_json::from_str(
                &std::fs::read_to_string(dir.join("expected/metrics.json")).unwrap(),
            )
            .unwrap();
            let want = want["steps"].as_array().unwrap().clone();
            let (a1, m1) = run(gpu, &dir, 1, &tag);
            let e1 = update_error(&dir, &a1, &dir.join("expected/step1"));
            let (a2, m2) = run(gpu, &dir, want.len(), &tag);
            let e2 = update_error(&dir, &a2, &dir.join("expected"));
            eprintln!(
                "{name} on {tag}: update off by {e1:.2e} (1 step), {e2:.2e} ({} steps)",
                want.len()
            );
            for (k, e) in [(1, e1), (want.len(), e2)] {
                if e.is_nan() || e >= 1e-4 {
                    bad.push(format!(
                        "{name} on {tag}: adapter after {k} steps off by {e:.2e} relative"
                    ));
                }
            }
            let l1 = m1[0]["loss"].as_f64().unwrap();
            if (l1 - m2[0]["loss"].as_f64().unwrap()).abs() > 1e-12 {
                bad.push(format!("{name} on {tag}: step 1 differs between runs"));
            }
            assert_eq!(m2.len(), want.len());
            for (i, (g, w)) in m2.iter().zip(&want).enumerate() {
                for (key, rtol) in [
                    ("loss", 1e-5),
                    ("grad_norm", 1e-4),
                    ("learning_rate", 1e-9),
                    ("num_tokens", 0.0),
                    ("entropy", 1e-4),
                    ("mean_token_accuracy", 0.0),
                ] {
                    let wv = w[key].as_f64().unwrap();
                    let gv = g.get(key).and_then(Value::as_f64);
                    let ok = gv.is_some_and(|gv| (gv - wv).abs() <= rtol * wv.abs().max(1.0));
                    eprintln!("  step {} {key}: {gv:?} vs {wv}", i + 1);
                    if !ok {
                        bad.push(format!(
                            "{name} on {tag} step {}: {key} = {gv:?}, want {wv}",
                            i + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

/// The SFT adapter is a GRPO run's `init_adapter`: it loads, trains, and is saved again.
#[test]
fn sft_adapter_starts_a_grpo_run() {
    let gpu = &common::backends().normal[0];
    let dir = cases()
        .into_iter()
        .find(|d| d.ends_with("prompt_completion_sgd_llama"))
        .unwrap();
    let (adapter, _) = run(gpu, &dir, 1, "grpo");
    let grpo = common::fixtures().join("train/grpo_group_llama/run.toml");
    let mut cfg = edgerl::rl::TrainConfig::from_file(&grpo).unwrap();
    cfg.init_adapter = Some(adapter.clone());
    cfg.output_dir =
        std::env::temp_dir().join(format!("edgerl-sft-then-grpo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cfg.output_dir);
    let out = edgerl::rl::trainer::train(gpu, cfg, |_| {}).unwrap();
    let before = tensors(&adapter.join("adapter_model.safetensors"));
    let after = tensors(&out.join("adapter_model.safetensors"));
    assert_eq!(
        before.iter().map(|t| &t.0).collect::<Vec<_>>(),
        after.iter().map(|t| &t.0).collect::<Vec<_>>()
    );
    assert!(
        before.iter().zip(&after).any(|(b, a)| b.1 != a.1),
        "GRPO changed nothing"
    );
}

/// `edgerl sft --config` end to end: metrics.jsonl with TRL's names and the adapter.
#[test]
fn cli_sft_writes_adapter_and_metrics() {
    let dir = cases()
        .into_iter()
        .find(|d| d.ends_with("text_full_loss_truncated_gemma3"))
        .unwrap();
    let tmp = std::env::temp_dir().join(format!("edgerl-sft-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let text = std::fs::read_to_string(dir.join("run.toml")).unwrap();
    let abs = |p: &str| dir.join(p).canonicalize().unwrap().display().to_string();
    let text = text
        .replace(
            "\"../../models/gemma3_f32\"",
            &format!("{:?}", abs("../../models/gemma3_f32")),
        )
        .replace("\"data.jsonl\"", &format!("{:?}", abs("data.jsonl")))
        .replace("\"init_adapter\"", &format!("{:?}", abs("init_adapter")));
    std::fs::write(tmp.join("run.toml"), text).unwrap();
    let cfg = tmp.join("run.toml").display().to_string();
    let (code, stdout, stderr) = common::edgerl(&["sft", "--config", &cfg, "--json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(tmp.join("out/adapter/adapter_model.safetensors").exists());
    let lines = std::fs::read_to_string(tmp.join("out/metrics.jsonl")).unwrap();
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    for k in [
        "loss",
        "grad_norm",
        "learning_rate",
        "num_tokens",
        "mean_token_accuracy",
        "entropy",
    ] {
        assert!(first.get(k).is_some(), "{k} missing: {first}");
    }
    // A second run into the same output_dir is refused without --overwrite.
    let (code, _, stderr) = common::edgerl(&["sft", "--config", &cfg]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--overwrite"), "{stderr}");
}
