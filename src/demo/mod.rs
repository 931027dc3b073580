//! `edgerl demo`: a real pretrained model (SmolLM2-135M-Instruct, Q4_1 GGUF, fetched when
//! missing) gets better at GUI grounding through on-device GRPO. It writes generated phone
//! screens (train and held-out) and a run.toml into the output folder, measures held-out
//! accuracy, trains a LoRA adapter, and measures again. The run.toml is an ordinary training
//! config: `edgerl train --config OUT/run.toml` repeats the training step by hand.
//!
//! With `vision` the screens are screenshots (`render`) and the model a vision-language one
//! (SmolVLM / Idefics3): the same rules score its taps in the pictures' pixels.
//!
//! With `warm_start` = N > 0 a supervised warm start comes first: N SFT steps (`edgerl sft`'s
//! engine, config in OUT/sft.toml) on generated screens answered correctly (OUT/sft.jsonl), held-out
//! accuracy measured again, then GRPO starts from that adapter (run.toml's `init_adapter`).

pub mod render;
pub mod screens;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::rl::TrainConfig;
use crate::rl::eval::{EvalOptions, EvalReport, evaluate};

#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// A model directory or GGUF, or a name `edgerl fetch` knows (`smollm2`, `gemma3-270m`,
    /// fetched when missing); `None` is SmolLM2-135M-Instruct.
    pub model: Option<PathBuf>,
    pub output_dir: PathBuf,
    pub steps: usize,
    /// Held-out screens measured before and after.
    pub eval_screens: usize,
    /// Elements per screen.
    pub elements: usize,
    pub seed: u64,
    /// SFT steps before GRPO (0: none), each on [`SFT_BATCH`] fresh screens with their answers.
    pub warm_start: usize,
    /// The screens as screenshots ([`render`]), for a vision-language model (`model` a SmolVLM
    /// / Idefics3 directory).
    pub vision: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            model: None,
            output_dir: PathBuf::from("runs/demo"),
            steps: 12,
            eval_screens: 24,
            elements: 3,
            seed: 0,
            warm_start: 0,
            vision: false,
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct DemoReport {
    pub model: PathBuf,
    pub device: String,
    pub eval_screens: usize,
    pub accuracy_before: f64,
    pub accuracy_after: f64,
    pub reward_before: f64,
    pub reward_after: f64,
    /// SFT steps before GRPO (0: no warm start; then the `*_after_sft` fields are null).
    pub warm_start: usize,
    /// Held-out accuracy and mean reward after the warm start, before GRPO.
    pub accuracy_after_sft: Option<f64>,
    pub reward_after_sft: Option<f64>,
    pub sft_seconds: f64,
    pub sft_adapter: Option<PathBuf>,
    pub steps: usize,
    pub train_seconds: f64,
    pub wall_seconds: f64,
    pub peak_gpu_bytes: u64,
    pub adapter: PathBuf,
}

/// Screens per GRPO step; the training set has one fresh screen per prompt the run draws.
const PROMPTS_PER_STEP: usize = 2;
/// Rows per SFT step (`per_device_train_batch_size`); the SFT set is one epoch of fresh screens.
pub const SFT_BATCH: usize = 8;
/// The warm start's learning rate: a few steps must move the adapter (GRPO's is 5e-4).
const SFT_LEARNING_RATE: &str = "1e-3";
/// The three screen sets come from distinct seeds: `seed` (GRPO), these mixed into it.
const HELDOUT_SEED: u64 = 0x5eed_0f4e_1d00;
const SFT_SEED: u64 = 0x5f7_a115_e7ed_0001;

/// The training config the demo writes (TRL's names; see README).
fn run_toml(model: &Path, out: &Path, o: &DemoOptions) -> String {
    let q = |p: &Path| toml::Value::String(p.display().to_string());
    format!(
        r#"# Written by `edgerl demo`: GRPO with LoRA on generated GUI-grounding screens.
model = {model}
output_dir = {out}
dataset = {train}
num_generations = 8
prompts_per_step = {per_step}
temperature = 0.7
max_completion_length = 8
stop = [")"]
optimizer = "adamw"
learning_rate = 5e-4
lr_scheduler_type = "constant"
loss_type = "dapo"
max_steps = {steps}
seed = {seed}
{init}# A hit counts as a success whatever the format term says.
success_threshold = 0.9

[lora]
r = 16
alpha = 32

# The prompt ends with "click(": the completion is "x, y)". Reward: the point lies in the
# target's box (0.9) plus a small term for closing the call properly (0.1).
[[rewards]]
type = "point_in_box"
name = "hit"
extract = "regex"
pattern = '^\s*(\d+)\s*,\s*(\d+)'
target = "target_box"
weight = 0.9

[[rewards]]
type = "regex"
name = "format"
pattern = '(?s)\s*\d+,\s*\d+\).*'
weight = 0.1
"#,
        model = q(model),
        out = q(out),
        train = q(&out.join("train.jsonl")),
        steps = o.steps,
        per_step = PROMPTS_PER_STEP,
        seed = o.seed,
        init = if o.warm_start > 0 {
            format!(
                "# The warm start's adapter (sft.toml) is where GRPO starts.\ninit_adapter = {}\n",
                q(&sft_adapter(out))
            )
        } else {
            String::new()
        },
    )
}

fn sft_adapter(out: &Path) -> PathBuf {
    out.join("sft").join("adapter")
}

/// The warm start's config (`edgerl sft`, TRL SFTConfig names): one epoch of `sft.jsonl`, the
/// GRPO run's LoRA shape.
fn sft_toml(model: &Path, out: &Path, o: &DemoOptions) -> String {
    let q = |p: &Path| toml::Value::String(p.display().to_string());
    format!(
        r#"# Written by `edgerl demo --warm-start {steps}`: supervised warm start on generated screens
# answered with the target's centre ("click(x,y)"); run.toml's GRPO starts from its adapter.
model = {model}
output_dir = {sft_out}
dataset = {data}
per_device_train_batch_size = {batch}
max_steps = {steps}
optimizer = "adamw"
learning_rate = {lr}
lr_scheduler_type = "constant"
seed = {seed}

[lora]
r = 16
alpha = 32
"#,
        model = q(model),
        sft_out = q(&out.join("sft")),
        data = q(&out.join("sft.jsonl")),
        batch = SFT_BATCH,
        steps = o.warm_start,
        lr = SFT_LEARNING_RATE,
        seed = o.seed,
    )
}

fn summary(r: &EvalReport) -> (f64, f64) {
    (r.accuracy, r.mean_reward)
}

/// Runs the demo; `on_step` sees each training step's metrics, `on_phase` names what starts.
/// With a warm start, `on_step` sees the SFT steps' metrics first (`loss`, no `reward`).
pub fn run(
    gpu: &Gpu,
    o: &DemoOptions,
    mut on_phase: impl FnMut(&str),
    mut on_step: impl FnMut(&Map<String, Value>),
) -> Result<DemoReport> {
    if o.steps == 0 || o.eval_screens == 0 {
        return Err(Error::Invalid(
            "--steps and --eval-screens must be at least 1".into(),
        ));
    }
    if o.vision && o.model.is_none() {
        return Err(Error::Invalid(
            "--vision needs --model: a SmolVLM / Idefics3 directory (e.g. `edgerl fetch hf:HuggingFaceTB/SmolVLM-256M-Instruct`)".into(),
        ));
    }
    let started = std::time::Instant::now();
    let model = resolve_model(o.model.as_deref(), true, &mut on_phase)?;
    let out = &o.output_dir;
    std::fs::create_dir_all(out).map_err(|e| Error::file(out, format!("cannot create: {e}")))?;
    let out = out.canonicalize().map_err(|e| Error::file(out, e))?;
    let model = model.canonicalize().map_err(|e| Error::file(&model, e))?;
    let files = if o.vision {
        let mut files = write_vision_sets(&out, o)?;
        crate::io::write_atomic(&out.join("run.toml"), run_toml(&model, &out, o).as_bytes())?;
        if o.warm_start > 0 {
            // SFT on the screenshots (`edgerl sft`'s vision rows), then GRPO from its adapter.
            let path = out.join("sft.toml");
            crate::io::write_atomic(&path, sft_toml(&model, &out, o).as_bytes())?;
            files.sft_toml = Some(path);
        }
        files
    } else {
        write_text_sets(&out, &model, o)?
    };
    let (heldout, config_path) = (files.heldout.clone(), out.join("run.toml"));
    let sft_config = match &files.sft_toml {
        Some(p) => Some(crate::rl::sft::SftConfig::from_file(p)?),
        None => None,
    };
    let cfg = TrainConfig::from_file(&config_path)?;

    let eval_opts = EvalOptions {
        dataset: Some(heldout),
        ..EvalOptions::default()
    };
    on_phase("measuring held-out accuracy before training");
    let before = evaluate(gpu, &cfg, None, eval_opts.clone())?;
    before.write_completions(&out.join("heldout-before.jsonl"))?;
    let (mut after_sft, mut sft_seconds, mut sft_adapter_dir) = (None, 0.0, None);
    if let Some(sft_cfg) = sft_config {
        on_phase(&format!(
            "warm start: {} SFT steps on {} answered screens",
            o.warm_start,
            o.warm_start * SFT_BATCH
        ));
        let t0 = std::time::Instant::now();
        let dir = crate::rl::sft::sft(gpu, sft_cfg, true, &mut on_step)?;
        sft_seconds = t0.elapsed().as_secs_f64();
        if dir != sft_adapter(&out) {
            return Err(Error::Invalid(format!(
                "the warm start wrote its adapter to {}, not where run.toml's init_adapter points",
                dir.display()
            )));
        }
        on_phase("measuring held-out accuracy after the warm start");
        let r = evaluate(gpu, &cfg, Some(&dir), eval_opts.clone())?;
        r.write_completions(&out.join("heldout-after-sft.jsonl"))?;
        after_sft = Some(summary(&r));
        sft_adapter_dir = Some(dir);
    }
    on_phase("training");
    // As `edgerl train --config OUT/run.toml` runs it: "auto" settled by the memory plan.
    let mut train_cfg = cfg.clone();
    if let Some(why) = crate::plan::settle_auto_checkpointing(&mut train_cfg, gpu.max_binding) {
        log::info!("memory plan: {why}");
    }
    let t0 = std::time::Instant::now();
    let adapter = crate::rl::trainer::train_with(
        gpu,
        train_cfg,
        crate::rl::trainer::Start::Overwrite,
        on_step,
    )?;
    let train_seconds = t0.elapsed().as_secs_f64();
    on_phase("measuring held-out accuracy after training");
    let after = evaluate(gpu, &cfg, Some(&adapter), eval_opts)?;
    after.write_completions(&out.join("heldout-after.jsonl"))?;
    let (accuracy_before, reward_before) = summary(&before);
    let (accuracy_after, reward_after) = summary(&after);
    let report = DemoReport {
        model,
        device: format!("{} ({})", gpu.adapter.name, gpu.adapter.backend),
        eval_screens: o.eval_screens,
        accuracy_before,
        accuracy_after,
        reward_before,
        reward_after,
        warm_start: o.warm_start,
        accuracy_after_sft: after_sft.map(|s| s.0),
        reward_after_sft: after_sft.map(|s| s.1),
        sft_seconds,
        sft_adapter: sft_adapter_dir,
        steps: o.steps,
        train_seconds,
        wall_seconds: started.elapsed().as_secs_f64(),
        peak_gpu_bytes: gpu.memory.peak(),
        adapter,
    };
    let text =
        serde_json::to_string_pretty(&json!(report)).map_err(|e| Error::Invalid(e.to_string()))?;
    crate::io::write_atomic(&out.join("demo.json"), text.as_bytes())?;
    Ok(report)
}

/// What [`write_data`] wrote (paths absolute).
#[derive(Clone, Debug, serde::Serialize)]
pub struct DemoData {
    pub output_dir: PathBuf,
    pub train: PathBuf,
    pub heldout: PathBuf,
    /// The warm start's answered screens (with `warm_start` > 0).
    pub sft: Option<PathBuf>,
    /// The GRPO and SFT configs (not written for screenshots by `write_data`: `run` writes
    /// run.toml once it knows the vision-language model).
    pub run_toml: Option<PathBuf>,
    pub sft_toml: Option<PathBuf>,
    /// Screenshots written under `output_dir/images/` (`vision`).
    pub images: usize,
}

/// The screens `run` trains and measures on, without a model or a GPU (`edgerl demo
/// --data-only`): train.jsonl, heldout.jsonl, sft.jsonl with a warm start, and run.toml /
/// sft.toml naming `o.model` (a path, a name `edgerl fetch` knows, or SmolLM2's cache path;
/// nothing is fetched). With `o.vision` the same screens are drawn as PNG screenshots
/// ([`render`]) and the rows are TRL vision rows (`images` column, an image part in the user
/// turn, boxes in the screenshot's pixels) — data for vision-language trainers; no configs.
pub fn write_data(o: &DemoOptions) -> Result<DemoData> {
    let out = &o.output_dir;
    std::fs::create_dir_all(out).map_err(|e| Error::file(out, format!("cannot create: {e}")))?;
    let out = out.canonicalize().map_err(|e| Error::file(out, e))?;
    if !o.vision {
        let model = resolve_model(o.model.as_deref(), false, &mut |_| {})?;
        let model = model.canonicalize().unwrap_or(model);
        return write_text_sets(&out, &model, o);
    }
    write_vision_sets(&out, o)
}

/// The screens as screenshots and TRL vision rows, in `out` (absolute); no configs.
fn write_vision_sets(out: &Path, o: &DemoOptions) -> Result<DemoData> {
    let out = out.to_path_buf();
    let train_rows = o.steps * PROMPTS_PER_STEP;
    let sets = [
        ("train", o.seed, train_rows, render::vision_row as fn(&screens::Screen, &str) -> Value),
        ("heldout", o.seed ^ HELDOUT_SEED, o.eval_screens, render::vision_row),
        ("sft", o.seed ^ SFT_SEED, o.warm_start * SFT_BATCH, render::vision_sft_row),
    ];
    let mut paths = Vec::new();
    for (name, seed, n, row) in sets {
        if n == 0 {
            paths.push(None);
            continue;
        }
        let text = render::write_screenshots(&out, name, seed, n, o.elements, row)?;
        let path = out.join(format!("{name}.jsonl"));
        crate::io::write_atomic(&path, text.as_bytes())?;
        paths.push(Some(path));
    }
    Ok(DemoData {
        output_dir: out.clone(),
        train: paths[0].clone().unwrap_or_else(|| out.join("train.jsonl")),
        heldout: paths[1].clone().unwrap_or_else(|| out.join("heldout.jsonl")),
        sft: paths[2].clone(),
        run_toml: None,
        sft_toml: None,
        images: train_rows + o.eval_screens + o.warm_start * SFT_BATCH,
    })
}

/// The text screens and configs, in `out` (absolute) for `model`.
fn write_text_sets(out: &Path, model: &Path, o: &DemoOptions) -> Result<DemoData> {
    // Training screens and held-out screens come from different seeds.
    let train_rows = o.steps * PROMPTS_PER_STEP;
    let train = out.join("train.jsonl");
    crate::io::write_atomic(&train, screens::dataset(o.seed, train_rows, o.elements).as_bytes())?;
    let heldout = out.join("heldout.jsonl");
    crate::io::write_atomic(
        &heldout,
        screens::dataset(o.seed ^ HELDOUT_SEED, o.eval_screens, o.elements).as_bytes(),
    )?;
    let (mut sft, mut sft_config) = (None, None);
    if o.warm_start > 0 {
        let path = out.join("sft.jsonl");
        crate::io::write_atomic(
            &path,
            screens::sft_dataset(o.seed ^ SFT_SEED, o.warm_start * SFT_BATCH, o.elements).as_bytes(),
        )?;
        sft = Some(path);
        let path = out.join("sft.toml");
        crate::io::write_atomic(&path, sft_toml(model, out, o).as_bytes())?;
        sft_config = Some(path);
    }
    let config_path = out.join("run.toml");
    crate::io::write_atomic(&config_path, run_toml(model, out, o).as_bytes())?;
    Ok(DemoData {
        output_dir: out.to_path_buf(),
        train,
        heldout,
        sft,
        run_toml: Some(config_path),
        sft_toml: sft_config,
        images: 0,
    })
}

/// `--model`: a path as given; a name `edgerl fetch` knows (`smollm2`, `gemma3-270m`; and no
/// such path), fetched into the cache when missing if `fetch`, else its cache path; none:
/// SmolLM2-135M-Instruct.
#[cfg(feature = "fetch")]
fn resolve_model(m: Option<&Path>, fetch: bool, on_phase: &mut impl FnMut(&str)) -> Result<PathBuf> {
    let k = match m {
        Some(m) if m.exists() => return Ok(m.to_path_buf()),
        Some(m) => match crate::fetch::KNOWN.iter().find(|k| m.to_str() == Some(k.name)) {
            Some(k) => *k,
            None => return Ok(m.to_path_buf()),
        },
        None => &crate::fetch::SMOLLM2,
    };
    if !fetch {
        return Ok(crate::fetch::model_path(k));
    }
    if let Some(p) = crate::fetch::cached(k) {
        return Ok(p);
    }
    on_phase(&format!("fetching {} ({})", k.name, k.file));
    crate::fetch::fetch(k, None, true)
}

#[cfg(not(feature = "fetch"))]
fn resolve_model(m: Option<&Path>, _: bool, _: &mut impl FnMut(&str)) -> Result<PathBuf> {
    m.map(Path::to_path_buf).ok_or_else(|| {
        Error::Invalid("built without the `fetch` feature: give --model a path".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_config_parses_and_matches_the_dataset() {
        let o = DemoOptions::default();
        let text = run_toml(Path::new("/m/model.gguf"), Path::new("/out dir/x"), &o);
        let cfg = TrainConfig::from_toml(&text).expect("demo run.toml parses");
        assert_eq!(cfg.prompts_per_step, PROMPTS_PER_STEP);
        assert_eq!(cfg.max_steps, o.steps);
        assert_eq!(cfg.rewards.len(), 2);
        assert_eq!(cfg.dataset.unwrap(), Path::new("/out dir/x/train.jsonl"));
        assert_eq!(
            cfg.init_adapter, None,
            "no warm start: GRPO starts from a fresh adapter"
        );
    }

    #[test]
    fn with_a_warm_start_grpo_starts_from_the_sft_adapter() {
        let o = DemoOptions {
            warm_start: 3,
            ..DemoOptions::default()
        };
        let (model, out) = (Path::new("/m/model.gguf"), Path::new("/out dir/x"));
        let cfg = TrainConfig::from_toml(&run_toml(model, out, &o)).unwrap();
        assert_eq!(
            cfg.init_adapter.unwrap(),
            Path::new("/out dir/x/sft/adapter")
        );
        let sft = crate::rl::sft::SftConfig::from_toml(&sft_toml(model, out, &o))
            .expect("demo sft.toml parses");
        assert_eq!(sft.train.max_steps, 3);
        assert_eq!(sft.per_device_train_batch_size, SFT_BATCH);
        assert_eq!(sft.dataset, Path::new("/out dir/x/sft.jsonl"));
        assert_eq!(sft.train.output_dir.join("adapter"), sft_adapter(out));
        let (a, b) = (sft.train.lora.unwrap(), cfg.lora.unwrap());
        assert_eq!((a.r, a.alpha), (b.r, b.alpha), "the GRPO run's LoRA shape");
    }

    /// The warm start's examples are right by construction: each completion, read after the
    /// GRPO prompt's "click(", gets the full reward under the demo's own rules.
    #[test]
    fn sft_examples_score_the_full_reward() {
        let cfg = TrainConfig::from_toml(&run_toml(
            Path::new("/m"),
            Path::new("/o"),
            &DemoOptions::default(),
        ))
        .unwrap();
        let rules = crate::reward::RewardSet::new(&cfg.rewards, cfg.reward_all_or_nothing).unwrap();
        for elements in 2..=6 {
            let text = screens::sft_dataset(SFT_SEED, 100, elements);
            for line in text.lines() {
                let Value::Object(mut row) = serde_json::from_str(line).unwrap() else {
                    panic!("{line}")
                };
                let completion = row.remove("completion").unwrap();
                let said = completion[0]["content"].as_str().unwrap();
                let answer = said
                    .strip_prefix("click(")
                    .expect("the answer starts the call");
                let s = rules.score(answer, 4, &row).unwrap();
                assert!((s.total - 1.0).abs() < 1e-12, "{answer} for {row:?}: {s:?}");
                assert!(s.total >= cfg.success_threshold);
                assert_eq!(s.per_rule, vec![1.0, 1.0]);
            }
        }
        // The three screen sets differ.
        let firsts = [0, HELDOUT_SEED, SFT_SEED].map(|k| screens::dataset(k, 4, 3));
        assert!(firsts[0] != firsts[1] && firsts[1] != firsts[2] && firsts[0] != firsts[2]);
    }

    #[test]
    fn data_only_writes_what_run_trains_on() {
        let dir = std::env::temp_dir().join(format!("edgerl-demo-data-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let o = DemoOptions {
            output_dir: dir.clone(),
            model: Some(PathBuf::from("/nowhere/model.gguf")),
            steps: 3,
            eval_screens: 5,
            warm_start: 1,
            ..DemoOptions::default()
        };
        let d = write_data(&o).unwrap();
        let cfg = TrainConfig::from_file(d.run_toml.as_ref().unwrap()).unwrap();
        assert_eq!(cfg.model, Path::new("/nowhere/model.gguf"));
        assert_eq!(cfg.dataset.as_deref(), Some(d.train.as_path()));
        let text = std::fs::read_to_string(&d.train).unwrap();
        assert_eq!(text, screens::dataset(o.seed, 3 * PROMPTS_PER_STEP, o.elements));
        assert_eq!(std::fs::read_to_string(&d.heldout).unwrap().lines().count(), 5);
        assert_eq!(std::fs::read_to_string(d.sft.unwrap()).unwrap().lines().count(), SFT_BATCH);
        assert!(d.sft_toml.is_some() && d.images == 0);

        let v = write_data(&DemoOptions { warm_start: 0, vision: true, ..o }).unwrap();
        assert_eq!((v.images, v.run_toml, v.sft), (3 * PROMPTS_PER_STEP + 5, None, None));
        let rows: Vec<Value> = std::fs::read_to_string(&v.heldout).unwrap().lines()
            .map(|l| serde_json::from_str(l).unwrap()).collect();
        let text_rows: Vec<Value> = screens::dataset(HELDOUT_SEED, 5, 3).lines()
            .map(|l| serde_json::from_str(l).unwrap()).collect();
        for (r, t) in rows.iter().zip(&text_rows) {
            assert_eq!(r["target_box"], t["target_box"]);
            assert!(dir.join(r["images"][0].as_str().unwrap()).is_file());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
