//! One GRPO update with images against PEFT + PyTorch (TRL 1.16's loss), through the fixture
//! made by tests/fixtures/vision_grpo/make_vision_grpo_fixture.py on the tiny SmolVLM-shaped
//! model of tests/fixtures/vision_e2e: two dataset rows with a PNG each (a chat row with content
//! parts, a text row with an `<image>` place), their prompts built by the library
//! (`Trainer::prompted`: the processor's ids and the tower's features), given completions and
//! rewards, one step from a random initial adapter (LoRA on the text model only). The adapter
//! after the step, the step's metrics and the log-probs with and without the adapter must be
//! PyTorch's, on Vulkan and GL, with real limits, with the 64 KiB limit and with a limit that
//! splits the tower's MLP and connector weights and the text model's embedding and head; at a
//! smaller limit the image features still agree. Without the images the same step lands elsewhere.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use edgerl::gpu::{Gpu, GpuOptions};
use edgerl::model::weights::{SafetensorsWeights, WeightSource, to_f32};
use edgerl::rl::TrainConfig;
use edgerl::rl::rollouts::Group;
use edgerl::rl::trainer::{StepMetrics, Trainer};
use serde_json::Value;

/// Near one tile's widest vision activation (16 patches × the MLP's 112 columns, f32): every
/// tower matrix but q/k/v/o splits here.
const TOWER_SPLIT_BINDING: u64 = 8192;
/// A limit the training pass of these packs runs at (up to 111 rows × the MLP's 48 columns, f32)
/// where the tower's fc1 and fc2 (112 × 64 f32), the connector (32 × 256 f32) and the text
/// model's embedding and head (443 × 32 f32) split.
const SPLIT_BINDING: u64 = 24576;

fn dir() -> PathBuf {
    common::fixtures().join("vision_grpo")
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let w = SafetensorsWeights::open_file(path).unwrap();
    let mut names: Vec<String> = w.names().map(str::to_string).collect();
    names.sort();
    names.into_iter().map(|n| {
        let t = to_f32(&w.get(&n).unwrap().unwrap()).unwrap();
        (n, t)
    }).collect()
}

fn norm(x: impl Iterator<Item = f64>) -> f64 {
    x.map(|v| v * v).sum::<f64>().sqrt()
}

fn label(gpu: &Gpu) -> String {
    format!("{} ({}-byte bindings)", gpu.adapter.backend, gpu.max_binding)
}

struct Stepped {
    metrics: StepMetrics,
    adapter: Vec<(String, Vec<f32>)>,
    /// Per completion: log-probs with the initial adapter (the batch's first use) and the base model.
    lp_old: Vec<Vec<f32>>,
    lp_ref: Vec<Vec<f32>>,
}

/// The fixture's step through the library on `gpu`; `images: false` drops the features. Errors
/// only from the step itself.
fn step(gpu: &Gpu, tag: &str, images: bool) -> edgerl::Result<Stepped> {
    let mut cfg = TrainConfig::from_file(&dir().join("run.toml")).unwrap();
    cfg.output_dir = std::env::temp_dir().join(format!("edgerl-vision-grpo-{tag}-{}", std::process::id()));
    let rows = edgerl::data::dataset::read(cfg.dataset.as_ref().unwrap(), &[]).unwrap();
    let want = json(&dir().join("groups.json"));
    let want = want.as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    let mut t = Trainer::new(gpu, cfg.clone()).unwrap();
    assert!(t.vision.is_some(), "the fixture model has a vision tower");
    let tok = t.tokenizer.take().unwrap();
    let mut groups = Vec::new();
    for (row, w) in rows.iter().zip(want) {
        assert_eq!(row.images.len(), 1);
        let p = t.prompted(&tok, row).unwrap();
        assert_eq!(p.ids, u32s(&w["prompt_ids"]), "prompt ids of {:?}", row.prompt);
        assert!(p.images.is_some());
        groups.push(Group {
            prompt_ids: p.ids,
            completions: w["completion_ids"].as_array().unwrap().iter().map(u32s).collect(),
            rewards: w["rewards"].as_array().unwrap().iter().map(|r| r.as_f64().unwrap()).collect(),
            weight: 1.0,
            sampler_logps: None,
            images: if images { p.images } else { None },
        });
    }
    t.tokenizer = Some(tok);
    let refs: Vec<&Group> = groups.iter().collect();
    let mut batch = t.batch(&refs);
    let metrics = t.step(&mut batch)?;
    t.save().unwrap();
    let adapter = tensors(&t.adapter_dir().join("adapter_model.safetensors"));
    let _ = std::fs::remove_dir_all(&cfg.output_dir);
    Ok(Stepped {
        metrics,
        adapter,
        lp_old: batch.items.iter().map(|it| it.lp_old.clone().unwrap()).collect(),
        lp_ref: batch.items.iter().map(|it| it.lp_ref.clone().unwrap()).collect(),
    })
}

/// The worst relative error of the update (adapter − init) against PyTorch's, over all tensors.
fn update_error(got: &[(String, Vec<f32>)]) -> f64 {
    let init = tensors(&dir().join("init_adapter/adapter_model.safetensors"));
    let want = tensors(&dir().join("expected/adapter_model.safetensors"));
    let names = |v: &[(String, Vec<f32>)]| v.iter().map(|(n, _)| n.clone()).collect::<BTreeSet<_>>();
    assert_eq!(names(got), names(&want), "tensor names");
    assert_eq!(names(&init), names(&want), "tensor names");
    assert_eq!(want.len(), 2 * 7 * 2, "A and B of 7 projections in 2 layers");
    let mut worst: f64 = 0.0;
    for ((n, g), ((_, w), (_, i))) in got.iter().zip(want.iter().zip(&init)) {
        assert!(n.starts_with("base_model.model.model.text_model.layers."), "{n}");
        assert!(i.iter().any(|&x| x != 0.0), "{n}: the initial adapter is random in A and B");
        let dw = norm(w.iter().zip(i).map(|(a, b)| (a - b) as f64));
        assert!(dw > 0.0, "{n} has no update in the reference");
        let err = norm(g.iter().zip(w).map(|(a, b)| (a - b) as f64));
        worst = worst.max(err / dw);
    }
    worst
}

/// Each in its turn (tests/common/turns.rs).
fn devices() -> impl Iterator<Item = &'static Gpu> {
    use std::sync::OnceLock;
    static SPLIT: OnceLock<Vec<Gpu>> = OnceLock::new();
    let split = SPLIT.get_or_init(|| {
        ["vulkan", "gl"]
            .iter()
            .filter_map(|b| {
                Gpu::new(&GpuOptions { backend: Some((*b).into()), max_binding: Some(SPLIT_BINDING), ..Default::default() }).ok()
            })
            .collect()
    });
    for gpu in common::in_turn(split) {
        let m = edgerl::model::LoadedModel::open(gpu, &dir().join("../vision_e2e/model"), None).unwrap();
        assert!(m.model.embed.pieces.len() > 1, "the embedding should split at {SPLIT_BINDING} bytes");
        assert!(m.model.lm_head.as_ref().unwrap().pieces.len() > 1, "the head should split at {SPLIT_BINDING} bytes");
        let tower = &m.vision.as_ref().unwrap().tower;
        for (what, t) in [("fc1", &tower.layers[0].fc1), ("fc2", &tower.layers[0].fc2), ("connector", &tower.projection)] {
            assert!(t.pieces.len() > 1, "the tower's {what} should split at {SPLIT_BINDING} bytes");
        }
    }
    let b = common::backends();
    common::in_turn(b.normal.iter().chain(b.split_models.iter()).chain(split.iter()))
}

/// At a limit that splits the tower's connector the tower gives the features it gives with real
/// limits. The training pass there either matches PyTorch or refuses with a clear error (its
/// activations, one row per prompt and completion token, do not split by rows: a one-image
/// prompt's MLP rows are wider than 8 KiB).
#[test]
fn with_the_tower_split_the_features_agree_and_the_step_matches_or_refuses() {
    let rows = edgerl::data::dataset::read(&dir().join("dataset.jsonl"), &[]).unwrap();
    let features = |gpu: &Gpu| -> Vec<Vec<f32>> {
        let m = edgerl::model::LoadedModel::open(gpu, &dir().join("../vision_e2e/model"), None).unwrap();
        let side = m.vision.as_ref().unwrap();
        if gpu.max_binding == TOWER_SPLIT_BINDING {
            assert!(side.tower.projection.pieces.len() > 1, "the connector should split at {TOWER_SPLIT_BINDING} bytes");
            assert!(side.tower.layers[0].fc1.pieces.len() > 1, "fc1 should split at {TOWER_SPLIT_BINDING} bytes");
        }
        rows.iter()
            .map(|row| {
                let (_, f) = edgerl::rl::rollout::prompt_with_images(gpu, &m.tokenizer, Some(side), &row.prompt, &row.images).unwrap();
                let f = f.unwrap();
                gpu.read_f32(&f, (f.bytes / 4) as usize).unwrap()
            })
            .collect()
    };
    let want = features(&common::backends().normal[0]);
    for backend in ["vulkan", "gl"] {
        let Ok(gpu) = Gpu::new(&GpuOptions { backend: Some(backend.into()), max_binding: Some(TOWER_SPLIT_BINDING), ..Default::default() }) else {
            continue;
        };
        let what = label(&gpu);
        for (k, (got, want)) in features(&gpu).iter().zip(&want).enumerate() {
            assert!(got.iter().any(|&x| x != 0.0));
            common::assert_close(&format!("{what}: features of row {k}"), got, want, 1e-5, 1e-4);
        }
        match step(&gpu, &format!("tower-{backend}"), true) {
            Ok(s) => {
                let worst = update_error(&s.adapter);
                assert!(worst < 1e-4, "{what}: update off by {worst:.2e} relative");
            }
            Err(e) => {
                assert!(e.to_string().contains("binding limit"), "{what}: {e}");
                eprintln!("{what}: the training pass refuses: {e}");
            }
        }
    }
}

#[test]
fn one_grpo_step_with_images_matches_peft_and_pytorch() {
    let want = json(&dir().join("expected/metrics.json"));
    let lp_want: Vec<Vec<f32>> = want["token_logps"].as_array().unwrap().iter().map(f32s).collect();
    let ref_want: Vec<Vec<f32>> = want["ref_token_logps"].as_array().unwrap().iter().map(f32s).collect();
    let mut bad = Vec::new();
    let mut backends = BTreeSet::new();
    for (i, gpu) in devices().enumerate() {
        let what = label(gpu);
        backends.insert(gpu.adapter.backend.to_string());
        let s = step(gpu, &format!("{}-{i}", gpu.adapter.backend), true).unwrap();
        for (k, (got, want)) in s.lp_old.iter().zip(&lp_want).enumerate() {
            common::assert_close(&format!("{what}: log-probs of completion {k}"), got, want, 1e-4, 1e-4);
        }
        for (k, (got, want)) in s.lp_ref.iter().zip(&ref_want).enumerate() {
            common::assert_close(&format!("{what}: base log-probs of completion {k}"), got, want, 1e-4, 1e-4);
        }
        let m = s.metrics.to_map();
        for key in ["loss", "grad_norm", "kl", "entropy", "reward", "reward_std", "num_tokens"] {
            let w = want[key].as_f64().unwrap();
            let g = m.get(key).and_then(Value::as_f64);
            if !g.is_some_and(|g| (g - w).abs() <= 2e-5 + 1e-4 * w.abs()) {
                bad.push(format!("{what}: {key} = {g:?}, want {w}"));
            }
        }
        let worst = update_error(&s.adapter);
        eprintln!("{what}: worst relative error of the update {worst:.2e}");
        if !(worst < 1e-4) {
            bad.push(format!("{what}: update off by {worst:.2e} relative"));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    if std::env::var_os("CI").is_some() {
        assert_eq!(backends.len(), 2, "Vulkan and GL: {backends:?}");
    }
}

/// The same step without the image features (the image tokens embedded as text) is far from
/// PyTorch's: the comparison above sees the images.
#[test]
fn without_the_images_the_update_differs() {
    let gpu = &common::backends().normal[0];
    let s = step(gpu, "blind", false).unwrap();
    let worst = update_error(&s.adapter);
    eprintln!("without images: the update is off by {worst:.2e} relative");
    assert!(worst > 1e-2, "the update without images is within {worst:.2e} of the one with them");
}
