//! Checkpoints and `--resume`: a run killed with SIGKILL mid-way and resumed ends with the same
//! adapter bytes as an uninterrupted run (same seed, same device).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn case_dir(tag: &str, extra: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiny-grpo-online");
    let dst = std::env::temp_dir().join(format!("edgerl-resume-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::copy(src.join("prompts.jsonl"), dst.join("prompts.jsonl")).unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/qwen3_f16");
    let toml: String = std::fs::read_to_string(src.join("run.toml"))
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("model = ") {
                format!("model = {:?}", model.to_str().unwrap())
            } else if l.starts_with("output_dir = ") {
                "output_dir = \"out\"".to_string()
            } else if l.starts_with("max_steps = ") {
                format!("max_steps = 4\nsave_steps = 1\n{extra}")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(dst.join("run.toml"), toml).unwrap();
    dst
}

fn edgerl(dir: &Path, resume: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgerl"));
    c.args(["train", "--config", dir.join("run.toml").to_str().unwrap(), "--json"])
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if resume {
        c.arg("--resume");
    }
    c
}

fn adapter_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("out/adapter/adapter_model.safetensors")).unwrap()
}

/// Runs uninterrupted, then again killed once checkpoint `kill_after` exists, resumed.
fn killed_and_resumed_equals_uninterrupted(extra: &str, kill_after: usize, tag: &str) {
    let full = case_dir(&format!("{tag}-full"), extra);
    let out = edgerl(&full, false).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let cut = case_dir(&format!("{tag}-cut"), extra);
    let mut child = edgerl(&cut, false).spawn().unwrap();
    let marker = cut.join(format!("out/checkpoint-{kill_after}"));
    let t0 = Instant::now();
    while !marker.exists() {
        assert!(t0.elapsed() < Duration::from_secs(300), "no checkpoint appeared");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("run ended ({status}) before it could be killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(!cut.join("out/adapter").exists(), "killed before the end");
    let out = edgerl(&cut, true).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(adapter_bytes(&full), adapter_bytes(&cut), "{tag}: resumed adapter differs");
    // The logs have one line per step, as an uninterrupted run's do.
    let steps = |d: &Path| {
        let m = std::fs::read_to_string(d.join("out/metrics.jsonl")).unwrap();
        m.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(steps(&cut), (1..=4).collect::<Vec<_>>());
    let lines = |d: &Path| std::fs::read_to_string(d.join("out/completions.jsonl")).unwrap();
    assert_eq!(lines(&full), lines(&cut));
}

#[test]
fn sigkill_then_resume_is_bit_identical() {
    killed_and_resumed_equals_uninterrupted("", 2, "plain");
}

#[test]
fn resume_inside_a_reused_batch_is_bit_identical() {
    // num_iterations = 2: checkpoint 3 falls inside a batch; its old log-probs come back too.
    killed_and_resumed_equals_uninterrupted("num_iterations = 2\nbeta = 0.05\n", 3, "iter");
}

#[test]
fn broken_checkpoints_are_skipped() {
    let dir = case_dir("broken", "");
    let out = edgerl(&dir, false).output().unwrap();
    assert!(out.status.success());
    // Corrupt the newest checkpoint's state; resume must fall back to the one before it.
    std::fs::write(dir.join("out/checkpoint-4/trainer_state.bin"), b"\x07garbage").unwrap();
    std::fs::create_dir_all(dir.join("out/.checkpoint-5.tmp-1")).unwrap();
    let want = adapter_bytes(&dir);
    std::fs::remove_dir_all(dir.join("out/adapter")).unwrap();
    let out = edgerl(&dir, true).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("skipping checkpoint") && stderr.contains("checkpoint-4"), "{stderr}");
    assert!(!dir.join("out/.checkpoint-5.tmp-1").exists(), "leftover temp dir removed");
    assert_eq!(adapter_bytes(&dir), want);
}
