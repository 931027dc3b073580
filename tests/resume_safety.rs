//! What `--resume` and a fresh start do with what `output_dir` holds: a different run is never
//! continued, a run is never silently mixed with or replaced by another, nothing to resume is
//! an error, damaged checkpoint files are noticed (each file, one bit), a checkpoint caught
//! mid-replacement is recovered, and a finished checkpoint is never rewritten.

mod offline_case;

use std::path::Path;

use offline_case::{adapter_bytes, case_dir, edgerl, edgerl_with, flip_bit, metrics, run_err, run_ok, set_key, steps};

fn out(dir: &Path) -> std::path::PathBuf {
    dir.join("out")
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn a_fresh_run_into_a_used_output_dir_is_refused_and_overwrite_replaces_it() {
    let dir = case_dir("safety-fresh", 2, "");
    run_ok(&mut edgerl(&dir, false));
    let before = adapter_bytes(&dir);
    std::fs::write(out(&dir).join("notes.txt"), "mine").unwrap();
    let e = run_err(&mut edgerl(&dir, false));
    assert!(e.contains("already holds a run") && e.contains("--resume") && e.contains("--overwrite"), "{e}");
    assert_eq!(adapter_bytes(&dir), before, "the refused run changed the adapter");
    assert_eq!(steps(&dir), vec![1, 2]);

    // --overwrite: a 1-step run replaces the 2-step one; the user's own file stays.
    set_key(&dir, "max_steps", "1");
    run_ok(&mut edgerl_with(&dir, &["--overwrite"]));
    assert_eq!(steps(&dir), vec![1]);
    assert!(!out(&dir).join("checkpoint-2").exists(), "the old run's checkpoint-2 survived --overwrite");
    assert_eq!(std::fs::read_to_string(out(&dir).join("notes.txt")).unwrap(), "mine");
    let e = run_err(&mut edgerl_with(&dir, &["--overwrite", "--resume"]));
    assert!(e.contains("cannot be used with"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_with_nothing_to_resume_is_an_error() {
    let dir = case_dir("safety-nothing", 2, "");
    let e = run_err(&mut edgerl(&dir, true));
    assert!(e.contains("no checkpoint to resume"), "{e}");
    assert!(!out(&dir).join("metrics.jsonl").exists(), "a failed resume started a run");
    // Only a half-written checkpoint: still nothing to resume, and it is cleared.
    std::fs::create_dir_all(out(&dir).join(".checkpoint-1.tmp-1-0")).unwrap();
    let e = run_err(&mut edgerl(&dir, true));
    assert!(e.contains("no checkpoint to resume"), "{e}");
    assert!(names(&out(&dir)).is_empty(), "{:?}", names(&out(&dir)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_refuses_a_different_run_and_names_the_difference() {
    let dir = case_dir("safety-other", 2, "");
    run_ok(&mut edgerl(&dir, false));
    let before = adapter_bytes(&dir);
    set_key(&dir, "max_steps", "3"); // allowed: extending a run
    set_key(&dir, "learning_rate", "1e-3");
    let e = run_err(&mut edgerl(&dir, true));
    assert!(e.contains("different run") && e.contains("learning_rate: 0.005 → 0.001"), "{e}");
    set_key(&dir, "learning_rate", "5e-3");
    // Keys added later are part of the run once set (and absent from older checkpoints).
    set_key(&dir, "difficulty_weight", "true");
    let e = run_err(&mut edgerl(&dir, true));
    assert!(e.contains("different run") && e.contains("difficulty_weight"), "{e}");
    set_key(&dir, "difficulty_weight", "false"); // the default: as before, resumable

    // Other data: the same rows in another order.
    let rollouts = dir.join("rollouts.jsonl");
    let text = std::fs::read_to_string(&rollouts).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(0, 1);
    std::fs::write(&rollouts, lines.join("\n") + "\n").unwrap();
    let e = run_err(&mut edgerl(&dir, true));
    assert!(e.contains("rollouts:"), "{e}");
    std::fs::write(&rollouts, &text).unwrap();

    // Another model.
    let other = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/qwen2_bf16");
    let toml = std::fs::read_to_string(dir.join("run.toml")).unwrap();
    let model_line = toml.lines().find(|l| l.starts_with("model = ")).unwrap().to_string();
    set_key(&dir, "model", &format!("{:?}", other.to_str().unwrap()));
    let e = run_err(&mut edgerl(&dir, true));
    assert!(e.contains("model: qwen3_f16") && e.contains("→ qwen2_bf16"), "{e}");
    set_key(&dir, "model", model_line.trim_start_matches("model = "));

    // Nothing above touched the run; the same config resumes it.
    assert_eq!(adapter_bytes(&dir), before);
    run_ok(&mut edgerl(&dir, true));
    assert_eq!(steps(&dir), vec![1, 2, 3]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_finished_checkpoint_is_not_rewritten_on_resume() {
    let dir = case_dir("safety-finished", 2, "");
    run_ok(&mut edgerl(&dir, false));
    let state = out(&dir).join("checkpoint-2/trainer_state.bin");
    let t0 = std::fs::metadata(&state).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    run_ok(&mut edgerl(&dir, true));
    assert_eq!(std::fs::metadata(&state).unwrap().modified().unwrap(), t0, "checkpoint-2 was rewritten");
    assert_eq!(steps(&dir), vec![1, 2]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each file of the newest checkpoint with one bit flipped: the resume names that file,
/// falls back to the checkpoint before, and ends where an uninterrupted run does.
#[test]
fn a_bit_flip_in_any_checkpoint_file_is_caught() {
    let full = case_dir("safety-flip-full", 3, "");
    run_ok(&mut edgerl(&full, false));
    let want = adapter_bytes(&full);
    for (i, file) in ["adapter_model.safetensors", "adapter_config.json", "optimizer.safetensors", "trainer_state.bin"].iter().enumerate() {
        let dir = case_dir(&format!("safety-flip-{i}"), 3, "");
        run_ok(&mut edgerl(&dir, false));
        // A bit in the middle of the data (the header would fail to parse anyway).
        let path = out(&dir).join("checkpoint-3").join(file);
        let len = std::fs::metadata(&path).unwrap().len() as i64;
        flip_bit(&path, len / 2 + 3);
        std::fs::remove_dir_all(out(&dir).join("adapter")).unwrap();
        let stderr = run_ok(&mut edgerl(&dir, true));
        assert!(stderr.contains("skipping checkpoint") && stderr.contains(file), "{file}: {stderr}");
        assert!(adapter_bytes(&dir) == want, "{file}: resumed from checkpoint-2, the adapter differs");
        assert_eq!(metrics(&dir).len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
    // The only checkpoint damaged: an error, not a silent fresh start.
    let dir = case_dir("safety-flip-only", 1, "");
    run_ok(&mut edgerl(&dir, false));
    flip_bit(&out(&dir).join("checkpoint-1/optimizer.safetensors"), -3);
    let e = run_err(&mut edgerl(&dir, true));
    assert!(e.contains("no intact checkpoint") && e.contains("optimizer.safetensors"), "{e}");
    assert_eq!(steps(&dir), vec![1], "the failed resume touched the logs");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&full);
}

/// A crash between moving an old `checkpoint-N` aside and renaming the new one in leaves
/// both copies; the resume puts one back instead of deleting both.
#[test]
fn a_checkpoint_caught_mid_replacement_is_recovered() {
    let full = case_dir("safety-swap-full", 3, "");
    run_ok(&mut edgerl(&full, false));
    let dir = case_dir("safety-swap", 3, "");
    set_key(&dir, "max_steps", "2");
    run_ok(&mut edgerl(&dir, false));
    // As the old code's crash left it: checkpoint-2 moved aside, the new copy half-written.
    let o = out(&dir);
    std::fs::rename(o.join("checkpoint-2"), o.join(".checkpoint-2.tmp-old-4242-0")).unwrap();
    std::fs::create_dir_all(o.join(".checkpoint-2.tmp-4242-1")).unwrap();
    std::fs::copy(o.join(".checkpoint-2.tmp-old-4242-0/adapter_config.json"), o.join(".checkpoint-2.tmp-4242-1/adapter_config.json")).unwrap();
    set_key(&dir, "max_steps", "3");
    let stderr = run_ok(&mut edgerl(&dir, true));
    assert!(stderr.contains("recovered"), "{stderr}");
    assert_eq!(steps(&dir), vec![1, 2, 3], "did not resume from the recovered checkpoint-2");
    assert!(adapter_bytes(&dir) == adapter_bytes(&full), "the recovered run ends elsewhere");
    assert!(!names(&o).iter().any(|n| n.contains(".tmp-")), "{:?}", names(&o));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&full);
}
