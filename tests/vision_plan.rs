//! The memory plan of a vision-language model against the allocator's counters: on the tiny
//! SmolVLM-shaped fixture (tests/fixtures/vision_e2e) with the demo's rendered screenshots,
//! GRPO iterations as `edgerl train` runs them — each step's prompts through the vision tower,
//! their groups sampled with the image features, one packed training step over them, the
//! previous step's batch alive while the next one samples — peak exactly where the plan says:
//! the vision tower and rollout phases, and the training step, with real and split binding
//! limits. Plus `edgerl plan` and `edgerl train --memory-budget` on a VLM run.toml.

mod common;

use std::path::{Path, PathBuf};

use edgerl::gpu::{Gpu, GpuOptions};
use edgerl::model::LoadedModel;
use edgerl::plan::{Category, Phase, PlanInput};
use edgerl::reward::RewardSet;
use edgerl::rl::TrainConfig;
use edgerl::rl::trainer::{Batch, Trainer};

fn model() -> PathBuf {
    common::fixtures().join("vision_e2e/model")
}

/// The demo's screenshots (360 × 640: 3 × 2 tiles plus the global image, 7 × 4 image tokens a
/// prompt on the fixture's processor).
fn screens(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let (code, _, stderr) = common::edgerl(&[
        "demo", "--data-only", "--vision", "--steps", "2", "--eval-screens", "1", "--output-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
}

#[derive(Clone, Copy, Debug)]
struct Case {
    g: usize,
    c: usize,
    checkpointing: bool,
    pack: Option<usize>,
    beta: f64,
}

/// Two prompts a step, two steps; every completion runs to `c` tokens (no stop strings, the
/// trainer gets no EOS ids) and the entropy bonus makes every pack run its backward pass.
fn config(case: Case, dir: &Path) -> TrainConfig {
    let toml = format!(
        "model = {model:?}\noutput_dir = {out:?}\ndataset = {data:?}\nnum_generations = {g}\n\
         max_completion_length = {c}\ntemperature = 1.0\noptimizer = \"adamw\"\nlearning_rate = 1e-3\n\
         entropy_coef = 0.01\nbeta = {beta}\ngradient_checkpointing = {gc}\nprompts_per_step = 2\nmax_steps = 2\n\
         [lora]\nr = 4\nalpha = 8\n[[rewards]]\ntype = \"regex\"\nname = \"d\"\npattern = '.*\\d.*'\nweight = 1.0\n",
        model = model(),
        out = dir.join("out"),
        data = dir.join("train.jsonl"),
        g = case.g,
        c = case.c,
        beta = case.beta,
        gc = case.checkpointing,
    );
    let mut cfg = TrainConfig::from_toml(&toml).unwrap();
    // Sampling keeps its activations for the step, as a planned run (auto) does.
    cfg.keep_rollouts = !case.checkpointing;
    cfg
}

/// A device of its own, so that no other test's buffers count in its peak.
fn own_gpu(max_binding: Option<u64>) -> Gpu {
    ["vulkan", "gl"]
        .iter()
        .find_map(|b| {
            Gpu::new(&GpuOptions {
                backend: Some(b.to_string()),
                max_binding,
                ..Default::default()
            })
            .ok()
        })
        .expect("a GPU adapter")
}

/// Two online iterations as `edgerl train` runs them; returns (plan, measured peak of the
/// step's prompts through the tower alone, of the sampling phase — tower runs and groups —,
/// of the training step).
fn run(gpu: &Gpu, case: Case, dir: &Path) -> (edgerl::plan::Plan, u64, u64, u64) {
    let cfg = config(case, dir);
    let mut input = PlanInput::from_train_config(&cfg, gpu.max_binding).unwrap();
    input.pack_size = case.pack;
    let plan = input.plan().unwrap();

    let m = LoadedModel::open(gpu, &cfg.model, None).unwrap();
    let mut t = Trainer::with_model(gpu, cfg.clone(), m.model, Some(m.tokenizer), vec![], m.pad).unwrap();
    t.vision = m.vision;
    t.pack_size = case.pack;
    let rewards = RewardSet::new(&cfg.rewards, false).unwrap();
    let rows = rewards.read_dataset(cfg.dataset.as_ref().unwrap()).unwrap();
    assert!(rows.iter().all(|r| r.images.len() == 1));
    let (mut tower, mut rollout, mut step) = (0, 0, 0);
    // `edgerl train`'s loop: the previous step's batch lives until the next one replaces it.
    let mut batch: Option<Batch>;
    for it in 0..2 {
        gpu.wait().unwrap();
        gpu.memory.reset_peak();
        // The same two screens each step (one holds the longest prompt): the second step runs
        // with the optimizer state and the previous batch alive, the plan's worst case. Without
        // checkpointing each group holds its sampling's activations until its pass, and the plan
        // takes every prompt as the longest: there the step's two prompts are the longest one.
        let mut these: Vec<_> = rows[..2].iter().collect();
        if !case.checkpointing {
            let tok = t.tokenizer.as_ref().unwrap();
            let len = |r: &&edgerl::data::dataset::Row| t.prompted(tok, r).unwrap().ids.len();
            let longest = *these.iter().max_by_key(|r| len(r)).unwrap();
            these = vec![longest, longest];
        }
        {
            // The tower phase alone: the step's prompts encoded, one after another.
            let tok = t.tokenizer.as_ref().unwrap();
            let prompted: Vec<_> = these.iter().map(|r| t.prompted(tok, r).unwrap()).collect();
            assert!(prompted.iter().all(|p| p.images.is_some()));
            gpu.wait().unwrap();
            tower = tower.max(gpu.memory.peak());
        }
        gpu.wait().unwrap();
        gpu.memory.reset_peak();
        let (groups, _, _) = t.sample_groups(&these, it as u64, &rewards).unwrap();
        assert!(groups.iter().all(|g| g.images.is_some() && g.completions.iter().all(|c| c.len() == case.c)));
        gpu.wait().unwrap();
        rollout = rollout.max(gpu.memory.peak());
        let refs: Vec<_> = groups.iter().collect();
        batch = Some(t.batch(&refs));
        drop(groups);
        gpu.wait().unwrap();
        gpu.memory.reset_peak();
        t.step(batch.as_mut().unwrap()).unwrap();
        gpu.wait().unwrap();
        step = step.max(gpu.memory.peak());
    }
    (plan, tower, rollout, step)
}

#[test]
fn the_plan_equals_the_measured_peaks_with_the_vision_tower() {
    let dir = std::env::temp_dir().join(format!("edgerl-vision-plan-{}", std::process::id()));
    screens(&dir);
    let base = Case { g: 4, c: 4, checkpointing: true, pack: None, beta: 0.0 };
    let normal = own_gpu(None);
    // 32 KiB: the text model's embedding and output matrices in pieces, the vocabulary in
    // chunks. (A limit that splits the tiny tower's matrices, 3 KiB, is below what the text
    // model's activations need; tests/vision_tower.rs holds the tower's plan to such limits.)
    let split = own_gpu(Some(32768));
    let cases = [
        (base, &normal),
        (Case { checkpointing: false, ..base }, &normal),
        (Case { pack: Some(1), ..base }, &normal),
        (Case { g: 2, c: 6, checkpointing: false, pack: Some(1), ..base }, &normal),
        (Case { beta: 0.04, ..base }, &normal),
        (base, &split),
        (Case { checkpointing: false, pack: Some(2), ..base }, &split),
        (Case { g: 2, c: 6, beta: 0.04, ..base }, &split),
    ];
    let mut failed = Vec::new();
    for (case, gpu) in cases {
        let (plan, tower_measured, rollout, step) = run(gpu, case, &dir);
        assert!(plan.fits(u64::MAX), "{case:?}: {:?}", plan.largest_binding);
        let tower = plan.phase(Phase::VisionTower).expect("a vision tower phase");
        let sampling = tower.peak_bytes.max(plan.phase(Phase::Rollout).unwrap().peak_bytes);
        let features = plan.by_category.iter().find(|c| c.category == Category::ImageFeatures).unwrap();
        let line = format!(
            "{case:?} binding {}: vision tower planned {} measured {tower_measured}; sampling planned {sampling} measured {rollout}; training step planned {} measured {step}; image features at the peak {} bytes",
            gpu.max_binding,
            tower.peak_bytes,
            plan.training_step_peak(),
            features.bytes,
        );
        eprintln!("{line}");
        assert!(features.bytes > 0, "{line}");
        if (tower.peak_bytes, sampling, plan.training_step_peak()) != (tower_measured, rollout, step) {
            failed.push(line);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failed.is_empty(), "plan ≠ measured:\n{}", failed.join("\n"));
}

/// The plan counts the tower: its weights in the weights, one run's scratch, the features;
/// `edgerl plan` and `edgerl train --memory-budget` take a VLM run.toml.
#[test]
fn plan_and_train_with_a_budget_on_a_vision_language_model() {
    let dir = std::env::temp_dir().join(format!("edgerl-vision-plan-cli-{}", std::process::id()));
    screens(&dir);
    let toml = dir.join("run.toml");
    std::fs::write(
        &toml,
        format!(
            "model = {:?}\noutput_dir = \"out\"\ndataset = \"train.jsonl\"\nnum_generations = 4\nprompts_per_step = 2\n\
             max_completion_length = 4\ngradient_checkpointing = false\nmax_steps = 1\nlearning_rate = 1e-3\n\
             [lora]\nr = 4\nalpha = 8\n[[rewards]]\ntype = \"regex\"\nname = \"d\"\npattern = '.*\\d.*'\nweight = 1.0\n",
            model()
        ),
    )
    .unwrap();
    let toml = toml.to_str().unwrap();
    let in_dir = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgerl"))
            .current_dir(&dir)
            .args(args)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (code, out, err) = in_dir(&["plan", "--config", toml, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let phases: Vec<&str> = v["phases"].as_array().unwrap().iter().map(|p| p["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["vision_tower", "rollout", "train_step", "update"]);
    let tower = &v["phases"][0]["by_category"];
    let bytes = |cats: &serde_json::Value, c: &str| {
        cats.as_array().unwrap().iter().find(|x| x["category"] == c).unwrap()["bytes"].as_u64().unwrap()
    };
    assert!(bytes(tower, "vision_tower") > 0 && bytes(tower, "image_features") > 0, "{tower}");
    // The weights are the text model's and the tower's (what loading allocates).
    let gpu = own_gpu(None);
    let m = LoadedModel::open(&gpu, &model(), None).unwrap();
    let loaded = m.model.weight_bytes() + m.vision.as_ref().unwrap().tower.weight_bytes();
    assert_eq!(bytes(tower, "weights"), loaded);
    // The expanded prompt: 28 image tokens, their row/column markers, the text.
    assert!(v["workload"]["prompt_tokens"].as_u64().unwrap() > 28 + 40, "{}", v["workload"]);
    let peak = v["peak_bytes"].as_u64().unwrap();

    // A budget just under the plan's peak (`false`: one pass's activations): checkpointing goes
    // on and the run trains.
    let (code, out, err) = in_dir(&["train", "--config", toml, "--memory-budget", &(peak - 1).to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("gradient checkpointing on") && out.contains("predicted"), "{out}");
    assert!(dir.join("out/adapter").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
