//! The sampler correction across a resume (issue 18): with `num_iterations = 2`, a run that
//! dies right after the first update of a batch resumes that batch from its checkpoint with the
//! sampler's log-probs (trainer state version 4), so the correction still applies and the run
//! ends bit for bit where an uninterrupted one does. A version 3 checkpoint (no sampler
//! log-probs) still resumes, with a warning, uncorrected.
#![cfg(feature = "fault-injection")]

mod common;
mod offline_case;

use std::path::Path;

use offline_case::{adapter_bytes, case_dir, edgerl, metrics, run_ok, set_key};

/// Token-id rollouts for the qwen3_f16 fixture (ids < 400, EOS 402) whose sampler log-probs
/// are the base model's (the fresh adapter's first-use log-probs) shifted by up to ±0.9 a
/// token, so the token ratios exp(lp_old − lp_sampler) spread over both sides of [0.5, 2]:
/// truncation bites.
fn rollouts_with_sampler_logps(dir: &Path) {
    let gpu = &common::backends().normal[0];
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/qwen3_f16");
    let m = edgerl::model::LoadedModel::open(gpu, &model, None).unwrap();
    let base_logps = |prompt: &[u32], completion: &[u32]| -> Vec<f32> {
        let ids: Vec<u32> = prompt.iter().chain(completion).copied().collect();
        let mut cache = m.model.new_cache(gpu, ids.len()).unwrap();
        let hidden = m.model.forward(gpu, &ids, &mut cache, None).unwrap();
        let targets: Vec<Option<u32>> = (0..ids.len()).map(|i| (i + 1 >= prompt.len() && i + 1 < ids.len()).then(|| ids[i + 1])).collect();
        let lp = m.model.target_logprobs(gpu, &hidden, &targets, 1.0).unwrap();
        lp.into_iter().filter(|x| !x.is_nan()).collect()
    };
    let mut text = String::new();
    // Two batches of prompts_per_step = 2 groups, three completions each.
    for g in 0..4usize {
        let prompt: Vec<u32> = (0..5).map(|k| ((37 * g + 11 * k + 5) % 400) as u32).collect();
        let completions: Vec<Vec<u32>> = (0..3usize)
            .map(|c| {
                let len = 3 + (g + 2 * c) % 4;
                let mut ids: Vec<u32> = (0..len).map(|k| ((53 * g + 29 * c + 17 * k + 3) % 400) as u32).collect();
                if c != 1 {
                    *ids.last_mut().unwrap() = 402;
                }
                ids
            })
            .collect();
        let rewards: Vec<f64> = (0..3).map(|c| ((g + c) % 3) as f64 / 2.0).collect();
        let logps: Vec<Vec<f32>> = completions
            .iter()
            .enumerate()
            .map(|(c, ids)| {
                let shift = |k: usize| 0.45 * ((3 * k + c + g) % 5) as f32 - 0.9;
                base_logps(&prompt, ids).iter().enumerate().map(|(k, lp)| (lp - shift(k)).min(0.0)).collect()
            })
            .collect();
        let line = serde_json::json!({ "prompt_ids": prompt, "completion_ids": completions, "rewards": rewards, "sampler_logps": logps });
        text.push_str(&format!("{line}\n"));
    }
    std::fs::write(dir.join("rollouts-is.jsonl"), text).unwrap();
}

fn case(tag: &str) -> std::path::PathBuf {
    let extra = "num_iterations = 2\nbeta = 0.05\nvllm_importance_sampling_correction = true\n\
                 vllm_importance_sampling_mode = \"token_truncate\"\nvllm_importance_sampling_clip_min = 0.5\n\
                 vllm_importance_sampling_clip_max = 2.0";
    let dir = case_dir(tag, 4, extra);
    rollouts_with_sampler_logps(&dir);
    set_key(&dir, "rollouts", "\"rollouts-is.jsonl\"");
    dir
}

/// Metrics without the wall-clock field, for comparing runs.
fn metrics_values(dir: &Path) -> Vec<serde_json::Value> {
    metrics(dir)
        .into_iter()
        .map(|mut m| {
            m.as_object_mut().unwrap().remove("step_time");
            m
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

const STALE: &str = "has no sampler log-probs";

#[test]
fn resumed_inside_a_batch_is_corrected_and_bit_identical() {
    let full = case("is-resume-full");
    run_ok(&mut edgerl(&full, false));
    let m = metrics_values(&full);
    assert_eq!(m.len(), 4);
    // The correction bites on both sides of the clip range, on both updates of each batch.
    for s in &m {
        let (lo, hi) = (s["sampling/importance_sampling_ratio/min"].as_f64().unwrap(), s["sampling/importance_sampling_ratio/max"].as_f64().unwrap());
        assert!(lo == 0.5 && hi == 2.0, "{s}");
    }

    // Killed while writing checkpoint 4: the newest complete one is checkpoint 3, after the
    // first update of the second batch.
    let cut = case("is-resume-cut");
    let mut abort = edgerl(&cut, false);
    abort.env("EDGERL_FAULT_ABORT_IN_CHECKPOINT", "4");
    let out = abort.output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("aborting inside checkpoint 4"));
    assert!(cut.join("out/checkpoint-3").exists() && !cut.join("out/checkpoint-4").exists());
    let state = edgerl::rl::checkpoint::verify(&cut.join("out/checkpoint-3")).unwrap();
    let batch = state.batch.as_ref().expect("checkpoint 3 holds the batch in flight");
    assert!(batch.groups.iter().all(|g| g.sampler_logps.is_some()), "sampler log-probs kept");
    // The same moment, for the older-version run below.
    let old = case("is-resume-v3");
    std::fs::remove_dir_all(old.join("out")).ok();
    copy_dir(&cut.join("out"), &old.join("out"));

    let stderr = run_ok(edgerl(&cut, true).env("RUST_LOG", "warn"));
    assert!(!stderr.contains(STALE), "{stderr}");
    assert_eq!(adapter_bytes(&cut), adapter_bytes(&full), "resumed adapter differs");
    assert_eq!(metrics_values(&cut), m, "resumed metrics differ");

    // Version 3 wrote no sampler log-probs: the same checkpoint in that format still resumes,
    // warns, and runs the rest of the batch uncorrected (so it ends elsewhere).
    let path = old.join("out/checkpoint-3/trainer_state.bin");
    let v4 = edgerl::rl::state::decode_state(&std::fs::read(&path).unwrap(), &path).unwrap();
    std::fs::write(&path, edgerl::rl::state::encode_state_v3(&v4).unwrap()).unwrap();
    let v3 = edgerl::rl::checkpoint::verify(&old.join("out/checkpoint-3")).unwrap();
    assert_eq!(v3.version, 3);
    assert!(v3.batch.unwrap().groups.iter().all(|g| g.sampler_logps.is_none()));
    let stderr = run_ok(edgerl(&old, true).env("RUST_LOG", "warn"));
    assert!(stderr.contains(STALE), "{stderr}");
    let mv3 = metrics_values(&old);
    assert_eq!(mv3[..3], m[..3]);
    assert_ne!(mv3[3]["loss"], m[3]["loss"], "the uncorrected update differs");
    assert_ne!(adapter_bytes(&old), adapter_bytes(&full));

    for d in [full, cut, old] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// examples/tiny-grpo-online in a scratch directory: 4 steps, a checkpoint each, `extra` keys.
fn online_case(tag: &str, extra: &str) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("examples/tiny-grpo-online");
    let dst = std::env::temp_dir().join(format!("edgerl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::copy(src.join("prompts.jsonl"), dst.join("prompts.jsonl")).unwrap();
    let model = root.join("tests/fixtures/models/qwen3_f16");
    let toml: String = std::fs::read_to_string(src.join("run.toml"))
        .unwrap()
        .lines()
        .map(|l| match l {
            l if l.starts_with("model = ") => format!("model = {:?}\n", model.to_str().unwrap()),
            l if l.starts_with("output_dir = ") => "output_dir = \"out\"\n".to_string(),
            l if l.starts_with("max_steps = ") => format!("max_steps = 4\nsave_steps = 1\n{extra}\n"),
            l => format!("{l}\n"),
        })
        .collect();
    std::fs::write(dst.join("run.toml"), toml).unwrap();
    dst
}

/// Online: the sampler's processed log-probs (top_k = 50 renormalises them, so they differ
/// from the trainer's) are recorded at sampling, kept by the checkpoint inside the batch, and
/// the resumed run samples, corrects and logs exactly as the uninterrupted one.
#[test]
fn online_resume_inside_a_batch_is_bit_identical() {
    let extra = "num_iterations = 2\nvllm_importance_sampling_correction = true\nvllm_importance_sampling_mode = \"token_truncate\"\nvllm_importance_sampling_clip_min = 0.9";
    let full = online_case("is-online-full", extra);
    run_ok(&mut edgerl(&full, false));
    let m = metrics_values(&full);
    assert!(m.iter().all(|s| s["sampling/sampling_logp_difference/max"].as_f64().unwrap() > 1e-3), "{m:?}");
    let cut = online_case("is-online-cut", extra);
    let mut abort = edgerl(&cut, false);
    abort.env("EDGERL_FAULT_ABORT_IN_CHECKPOINT", "2");
    assert!(!abort.output().unwrap().status.success());
    let state = edgerl::rl::checkpoint::verify(&cut.join("out/checkpoint-1")).unwrap();
    assert!(state.batch.unwrap().groups.iter().all(|g| g.sampler_logps.is_some()));
    let stderr = run_ok(edgerl(&cut, true).env("RUST_LOG", "warn"));
    assert!(!stderr.contains(STALE), "{stderr}");
    assert_eq!(adapter_bytes(&cut), adapter_bytes(&full), "resumed adapter differs");
    assert_eq!(metrics_values(&cut), m, "resumed metrics differ");
    let lines = |d: &Path| std::fs::read_to_string(d.join("out/completions.jsonl")).unwrap();
    assert_eq!(lines(&cut), lines(&full));
    for d in [full, cut] {
        let _ = std::fs::remove_dir_all(d);
    }
}
