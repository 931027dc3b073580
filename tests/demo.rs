//! `edgerl demo` end to end on the real SmolLM2 GGUF (one short step, two held-out screens):
//! it writes what the README says, and its "after" accuracy is what `edgerl eval` gives for the
//! adapter it saved, on the same held-out screens. `--warm-start` runs SFT on generated answers
//! first and GRPO from its adapter.

mod common;

use serde_json::Value;

#[test]
fn demo_runs_end_to_end_and_eval_agrees() {
    let Some(gguf) = common::smollm2_gguf() else {
        return;
    };
    let out = std::env::temp_dir().join(format!("edgerl-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (code, stdout, stderr) = common::edgerl(&[
        "demo",
        "--model",
        gguf.to_str().unwrap(),
        "--steps",
        "1",
        "--eval-screens",
        "2",
        "--output-dir",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "edgerl demo failed: {stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON report");
    for k in ["accuracy_before", "accuracy_after", "reward_before", "reward_after"] {
        let v = report[k].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
    assert_eq!(report["steps"], 1);
    assert_eq!(report["eval_screens"], 2);
    assert_eq!(report["warm_start"], 0);
    assert!(report["accuracy_after_sft"].is_null() && report["sft_adapter"].is_null());
    assert!(!out.join("sft.toml").exists() && !out.join("sft").exists());
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("demo.json")).unwrap()).unwrap();
    assert_eq!(on_disk, report, "demo.json holds the printed report");
    let lines = |f: &str| std::fs::read_to_string(out.join(f)).unwrap().lines().count();
    assert_eq!(lines("train.jsonl"), 2, "one screen per prompt of the step");
    assert_eq!(lines("heldout.jsonl"), 2);
    assert_eq!(lines("heldout-before.jsonl"), 2);
    assert_eq!(lines("heldout-after.jsonl"), 2);
    for f in ["run.toml", "metrics.csv", "reward.svg", "adapter/adapter_config.json", "adapter/adapter_model.safetensors"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    // The ordinary commands reproduce the demo's "after" number from what it wrote.
    let (code, stdout, stderr) = common::edgerl(&[
        "eval",
        "--config",
        out.join("run.toml").to_str().unwrap(),
        "--adapter",
        out.join("adapter").to_str().unwrap(),
        "--dataset",
        out.join("heldout.jsonl").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "edgerl eval failed: {stderr}");
    let eval: Value = serde_json::from_str(stdout.trim()).expect("eval JSON");
    assert_eq!(eval["accuracy"], report["accuracy_after"], "{eval}");
    assert_eq!(eval["mean_reward"], report["reward_after"], "{eval}");
    let _ = std::fs::remove_dir_all(&out);
}

/// `edgerl demo --warm-start 1`: one SFT step on 8 generated screens answered correctly, the
/// held-out accuracy after it, then GRPO from the SFT adapter.
#[test]
fn demo_warm_start_runs_sft_then_grpo_from_its_adapter() {
    let Some(gguf) = common::smollm2_gguf() else {
        return;
    };
    let out = std::env::temp_dir().join(format!("edgerl-demo-warm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (code, stdout, stderr) = common::edgerl(&[
        "demo",
        "--model",
        gguf.to_str().unwrap(),
        "--warm-start",
        "1",
        "--steps",
        "1",
        "--eval-screens",
        "2",
        "--output-dir",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "edgerl demo --warm-start failed: {stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON report");
    for k in [
        "accuracy_before",
        "accuracy_after_sft",
        "accuracy_after",
        "reward_before",
        "reward_after_sft",
        "reward_after",
    ] {
        let v = report[k].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
    assert_eq!(report["warm_start"], 1);
    assert!(report["sft_seconds"].as_f64().unwrap() > 0.0);
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("demo.json")).unwrap()).unwrap();
    assert_eq!(on_disk, report, "demo.json holds the printed report");
    let lines = |f: &str| std::fs::read_to_string(out.join(f)).unwrap().lines().count();
    assert_eq!(lines("sft.jsonl"), 8, "one SFT step of 8 screens");
    assert_eq!(lines("sft/metrics.jsonl"), 1);
    assert_eq!(lines("heldout-after-sft.jsonl"), 2);
    assert_eq!(lines("heldout-after.jsonl"), 2);
    for f in ["sft.toml", "sft/adapter/adapter_model.safetensors", "adapter/adapter_model.safetensors"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let sft_step: Value = serde_json::from_str(
        std::fs::read_to_string(out.join("sft/metrics.jsonl")).unwrap().trim(),
    )
    .unwrap();
    assert!(sft_step["loss"].as_f64().unwrap().is_finite(), "{sft_step}");
    // The GRPO config is the ordinary kind and starts from the SFT adapter.
    let sft_adapter = out.canonicalize().unwrap().join("sft/adapter");
    let cfg = edgerl::rl::TrainConfig::from_file(&out.join("run.toml")).unwrap();
    assert_eq!(cfg.init_adapter.as_deref(), Some(sft_adapter.as_path()));
    assert_eq!(report["sft_adapter"], sft_adapter.to_str().unwrap());
    let sft = edgerl::rl::sft::SftConfig::from_file(&out.join("sft.toml")).unwrap();
    assert_eq!(sft.train.max_steps, 1);

    // Tokenized as the SFT engine does, each example is the GRPO prompt (assistant turn started
    // with "click(") followed by the trained answer: same tokens, same context.
    let (_, tok) = edgerl::model::open_meta(&gguf).unwrap();
    let rows = edgerl::data::dataset::read_sft(&sft.dataset).unwrap();
    for row in &rows {
        let edgerl::data::dataset::SftRow::ChatPair { prompt, completion } = row else {
            panic!("conversational prompt/completion rows expected: {row:?}")
        };
        let mut grpo = prompt.clone();
        grpo.push(edgerl::data::Message {
            role: "assistant".into(),
            content: "click(".into(),
        });
        let g = tok.messages_ids(&grpo).unwrap();
        let ex = edgerl::rl::sft::tokenize(&sft, &tok, row).unwrap().unwrap();
        assert_eq!(&ex.ids[..g.len()], &g[..], "the SFT example starts with the GRPO prompt");
        assert!(ex.trained[g.len()..].iter().all(|&t| t), "the answer is trained");
        let answer = completion[0].content.strip_prefix("click(").unwrap();
        let text = tok.decode(&ex.ids[g.len()..]).unwrap();
        assert!(text.starts_with(answer), "{text:?} after the prompt, want {answer:?}");
        let n = (g.len()..=ex.ids.len())
            .find(|&e| tok.decode(&ex.ids[g.len()..e]).unwrap().starts_with(answer))
            .unwrap()
            - g.len();
        assert!(
            n <= cfg.max_completion_length,
            "{answer:?} takes {n} tokens, more than GRPO samples"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// `--data-only` writes the screens and configs without a model (the benchmarks use it);
/// `--vision` draws them as PNG screenshots with TRL vision rows.
#[test]
fn data_only_writes_screens_without_a_model() {
    let out = std::env::temp_dir().join(format!("edgerl-demo-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let dir = out.to_str().unwrap();
    let (code, stdout, stderr) = common::edgerl(&[
        "demo", "--data-only", "--model", "/no/such/model.gguf", "--steps", "2", "--eval-screens", "3",
        "--output-dir", dir, "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let d: Value = serde_json::from_str(stdout.trim()).unwrap();
    let run = std::fs::read_to_string(d["run_toml"].as_str().unwrap()).unwrap();
    assert!(run.contains("model = \"/no/such/model.gguf\""), "{run}");
    let rows = |k: &str| std::fs::read_to_string(d[k].as_str().unwrap()).unwrap().lines().count();
    assert_eq!((rows("train"), rows("heldout")), (4, 3));

    let vision = out.join("vision");
    let (code, stdout, stderr) = common::edgerl(&[
        "demo", "--data-only", "--vision", "--steps", "1", "--eval-screens", "1",
        "--output-dir", vision.to_str().unwrap(), "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let d: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(d["images"], 3);
    let row: Value = serde_json::from_str(
        std::fs::read_to_string(d["heldout"].as_str().unwrap()).unwrap().lines().next().unwrap(),
    )
    .unwrap();
    let png = std::fs::read(vision.join(row["images"][0].as_str().unwrap())).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    let (code, _, stderr) = common::edgerl(&["demo", "--vision", "--output-dir", dir]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--vision needs --model"), "{stderr}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// `edgerl demo --vision` end to end on the tiny SmolVLM-shaped fixture: screenshots, held-out
/// accuracy before and after, one GRPO step, all with images; `edgerl eval` on the adapter it
/// saved gives its "after" numbers.
#[test]
fn vision_demo_runs_on_a_vision_language_model() {
    let model = common::fixtures().join("vision_e2e/model");
    let out = std::env::temp_dir().join(format!("edgerl-demo-vision-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (code, stdout, stderr) = common::edgerl(&[
        "demo", "--vision", "--model", model.to_str().unwrap(), "--steps", "1", "--eval-screens", "2",
        "--output-dir", out.to_str().unwrap(), "--json",
    ]);
    assert_eq!(code, 0, "edgerl demo --vision failed: {stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    for k in ["accuracy_before", "accuracy_after", "reward_before", "reward_after"] {
        let v = report[k].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
    let row: Value = serde_json::from_str(
        std::fs::read_to_string(out.join("train.jsonl")).unwrap().lines().next().unwrap(),
    )
    .unwrap();
    assert!(out.join(row["images"][0].as_str().unwrap()).is_file());
    let (code, stdout, stderr) = common::edgerl(&[
        "eval", "--config", out.join("run.toml").to_str().unwrap(), "--adapter",
        report["adapter"].as_str().unwrap(), "--dataset", out.join("heldout.jsonl").to_str().unwrap(), "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let eval: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(eval["accuracy"], report["accuracy_after"]);
    assert_eq!(eval["mean_reward"], report["reward_after"]);
    std::fs::remove_dir_all(&out).unwrap();
}
