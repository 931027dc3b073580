//! `edgerl demo`: a real pretrained model (SmolLM2-135M-Instruct, Q4_1 GGUF, fetched when
//! missing) gets better at GUI grounding through on-device GRPO. It writes generated phone
//! screens (train and held-out) and a run.toml into the output folder, measures held-out
//! accuracy, trains a LoRA adapter, and measures again. The run.toml is an ordinary training
//! config: `edgerl train --config OUT/run.toml` repeats the training step by hand.

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
    pub steps: usize,
    pub train_seconds: f64,
    pub wall_seconds: f64,
    pub peak_gpu_bytes: u64,
    pub adapter: PathBuf,
}

/// Screens per GRPO step; the training set has one fresh screen per prompt the run draws.
const PROMPTS_PER_STEP: usize = 2;

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
# A hit counts as a success whatever the format term says.
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
    )
}

fn summary(r: &EvalReport) -> (f64, f64) {
    (r.accuracy, r.mean_reward)
}

/// Runs the demo; `on_step` sees each training step's metrics, `on_phase` names what starts.
pub fn run(
    gpu: &Gpu,
    o: &DemoOptions,
    mut on_phase: impl FnMut(&str),
    on_step: impl FnMut(&Map<String, Value>),
) -> Result<DemoReport> {
    if o.steps == 0 || o.eval_screens == 0 {
        return Err(Error::Invalid(
            "--steps and --eval-screens must be at least 1".into(),
        ));
    }
    let started = std::time::Instant::now();
    let model = match &o.model {
        // A name `edgerl fetch` knows (and no such path): fetched into the cache when missing.
        Some(m) if !m.exists() => match known(m) {
            Some(k) => fetch_known(k, &mut on_phase)?,
            None => m.clone(),
        },
        Some(m) => m.clone(),
        None => fetch_known(&crate::fetch::SMOLLM2, &mut on_phase)?,
    };
    let out = &o.output_dir;
    std::fs::create_dir_all(out).map_err(|e| Error::file(out, format!("cannot create: {e}")))?;
    let out = out.canonicalize().map_err(|e| Error::file(out, e))?;
    let model = model.canonicalize().map_err(|e| Error::file(&model, e))?;
    // Training screens and held-out screens come from different seeds.
    let train_rows = o.steps * PROMPTS_PER_STEP;
    crate::io::write_atomic(
        &out.join("train.jsonl"),
        screens::dataset(o.seed, train_rows, o.elements).as_bytes(),
    )?;
    let heldout = out.join("heldout.jsonl");
    crate::io::write_atomic(
        &heldout,
        screens::dataset(o.seed ^ 0x5eed_0f4e_1d00, o.eval_screens, o.elements).as_bytes(),
    )?;
    let config_path = out.join("run.toml");
    crate::io::write_atomic(&config_path, run_toml(&model, &out, o).as_bytes())?;
    let cfg = TrainConfig::from_file(&config_path)?;

    let eval_opts = EvalOptions {
        dataset: Some(heldout),
        ..EvalOptions::default()
    };
    on_phase("measuring held-out accuracy before training");
    let before = evaluate(gpu, &cfg, None, eval_opts.clone())?;
    before.write_completions(&out.join("heldout-before.jsonl"))?;
    on_phase("training");
    let t0 = std::time::Instant::now();
    let adapter = crate::rl::trainer::train_with(gpu, cfg.clone(), crate::rl::trainer::Start::Overwrite, on_step)?;
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

/// The fetchable model `--model` names (`smollm2`, `gemma3-270m`).
fn known(m: &Path) -> Option<&'static crate::fetch::Known> {
    let name = m.to_str()?;
    crate::fetch::KNOWN.iter().copied().find(|k| k.name == name)
}

#[cfg(feature = "fetch")]
fn fetch_known(k: &crate::fetch::Known, on_phase: &mut impl FnMut(&str)) -> Result<PathBuf> {
    if let Some(p) = crate::fetch::cached(k) {
        return Ok(p);
    }
    on_phase(&format!("fetching {} ({})", k.name, k.file));
    crate::fetch::fetch(k, None, true)
}

#[cfg(not(feature = "fetch"))]
fn fetch_known(_: &crate::fetch::Known, _: &mut impl FnMut(&str)) -> Result<PathBuf> {
    Err(Error::Invalid(
        "built without the `fetch` feature: give --model a path".into(),
    ))
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
    }
}
