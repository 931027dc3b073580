//! `gradient_checkpointing = "auto"`: the memory plan decides whether the backward pass
//! recomputes each layer. Without a budget it keeps every activation when the iteration then
//! peaks within `plan::AUTO_KEEP_ACTIVATIONS_BYTES`; with one, it recomputes only when keeping
//! them would not fit. (The session side is in tests/c_abi.rs.)

mod common;

use common::edgerl;

use edgerl::gpu::DType;
use edgerl::plan::{AUTO_KEEP_ACTIVATIONS_BYTES, PlanInput};
use edgerl::rl::TrainConfig;
use edgerl::rl::config::Checkpointing;

const MIN: &str = "model = \"m\"\noutput_dir = \"o\"\nrollouts = \"r.jsonl\"\n";

#[test]
fn the_key_takes_true_false_or_auto() {
    let gc = |v: &str| TrainConfig::from_toml(&format!("{MIN}gradient_checkpointing = {v}\n")).map(|c| c.gradient_checkpointing);
    assert_eq!(TrainConfig::from_toml(MIN).unwrap().gradient_checkpointing, Checkpointing::Auto, "edgerl's GRPO default: the plan decides");
    assert_eq!(gc("true").unwrap(), Checkpointing::On);
    assert_eq!(gc("false").unwrap(), Checkpointing::Off);
    assert_eq!(gc("\"auto\"").unwrap(), Checkpointing::Auto);
    for bad in ["\"yes\"", "1", "\"Auto\""] {
        let e = gc(bad).unwrap_err();
        assert!(e.contains("gradient_checkpointing") && e.contains("auto"), "{bad}: {e}");
    }
    // SFT has no plan to ask: TRL's SFT default, and "auto" refused.
    let sft = edgerl::rl::sft::SftConfig::from_toml("model = \"m\"\noutput_dir = \"o\"\ndataset = \"d.jsonl\"\n").unwrap();
    assert_eq!(sft.train.gradient_checkpointing, Checkpointing::On);
    let e = edgerl::rl::sft::SftConfig::from_toml("model = \"m\"\noutput_dir = \"o\"\ndataset = \"d.jsonl\"\ngradient_checkpointing = \"auto\"\n")
        .unwrap_err();
    assert!(e.contains("auto") && e.contains("SFT"), "{e}");
}

#[test]
fn the_plan_keeps_activations_when_the_iteration_fits_the_bound() {
    // The demo's workload on SmolLM2-135M (Q4_1): G = 8 × 16 tokens after a 145-token prompt.
    let small = PlanInput::for_preset("smollm2-135m", DType::Q4_1, 145, 8, 16, 16, 128 << 20).unwrap();
    // Qwen2.5-0.5B in f16 with 8 × 256 tokens: well over 1 GiB with every activation kept.
    let large = PlanInput::for_preset("qwen2.5-0.5b", DType::F16, 125, 8, 256, 16, 128 << 20).unwrap();
    for (input, recompute) in [(small, false), (large, true)] {
        let kept = PlanInput { gradient_checkpointing: false, ..input.clone() }.plan().unwrap();
        assert_eq!(kept.peak_bytes > AUTO_KEEP_ACTIVATIONS_BYTES, recompute, "{}", kept.peak_bytes);
        let (got, why) = input.auto_recompute().unwrap();
        assert_eq!(got, recompute, "{why}");
        assert!(why.contains(if recompute { "on (auto" } else { "off (auto" }), "{why}");
    }
}

/// A tiny online run with the given `gradient_checkpointing` value, written next to its data.
fn run_toml(dir: &std::path::Path, name: &str, gc: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("examples/tiny-grpo-online");
    let mut table: toml::Table = std::fs::read_to_string(example.join("run.toml")).unwrap().parse().unwrap();
    table.insert("model".into(), root.join("tests/fixtures/models/qwen3_f16").to_str().unwrap().into());
    table.insert("dataset".into(), example.join("prompts.jsonl").to_str().unwrap().into());
    table.insert("output_dir".into(), dir.join(name).to_str().unwrap().into());
    table.insert("max_steps".into(), toml::Value::Integer(1));
    let mut text = toml::to_string(&table).unwrap();
    text = format!("gradient_checkpointing = {gc}\n{text}");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn edgerl_train_with_auto_keeps_activations_and_trains_as_false_does() {
    let dir = std::env::temp_dir().join(format!("edgerl-gc-auto-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (auto, off) = (run_toml(&dir, "auto", "\"auto\""), run_toml(&dir, "off", "false"));

    let (code, out, err) = edgerl(&["plan", "--config", &auto, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["knobs"]["gradient_checkpointing"], false, "{out}");
    assert!(v["auto"].as_str().unwrap().contains("off (auto"), "{out}");
    let kept_peak = v["peak_bytes"].as_u64().unwrap();

    let (code, out, err) = edgerl(&["train", "--config", &auto]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("gradient checkpointing off (auto"), "{out}");
    let (code, _, err) = edgerl(&["train", "--config", &off]);
    assert_eq!(code, 0, "{err}");
    // auto's plan also keeps sampling's activations (the step skips its forward pass; `false`
    // without a budget runs it): the same adapter up to float rounding.
    let weights = |name: &str| common::adapter_tensors(&dir.join(name).join("adapter"));
    let (a, b) = (weights("auto"), weights("off"));
    assert_eq!(a.len(), b.len());
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        common::assert_close(&format!("auto and false should train the same adapter: {na}"), va, vb, 1e-6, 1e-4);
    }

    // A budget just under the kept-activations peak: sampling's activations are not kept
    // (every group held its own until its pass); under that peak auto recomputes, and says so.
    let budget = (kept_peak - 1).to_string();
    let (code, out, err) = edgerl(&["train", "--config", &auto, "--overwrite", "--memory-budget", &budget]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sampling's activations not kept"), "{out}");
    let (code, out, err) = edgerl(&["plan", "--config", &auto, "--memory-budget", &budget, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let alone = v["plan"]["peak_bytes"].as_u64().or(v["peak_bytes"].as_u64()).unwrap();
    assert!(alone < kept_peak, "{out}");
    let (code, out, err) = edgerl(&["train", "--config", &auto, "--overwrite", "--memory-budget", &(alone - 1).to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("gradient checkpointing on"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_front_ends_settle_auto_from_the_runs_own_rows() {
    // What the demo and the Python package call before training (`edgerl train` prints the
    // same line): the default, "auto", settled by the plan of the run's dataset.
    let dir = std::env::temp_dir().join(format!("edgerl-gc-settle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(run_toml(&dir, "settle", "\"auto\"")).unwrap();
    let default = text.replace("gradient_checkpointing = \"auto\"\n", "");
    let mut cfg = TrainConfig::from_toml(&default).unwrap();
    assert_eq!(cfg.gradient_checkpointing, Checkpointing::Auto);
    let why = edgerl::plan::settle_auto_checkpointing(&mut cfg, 128 << 20).expect("auto is settled");
    assert_eq!(cfg.gradient_checkpointing, Checkpointing::Off, "{why}");
    assert!(why.contains("off (auto"), "{why}");
    // Settled once: a second call leaves it alone.
    assert!(edgerl::plan::settle_auto_checkpointing(&mut cfg, 128 << 20).is_none());

    // Rows given (Python's `dataset`) instead of a file: planned from them.
    let mut given = TrainConfig::from_toml(&default).unwrap();
    let rows = edgerl::data::dataset::read(given.dataset.as_ref().unwrap(), &[]).unwrap();
    given.dataset = None;
    let why = edgerl::plan::settle_auto_checkpointing_rows(&mut given, Some(&rows), 128 << 20).unwrap();
    assert_eq!(given.gradient_checkpointing, Checkpointing::Off, "{why}");

    // A run that can't be planned (its dataset is missing) keeps checkpointing on and says why.
    let mut lost = TrainConfig::from_toml(&default).unwrap();
    lost.dataset = Some(dir.join("missing.jsonl"));
    let why = edgerl::plan::settle_auto_checkpointing(&mut lost, 128 << 20).unwrap();
    assert_eq!(lost.gradient_checkpointing, Checkpointing::On, "{why}");
    assert!(why.contains("could not be planned") && why.contains("missing.jsonl"), "{why}");

    // Explicit values are the user's.
    for (gc, want) in [("true", Checkpointing::On), ("false", Checkpointing::Off)] {
        let mut c = TrainConfig::from_toml(&text.replace("\"auto\"", gc)).unwrap();
        assert!(edgerl::plan::settle_auto_checkpointing(&mut c, 128 << 20).is_none());
        assert_eq!(c.gradient_checkpointing, want);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
