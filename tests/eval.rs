//! `edgerl eval`: the dataset through generation and the training reward rules.

mod common;

use common::edgerl;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use edgerl::lora::{Lora, LoraConfig, Target};
use edgerl::model::LoadedModel;
use edgerl::reward::RewardSet;
use edgerl::rl::TrainConfig;
use edgerl::rl::eval::{EvalOptions, EvalReport, evaluate};
use serde_json::Value;

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiny-grpo-online/run.toml")
}

fn example() -> TrainConfig {
    TrainConfig::from_file(&example_path()).unwrap()
}

fn gpu() -> &'static edgerl::gpu::Gpu {
    &common::backends().normal[0]
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgerl-eval-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn texts(r: &EvalReport) -> Vec<String> {
    r.completions.iter().map(|c| c.completion.clone()).collect()
}

/// Greedy eval of the base model on the example, shared by the tests that compare with it.
fn base_greedy() -> &'static EvalReport {
    static R: OnceLock<EvalReport> = OnceLock::new();
    R.get_or_init(|| evaluate(gpu(), &example(), None, EvalOptions::default()).unwrap())
}

fn dataset_rows(cfg: &TrainConfig) -> Vec<Value> {
    std::fs::read_to_string(cfg.dataset.as_ref().unwrap())
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn greedy_rewards_are_the_rules_on_the_written_completions() {
    let cfg = example();
    let r = base_greedy();
    let rows = dataset_rows(&cfg);
    assert_eq!(
        (r.rows, r.samples, r.completions.len()),
        (rows.len(), 1, rows.len())
    );
    assert_eq!(r.adapter, None);

    let out = scratch("greedy").join("completions.jsonl");
    r.write_completions(&out).unwrap();
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), rows.len());
    let rules = RewardSet::new(&cfg.rewards, cfg.reward_all_or_nothing).unwrap();
    let names = rules.names();
    let mut sum = 0.0;
    let mut rule_sums = vec![0.0; names.len()];
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["row"], i);
        assert!(!l["prompt"].as_str().unwrap().is_empty());
        let c = &r.completions[i];
        let s = rules
            .score(
                l["completion"].as_str().unwrap(),
                c.completion_tokens,
                rows[i].as_object().unwrap(),
            )
            .unwrap();
        assert_eq!(s.total, l["reward"].as_f64().unwrap(), "line {i}");
        for (k, name) in names.iter().enumerate() {
            assert_eq!(
                s.per_rule[k],
                l["rewards"][name].as_f64().unwrap(),
                "line {i} rule {name}"
            );
            rule_sums[k] += s.per_rule[k];
        }
        sum += s.total;
    }
    let n = lines.len() as f64;
    assert!((r.mean_reward - sum / n).abs() < 1e-12);
    for (k, (name, mean)) in r.rule_means.iter().enumerate() {
        assert_eq!(name, &names[k]);
        assert!((mean - rule_sums[k] / n).abs() < 1e-12, "{name}");
    }
    let succ = r
        .completions
        .iter()
        .filter(|c| c.reward >= cfg.success_threshold - 1e-9)
        .count();
    assert_eq!(r.accuracy, succ as f64 / n);
    assert_eq!(
        r.any_success, r.accuracy,
        "one sample per row: pass@1 = any success"
    );
    let j = r.to_json();
    assert_eq!(j["adapter"], Value::Null);
    assert_eq!(j["completions"], rows.len());
}

#[test]
fn greedy_is_deterministic_and_ignores_the_seed() {
    let mut cfg = example();
    cfg.seed += 7;
    let again = evaluate(gpu(), &cfg, None, EvalOptions::default()).unwrap();
    assert_eq!(texts(&again), texts(base_greedy()));
    assert_eq!(again.to_json(), base_greedy().to_json());
}

#[test]
fn sampled_eval_is_reproducible_and_counts_rows_with_a_success() {
    let mut cfg = example();
    // Random weights rarely click: count the `has_e` rule's 0.1 as a success so both numbers move.
    cfg.success_threshold = 0.1;
    let opts = EvalOptions {
        samples: 3,
        temperature: 1.0,
        ..Default::default()
    };
    let a = evaluate(gpu(), &cfg, None, opts.clone()).unwrap();
    let b = evaluate(gpu(), &cfg, None, opts.clone()).unwrap();
    assert_eq!(a.completions.len(), 3 * a.rows);
    assert_eq!(texts(&a), texts(&b));
    assert_eq!(a.to_json(), b.to_json());
    assert!(a.any_success >= a.accuracy, "{:?}", a.to_json());
    let ok = |c: &&edgerl::rl::eval::EvalCompletion| c.reward >= 0.1 - 1e-9;
    assert_eq!(
        a.accuracy,
        a.completions.iter().filter(ok).count() as f64 / a.completions.len() as f64
    );
    let rows_ok = (0..a.rows)
        .filter(|&i| a.completions.iter().filter(ok).any(|c| c.row == i))
        .count();
    assert_eq!(a.any_success, rows_ok as f64 / a.rows as f64);
    for (i, c) in a.completions.iter().enumerate() {
        assert_eq!((c.row, c.sample), (i / 3, i % 3));
    }
    // Another seed draws other samples.
    cfg.seed += 1;
    let c = evaluate(gpu(), &cfg, None, opts).unwrap();
    assert_ne!(texts(&a), texts(&c));
}

#[test]
fn an_adapter_changes_the_completions() {
    let cfg = example();
    let m = LoadedModel::open(gpu(), &cfg.model, None).unwrap();
    let lora_cfg = LoraConfig {
        r: 4,
        alpha: 8.0,
        use_rslora: false,
        targets: Target::ALL.to_vec(),
    };
    let mut rng = common::Rng::new(11);
    let lora = Lora::from_values(gpu(), &m.model.cfg, lora_cfg.clone(), |_, t| {
        let (d_in, d_out) = t.dims(&m.model.cfg);
        Ok((rng.vec(lora_cfg.r * d_in), rng.vec(d_out * lora_cfg.r)))
    })
    .unwrap();
    let dir = scratch("adapter").join("adapter");
    lora.save_peft(gpu(), &dir, "qwen3_f16").unwrap();
    let r = evaluate(gpu(), &cfg, Some(&dir), EvalOptions::default()).unwrap();
    assert_eq!(r.adapter.as_deref(), Some(dir.as_path()));
    assert_eq!(r.to_json()["adapter"], dir.to_str().unwrap());
    assert_ne!(texts(&r), texts(base_greedy()));
    // Same prompts either way.
    let prompts = |r: &EvalReport| {
        r.completions
            .iter()
            .map(|c| c.prompt.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(prompts(&r), prompts(base_greedy()));
}

fn expect_one_line_error(args: &[&str], needles: &[&str]) {
    let (code, stdout, stderr) = edgerl(args);
    assert_ne!(code, 0, "should fail; stdout {stdout}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one line, got: {stderr}");
    for n in needles {
        assert!(
            lines[0].contains(n),
            "error {:?} should mention {n:?}",
            lines[0]
        );
    }
}

#[test]
fn cli_json_and_errors() {
    let config = example_path();
    let config = config.to_str().unwrap();
    let dir = scratch("cli");
    let out = dir.join("completions.jsonl");
    let (code, stdout, stderr) = edgerl(&[
        "eval",
        "--config",
        config,
        "--json",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let j: Value = serde_json::from_str(stdout.trim()).unwrap();
    let rows = dataset_rows(&example()).len();
    assert_eq!(j["rows"], rows);
    assert_eq!(j["completions"], rows);
    assert_eq!(j["adapter"], Value::Null);
    for k in ["mean_reward", "accuracy", "any_success"] {
        assert!(
            j[k].as_f64().is_some_and(|x| (0.0..=1.5).contains(&x)),
            "{k}: {j}"
        );
    }
    let rules: Vec<&str> = j["rewards"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    for name in ["format", "hit", "has_e"] {
        assert!(rules.contains(&name), "{j}");
    }
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), rows);
    let mean = lines
        .iter()
        .map(|l| l["reward"].as_f64().unwrap())
        .sum::<f64>()
        / rows as f64;
    assert!((j["mean_reward"].as_f64().unwrap() - mean).abs() < 1e-12);

    // A missing dataset file, a row without the rule's target column, K > 1 at temperature 0.
    let missing = dir.join("nope.jsonl");
    expect_one_line_error(
        &[
            "eval",
            "--config",
            config,
            "--dataset",
            missing.to_str().unwrap(),
        ],
        &["nope.jsonl"],
    );
    let bad = dir.join("no_box.jsonl");
    std::fs::write(
        &bad,
        "{\"prompt\": \"hi\", \"target_box\": [1, 2, 3, 4]}\n{\"prompt\": \"no box\"}\n",
    )
    .unwrap();
    expect_one_line_error(
        &[
            "eval",
            "--config",
            config,
            "--dataset",
            bad.to_str().unwrap(),
        ],
        &["no_box.jsonl", "line 2", "target_box"],
    );
    // A target that doesn't parse is found before any generation.
    std::fs::write(&bad, "{\"prompt\": \"hi\", \"target_box\": \"abc\"}\n").unwrap();
    expect_one_line_error(
        &[
            "eval",
            "--config",
            config,
            "--dataset",
            bad.to_str().unwrap(),
        ],
        &["no_box.jsonl", "line 1", "target_box", "abc"],
    );
    expect_one_line_error(
        &["eval", "--config", config, "--samples", "3"],
        &["--samples 3", "--temperature"],
    );
}
