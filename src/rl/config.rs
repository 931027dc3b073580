//! `run.toml`: the training configuration, with TRL's key names and defaults. Unknown keys are
//! an error that names the key; relative paths are relative to the file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::lora::peft::MAX_RANK;
use crate::lora::{LoraConfig, Target};

mod kinds;
#[cfg(test)]
mod tests;

pub use kinds::*;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraSection {
    #[serde(default = "d_r")]
    pub r: usize,
    #[serde(default = "d_alpha")]
    pub alpha: f32,
    #[serde(default)]
    pub use_rslora: bool,
    #[serde(default = "d_targets")]
    pub target_modules: Vec<String>,
}

fn d_r() -> usize {
    16
}
fn d_alpha() -> f32 {
    32.0
}
fn d_targets() -> Vec<String> {
    Target::ALL.iter().map(|t| t.name().to_string()).collect()
}

impl Default for LoraSection {
    fn default() -> Self {
        LoraSection {
            r: d_r(),
            alpha: d_alpha(),
            use_rslora: false,
            target_modules: d_targets(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub model: PathBuf,
    pub output_dir: PathBuf,
    /// Offline training on given completions (no sampling).
    pub rollouts: Option<PathBuf>,
    /// Online training: prompts (JSONL, TRL's `prompt` column) sampled on the device and
    /// scored by the `[[rewards]]` rules.
    pub dataset: Option<PathBuf>,
    /// Completions sampled per prompt (G).
    #[serde(default = "d_generations")]
    pub num_generations: usize,
    /// Sampling filters (0 / 1.0 / 0.0 = off), with `temperature`.
    #[serde(default)]
    pub top_k: usize,
    #[serde(default = "d_one")]
    pub top_p: f64,
    #[serde(default)]
    pub min_p: f64,
    /// Text that ends a completion early.
    #[serde(default)]
    pub stop: Vec<String>,
    #[serde(default)]
    pub rewards: Vec<crate::reward::RuleConfig>,
    /// The reward is the weighted sum only when every (non-length) rule is at its maximum.
    #[serde(default)]
    pub reward_all_or_nothing: bool,
    /// `edgerl eval`: a completion whose reward reaches this counts as a success (accuracy).
    #[serde(default = "d_one")]
    pub success_threshold: f64,
    /// Save a checkpoint every this many optimizer steps (0: only at the end).
    #[serde(default)]
    pub save_steps: usize,
    /// Online: replace groups whose rewards are all equal with fresh prompts (DAPO).
    #[serde(default)]
    pub dynamic_sampling: bool,
    /// Extra sampling rounds dynamic sampling may spend per batch.
    #[serde(default = "d_refill")]
    pub max_refill: usize,
    /// A PEFT adapter to start from; its adapter_config.json fixes r, alpha and targets.
    pub init_adapter: Option<PathBuf>,
    #[serde(default = "d_optimizer")]
    pub optimizer: Optimizer,
    #[serde(default = "d_lr")]
    pub learning_rate: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "d_beta1")]
    pub adam_beta1: f64,
    #[serde(default = "d_beta2")]
    pub adam_beta2: f64,
    #[serde(default = "d_adam_eps")]
    pub adam_epsilon: f64,
    #[serde(default = "d_one")]
    pub max_grad_norm: f64,
    #[serde(default = "d_schedule")]
    pub lr_scheduler_type: Schedule,
    #[serde(default)]
    pub warmup_steps: usize,
    #[serde(default)]
    pub warmup_ratio: f64,
    #[serde(default = "d_loss")]
    pub loss_type: LossType,
    #[serde(default = "d_scale")]
    pub scale_rewards: ScaleRewards,
    #[serde(default = "d_advantage")]
    pub advantage: Advantage,
    #[serde(default = "d_lambda")]
    pub w_reinforce_lambda: f64,
    #[serde(default = "d_one")]
    pub temperature: f64,
    #[serde(default = "d_max_completion")]
    pub max_completion_length: usize,
    #[serde(default)]
    pub beta: f64,
    #[serde(default = "d_epsilon")]
    pub epsilon: f64,
    /// Defaults to `epsilon`.
    pub epsilon_high: Option<f64>,
    /// Caps the ratio of the unclipped branch (two-sided clipping).
    pub delta: Option<f64>,
    #[serde(default = "d_is")]
    pub importance_sampling_level: ImportanceSampling,
    #[serde(default)]
    pub entropy_coef: f64,
    /// Dataset column holding a per-prompt loss weight (GUI-G1's difficulty weight).
    pub weight_column: Option<String>,
    /// Weigh each group's loss by its difficulty, 1 − (pass rate): the fraction of its
    /// completions whose reward is below `success_threshold` (GUI-G1's difficulty-aware
    /// scaling, computed from the group instead of a precomputed column). Multiplies the
    /// `weight_column` weight when both are given. Not a TRL key.
    #[serde(default)]
    pub difficulty_weight: bool,
    /// `loss_type = "dr_grpo"`: the constant each completion's summed token loss is divided by
    /// (times the number of completions). Default: `max_completion_length`, as TRL does; a
    /// fixed value (GUI-G1 uses 64) keeps the effective learning rate independent of the
    /// length cap. Not a TRL key.
    pub loss_divisor: Option<f64>,
    /// Online: visit the dataset in a fresh random order every epoch (a permutation that is a
    /// function of `seed` and the epoch, so a resumed run draws the same rows). TRL's key and
    /// TRL's default (true); `false` visits the rows in file order, cycling. Checkpoints
    /// written before the default changed carry no `shuffle_dataset` key and were written in
    /// file order: they resume only with `shuffle_dataset = false` (see `fingerprint`).
    #[serde(default = "d_true")]
    pub shuffle_dataset: bool,
    /// TRL's truncated / masked importance sampling against the sampler's log-probs: each
    /// policy-gradient term is multiplied by a weight from exp(lp_old − lp_sampler)
    /// (`vllm_importance_sampling_mode`). TRL defaults to true (with vLLM); edgerl to false.
    #[serde(default)]
    pub vllm_importance_sampling_correction: bool,
    /// TRL's default: `sequence_mask`.
    #[serde(default = "d_is_mode")]
    pub vllm_importance_sampling_mode: IsMode,
    /// C_max (TRL's default 3.0; `inf`: no upper bound, TRL's None).
    pub vllm_importance_sampling_clip_max: Option<f64>,
    /// C_min (default: no lower bound).
    pub vllm_importance_sampling_clip_min: Option<f64>,
    /// TRL's deprecated name of `vllm_importance_sampling_clip_max`.
    pub vllm_importance_sampling_cap: Option<f64>,
    /// IcePop (not a TRL key): tokens whose ratio k = exp(lp_old − lp_sampler) leaves
    /// [1/β, β] are masked out, the others weighted by k, i.e. `token_mask` with
    /// [1/icepop_beta, icepop_beta]. Off by default; exclusive with the vllm_* correction.
    pub icepop_beta: Option<f64>,
    /// Which sampler log-probs the correction uses (not a TRL key; default `processed`, as TRL).
    #[serde(default = "d_sampler_logprobs")]
    pub sampler_logprobs: SamplerLogprobs,
    #[serde(default)]
    pub mask_truncated_completions: bool,
    #[serde(default = "d_one_usize")]
    pub num_iterations: usize,
    #[serde(default = "d_one_usize")]
    pub max_steps: usize,
    #[serde(default = "d_one_usize")]
    pub prompts_per_step: usize,
    #[serde(default)]
    pub seed: u64,
    /// Keep only each layer's input and recompute the layer in the backward pass; `"auto"`:
    /// the memory plan decides per run (see `Checkpointing`).
    #[serde(default)]
    pub gradient_checkpointing: Checkpointing,
    /// Not a key: whether sampling keeps each group's activations for the step's forward pass
    /// when checkpointing is off (`Trainer::keeps_rollouts`). Only the memory plan sets it
    /// (`"auto"`, a memory budget: `PlanInput::keep_rollouts`), as it holds every group's
    /// activations at once: an unplanned run keeps one pass's, as configured.
    #[serde(skip_deserializing)]
    pub keep_rollouts: bool,
    #[serde(default)]
    pub lora: Option<LoraSection>,
    /// `edgerl train` stops (after a checkpoint) once this many consecutive steps had a NaN/Inf
    /// loss or gradient and were skipped; 0: never stops for that.
    #[serde(default = "d_max_skips")]
    pub max_consecutive_skips: usize,
}

fn d_is_mode() -> IsMode {
    IsMode::SequenceMask
}
fn d_sampler_logprobs() -> SamplerLogprobs {
    SamplerLogprobs::Processed
}

fn d_max_skips() -> usize {
    5
}

fn d_optimizer() -> Optimizer {
    Optimizer::Adamw
}
fn d_lr() -> f64 {
    1e-6
}
fn d_beta1() -> f64 {
    0.9
}
fn d_beta2() -> f64 {
    0.999
}
fn d_adam_eps() -> f64 {
    1e-8
}
fn d_one() -> f64 {
    1.0
}
fn d_refill() -> usize {
    3
}
fn d_generations() -> usize {
    8
}
fn d_one_usize() -> usize {
    1
}
fn d_true() -> bool {
    true
}
fn d_schedule() -> Schedule {
    Schedule::Linear
}
fn d_loss() -> LossType {
    LossType::Dapo
}
fn d_scale() -> ScaleRewards {
    ScaleRewards::Group
}
fn d_advantage() -> Advantage {
    Advantage::Grpo
}
fn d_lambda() -> f64 {
    0.1
}
fn d_max_completion() -> usize {
    256
}
fn d_epsilon() -> f64 {
    0.2
}
fn d_is() -> ImportanceSampling {
    ImportanceSampling::Token
}

/// Upper bounds of `validate` (see there); `[lora] r` is bounded by [`MAX_RANK`], as adapters are.
pub const MAX_GENERATIONS: usize = 4096;
pub const MAX_PROMPTS: usize = 1 << 16;
pub const MAX_COMPLETION: usize = 1 << 20;
pub const MAX_ITERATIONS: usize = 1024;
pub const MAX_REFILL: usize = 1024;
/// The largest vocabulary a model may have (`ModelConfig`); a larger `top_k` means nothing more.
pub const MAX_TOP_K: usize = 1 << 24;

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl TrainConfig {
    pub fn from_file(path: &Path) -> Result<TrainConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        let mut c = TrainConfig::from_toml(&text).map_err(|e| Error::file(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        c.model = resolve(base, &c.model);
        c.output_dir = resolve(base, &c.output_dir);
        c.rollouts = c.rollouts.as_ref().map(|p| resolve(base, p));
        c.dataset = c.dataset.as_ref().map(|p| resolve(base, p));
        c.init_adapter = c.init_adapter.as_ref().map(|p| resolve(base, p));
        Ok(c)
    }

    pub fn from_toml(text: &str) -> std::result::Result<TrainConfig, String> {
        let c: TrainConfig =
            toml::from_str(text).map_err(|e| e.to_string().trim().replace('\n', " "))?;
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let pos = |name: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(format!("`{name}` must be > 0, got {v}"))
            }
        };
        pos("temperature", self.temperature)?;
        pos("learning_rate", self.learning_rate)?;
        if !(0.0..1.0).contains(&self.epsilon) {
            return Err(format!("`epsilon` must be in [0, 1), got {}", self.epsilon));
        }
        for (k, v) in [
            ("max_completion_length", self.max_completion_length),
            ("max_steps", self.max_steps),
            ("prompts_per_step", self.prompts_per_step),
            ("num_iterations", self.num_iterations),
        ] {
            if v == 0 {
                return Err(format!("`{k}` must be at least 1"));
            }
        }
        // Counts that size buffers or loops get upper bounds far above any real run, so a typo
        // is an error naming the key rather than an allocation that aborts the process (over
        // the C ABI, the host app); the memory planner then refuses what the device can't hold.
        for (k, v, max) in [
            ("num_generations", self.num_generations, MAX_GENERATIONS),
            ("prompts_per_step", self.prompts_per_step, MAX_PROMPTS),
            (
                "max_completion_length",
                self.max_completion_length,
                MAX_COMPLETION,
            ),
            ("num_iterations", self.num_iterations, MAX_ITERATIONS),
            ("max_refill", self.max_refill, MAX_REFILL),
            ("top_k", self.top_k, MAX_TOP_K),
        ] {
            if v > max {
                return Err(format!(
                    "`{k}` = {v} is larger than edgerl supports (at most {max})"
                ));
            }
        }
        if let Some(l) = &self.lora
            && l.r > MAX_RANK
        {
            return Err(format!(
                "[lora] `r` = {} is larger than edgerl supports (at most {MAX_RANK})",
                l.r
            ));
        }
        if self.beta < 0.0 || self.max_grad_norm < 0.0 || self.weight_decay < 0.0 {
            return Err("`beta`, `max_grad_norm` and `weight_decay` must be >= 0".into());
        }
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            return Err(format!(
                "`warmup_ratio` must be in [0, 1], got {}",
                self.warmup_ratio
            ));
        }
        match (&self.rollouts, &self.dataset) {
            (Some(_), Some(_)) => {
                return Err("give `rollouts` (offline) or `dataset` (online), not both".into());
            }
            (None, None) => {
                return Err(
                    "needs `dataset` (prompts to sample) or `rollouts` (given completions)".into(),
                );
            }
            (Some(_), None) if !self.rewards.is_empty() => {
                return Err("`[[rewards]]` score sampled completions; offline `rollouts` carry their own rewards".into());
            }
            (None, Some(_)) if self.rewards.is_empty() => {
                return Err("online training needs at least one `[[rewards]]` rule".into());
            }
            _ => {}
        }
        if self.num_generations == 0 {
            return Err("`num_generations` must be at least 1".into());
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0 && (0.0..=1.0).contains(&self.min_p)) {
            return Err("`top_p` must be in (0, 1] and `min_p` in [0, 1]".into());
        }
        if let Some(d) = self.loss_divisor {
            pos("loss_divisor", d)?;
            if self.loss_type != LossType::DrGrpo {
                return Err(format!(
                    "`loss_divisor` applies to loss_type = \"dr_grpo\" (got {:?}); the other loss types divide by token counts",
                    self.loss_type
                ));
            }
        }
        self.check_sampler_correction()?;
        if self.stop.iter().any(|s| s.is_empty()) {
            return Err("`stop` strings must not be empty".into());
        }
        crate::reward::RewardSet::new(&self.rewards, self.reward_all_or_nothing)
            .map_err(|e| e.to_string())?;
        if let Some(l) = &self.lora {
            self.lora_config_from(l)?;
        }
        Ok(())
    }

    fn lora_config_from(&self, l: &LoraSection) -> std::result::Result<LoraConfig, String> {
        let mut targets = Vec::new();
        for m in &l.target_modules {
            let t = Target::parse(m).ok_or_else(|| format!("[lora] target module {m:?} is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"))?;
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
        targets.sort();
        if l.r == 0 || targets.is_empty() {
            return Err("[lora] needs r >= 1 and at least one target module".into());
        }
        if !(l.alpha.is_finite() && l.alpha > 0.0) {
            return Err(format!("[lora] alpha must be a finite number > 0, got {}", l.alpha));
        }
        Ok(LoraConfig {
            r: l.r,
            alpha: l.alpha,
            use_rslora: l.use_rslora,
            targets,
        })
    }

    /// The adapter shape for a fresh adapter ([lora] section, or its defaults).
    pub fn lora_config(&self) -> Result<LoraConfig> {
        self.lora_config_from(&self.lora.clone().unwrap_or_default())
            .map_err(Error::Invalid)
    }

    /// The sampling settings of rollouts (and of `eval`, at its own temperature).
    pub fn sampling(&self, temperature: f64) -> crate::model::SamplingOptions {
        crate::model::SamplingOptions {
            max_new_tokens: self.max_completion_length,
            temperature: temperature as f32,
            top_k: self.top_k,
            top_p: self.top_p as f32,
            min_p: self.min_p as f32,
            seed: self.seed,
        }
    }

    fn check_sampler_correction(&self) -> std::result::Result<(), String> {
        if self.vllm_importance_sampling_cap.is_some() && self.vllm_importance_sampling_clip_max.is_some() {
            return Err("give `vllm_importance_sampling_clip_max` or its deprecated name `vllm_importance_sampling_cap`, not both".into());
        }
        let max = self.vllm_importance_sampling_clip_max.or(self.vllm_importance_sampling_cap);
        for (k, v) in [("vllm_importance_sampling_clip_max", max), ("vllm_importance_sampling_clip_min", self.vllm_importance_sampling_clip_min)] {
            if v.is_some_and(|v| v.is_nan() || v < 0.0) {
                return Err(format!("`{k}` must be a number >= 0 (or inf), got {}", v.unwrap_or(0.0)));
            }
        }
        if let (Some(lo), Some(hi)) = (self.vllm_importance_sampling_clip_min, max)
            && lo > hi
        {
            return Err(format!("`vllm_importance_sampling_clip_min` ({lo}) is above `vllm_importance_sampling_clip_max` ({hi})"));
        }
        if let Some(b) = self.icepop_beta {
            if !(b.is_finite() && b > 1.0) {
                return Err(format!("`icepop_beta` must be a finite number > 1, got {b}"));
            }
            if self.vllm_importance_sampling_correction {
                return Err("`icepop_beta` is the token_mask correction with [1/β, β]: give it or `vllm_importance_sampling_correction`, not both".into());
            }
        }
        Ok(())
    }

    /// The importance-sampling correction against the sampler's log-probs, if any: TRL's
    /// `vllm_importance_sampling_*` keys, or IcePop (`icepop_beta`).
    pub fn sampler_correction(&self) -> Option<SamplerCorrection> {
        if let Some(b) = self.icepop_beta {
            return Some(SamplerCorrection { mode: IsMode::TokenMask, clip_min: 1.0 / b, clip_max: b });
        }
        self.vllm_importance_sampling_correction.then(|| SamplerCorrection {
            mode: self.vllm_importance_sampling_mode,
            clip_min: self.vllm_importance_sampling_clip_min.unwrap_or(f64::NEG_INFINITY),
            clip_max: self.vllm_importance_sampling_clip_max.or(self.vllm_importance_sampling_cap).unwrap_or(3.0),
        })
    }

    /// Dr. GRPO's per-completion divisor: `loss_divisor`, else `max_completion_length` (TRL).
    pub fn dr_grpo_divisor(&self) -> f64 {
        self.loss_divisor.unwrap_or(self.max_completion_length as f64)
    }

    pub fn epsilon_high(&self) -> f64 {
        self.epsilon_high.unwrap_or(self.epsilon)
    }

    /// Learning rate at optimizer step `step` (0-based) of `total`, with warmup.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        let warmup = if self.warmup_steps > 0 {
            self.warmup_steps
        } else {
            (self.warmup_ratio * total as f64).ceil() as usize
        };
        let lr = self.learning_rate;
        if step < warmup {
            return lr * step as f64 / warmup.max(1) as f64;
        }
        let progress = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
        match self.lr_scheduler_type {
            Schedule::Constant => lr,
            Schedule::Linear => lr * (1.0 - progress).max(0.0),
            Schedule::Cosine => lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        }
    }
}
