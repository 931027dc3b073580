//! The memory planner against the allocator's counters: weight bytes computed without loading
//! equal what loading allocates, and the predicted peak of real training iterations (batched
//! rollouts, packed training steps, AdamW updates) on the tiny fixture models is within 10 % of
//! the measured peak, phase by phase. Plus budgets: parsing, the knobs `fit` picks as the budget
//! shrinks, and the message when nothing fits.

mod common;

use common::edgerl;

use std::path::{Path, PathBuf};

use edgerl::gpu::{DType, Gpu, GpuOptions};
use edgerl::model::LoadedModel;
use edgerl::plan::{self, Phase, PlanInput};
use edgerl::reward::RewardSet;
use edgerl::rl::TrainConfig;
use edgerl::rl::trainer::Trainer;

fn fixture(name: &str) -> PathBuf {
    common::fixtures().join("models").join(name)
}

/// The largest single weight buffer of a loaded model.
fn largest_piece(m: &edgerl::model::Model) -> u64 {
    let mut ts = vec![&m.embed];
    ts.extend(m.lm_head.as_ref());
    for l in &m.layers {
        ts.extend([&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down]);
    }
    ts.iter()
        .flat_map(|t| t.pieces.iter().map(|p| p.buf.bytes()))
        .max()
        .unwrap()
}

#[test]
fn weight_bytes_without_loading_equal_the_loaded_model() {
    let names = [
        "llama_f32",
        "llama_bias_bf16",
        "qwen2_bf16",
        "qwen3_f16",
        "smollm_tied_f32",
        "gemma3_f32",
    ];
    // Real limits, and a 64 KiB limit that splits the embeddings into pieces.
    for gpu in common::model_gpus() {
        for name in names {
            for dtype in [None, Some(DType::F16), Some(DType::F32)] {
                let dir = fixture(name);
                let meta = plan::model_meta(&dir, dtype, gpu.max_binding).unwrap();
                let m = LoadedModel::open(gpu, &dir, dtype).unwrap();
                let what = format!("{name} {dtype:?} (binding {})", gpu.max_binding);
                assert_eq!(meta.weights.total, m.model.weight_bytes(), "{what}");
                assert_eq!(
                    meta.weights.largest_piece,
                    largest_piece(&m.model),
                    "{what}"
                );
            }
            // A quantized override that the shapes don't allow fails in both.
            let dir = fixture(name);
            assert!(plan::model_meta(&dir, Some(DType::Q4_0), gpu.max_binding).is_err());
            assert!(LoadedModel::open(gpu, &dir, Some(DType::Q4_0)).is_err());
        }
    }
    // The real GGUFs: SmolLM2 (Q8_0 embedding, Q4_1 projections) and Gemma-3-270M (Q8_0
    // embedding in pieces, Q5_0 / Q4_K / Q6_K projections, four norms a layer), tied outputs,
    // types from their headers.
    for path in [common::smollm2_gguf(), common::gemma3_gguf()].into_iter().flatten() {
        let gpu = &common::backends().normal[0];
        let meta = plan::model_meta(&path, None, gpu.max_binding).unwrap();
        let m = LoadedModel::open(gpu, &path, None).unwrap();
        assert_eq!(meta.weights.total, m.model.weight_bytes());
        assert_eq!(meta.weights.largest_piece, largest_piece(&m.model));
        eprintln!(
            "{}: {} weight bytes on the GPU",
            path.display(),
            meta.weights.total
        );
    }
}

#[derive(Clone, Copy, Debug)]
struct Case {
    model: &'static str,
    g: usize,
    c: usize,
    checkpointing: bool,
    pack: Option<usize>,
    beta: f64,
    /// Sampling keeps its activations for the step (`TrainConfig::keep_rollouts`).
    keep: bool,
}

/// A config over three text prompts of different lengths; every completion runs to `c` tokens
/// (no stop strings, and the trainer gets no EOS ids), and the entropy bonus makes every pack
/// run its backward pass: the worst case the planner assumes. Without checkpointing every group
/// of the step holds its sampling's activations until its pass, and the planner assumes each
/// prompt is the longest: there the three prompts are the longest one.
fn config(case: Case, dir: &Path) -> TrainConfig {
    std::fs::create_dir_all(dir).unwrap();
    let data = dir.join("prompts.jsonl");
    let long = "{\"prompt\": \"Screen: [OK (100,200,180,240)] [Cancel (0,0,8,8)]. Press OK. Action:\"}\n";
    let rows = if case.checkpointing || !case.keep {
        format!("{{\"prompt\": \"Tap the Send button.\"}}\n{long}{{\"prompt\": \"Open settings.\"}}\n")
    } else {
        long.repeat(3)
    };
    std::fs::write(&data, rows).unwrap();
    let toml = format!(
        "model = {model:?}\noutput_dir = {out:?}\ndataset = {data:?}\nnum_generations = {g}\n\
         max_completion_length = {c}\ntemperature = 1.0\noptimizer = \"adamw\"\nlearning_rate = 1e-3\n\
         entropy_coef = 0.01\nbeta = {beta}\ngradient_checkpointing = {gc}\nprompts_per_step = 3\nmax_steps = 2\n\
         [lora]\nr = 4\nalpha = 8\n[[rewards]]\ntype = \"regex\"\nname = \"e\"\npattern = '.*e.*'\nweight = 1.0\n",
        model = fixture(case.model),
        out = dir.join("out"),
        g = case.g,
        c = case.c,
        beta = case.beta,
        gc = case.checkpointing,
    );
    let mut cfg = TrainConfig::from_toml(&toml).unwrap();
    cfg.keep_rollouts = case.keep;
    cfg
}

/// Two online iterations (sample every prompt's group, then one optimizer step over them) with
/// the peak measured per phase; returns (plan, measured rollout peak, measured step peak).
fn run(gpu: &Gpu, case: Case, tag: &str) -> (edgerl::plan::Plan, u64, u64) {
    let dir = std::env::temp_dir().join(format!("edgerl-plan-{tag}-{}", std::process::id()));
    let cfg = config(case, &dir);
    let mut input = PlanInput::from_train_config(&cfg, gpu.max_binding).unwrap();
    input.pack_size = case.pack;
    let plan = input.plan().unwrap();

    let m = LoadedModel::open(gpu, &cfg.model, None).unwrap();
    let mut t =
        Trainer::with_model(gpu, cfg.clone(), m.model, Some(m.tokenizer), vec![], m.pad).unwrap();
    t.pack_size = case.pack;
    let rewards = RewardSet::new(&cfg.rewards, false).unwrap();
    let rows =
        edgerl::data::dataset::read(cfg.dataset.as_ref().unwrap(), &rewards.columns()).unwrap();
    let rows: Vec<_> = rows.iter().collect();
    let (mut rollout, mut step) = (0, 0);
    for it in 0..2 {
        gpu.wait().unwrap();
        gpu.memory.reset_peak();
        let (groups, _, _) = t.sample_groups(&rows, it, &rewards).unwrap();
        assert!(
            groups
                .iter()
                .all(|g| g.completions.iter().all(|c| c.len() == case.c))
        );
        gpu.wait().unwrap();
        rollout = rollout.max(gpu.memory.peak());
        gpu.memory.reset_peak();
        let refs: Vec<_> = groups.iter().collect();
        let mut batch = t.batch(&refs);
        t.step(&mut batch).unwrap();
        gpu.wait().unwrap();
        step = step.max(gpu.memory.peak());
    }
    let _ = std::fs::remove_dir_all(&dir);
    (plan, rollout, step)
}

fn rel(pred: u64, meas: u64) -> f64 {
    (pred as f64 - meas as f64) / meas as f64
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

#[test]
fn predicted_peak_is_within_ten_percent_of_the_measured_peak() {
    let (gpu, split) = (own_gpu(None), own_gpu(Some(common::MODEL_SPLIT_BINDING)));
    let base = Case {
        model: "qwen3_f16",
        g: 4,
        c: 6,
        checkpointing: true,
        pack: None,
        beta: 0.0,
        keep: true,
    };
    let cases = [
        (base, &gpu),
        (
            Case {
                checkpointing: false,
                ..base
            },
            &gpu,
        ),
        (
            Case {
                pack: Some(1),
                ..base
            },
            &gpu,
        ),
        (Case { g: 2, ..base }, &gpu),
        // Activations kept, but not sampling's: the step runs its forward pass.
        (
            Case {
                checkpointing: false,
                keep: false,
                ..base
            },
            &gpu,
        ),
        (
            Case {
                g: 2,
                checkpointing: false,
                pack: Some(1),
                ..base
            },
            &gpu,
        ),
        (Case { beta: 0.04, ..base }, &gpu),
        (
            Case {
                model: "llama_f32",
                ..base
            },
            &gpu,
        ),
        (
            Case {
                model: "llama_f32",
                checkpointing: false,
                pack: Some(2),
                ..base
            },
            &gpu,
        ),
        (
            Case {
                model: "qwen2_bf16",
                c: 9,
                ..base
            },
            &gpu,
        ),
        // Gemma 3: sandwich norms' scratch, two rope tables, sliding layers.
        (
            Case {
                model: "gemma3_f32",
                ..base
            },
            &gpu,
        ),
        (
            Case {
                model: "gemma3_f32",
                checkpointing: false,
                c: 9,
                ..base
            },
            &gpu,
        ),
        // A 64 KiB binding limit: weights in pieces, the vocabulary in two chunks of logits.
        (
            Case {
                model: "smollm_tied_f32",
                g: 8,
                ..base
            },
            &split,
        ),
    ];
    let mut rows = Vec::new();
    for (i, (case, gpu)) in cases.iter().enumerate() {
        let (plan, rollout, step) = run(gpu, *case, &format!("{i}"));
        assert!(plan.fits(u64::MAX), "{case:?}: {:?}", plan.largest_binding);
        let measured = rollout.max(step);
        let pred_rollout = plan.phase(Phase::Rollout).unwrap().peak_bytes;
        let line = format!(
            "{case:?} binding {}: peak predicted {} measured {} ({:+.2} %); rollout {} vs {} ({:+.2} %); step {} vs {} ({:+.2} %)",
            gpu.max_binding,
            plan.peak_bytes,
            measured,
            100.0 * rel(plan.peak_bytes, measured),
            pred_rollout,
            rollout,
            100.0 * rel(pred_rollout, rollout),
            plan.training_step_peak(),
            step,
            100.0 * rel(plan.training_step_peak(), step),
        );
        eprintln!("{line}");
        rows.push((
            line,
            rel(plan.peak_bytes, measured),
            rel(pred_rollout, rollout),
            rel(plan.training_step_peak(), step),
        ));
    }
    for (line, a, b, c) in rows {
        assert!(
            a.abs() <= 0.10 && b.abs() <= 0.10 && c.abs() <= 0.10,
            "{line}"
        );
    }
    // A pack whose MLP activations exceed the 64 KiB limit: the plan says it cannot run, and
    // it indeed fails on that binding.
    let case = Case {
        model: "qwen2_bf16",
        c: 16,
        ..base
    };
    let dir = std::env::temp_dir().join(format!("edgerl-plan-toobig-{}", std::process::id()));
    let cfg = config(case, &dir);
    let plan = PlanInput::from_train_config(&cfg, split.max_binding)
        .unwrap()
        .plan()
        .unwrap();
    assert!(
        !plan.fits(u64::MAX) && plan.largest_binding.bytes > split.max_binding,
        "{:?}",
        plan.largest_binding
    );
    let e = edgerl::rl::trainer::train(&split, cfg, |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("{}-byte binding", plan.largest_binding.bytes)),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real Gemma-3-270M (mixed Q8_0 / Q5_0 / Q4_K / Q6_K, 262k vocabulary, sliding layers):
/// a GRPO iteration's measured peaks equal the plan's, rollout and training step.
#[test]
fn the_real_gemma3_peaks_equal_the_plan() {
    let Some(path) = common::gemma3_gguf() else {
        return;
    };
    let gpu = own_gpu(None);
    // `fixture` joins the name to the fixtures directory; an absolute path replaces it.
    let model: &'static str = Box::leak(path.to_str().unwrap().to_string().into_boxed_str());
    let case = Case {
        model,
        g: 2,
        c: 3,
        checkpointing: true,
        pack: None,
        beta: 0.0,
        keep: true,
    };
    let (plan, rollout, step) = run(&gpu, case, "gemma3-real");
    let pred_rollout = plan.phase(Phase::Rollout).unwrap().peak_bytes;
    eprintln!(
        "gemma3-270m: rollout {pred_rollout} planned, {rollout} measured; step {} planned, {step} measured",
        plan.training_step_peak()
    );
    assert_eq!((pred_rollout, plan.training_step_peak()), (rollout, step));
}

#[test]
fn budgets_parse() {
    for (s, want) in [
        ("2GiB", 2u64 << 30),
        ("1.5 GB", 1_500_000_000),
        ("800MiB", 800 << 20),
        ("800 mib", 800 << 20),
        ("123456", 123_456),
        ("64 KB", 64_000),
        ("2g", 2 << 30),
        ("0.5GiB", 1 << 29),
    ] {
        assert_eq!(plan::parse_budget(s).unwrap(), want, "{s}");
    }
    for bad in ["", "GiB", "two GiB", "2 parsecs", "-1GiB", "0", "1e400"] {
        let e = plan::parse_budget(bad).unwrap_err().to_string();
        assert!(e.contains("memory budget"), "{bad}: {e}");
    }
}

#[test]
fn fit_turns_checkpointing_on_then_shrinks_packs() {
    // Qwen2.5-0.5B's shapes, f16 weights, G = 8 × 256 tokens after a 125-token prompt.
    let mut input =
        PlanInput::for_preset("qwen2.5-0.5b", DType::F16, 125, 8, 256, 16, 128 << 20).unwrap();
    input.gradient_checkpointing = false;
    let at = |gc: bool, pack: Option<usize>| {
        PlanInput {
            gradient_checkpointing: gc,
            pack_size: pack,
            ..input.clone()
        }
        .plan()
        .unwrap()
    };
    let (off, on) = (at(false, None), at(true, None));
    assert!(on.peak_bytes < off.peak_bytes, "checkpointing saves memory");
    assert_eq!(on.peak_phase, Phase::TrainStep);

    let kept = input.fit(off.peak_bytes).unwrap();
    assert!(kept.changes.is_empty() && !kept.plan.knobs.gradient_checkpointing);
    assert_eq!(kept.pack_size, None);

    let f = input.fit(off.peak_bytes - 1).unwrap();
    assert!(f.plan.knobs.gradient_checkpointing && f.plan.knobs.pack_size == 8);
    assert_eq!(f.changes, vec!["gradient checkpointing on".to_string()]);

    // Halving the pack: 4, then 2, then 1 completions a pass.
    let mut last = on.peak_bytes;
    for k in [4, 2, 1] {
        let p = at(true, Some(k));
        assert!(p.peak_bytes <= last, "pack {k}");
        let f = input.fit(last - 1).unwrap();
        assert_eq!(
            (f.pack_size, f.plan.peak_bytes),
            (Some(k), p.peak_bytes),
            "budget {}",
            last - 1
        );
        assert!(
            f.changes
                .iter()
                .any(|c| c.starts_with(&format!("pack size {k}"))),
            "{:?}",
            f.changes
        );
        last = p.peak_bytes;
    }

    // Nothing smaller: the error gives the smallest peak, the budget and what takes the room.
    let e = input.fit(last - 1).unwrap_err().to_string();
    for needle in [
        plan::fmt_bytes(last),
        plan::fmt_bytes(last - 1),
        "pack size 1".into(),
        "largest part".into(),
    ] {
        assert!(e.contains(&needle), "{e:?} should mention {needle:?}");
    }
    let e = input.fit(input.weights.total / 2).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "weights alone are {}",
            plan::fmt_bytes(input.weights.total)
        )),
        "{e}"
    );
}

#[test]
fn plan_and_train_with_a_budget_on_the_command_line() {
    let dir = std::env::temp_dir().join(format!("edgerl-plan-cli-{}", std::process::id()));
    let case = Case {
        model: "qwen3_f16",
        g: 4,
        c: 6,
        checkpointing: false,
        pack: None,
        beta: 0.0,
        keep: true,
    };
    let cfg = config(case, &dir);
    let toml = dir.join("run.toml");
    let text = format!(
        "model = {:?}\noutput_dir = {:?}\ndataset = {:?}\nnum_generations = 4\nmax_completion_length = 6\n\
         gradient_checkpointing = false\nmax_steps = 1\nlearning_rate = 1e-3\n\
         [[rewards]]\ntype = \"regex\"\nname = \"e\"\npattern = '.*e.*'\nweight = 1.0\n",
        cfg.model,
        cfg.output_dir,
        cfg.dataset.as_ref().unwrap()
    );
    std::fs::write(&toml, text).unwrap();
    let toml = toml.to_str().unwrap();

    let (code, out, err) = edgerl(&["plan", "--config", toml, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let peak = v["peak_bytes"].as_u64().unwrap();
    let sum: u64 = v["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, peak);
    assert_eq!(v["knobs"]["gradient_checkpointing"], false);
    let (code, out, _) = edgerl(&["plan", "--config", toml]);
    assert!(
        code == 0 && out.contains("weights") && out.contains("largest binding"),
        "{out}"
    );

    // `false` without a budget is not planned: one pass's activations, not sampling's.
    assert_eq!(v["knobs"]["keep_rollouts"], false);

    // A budget just under the plan's peak: checkpointing goes on and the run trains.
    let budget = (peak - 1).to_string();
    let (code, out, err) = edgerl(&["train", "--config", toml, "--memory-budget", &budget]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("gradient checkpointing on") && out.contains("predicted"),
        "{out}"
    );

    // An impossible one: one line, nothing trained.
    let _ = std::fs::remove_dir_all(&cfg.output_dir);
    let (code, _, err) = edgerl(&["train", "--config", toml, "--memory-budget", "100KiB"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("weights alone") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!cfg.output_dir.join("adapter").exists());

    let (code, out, err) = edgerl(&[
        "plan",
        "--shape",
        "smollm2-135m",
        "--dtype",
        "q4_1",
        "--prompt-tokens",
        "125",
        "--completions",
        "8",
        "--completion-tokens",
        "8",
        "--rank",
        "16",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["training_step_peak_bytes"].as_u64().unwrap() <= v["peak_bytes"].as_u64().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sampling's kept activations are the first thing given up: a budget (or "auto"'s bound) that
/// every group's activations from sampling do not fit, but one pass's do, keeps activations
/// and runs the step's forward pass; below that, checkpointing goes on.
#[test]
fn kept_rollouts_go_before_activations() {
    let mut middle = 0;
    for c in [32, 64, 128] {
        for groups in 1..=6 {
            let mut input = PlanInput::for_preset("smollm2-135m", DType::Q4_1, 125, 8, c, 16, 128 << 20).unwrap();
            (input.gradient_checkpointing, input.groups_per_step, input.keep_rollouts) = (false, groups, true);
            let at = |gc: bool, keep: bool| {
                PlanInput { gradient_checkpointing: gc, keep_rollouts: keep, ..input.clone() }.plan().unwrap()
            };
            let (reuse, alone, on) = (at(false, true), at(false, false), at(true, true));
            assert!(reuse.peak_bytes >= alone.peak_bytes && alone.peak_bytes > on.peak_bytes, "C {c}, {groups} groups");
            if groups > 1 {
                assert!(reuse.peak_bytes > alone.peak_bytes, "C {c}, {groups} groups: every group holds its activations");
            }
            if reuse.peak_bytes > alone.peak_bytes {
                let f = input.fit(reuse.peak_bytes - 1).unwrap();
                assert!(!f.plan.knobs.gradient_checkpointing && !f.plan.knobs.keep_rollouts, "C {c}, {groups} groups");
                assert_eq!(f.changes, vec!["sampling's activations not kept".to_string()]);
                assert_eq!(f.plan.peak_bytes, alone.peak_bytes);
            }
            let f = input.fit(alone.peak_bytes - 1).unwrap();
            assert!(f.plan.knobs.gradient_checkpointing, "C {c}, {groups} groups");
            assert_eq!(f.changes, vec!["gradient checkpointing on".to_string()]);
            let limit = plan::AUTO_KEEP_ACTIVATIONS_BYTES;
            let (recompute, keep, why) = input.auto_knobs().unwrap();
            let want = if reuse.peak_bytes <= limit {
                (false, true)
            } else if alone.peak_bytes <= limit {
                middle += 1;
                assert!(why.contains("not kept"), "{why}");
                (false, false)
            } else {
                (true, true)
            };
            assert_eq!((recompute, keep), want, "C {c}, {groups} groups: {why}");
        }
    }
    assert!(middle > 0, "no case where only the kept rollouts go over the bound");
}
