//! Online GRPO: prompts sampled on the device, scored by [[rewards]] rules, trained on.

mod common;

use std::path::{Path, PathBuf};

use edgerl::reward::RewardSet;
use edgerl::rl::TrainConfig;
use serde_json::Value;

fn example() -> TrainConfig {
    TrainConfig::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiny-grpo-online/run.toml")).unwrap()
}

fn run(cfg: TrainConfig, tag: &str) -> (PathBuf, Vec<serde_json::Map<String, Value>>) {
    let mut cfg = cfg;
    cfg.output_dir = std::env::temp_dir().join(format!("edgerl-online-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cfg.output_dir);
    let gpu = &common::backends().normal[0];
    let mut steps = Vec::new();
    edgerl::rl::trainer::train(gpu, cfg.clone(), |m| steps.push(m.clone())).unwrap();
    (cfg.output_dir, steps)
}

#[test]
fn samples_scores_and_trains_reproducibly() {
    let cfg = example();
    let (out, steps) = run(cfg.clone(), "a");
    assert_eq!(steps.len(), cfg.max_steps);
    let rewards = RewardSet::new(&cfg.rewards, cfg.reward_all_or_nothing).unwrap();
    for m in &steps {
        for name in rewards.names() {
            assert!(m.contains_key(&format!("rewards/{name}/mean")), "{name}: {m:?}");
        }
    }
    // Every sampled completion is logged with the reward the rules give its text.
    let log = std::fs::read_to_string(out.join("completions.jsonl")).unwrap();
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), cfg.max_steps * cfg.prompts_per_step * cfg.num_generations);
    let rows: Vec<Value> = std::fs::read_to_string(cfg.dataset.as_ref().unwrap())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Draw k reads row RowOrder(k): shuffled per epoch by default, as TRL's sampler.
    assert!(cfg.shuffle_dataset);
    let mut order = edgerl::rl::run::RowOrder::new(cfg.seed, cfg.shuffle_dataset, rows.len());
    for (i, l) in lines.iter().enumerate() {
        let r = order.index(i / cfg.num_generations);
        assert_eq!(l["row"], r, "line {i}");
        let row = &rows[r];
        let s = rewards.score(l["completion"].as_str().unwrap(), 0, row.as_object().unwrap()).unwrap();
        assert_eq!(s.total, l["reward"].as_f64().unwrap(), "line {i}");
    }
    // The mean reward of a step is the mean of its logged rewards.
    let per_step = cfg.prompts_per_step * cfg.num_generations;
    let mean0: f64 = lines[..per_step].iter().map(|l| l["reward"].as_f64().unwrap()).sum::<f64>() / per_step as f64;
    assert!((steps[0]["reward"].as_f64().unwrap() - mean0).abs() < 1e-12);
    // Same seed, same device: same completions and the same adapter.
    let (out2, _) = run(cfg.clone(), "b");
    assert_eq!(log, std::fs::read_to_string(out2.join("completions.jsonl")).unwrap());
    let bytes = |d: &Path| std::fs::read(d.join("adapter/adapter_model.safetensors")).unwrap();
    assert_eq!(bytes(&out), bytes(&out2));
    // Another seed samples other completions.
    let mut other = cfg.clone();
    other.seed += 1;
    let (out3, _) = run(other, "c");
    assert_ne!(log, std::fs::read_to_string(out3.join("completions.jsonl")).unwrap());
}

#[test]
fn dataset_problems_are_clear() {
    let dir = std::env::temp_dir().join(format!("edgerl-online-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gpu = &common::backends().normal[0];
    let mut cfg = example();
    cfg.output_dir = dir.join("out");
    let data = dir.join("prompts.jsonl");
    cfg.dataset = Some(data.clone());
    for (text, needles) in [
        ("{\"prompt\": \"hi\", \"target_box\": [1, 2, 3, 4]}\n{\"prompt\": \"no box\"}\n", vec!["prompts.jsonl", "line 2", "target_box"]),
        ("{\"prompt\": 7, \"target_box\": [1, 2, 3, 4]}\n", vec!["prompts.jsonl", "line 1", "prompt"]),
        ("not json\n", vec!["prompts.jsonl", "line 1", "JSON"]),
    ] {
        std::fs::write(&data, text).unwrap();
        let e = edgerl::rl::trainer::train(gpu, cfg.clone(), |_| {}).err().unwrap().to_string();
        for n in needles {
            assert!(e.contains(n), "{e:?} should mention {n:?}");
        }
        assert!(!dir.join("out/adapter").exists());
    }
    // Config-level mistakes are caught when the file is read.
    for (extra, needle) in [
        ("rollouts = \"r.jsonl\"\n", "not both"),
        ("num_generations = 0\n", "num_generations"),
    ] {
        let base = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiny-grpo-online/run.toml")).unwrap();
        let (head, tail) = base.split_at(base.find("[lora]").unwrap());
        let e = TrainConfig::from_toml(&format!("{head}{extra}{tail}")).err().unwrap();
        assert!(e.contains(needle), "{e}");
    }
}

#[test]
fn dynamic_sampling_keeps_only_groups_with_signal() {
    let mut cfg = example();
    cfg.dynamic_sampling = true;
    cfg.max_refill = 4;
    cfg.max_steps = 2;
    let (out, steps) = run(cfg.clone(), "dyn");
    for m in &steps {
        assert_eq!(m["frac_reward_zero_std"].as_f64().unwrap(), 0.0, "{m:?}");
        assert!(m.contains_key("dynamic_sampling/refills"));
    }
    let logged = std::fs::read_to_string(out.join("completions.jsonl")).unwrap().lines().count();
    let refills: u64 = steps.iter().map(|m| m["dynamic_sampling/refills"].as_u64().unwrap()).sum();
    assert!(logged >= cfg.max_steps * cfg.prompts_per_step * cfg.num_generations);
    assert_eq!(refills > 0, logged > cfg.max_steps * cfg.prompts_per_step * cfg.num_generations);

    // Rules that can never separate completions: a clear error, not an endless loop.
    let mut hopeless = example();
    hopeless.dynamic_sampling = true;
    hopeless.max_refill = 1;
    hopeless.rewards.truncate(1); // the format rule alone: random weights never write "click"
    hopeless.output_dir = std::env::temp_dir().join(format!("edgerl-online-hopeless-{}", std::process::id()));
    let gpu = &common::backends().normal[0];
    let e = edgerl::rl::trainer::train(gpu, hopeless, |_| {}).err().unwrap().to_string();
    assert!(e.contains("dynamic sampling") && e.contains("max_refill"), "{e}");
}
