//! A training step's metrics, typed, under TRL's names: what `Trainer::step` returns, what
//! metrics.jsonl / .csv and the C sessions read.

use serde_json::{Map, Value, json};

/// The per-rule reward metrics of a step's sampling (TRL's `rewards/<rule>/mean|std`, rules in
/// config order) and, with `dynamic_sampling`, how many refill rounds it took.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RewardMetrics {
    pub rules: Vec<RuleReward>,
    /// `dynamic_sampling/refills`: present when dynamic sampling is on.
    pub refills: Option<usize>,
}

/// One rule's reward over the step's completions.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleReward {
    pub name: String,
    pub mean: f64,
    pub std: f64,
}

impl RewardMetrics {
    /// The metrics.jsonl keys: `rewards/<rule>/mean`, `rewards/<rule>/std`, then
    /// `dynamic_sampling/refills`.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        self.put_into(&mut m);
        m
    }

    fn put_into(&self, m: &mut Map<String, Value>) {
        for r in &self.rules {
            m.insert(format!("rewards/{}/mean", r.name), json!(r.mean));
            m.insert(format!("rewards/{}/std", r.name), json!(r.std));
        }
        if let Some(n) = self.refills {
            m.insert("dynamic_sampling/refills".into(), json!(n));
        }
    }

    /// Back from `to_map`'s keys (a checkpoint's `reward_metrics`); other keys are ignored, a
    /// value that is not a number (a NaN was written as null) reads as NaN.
    pub fn from_map(m: &Map<String, Value>) -> RewardMetrics {
        let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
        let mut rules: Vec<RuleReward> = Vec::new();
        let mut refills = None;
        for (k, v) in m {
            if k == "dynamic_sampling/refills" {
                refills = v.as_u64().map(|n| n as usize);
            } else if let Some(rest) = k.strip_prefix("rewards/") {
                let (name, stat) = match (rest.strip_suffix("/mean"), rest.strip_suffix("/std")) {
                    (Some(n), _) => (n, 0),
                    (_, Some(n)) => (n, 1),
                    _ => continue,
                };
                let i = match rules.iter().position(|r| r.name == name) {
                    Some(i) => i,
                    None => {
                        rules.push(RuleReward { name: name.to_string(), mean: f64::NAN, std: f64::NAN });
                        rules.len() - 1
                    }
                };
                if stat == 0 {
                    rules[i].mean = num(v);
                } else {
                    rules[i].std = num(v);
                }
            }
        }
        RewardMetrics { rules, refills }
    }
}

/// The sampler-mismatch metrics (TRL's `sampling/…`), present when a sampler correction
/// (IcePop or truncated importance sampling) is on.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SamplingMetrics {
    pub logp_difference_mean: f64,
    pub logp_difference_max: f64,
    pub importance_sampling_ratio_min: f64,
    pub importance_sampling_ratio_mean: f64,
    pub importance_sampling_ratio_max: f64,
}

/// One optimizer step's metrics, with TRL's names (see `to_map` for the metrics.jsonl keys).
/// `Option`s are the metrics TRL logs only under a condition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepMetrics {
    /// `step`: optimizer steps taken so far (this one included).
    pub step: usize,
    pub loss: f64,
    /// `reward`, `reward_std`, `frac_reward_zero_std`.
    pub reward: f64,
    pub reward_std: f64,
    pub frac_reward_zero_std: f64,
    /// `completions/mean_length`, `/min_length`, `/max_length` (loss tokens; `None` for an
    /// empty batch), `/clipped_ratio`.
    pub completion_mean_length: f64,
    pub completion_min_length: Option<usize>,
    pub completion_max_length: Option<usize>,
    pub clipped_ratio: f64,
    /// `kl`: only with `beta > 0`.
    pub kl: Option<f64>,
    pub entropy: f64,
    /// `sampling/…`: only with a sampler correction.
    pub sampling: Option<SamplingMetrics>,
    /// `clip_ratio/low_mean`, `/high_mean`, `/region_mean`.
    pub clip_ratio_low: f64,
    pub clip_ratio_high: f64,
    pub clip_ratio_region: f64,
    pub grad_norm: f64,
    pub learning_rate: f64,
    pub num_tokens: usize,
    pub skipped_steps: usize,
    /// `step_time`: seconds of the update (not of the sampling).
    pub step_time: f64,
    /// Filled by the front end from its sampling (`Trainer::sample_scored`); empty from `step`.
    pub rewards: RewardMetrics,
}

impl StepMetrics {
    /// The metrics.jsonl line's object: TRL's keys, the conditional ones only when present,
    /// then the reward metrics.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        put("step", json!(self.step));
        put("loss", json!(self.loss));
        put("reward", json!(self.reward));
        put("reward_std", json!(self.reward_std));
        put("frac_reward_zero_std", json!(self.frac_reward_zero_std));
        put("completions/mean_length", json!(self.completion_mean_length));
        put("completions/min_length", json!(self.completion_min_length));
        put("completions/max_length", json!(self.completion_max_length));
        put("completions/clipped_ratio", json!(self.clipped_ratio));
        if let Some(kl) = self.kl {
            put("kl", json!(kl));
        }
        put("entropy", json!(self.entropy));
        if let Some(s) = &self.sampling {
            put("sampling/sampling_logp_difference/mean", json!(s.logp_difference_mean));
            put("sampling/sampling_logp_difference/max", json!(s.logp_difference_max));
            put("sampling/importance_sampling_ratio/min", json!(s.importance_sampling_ratio_min));
            put("sampling/importance_sampling_ratio/mean", json!(s.importance_sampling_ratio_mean));
            put("sampling/importance_sampling_ratio/max", json!(s.importance_sampling_ratio_max));
        }
        put("clip_ratio/low_mean", json!(self.clip_ratio_low));
        put("clip_ratio/high_mean", json!(self.clip_ratio_high));
        put("clip_ratio/region_mean", json!(self.clip_ratio_region));
        put("grad_norm", json!(self.grad_norm));
        put("learning_rate", json!(self.learning_rate));
        put("num_tokens", json!(self.num_tokens));
        put("skipped_steps", json!(self.skipped_steps));
        put("step_time", json!(self.step_time));
        self.rewards.put_into(&mut m);
        m
    }
}
