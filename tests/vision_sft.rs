//! `edgerl sft` on screenshots against TRL 1.16's SFTTrainer + PEFT, through the fixtures made by
//! tests/fixtures/vision_sft/make_vision_sft_fixture.py on the tiny SmolVLM-shaped model of
//! tests/fixtures/vision_e2e: `messages` rows with images (content parts with one and with two
//! images; string contents with an `images` column), two SGD steps; conversational
//! prompt/completion rows with images, one AdamW step. The rows tokenize to the ids and labels of
//! TRL's vision collator; the losses and the adapter after the run are TRL's, on Vulkan and GL,
//! with real limits and with the 64 KiB limit. A text model refuses image rows naming the row,
//! `--resume` mid-run ends at the uninterrupted adapter, and `max_length` cutting image tokens is
//! an error.

mod common;

use std::path::{Path, PathBuf};

use edgerl::model::weights::{SafetensorsWeights, WeightSource, to_f32};
use edgerl::rl::sft::{self, SftConfig};
use serde_json::Value;

const CASES: [&str; 2] = ["messages", "completion"];

fn dir() -> PathBuf {
    common::fixtures().join("vision_sft")
}

fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let w = SafetensorsWeights::open_file(path).unwrap();
    let mut names: Vec<String> = w.names().map(str::to_string).collect();
    names.sort();
    names.into_iter().map(|n| (n.clone(), to_f32(&w.get(&n).unwrap().unwrap()).unwrap())).collect()
}

fn norm(x: impl Iterator<Item = f64>) -> f64 {
    x.map(|v| v * v).sum::<f64>().sqrt()
}

/// Worst relative error, over the tensors, of the update (adapter − init) against TRL's.
fn update_error(got: &Path, want: &Path) -> f64 {
    let init = tensors(&dir().join("init_adapter/adapter_model.safetensors"));
    let want = tensors(&want.join("adapter_model.safetensors"));
    let got = tensors(&got.join("adapter_model.safetensors"));
    let names = |v: &[(String, Vec<f32>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want), "tensor names");
    let mut worst: f64 = 0.0;
    for ((n, g), ((_, w), (_, i))) in got.iter().zip(want.iter().zip(&init)) {
        let dw = norm(w.iter().zip(i).map(|(a, b)| (a - b) as f64));
        assert!(dw > 0.0, "{n} has no update in the reference");
        worst = worst.max(norm(g.iter().zip(w).map(|(a, b)| (a - b) as f64)) / dw);
    }
    worst
}

fn expected(case: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(case).join("expected/metrics.json")).unwrap()).unwrap()
}

fn config(case: &str, tag: &str) -> SftConfig {
    let mut cfg = SftConfig::from_file(&dir().join(case).join("sft.toml")).unwrap();
    cfg.train.output_dir = std::env::temp_dir().join(format!("edgerl-vision-sft-{case}-{tag}-{}", std::process::id()));
    cfg
}

/// The rows tokenize as TRL's vision collator prepares them: the processor's ids (images
/// expanded) and which tokens carry loss.
#[test]
fn rows_tokenize_as_trl_vision_collator() {
    let gpu = &common::backends().normal[0];
    for case in CASES {
        let cfg = config(case, "tok");
        let t = edgerl::rl::trainer::Trainer::new(gpu, cfg.train.clone()).unwrap();
        let rows = edgerl::data::dataset::read_sft(&cfg.dataset).unwrap();
        let tok = t.tokenizer.as_ref().unwrap();
        let got = sft::batch_rows_with(&cfg, tok, t.vision.as_ref(), t.model.cfg.image_token_id, &rows, t.model.cfg.vocab_size).unwrap();
        let want = expected(case)["rows"].as_array().unwrap().clone();
        assert_eq!(got.len(), want.len(), "{case}: rows");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let ids: Vec<u32> = w["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            let trained: Vec<bool> = w["trained"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
            assert_eq!(g.len(), 1);
            assert_eq!(g[0].ids, ids, "{case} row {i}: ids");
            assert_eq!(g[0].trained, trained, "{case} row {i}: trained tokens");
            assert!(g[0].images.is_some(), "{case} row {i}: images");
        }
    }
}

/// The runs end at TRL's adapters with TRL's losses, on each backend, with real limits and
/// with the 64 KiB limit.
#[test]
fn steps_match_trl_sft_trainer() {
    let mut bad = Vec::new();
    for (gi, gpu) in common::model_gpus().enumerate() {
        let tag = format!("{}-{gi}", gpu.adapter.backend);
        for case in CASES {
            let want = expected(case)["steps"].as_array().unwrap().clone();
            let mut got = Vec::new();
            let adapter = sft::sft(gpu, config(case, &tag), true, |m| got.push(m.clone())).unwrap();
            let e = update_error(&adapter, &dir().join(case).join("expected"));
            eprintln!("{case} on {tag} ({} bindings): update off by {e:.2e} relative", gpu.max_binding);
            if e.is_nan() || e >= 1e-4 {
                bad.push(format!("{case} on {tag}: adapter off by {e:.2e} relative"));
            }
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let (gl, wl) = (g["loss"].as_f64().unwrap(), w["loss"].as_f64().unwrap());
                eprintln!("  step {}: loss {gl} vs {wl} ({:.2e})", i + 1, (gl - wl).abs());
                if (gl - wl).abs() > 1e-5 * wl.abs().max(1.0) {
                    bad.push(format!("{case} on {tag} step {}: loss {gl}, want {wl}", i + 1));
                }
                assert_eq!(g["trained_tokens"], w["trained_tokens"], "{case} step {}", i + 1);
            }
            let _ = std::fs::remove_dir_all(adapter.parent().unwrap());
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

/// A run of one step resumed to the full run ends at the uninterrupted run's adapter, bit for bit
/// (the images' features are recomputed from the files).
#[test]
fn resume_continues_a_vision_run() {
    let gpu = &common::backends().normal[0];
    let whole = sft::sft(gpu, config("messages", "whole"), true, |_| {}).unwrap();
    let mut cfg = config("messages", "resumed");
    cfg.train.save_steps = 1;
    let (full, out) = (cfg.train.max_steps, cfg.train.output_dir.clone());
    cfg.train.max_steps = 1;
    sft::sft(gpu, cfg.clone(), true, |_| {}).unwrap();
    cfg.train.max_steps = full;
    let mut steps = Vec::new();
    // The first run's end (step 1) extended to max_steps: the constant schedule continues.
    let resumed = sft::sft_with(gpu, cfg, edgerl::rl::run::Start::Resume, |m| steps.push(m.clone())).unwrap();
    assert_eq!(steps.len(), full - 1);
    assert_eq!(tensors(&resumed.join("adapter_model.safetensors")), tensors(&whole.join("adapter_model.safetensors")));
    let _ = std::fs::remove_dir_all(out);
}

/// A text model given image rows: an error naming the row; `max_length` that cuts image
/// tokens: an error; packing: refused.
#[test]
fn bad_vision_input_is_refused() {
    let gpu = &common::backends().normal[0];
    let mut cfg = config("messages", "text-model");
    cfg.train.model = common::fixtures().join("models/llama_f32");
    cfg.train.init_adapter = None;
    let e = sft::sft(gpu, cfg, true, |_| {}).unwrap_err().to_string();
    assert!(e.contains("row 1") && e.contains("vision"), "{e}");
    let mut cfg = config("messages", "short");
    cfg.max_length = Some(8);
    let e = sft::sft(gpu, cfg, true, |_| {}).unwrap_err().to_string();
    assert!(e.contains("row 1") && e.contains("max_length"), "{e}");
    let mut cfg = config("messages", "packing");
    cfg.packing = Some(sft::Strategy::Bfd);
    let e = sft::sft(gpu, cfg, true, |_| {}).unwrap_err().to_string();
    assert!(e.contains("packing"), "{e}");
}

/// `edgerl demo --vision --warm-start 1` on the tiny fixture: one SFT step on 8 screenshots
/// answered correctly (sft.jsonl's vision rows), held-out accuracy after it, then GRPO from the
/// SFT adapter.
#[test]
fn vision_demo_warm_start_runs_sft_on_screenshots() {
    let model = common::fixtures().join("vision_e2e/model");
    let out = std::env::temp_dir().join(format!("edgerl-demo-vision-warm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (code, stdout, stderr) = common::edgerl(&[
        "demo", "--vision", "--model", model.to_str().unwrap(), "--warm-start", "1", "--steps", "1",
        "--eval-screens", "2", "--output-dir", out.to_str().unwrap(), "--json",
    ]);
    assert_eq!(code, 0, "edgerl demo --vision --warm-start failed: {stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    for k in ["accuracy_before", "accuracy_after_sft", "accuracy_after"] {
        let v = report[k].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
    assert_eq!(report["warm_start"], 1);
    let lines = |f: &str| std::fs::read_to_string(out.join(f)).unwrap().lines().count();
    assert_eq!(lines("sft.jsonl"), 8);
    assert_eq!(lines("sft/metrics.jsonl"), 1);
    let step: Value = serde_json::from_str(std::fs::read_to_string(out.join("sft/metrics.jsonl")).unwrap().trim()).unwrap();
    assert!(step["loss"].as_f64().unwrap().is_finite() && step["trained_tokens"].as_u64().unwrap() > 0, "{step}");
    let run = std::fs::read_to_string(out.join("run.toml")).unwrap();
    assert!(run.contains("init_adapter"), "{run}");
    let sft = tensors(&out.join("sft/adapter/adapter_model.safetensors"));
    let grpo = tensors(&out.join("adapter/adapter_model.safetensors"));
    assert_eq!(sft.iter().map(|t| &t.0).collect::<Vec<_>>(), grpo.iter().map(|t| &t.0).collect::<Vec<_>>());
    assert!(sft.iter().all(|(n, _)| !n.contains("vision_model")));
    std::fs::remove_dir_all(&out).unwrap();
}
