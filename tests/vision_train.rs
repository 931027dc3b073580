//! GRPO with LoRA on screenshots, end to end on the tiny SmolVLM-shaped fixture
//! (tests/fixtures/vision_e2e): `edgerl demo --data-only --vision` draws the screens, `edgerl
//! train` samples with the images and trains on them, and a run killed after a checkpoint and
//! resumed ends with the same adapter bytes. The training pass sees the images: its first-use
//! log-probs equal the scoring pass's with images and differ from those without.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgerl::rl::TrainConfig;
use edgerl::rl::step::NoHooks;
use edgerl::rl::trainer::Trainer;

fn model() -> PathBuf {
    common::fixtures().join("vision_e2e/model")
}

/// A run folder: the demo's screenshots (2 steps × 2 screens) and a run.toml.
fn case(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgerl-vision-train-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (code, _, stderr) = common::edgerl(&[
        "demo", "--data-only", "--vision", "--steps", "2", "--eval-screens", "1", "--output-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let toml = format!(
        r#"model = {model:?}
output_dir = "out"
dataset = "train.jsonl"
num_generations = 4
prompts_per_step = 2
temperature = 1.0
max_completion_length = 4
learning_rate = 5e-3
max_steps = 2
save_steps = 1
seed = 3

[lora]
r = 4
alpha = 8

[[rewards]]
type = "point_in_box"
extract = "regex"
pattern = '^\s*(\d+)\s*,\s*(\d+)'
target = "target_box"
weight = 0.9

[[rewards]]
type = "regex"
pattern = '.*\d.*'
weight = 0.1
"#,
        model = model().to_str().unwrap()
    );
    std::fs::write(dir.join("run.toml"), toml).unwrap();
    dir
}

fn train(dir: &Path, resume: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgerl"));
    c.current_dir(dir)
        .args(["train", "--config", "run.toml", "--json"])
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if resume {
        c.arg("--resume");
    }
    c
}

fn adapter(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("out/adapter/adapter_model.safetensors")).unwrap()
}

#[test]
fn train_on_screenshots_and_resume_bit_identically() {
    let full = case("full");
    let out = train(&full, false).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read_to_string(full.join("out/completions.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2 * 2 * 4, "2 steps × 2 screens × 4 completions");
    // The PEFT names of a vision-language model's text layers.
    let bytes = adapter(&full);
    let header = String::from_utf8_lossy(&bytes[..4096.min(bytes.len())]).to_string();
    assert!(header.contains("base_model.model.model.text_model.layers.0."), "{header}");
    // PEFT would match the tower's q/k/v_proj too: the config leaves the tower out.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(full.join("out/adapter/adapter_config.json")).unwrap()).unwrap();
    assert_eq!(config["exclude_modules"], ".*vision_model.*");

    let cut = case("cut");
    let mut child = train(&cut, false).spawn().unwrap();
    let marker = cut.join("out/checkpoint-1");
    let t0 = Instant::now();
    while !marker.exists() {
        assert!(t0.elapsed() < Duration::from_secs(300), "no checkpoint appeared");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("run ended ({status}) before it could be killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(!cut.join("out/adapter").exists(), "killed before the end");
    let out = train(&cut, true).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(adapter(&full), adapter(&cut), "resumed adapter differs");
    let log_cut = std::fs::read_to_string(cut.join("out/completions.jsonl")).unwrap();
    assert_eq!(log, log_cut);
}

#[test]
fn the_training_pass_sees_the_images() {
    let dir = case("lp");
    let mut cfg = TrainConfig::from_file(&dir.join("run.toml")).unwrap();
    cfg.output_dir = dir.join("out");
    cfg.dataset = Some(dir.join("train.jsonl"));
    let rules = edgerl::reward::RewardSet::new(&cfg.rewards, cfg.reward_all_or_nothing).unwrap();
    let rows = rules.read_dataset(&dir.join("train.jsonl")).unwrap();
    assert_eq!(rows[0].images.len(), 1);
    let gpu = &common::backends().normal[0];
    let mut t = Trainer::new(gpu, cfg).unwrap();
    let tok = t.tokenizer.take().unwrap();
    let p = t.prompted(&tok, &rows[0]).unwrap();
    assert!(p.images.is_some());
    let prompt_ids = p.ids.clone();
    t.tokenizer = Some(tok);
    let (groups, _, _) = t.sample_scored(&[p], 0, Some(&rules), &mut NoHooks).unwrap();
    let refs: Vec<_> = groups.iter().collect();
    let mut batch = t.batch(&refs);
    t.step(&mut batch).unwrap();
    let features = groups[0].images.as_ref().unwrap();
    for (k, it) in batch.items.iter().enumerate() {
        let lp_old = it.lp_old.as_ref().unwrap();
        let ids: Vec<u32> = prompt_ids.iter().chain(&it.targets).copied().collect();
        let targets: Vec<Option<u32>> = ids[1..].iter().map(|&i| Some(i)).collect();
        let score = |images| {
            let mut cache = t.model.new_cache(gpu, ids.len()).unwrap();
            // The adapter before the step is not kept; a fresh adapter's B is zero, so the
            // base model is the policy that sampled.
            let h = t.model.forward_with_images(gpu, &ids, images, &mut cache, None).unwrap();
            let lp = t.model.target_logprobs(gpu, &h, &targets, 1.0).unwrap();
            lp[prompt_ids.len() - 1..].to_vec()
        };
        common::assert_close(&format!("completion {k}"), lp_old, &score(Some(&*features.0)), 1e-4, 1e-4);
        let blind = score(None);
        assert!(lp_old.iter().zip(&blind).any(|(a, b)| (a - b).abs() > 1e-3), "images made no difference");
    }
}

/// `num_iterations = 2` on screenshots: each batch's image features serve both updates, and a
/// checkpoint taken between them (it holds the batch and its features) resumes to the
/// uninterrupted run's adapter and completions, bit for bit.
#[test]
fn two_iterations_resume_mid_batch_with_the_images() {
    let full = case("iters");
    let toml = std::fs::read_to_string(full.join("run.toml")).unwrap();
    let toml = toml.replace("max_steps = 2\n", "max_steps = 4\nnum_iterations = 2\n");
    std::fs::write(full.join("run.toml"), toml).unwrap();
    let out = train(&full, false).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // checkpoint-1 sits between the two updates of the first batch: its state holds the batch
    // with one block of image features per group.
    let path = full.join("out/checkpoint-1/trainer_state.bin");
    let state = edgerl::rl::state::decode_state(&std::fs::read(&path).unwrap(), &path).unwrap();
    let batch = state.batch.expect("a batch in flight at step 1");
    assert_eq!(batch.images.len(), 2);
    assert!(batch.images.iter().all(|f| f.as_ref().is_some_and(|b| !b.is_empty())), "every group has features");

    // The same run resumed from there: a copy with the later checkpoints and the adapter gone.
    let cut = case("iters-cut");
    std::fs::copy(full.join("run.toml"), cut.join("run.toml")).unwrap();
    std::fs::create_dir_all(cut.join("out")).unwrap();
    for entry in std::fs::read_dir(full.join("out")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name == "checkpoint-1" {
            let to = cut.join("out").join(&name);
            std::fs::create_dir_all(&to).unwrap();
            for f in std::fs::read_dir(entry.path()).unwrap() {
                let f = f.unwrap();
                if f.path().is_dir() {
                    let sub = to.join(f.file_name());
                    std::fs::create_dir_all(&sub).unwrap();
                    for g in std::fs::read_dir(f.path()).unwrap() {
                        let g = g.unwrap();
                        std::fs::copy(g.path(), sub.join(g.file_name())).unwrap();
                    }
                } else {
                    std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
                }
            }
        } else if name.ends_with(".jsonl") {
            std::fs::copy(entry.path(), cut.join("out").join(&name)).unwrap();
        }
    }
    let out = train(&cut, true).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(adapter(&full), adapter(&cut), "resumed adapter differs");
    assert_eq!(
        std::fs::read_to_string(full.join("out/completions.jsonl")).unwrap(),
        std::fs::read_to_string(cut.join("out/completions.jsonl")).unwrap()
    );
}
