//! `edgerl demo` end to end on the real SmolLM2 GGUF (one short step, two held-out screens):
//! it writes what the README says, and its "after" accuracy is what `edgerl eval` gives for the
//! adapter it saved, on the same held-out screens.

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
