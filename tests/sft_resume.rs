//! `edgerl sft` checkpoints and `--resume`: checkpoints every `save_steps` and at the end, and
//! a resumed run — from the end of a shorter run, or from a checkpoint in the middle — ends
//! with the same adapter, byte for byte, and the same metrics as an uninterrupted one. A
//! resume with other SFT keys is refused, naming them. Likewise with `packing = true`.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn case() -> PathBuf {
    common::fixtures().join("sft/messages_assistant_only_adamw_qwen3").canonicalize().unwrap()
}

/// The fixture's run (AdamW, gradient accumulation 2) with a constant learning rate, so a
/// run extended by `max_steps` follows the same trajectory, into `out`.
fn write_config(dir: &Path, name: &str, out: &Path, extra: &str) -> String {
    let c = case();
    let text = format!(
        "model = {:?}\noutput_dir = {:?}\ndataset = {:?}\ninit_adapter = {:?}\noptimizer = \"adamw\"\n\
         learning_rate = 0.01\nlr_scheduler_type = \"constant\"\nmax_grad_norm = 1.0\nweight_decay = 0.01\n\
         per_device_train_batch_size = 1\ngradient_accumulation_steps = 2\nassistant_only_loss = true\nseed = 0\n{extra}",
        c.join("../../models/qwen3_f16").canonicalize().unwrap(),
        out,
        c.join("data.jsonl"),
        c.join("init_adapter"),
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn sft(args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["sft"];
    a.extend(args);
    common::edgerl(&a)
}

fn adapter(out: &Path) -> Vec<u8> {
    std::fs::read(out.join("adapter/adapter_model.safetensors")).unwrap()
}

/// (step, loss) of each line of metrics.jsonl.
fn losses(out: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap())
        })
        .collect()
}

#[test]
fn a_resumed_sft_run_ends_as_an_uninterrupted_one() {
    let dir = std::env::temp_dir().join(format!("edgerl-sft-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // Uninterrupted: 4 steps, one checkpoint at the end.
    let whole = dir.join("whole");
    let cfg = write_config(&dir, "whole.toml", &whole, "max_steps = 4\n");
    let (code, out, err) = sft(&["--config", &cfg]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(whole.join("checkpoint-4").is_dir() && !whole.join("checkpoint-2").exists());
    let want = losses(&whole);
    assert_eq!(want.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2, 3, 4]);

    // A run of 2 steps, then extended to 4 with --resume.
    let ext = dir.join("extended");
    let (code, _, err) = sft(&["--config", &write_config(&dir, "two.toml", &ext, "max_steps = 2\n")]);
    assert_eq!(code, 0, "{err}");
    assert_ne!(adapter(&ext), adapter(&whole));
    let four = write_config(&dir, "four.toml", &ext, "max_steps = 4\n");
    let (code, _, err) = sft(&["--config", &four]);
    assert!(code != 0 && err.contains("--resume"), "a fresh run into a used output_dir: {err}");
    let (code, _, err) = sft(&["--config", &four, "--resume"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(adapter(&ext), adapter(&whole), "extended run");
    assert_eq!(losses(&ext), want);

    // Checkpoints every step; the last two and the adapter lost (and a line the crash left in
    // the log): resuming from checkpoint-2 rewrites steps 3 and 4 exactly.
    let mid = dir.join("mid");
    let cfg = write_config(&dir, "mid.toml", &mid, "max_steps = 4\nsave_steps = 1\n");
    let (code, _, err) = sft(&["--config", &cfg]);
    assert_eq!(code, 0, "{err}");
    for n in 1..=4 {
        assert!(mid.join(format!("checkpoint-{n}")).is_dir(), "checkpoint-{n}");
    }
    for gone in ["checkpoint-3", "checkpoint-4", "adapter"] {
        std::fs::remove_dir_all(mid.join(gone)).unwrap();
    }
    let (code, _, err) = sft(&["--config", &cfg, "--resume"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(adapter(&mid), adapter(&whole), "resumed from checkpoint-2");
    assert_eq!(losses(&mid), want);

    // Another batch size is another run.
    let other = write_config(&dir, "other.toml", &mid, "max_steps = 4\nsave_steps = 1\nper_device_train_batch_size = 2\n");
    let (code, _, err) = sft(&["--config", &other, "--resume"]);
    assert!(code != 0 && err.contains("per_device_train_batch_size"), "{err}");
    // Nothing to resume from.
    let (code, _, err) = sft(&["--config", &write_config(&dir, "none.toml", &dir.join("none"), "max_steps = 1\n"), "--resume"]);
    assert!(code != 0 && err.contains("no checkpoint"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The packing fixture's run (6 packed rows of 8 rows, 2 a micro-batch: an epoch is 3 steps)
/// into `out`, with `packing` and `extra` keys.
fn write_packed_config(dir: &Path, name: &str, out: &Path, extra: &str) -> String {
    let c = common::fixtures().join("sft/packed_bfd_adamw_llama").canonicalize().unwrap();
    let text = format!(
        "model = {:?}\noutput_dir = {:?}\ndataset = {:?}\ninit_adapter = {:?}\noptimizer = \"adamw\"\n\
         learning_rate = 0.005\nlr_scheduler_type = \"constant\"\nmax_grad_norm = 1.0\n\
         per_device_train_batch_size = 2\nmax_length = 72\nseed = 3\nmax_steps = 5\n{extra}",
        c.join("../../models/llama_f32").canonicalize().unwrap(),
        out,
        c.join("data.jsonl"),
        c.join("init_adapter"),
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// With packing, micro-batches of packed rows are still a function of (seed, step): a run
/// resumed from a checkpoint in the middle (across an epoch boundary) ends as an uninterrupted
/// one, byte for byte; another packing strategy, or none, is another run.
#[test]
fn a_resumed_packed_sft_run_ends_as_an_uninterrupted_one() {
    let dir = std::env::temp_dir().join(format!("edgerl-sft-resume-packed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let whole = dir.join("whole");
    let (code, out, err) = sft(&["--config", &write_packed_config(&dir, "whole.toml", &whole, "packing = true\n")]);
    assert_eq!(code, 0, "{out}\n{err}");
    let want = losses(&whole);
    assert_eq!(want.len(), 5);

    let mid = dir.join("mid");
    let cfg = write_packed_config(&dir, "mid.toml", &mid, "packing = true\nsave_steps = 1\n");
    let (code, _, err) = sft(&["--config", &cfg]);
    assert_eq!(code, 0, "{err}");
    for gone in ["checkpoint-3", "checkpoint-4", "checkpoint-5", "adapter"] {
        std::fs::remove_dir_all(mid.join(gone)).unwrap();
    }
    let (code, _, err) = sft(&["--config", &cfg, "--resume"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(adapter(&mid), adapter(&whole), "resumed from checkpoint-2");
    assert_eq!(losses(&mid), want);

    for (name, extra) in [
        ("split.toml", "packing = true\npacking_strategy = \"bfd_split\"\nsave_steps = 1\n"),
        ("unpacked.toml", "save_steps = 1\n"),
    ] {
        let other = write_packed_config(&dir, name, &mid, extra);
        let (code, _, err) = sft(&["--config", &other, "--resume"]);
        assert!(code != 0 && err.contains("packing_strategy"), "{name}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
