//! A tiny offline `edgerl train` run in a scratch directory (the qwen3_f16 fixture on the
//! tiny-grpo rollouts: no sampling, so a process starts and steps in about a second), for the
//! fault-injection and crash-resume tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A fresh scratch directory with `run.toml` (max_steps `steps`, a checkpoint every step, then
/// `extra` TOML lines) and the rollouts.
pub fn case_dir(tag: &str, steps: usize, extra: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("examples/tiny-grpo");
    let dst = std::env::temp_dir().join(format!("edgerl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::copy(src.join("rollouts.jsonl"), dst.join("rollouts.jsonl")).unwrap();
    let model = root.join("tests/fixtures/models/qwen3_f16");
    let toml = format!(
        "model = {:?}\noutput_dir = \"out\"\nrollouts = \"rollouts.jsonl\"\noptimizer = \"adamw\"\n\
         learning_rate = 5e-3\nlr_scheduler_type = \"constant\"\nloss_type = \"dapo\"\n\
         max_completion_length = 32\nprompts_per_step = 2\nseed = 0\nmax_steps = {steps}\n\
         save_steps = 1\n{extra}\n[lora]\nr = 4\nalpha = 8\n",
        model.to_str().unwrap()
    );
    std::fs::write(dst.join("run.toml"), toml).unwrap();
    dst
}

/// `edgerl train --json` on `dir`'s run.toml, stdout discarded, stderr piped.
pub fn edgerl(dir: &Path, resume: bool) -> Command {
    edgerl_with(dir, if resume { &["--resume"] } else { &[] })
}

/// `edgerl` with these extra flags (`--resume`, `--overwrite`).
pub fn edgerl_with(dir: &Path, flags: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgerl"));
    c.args(["train", "--config", dir.join("run.toml").to_str().unwrap(), "--json"])
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("EDGERL_FAULT_NONFINITE_STEPS")
        .env_remove("EDGERL_FAULT_ABORT_IN_CHECKPOINT")
        .env_remove("EDGERL_DEVICE_MEMORY_LIMIT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .args(flags);
    c
}

/// Runs `cmd`, expects it to fail, and returns its stderr.
pub fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "succeeded: {stderr}");
    stderr
}

/// Replaces the `key = …` line of `dir`'s run.toml (appends it when missing).
pub fn set_key(dir: &Path, key: &str, value: &str) {
    let path = dir.join("run.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let prefix = format!("{key} = ");
    let mut found = false;
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                found = true;
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    if !found {
        // Top-level keys go before the [lora] table.
        let at = lines.iter().position(|l| l.starts_with('[')).unwrap_or(lines.len());
        lines.insert(at, format!("{key} = {value}"));
    }
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

/// Flips one bit of `path` at `offset` (from the end when negative).
pub fn flip_bit(path: &Path, offset: i64) {
    let mut b = read(path);
    let i = if offset < 0 { (b.len() as i64 + offset) as usize } else { offset as usize };
    b[i] ^= 0x10;
    std::fs::write(path, b).unwrap();
}

/// Runs `cmd` to the end and returns its stderr; panics unless it succeeded.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn adapter_bytes(dir: &Path) -> Vec<u8> {
    read(&dir.join("out/adapter/adapter_model.safetensors"))
}

/// metrics.jsonl, one JSON object a line.
pub fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("out/metrics.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The "step" of each metrics line.
pub fn steps(dir: &Path) -> Vec<u64> {
    metrics(dir).iter().map(|m| m["step"].as_u64().unwrap()).collect()
}

/// Every f32 tensor of a safetensors file, by name.
pub fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let bytes = read(path);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| (name, bytemuck::pod_collect_to_vec(t.data())))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
