//! GUI-G1's options and the data order, end to end on the tiny online example: a completion
//! ended by a `stop` string is not clipped, and a shuffled dataset order survives `--resume`.

mod common;

use std::path::{Path, PathBuf};

use edgerl::rl::TrainConfig;
use edgerl::rl::run::{RowOrder, Start};
use serde_json::Value;

fn example(tag: &str, extra: &str) -> TrainConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiny-grpo-online");
    let text = std::fs::read_to_string(dir.join("run.toml")).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !extra.lines().any(|e| e.split('=').next() == l.split('=').next() && l.contains('=')))
        .map(|l| format!("{l}\n"))
        .collect();
    // `extra`'s top-level keys go before the first table.
    let (head, tables) = text.split_at(text.find("\n[").unwrap() + 1);
    let mut cfg = TrainConfig::from_toml(&format!("{head}{extra}\n{tables}")).unwrap();
    cfg.model = dir.join(&cfg.model);
    cfg.dataset = cfg.dataset.as_ref().map(|d| dir.join(d));
    cfg.output_dir = out_dir(tag);
    cfg
}

fn out_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgerl-gui-g1-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// With `stop = ["e"]`, every completion whose text holds an "e" ended on it: finished, so
/// neither clipped nor masked (mask_truncated_completions), whatever its last token is.
#[test]
fn stop_string_endings_are_not_clipped() {
    let cfg = example("stop", "stop = [\"e\"]\nmask_truncated_completions = true\nmax_steps = 2");
    let gpu = &common::backends().normal[0];
    let mut steps = Vec::new();
    edgerl::rl::trainer::train(gpu, cfg.clone(), |m| steps.push(m.clone())).unwrap();
    let log = lines(&cfg.output_dir.join("completions.jsonl"));
    let per = cfg.prompts_per_step * cfg.num_generations;
    let mut with_e_total = 0;
    for (s, m) in steps.iter().enumerate() {
        let texts: Vec<&str> = log[s * per..(s + 1) * per].iter().map(|l| l["completion"].as_str().unwrap()).collect();
        let with_e = texts.iter().filter(|t| t.contains('e')).count();
        with_e_total += with_e;
        let clipped = m["completions/clipped_ratio"].as_f64().unwrap() * per as f64;
        assert!(clipped.round() as usize <= per - with_e, "step {s}: {clipped} clipped, {with_e} of {per} stopped on \"e\"");
    }
    assert!(with_e_total > 0, "no completion hit the stop string: the test shows nothing");
}

/// `shuffle_dataset = true`: rows follow the (seed, epoch) permutation, and a run stopped at a
/// checkpoint and resumed draws the same rows and ends with the same adapter.
#[test]
fn shuffled_order_survives_resume() {
    let extra = "shuffle_dataset = true\nsave_steps = 1\nmax_steps = 4";
    let gpu = &common::backends().normal[0];
    let full = example("shuf-full", extra);
    edgerl::rl::trainer::train(gpu, full.clone(), |_| {}).unwrap();
    // The prompts logged follow RowOrder (3 rows, 2 prompts a step, 4 steps: 8 draws).
    let rows: Vec<Value> = std::fs::read_to_string(full.dataset.as_ref().unwrap())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let log = lines(&full.output_dir.join("completions.jsonl"));
    let mut order = RowOrder::new(full.seed, true, rows.len());
    let want: Vec<usize> = (0..8).map(|k| order.index(k)).collect();
    assert_ne!(want, (0..8).map(|k| k % 3).collect::<Vec<_>>(), "seed 1 happens to keep file order");
    for (k, &r) in want.iter().enumerate() {
        let logged = log[k * full.num_generations]["prompt"].as_str().unwrap();
        let p = &rows[r]["prompt"];
        let text = p.as_str().or_else(|| p[0]["content"].as_str()).unwrap();
        assert!(logged.contains(text.trim()), "draw {k}: expected row {r}, logged {logged:?}");
    }
    // Stop after 2 steps, then resume to 4.
    let mut cut = example("shuf-cut", "shuffle_dataset = true\nsave_steps = 1\nmax_steps = 2");
    edgerl::rl::trainer::train(gpu, cut.clone(), |_| {}).unwrap();
    cut.max_steps = 4;
    edgerl::rl::trainer::train_with(gpu, cut.clone(), Start::Resume, |_| {}).unwrap();
    let bytes = |c: &TrainConfig| std::fs::read(c.output_dir.join("adapter/adapter_model.safetensors")).unwrap();
    assert_eq!(bytes(&full), bytes(&cut));
    assert_eq!(
        std::fs::read_to_string(full.output_dir.join("completions.jsonl")).unwrap(),
        std::fs::read_to_string(cut.output_dir.join("completions.jsonl")).unwrap()
    );
}
