//! The sampling half of a GRPO step, shared by both front ends: `edgerl train` (run.rs) and the
//! C ABI's sessions (ffi/session.rs). Prompts with their data columns → `num_generations`
//! completions each → rewards (the `[[rewards]]` rules on the row's columns, plus the front
//! end's own reward if it has one) → groups with their weights (`weight_column` times
//! `difficulty_weight`). The front end then builds the batch (`Trainer::batch`) and steps.

use serde_json::{Map, Value, json};

use super::config::TrainConfig;
use super::rollouts::Group;
use super::trainer::{RewardMetrics, RuleReward, Trainer};
use crate::error::{Error, Result};
use crate::reward::RewardSet;

/// One prompt of a step: its token ids and its data columns (a dataset row without `prompt`).
pub struct Prompted<'a> {
    pub ids: Vec<u32>,
    pub columns: &'a Map<String, Value>,
    /// The features of the prompt's image tokens (`prompt_with_images`).
    pub images: Option<super::rollouts::ImageFeatures>,
}

/// Sampled groups, their per-rule reward metrics, and one log line per completion.
pub type Sampled = (Vec<Group>, RewardMetrics, Vec<Value>);

/// What a front end adds to a step's sampling. The defaults are the CLI's: no lock, no
/// progress, no cancel, no reward of its own.
pub trait Hooks {
    type Error: From<Error>;

    /// Runs GPU work (the C ABI holds its runtime's lock around it).
    fn gpu<T>(&mut self, f: impl FnOnce() -> Result<T>) -> std::result::Result<T, Self::Error> {
        f().map_err(Into::into)
    }

    /// Before each prompt is sampled and each completion scored (a cancel check).
    fn check(&mut self) -> std::result::Result<(), Self::Error> {
        Ok(())
    }

    /// After prompt `j` (of `n`) was sampled.
    fn sampled(&mut self, _j: usize, _n: usize) -> std::result::Result<(), Self::Error> {
        Ok(())
    }

    /// The front end's own reward for completion `k` of prompt `j`, added to the rules' total
    /// (`None`: it has none).
    fn reward(&mut self, _j: usize, _k: usize, _text: &str) -> std::result::Result<Option<f64>, Self::Error> {
        Ok(None)
    }

    /// After one round of `sample_refilled` (its prompts are draws `base..`) was sampled and
    /// scored, before dynamic sampling keeps or drops its groups: a front end whose rewards come
    /// a round at a time (the Python package calls its reward functions once with every
    /// completion, as TRL does) adds them here, to the groups' rewards and weights, the log
    /// lines and the metrics.
    fn round(&mut self, _base: usize, _sampled: &mut Sampled) -> std::result::Result<(), Self::Error> {
        Ok(())
    }
}

/// The CLI's hooks: none.
pub struct NoHooks;

impl Hooks for NoHooks {
    type Error = Error;
}

/// The weight of a row's group before its rewards are known: its `weight_column` value (1
/// without one).
pub fn column_weight(cfg: &TrainConfig, columns: &Map<String, Value>) -> Result<f64> {
    match &cfg.weight_column {
        None => Ok(1.0),
        Some(col) => columns.get(col).and_then(|v| v.as_f64()).filter(|w| w.is_finite()).ok_or_else(|| {
            Error::Invalid(format!("dataset: weight column `{col}` is missing or not a number"))
        }),
    }
}

/// The group's difficulty weight when `difficulty_weight` is on (else 1); it multiplies the
/// `weight_column` weight.
pub fn difficulty(cfg: &TrainConfig, rewards: &[f64]) -> f64 {
    if cfg.difficulty_weight {
        super::loss::difficulty_weight(rewards, cfg.success_threshold)
    } else {
        1.0
    }
}

/// The sampling stream of batch `b` (optimizer step / num_iterations); dynamic sampling's
/// refill rounds take `b | refill << 40`. Prompt `j` of the stream samples with seed stream
/// `stream · 2^20 + j`.
pub fn prompt_stream(stream: u64, j: usize) -> u64 {
    stream.wrapping_mul(1 << 20) + j as u64
}

impl Trainer<'_> {
    /// Samples `num_generations` completions for each prompt with the current adapter and
    /// scores each: `rules` on the prompt's columns (none: 0) plus `hooks.reward` (at least
    /// one of the two should give a reward). Every prompt is sampled before the first
    /// completion is scored. Returns the groups, the per-rule reward metrics, and one log
    /// line per completion.
    pub fn sample_scored<H: Hooks>(
        &self,
        prompts: &[Prompted],
        stream: u64,
        rules: Option<&RewardSet>,
        hooks: &mut H,
    ) -> std::result::Result<Sampled, H::Error> {
        let cfg = &self.cfg;
        let tok = self.tokenizer.as_ref().ok_or_else(|| Error::Invalid("sampling needs the model's tokenizer".into()))?;
        let weights: Vec<f64> = prompts.iter().map(|p| column_weight(cfg, p.columns)).collect::<Result<_>>()?;
        let sampler = self.sampler(cfg.max_completion_length);
        self.forget_stale_kept();
        let mut sampled = Vec::with_capacity(prompts.len());
        for (j, p) in prompts.iter().enumerate() {
            hooks.check()?;
            let images = p.images.as_ref().map(|f| &*f.0);
            let g = cfg.num_generations;
            let completions = if self.keeps_rollouts() {
                let (completions, kept) = hooks.gpu(|| sampler.sample_keeping(&p.ids, images, g, prompt_stream(stream, j)))?;
                if let Some(kept) = kept {
                    self.keep_rollout(&p.ids, completions.iter().map(|c| c.ids.clone()).collect(), kept);
                }
                completions
            } else {
                hooks.gpu(|| sampler.sample_with_images(&p.ids, images, g, prompt_stream(stream, j)))?
            };
            sampled.push(completions);
            hooks.sampled(j, prompts.len())?;
        }
        let names = rules.map(RewardSet::names).unwrap_or_default();
        let mut per_rule: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        let mut groups = Vec::with_capacity(prompts.len());
        let mut log = Vec::new();
        for (j, (p, completions)) in prompts.iter().zip(sampled).enumerate() {
            let prompt_text = tok.decode(&p.ids)?;
            let mut totals = Vec::with_capacity(completions.len());
            for (k, c) in completions.iter().enumerate() {
                hooks.check()?;
                let mut total = 0.0;
                let mut by_rule = None;
                if let Some(rules) = rules {
                    let sc = rules.score(&c.text, c.ids.len(), p.columns)?;
                    for (r, v) in sc.per_rule.iter().enumerate() {
                        per_rule[r].push(*v);
                    }
                    by_rule = Some(names.iter().cloned().zip(sc.per_rule.iter().map(|v| json!(v))).collect::<Map<String, Value>>());
                    total = sc.total;
                }
                if let Some(r) = hooks.reward(j, k, &c.text)? {
                    total += r;
                }
                let mut line = json!({ "prompt": prompt_text, "completion": c.text, "reward": total });
                if let Some(by_rule) = by_rule {
                    line["rewards"] = Value::Object(by_rule);
                }
                log.push(line);
                totals.push(total);
            }
            let weight = weights[j] * difficulty(cfg, &totals);
            groups.push(Group {
                prompt_ids: p.ids.clone(),
                sampler_logps: Some(completions.iter().map(|c| c.sampler_logps(cfg.sampler_logprobs)).collect()),
                completions: completions.into_iter().map(|c| c.ids).collect(),
                rewards: totals,
                weight,
                images: p.images.clone(),
            });
        }
        let rules = names
            .iter()
            .zip(&per_rule)
            .map(|(name, vals)| {
                let (mean, std) = super::loss::mean_std(vals);
                RuleReward { name: name.clone(), mean, std }
            })
            .collect();
        Ok((groups, RewardMetrics { rules, refills: None }, log))
    }
}

/// `hooks` for one round of `sample_refilled`: prompt `j` of the round is draw `base + j` of
/// the step.
struct Round<'h, H> {
    hooks: &'h mut H,
    base: usize,
}

impl<H: Hooks> Hooks for Round<'_, H> {
    type Error = H::Error;

    fn gpu<T>(&mut self, f: impl FnOnce() -> Result<T>) -> std::result::Result<T, Self::Error> {
        self.hooks.gpu(f)
    }

    fn check(&mut self) -> std::result::Result<(), Self::Error> {
        self.hooks.check()
    }

    fn sampled(&mut self, j: usize, n: usize) -> std::result::Result<(), Self::Error> {
        self.hooks.sampled(self.base + j, self.base + n)
    }

    fn reward(&mut self, j: usize, k: usize, text: &str) -> std::result::Result<Option<f64>, Self::Error> {
        self.hooks.reward(self.base + j, k, text)
    }
}

/// Whether a group's rewards teach something: they are not all equal. Dynamic sampling keeps
/// only such groups (here, and for a session's episodes: `rl::episode::EpisodeRefill`).
pub fn informative(rewards: &[f64]) -> bool {
    super::loss::mean_std(rewards).1 > 1e-8
}

fn has_signal(g: &Group) -> bool {
    informative(&g.rewards)
}

impl Trainer<'_> {
    /// One step's groups, as `edgerl train` and the sessions take them: `per` prompts (draws
    /// 0..per, `draw(d)` gives draw d) sampled and scored on stream `stream`
    /// (`sample_scored`). With `dynamic_sampling` (DAPO), groups whose rewards are all equal
    /// carry no signal: they are dropped and replaced by the next draws, sampled on stream
    /// `stream | refill << 40`, at most `max_refill` extra rounds; an error when no group is
    /// left. `hooks` see prompt j of every round as draw j (its index in the step), and each
    /// round whole (`Hooks::round`) before its groups are kept or dropped. The reward
    /// metrics are the last round's (with `refills` when dynamic sampling is on); the log
    /// lines, num_generations a draw, follow the draws. Returns the number of draws too.
    pub fn sample_refilled<'c, H: Hooks>(
        &self,
        per: usize,
        stream: u64,
        rules: Option<&RewardSet>,
        hooks: &mut H,
        mut draw: impl FnMut(usize) -> std::result::Result<Prompted<'c>, H::Error>,
    ) -> std::result::Result<(Sampled, usize), H::Error> {
        let prompts: Vec<Prompted> = (0..per).map(&mut draw).collect::<std::result::Result<_, _>>()?;
        let mut first = self.sample_scored(&prompts, stream, rules, &mut Round { hooks, base: 0 })?;
        hooks.round(0, &mut first)?;
        let (mut groups, mut m, mut lines) = first;
        let mut draws = per;
        let cfg = &self.cfg;
        if cfg.dynamic_sampling {
            let mut refills = 0;
            groups.retain(has_signal);
            self.retain_kept(&groups);
            while groups.len() < per && refills < cfg.max_refill {
                refills += 1;
                let need = per - groups.len();
                let more: Vec<Prompted> = (draws..draws + need).map(&mut draw).collect::<std::result::Result<_, _>>()?;
                let stream = stream | ((refills as u64) << 40);
                let mut more = self.sample_scored(&more, stream, rules, &mut Round { hooks, base: draws })?;
                hooks.round(draws, &mut more)?;
                let (g2, m2, l2) = more;
                draws += need;
                groups.extend(g2.into_iter().filter(has_signal));
                self.retain_kept(&groups);
                lines.extend(l2);
                m = m2; // per-rule means of the last round; the batch's reward is the trainer's
            }
            if groups.is_empty() {
                return Err(Error::Invalid(format!(
                    "dynamic sampling: every group had identical rewards after {refills} refills (max_refill = {}); the rules give this model no signal",
                    cfg.max_refill
                ))
                .into());
            }
            m.refills = Some(refills);
        }
        Ok(((groups, m, lines), draws))
    }
}
