//! Multi-turn episodes (WebAgent-R1, Mobile-R1): a prompt, then the model's acts and the
//! environment's observations in turn, one reward at the end. Training runs one sequence per
//! episode, the prompt and everything after it; only the model's sampled tokens carry loss and
//! count in the normalisers (T_i = the model's tokens), the observations are attended to but
//! masked out. Episodes of one task form a GRPO group: the group's advantage of an episode is
//! spread over all of its acts.

use serde_json::{Map, Value};

use super::config::TrainConfig;
use super::rollout::Completion;
use super::rollouts::Group;
use super::step::{column_weight, difficulty, informative};
use super::trainer::{Batch, RewardMetrics, RuleReward, Trainer};
use crate::data::Message;
use crate::error::{Error, Result};
use crate::model::Tokenizer;
use crate::reward::RewardSet;

/// One trajectory so far.
#[derive(Clone, Debug)]
pub struct Episode {
    pub prompt_ids: Vec<u32>,
    /// Every token after the prompt, acts and observations in order.
    pub tokens: Vec<u32>,
    /// Per token of `tokens`: whether the model sampled it (it carries loss).
    pub sampled: Vec<bool>,
    /// Acts so far.
    pub acts: usize,
    /// The last act's text and token count, as the sampler gave them (`push_completion`):
    /// what the reward rules score, as `edgerl train` scores a completion.
    pub last_act_text: String,
    pub last_act_tokens: usize,
}

impl Episode {
    pub fn new(prompt_ids: Vec<u32>) -> Result<Episode> {
        if prompt_ids.is_empty() {
            return Err(Error::Invalid("the episode's prompt tokenizes to nothing".into()));
        }
        Ok(Episode {
            prompt_ids,
            tokens: Vec::new(),
            sampled: Vec::new(),
            acts: 0,
            last_act_text: String::new(),
            last_act_tokens: 0,
        })
    }

    /// The model's tokens of one act (with no text: `push_completion` keeps it).
    pub fn push_act(&mut self, ids: &[u32]) {
        self.tokens.extend_from_slice(ids);
        self.sampled.extend(std::iter::repeat_n(true, ids.len()));
        self.acts += 1;
        self.last_act_text.clear();
        self.last_act_tokens = ids.len();
    }

    /// One sampled act: its tokens, and its text for the reward rules.
    pub fn push_completion(&mut self, act: &Completion) {
        self.push_act(&act.ids);
        self.last_act_text.clone_from(&act.text);
    }

    /// Tokens the environment wrote (masked out of the loss).
    pub fn push_observation(&mut self, ids: &[u32]) {
        self.tokens.extend_from_slice(ids);
        self.sampled.extend(std::iter::repeat_n(false, ids.len()));
    }

    /// What the model sees next: the prompt and everything after it.
    pub fn context(&self) -> Vec<u32> {
        [&self.prompt_ids[..], &self.tokens].concat()
    }

    /// Whether the last tokens are an act's (or there are none after the prompt).
    pub fn last_is_act(&self) -> bool {
        self.sampled.last().copied().unwrap_or(false)
    }
}

/// The tokens of an observation in chat mode: the model's turn closed, the observation as a
/// user turn, then the generation prompt, all as the model's chat template renders them. The
/// template is rendered for a stand-in conversation and cut after the stand-in assistant
/// message, so templates that render earlier turns differently (Qwen3 drops their thinking)
/// still give the text that follows an assistant turn. When the act already ended with the
/// token that closes a turn (its EOS, e.g. `<|im_end|>`), that token is not repeated.
pub fn chat_observation_ids(tok: &Tokenizer, text: &str, last_act_token: Option<u32>) -> Result<Vec<u32>> {
    const STAND_IN: &str = "\u{E000}edgerl-act\u{E000}";
    let msg = |role: &str, content: &str| Message { role: role.into(), content: content.into() };
    let rendered = tok.render_chat(&[msg("user", "task"), msg("assistant", STAND_IN), msg("user", text)], true)?;
    let after = rendered
        .find(STAND_IN)
        .map(|i| &rendered[i + STAND_IN.len()..])
        .ok_or_else(|| Error::Invalid("the chat template dropped an assistant turn: observations need EDGERL_PROMPT_RAW".into()))?;
    let mut ids = tok.encode(after, false)?;
    if last_act_token.is_some() && ids.first().copied() == last_act_token {
        ids.remove(0);
    }
    Ok(ids)
}

/// Samples the next act of `episode` (at most `max_new_tokens`, stopping at EOS and the
/// config's stop strings) with the trainer's adapter and sampling settings. `stream` picks the
/// random stream.
pub fn sample_act(t: &Trainer, episode: &Episode, max_new_tokens: usize, stream: u64) -> Result<Completion> {
    let sampler = t.sampler(max_new_tokens);
    let context = episode.context();
    let limit = t.model.cfg.max_position_embeddings;
    if context.len() + max_new_tokens > limit {
        return Err(Error::Invalid(format!(
            "the episode holds {} tokens: {max_new_tokens} more would pass the model's context of {limit}",
            context.len()
        )));
    }
    let mut out = sampler.sample(&context, 1, stream)?;
    out.pop().ok_or_else(|| Error::Invalid("the sampler returned no act".into()))
}

/// Checks `episodes` as a step takes them: each run of `group_size` consecutive episodes is
/// one GRPO group (the same task), whose episodes start from the same prompt; each has an act.
pub fn check_groups(episodes: &[&Episode], group_size: usize) -> Result<()> {
    let n = episodes.len();
    if n == 0 {
        return Err(Error::Invalid("no episodes".into()));
    }
    if group_size == 0 || !n.is_multiple_of(group_size) {
        return Err(Error::Invalid(format!(
            "group_size {group_size} does not divide the {n} episodes into groups"
        )));
    }
    for (i, e) in episodes.iter().enumerate() {
        if e.acts == 0 {
            return Err(Error::Invalid(format!("episodes[{i}] has no act: nothing to train")));
        }
        if e.prompt_ids != episodes[i - i % group_size].prompt_ids {
            return Err(Error::Invalid(format!(
                "episodes[{i}] starts from another prompt than episodes[{}]: a group's episodes are one task, from one prompt",
                i - i % group_size
            )));
        }
    }
    Ok(())
}

/// Checks the app's reward of each episode: one each, finite.
fn check_rewards(rewards: &[f64], n: usize) -> Result<()> {
    if rewards.len() != n {
        return Err(Error::Invalid(format!("{} rewards for {n} episodes", rewards.len())));
    }
    match rewards.iter().position(|r| !r.is_finite()) {
        Some(i) => Err(Error::Invalid(format!("rewards[{i}] is {}, not a finite number", rewards[i]))),
        None => Ok(()),
    }
}

/// The training batch of `episodes` with their `rewards`: each run of `group_size` consecutive
/// episodes is one GRPO group (the same task), whose episodes must start from the same prompt.
/// Every group weighs 1.
pub fn episode_batch(t: &Trainer, episodes: &[&Episode], rewards: &[f64], group_size: usize) -> Result<Batch> {
    check_groups(episodes, group_size)?;
    check_rewards(rewards, episodes.len())?;
    let groups: Vec<EpisodeGroup> = episodes
        .chunks(group_size)
        .zip(rewards.chunks(group_size))
        .map(|(es, rs)| EpisodeGroup { episodes: es.iter().map(|e| (*e).clone()).collect(), rewards: rs.to_vec(), weight: 1.0 })
        .collect();
    Ok(groups_batch(t, &groups))
}

/// One task's finished episodes with one reward each and the group's weight: what a step
/// trains on.
#[derive(Clone, Debug)]
pub struct EpisodeGroup {
    pub episodes: Vec<Episode>,
    pub rewards: Vec<f64>,
    /// `weight_column` times `difficulty_weight`, as `rl::step` weighs a prompt's group.
    pub weight: f64,
}

/// The training batch of `groups`: one sequence per episode, only its acts' tokens carry loss.
pub fn groups_batch(t: &Trainer, groups: &[EpisodeGroup]) -> Batch {
    let plain: Vec<Group> = groups
        .iter()
        .map(|g| Group {
            prompt_ids: g.episodes[0].prompt_ids.clone(),
            completions: g.episodes.iter().map(|e| e.tokens.clone()).collect(),
            rewards: g.rewards.clone(),
            weight: g.weight,
            sampler_logps: None,
            images: None,
        })
        .collect();
    let masks: Vec<Vec<bool>> = groups.iter().flat_map(|g| g.episodes.iter().map(|e| e.sampled.clone())).collect();
    let refs: Vec<&Group> = plain.iter().collect();
    t.masked_batch(&refs, &masks)
}

/// Scores a step's episodes (checked by `check_groups`) into groups, as `edgerl train` scores a
/// prompt's completions (`rl::step`). An episode's completion is its last act's text:
/// `rules` score it against `columns[i]`, the row the episode began from. The app's reward
/// (`app`) adds to the rules' total for an episode with a row (as a session's callback does on
/// rows) and replaces the rules for one without (as on plain prompts, which have no columns;
/// with no app reward the rules see an empty row). Groups weigh as `rl::step` weighs them;
/// the per-rule metrics are over the episodes the rules scored.
pub fn score_groups(
    cfg: &TrainConfig,
    rules: Option<&RewardSet>,
    episodes: Vec<Episode>,
    columns: &[Option<&Map<String, Value>>],
    app: Option<&[f64]>,
    group_size: usize,
) -> Result<(Vec<EpisodeGroup>, RewardMetrics)> {
    let n = episodes.len();
    if let Some(app) = app {
        check_rewards(app, n)?;
    }
    if app.is_none() && rules.is_none() {
        return Err(Error::Invalid(
            "`rewards` is NULL and the session's config has no [[rewards]] rules: give one reward per episode, or rules".into(),
        ));
    }
    let names = rules.map(RewardSet::names).unwrap_or_default();
    let mut per_rule: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let empty = Map::new();
    let mut totals = Vec::with_capacity(n);
    for (i, e) in episodes.iter().enumerate() {
        let row = columns[i];
        let mut total = 0.0;
        if let Some(rules) = rules.filter(|_| row.is_some() || app.is_none()) {
            let sc = rules
                .score(&e.last_act_text, e.last_act_tokens, row.unwrap_or(&empty))
                .map_err(|err| Error::Invalid(format!("episodes[{i}]: {err}")))?;
            for (r, v) in sc.per_rule.iter().enumerate() {
                per_rule[r].push(*v);
            }
            total = sc.total;
        }
        if let Some(app) = app {
            total += app[i];
        }
        totals.push(total);
    }
    let mut groups = Vec::with_capacity(n / group_size.max(1));
    let mut episodes = episodes.into_iter();
    for (k, rewards) in totals.chunks(group_size).enumerate() {
        let i = k * group_size;
        if columns[i..i + group_size].iter().any(|c| *c != columns[i]) {
            return Err(Error::Invalid(format!(
                "episodes[{i}..{}] are one group but did not all begin from the same row (or all from a prompt)",
                i + group_size
            )));
        }
        let weight = match columns[i] {
            Some(row) => column_weight(cfg, row)?,
            None => match &cfg.weight_column {
                Some(col) => {
                    return Err(Error::Invalid(format!(
                        "episodes[{i}]: the config's weight_column `{col}` needs data columns, which an episode begun from a prompt does not have: begin it from a row"
                    )));
                }
                None => 1.0,
            },
        } * difficulty(cfg, rewards);
        groups.push(EpisodeGroup { episodes: episodes.by_ref().take(group_size).collect(), rewards: rewards.to_vec(), weight });
    }
    let rules = names
        .iter()
        .zip(&per_rule)
        .filter(|(_, vals)| !vals.is_empty())
        .map(|(name, vals)| {
            let (mean, std) = super::loss::mean_std(vals);
            RuleReward { name: name.clone(), mean, std }
        })
        .collect();
    Ok((groups, RewardMetrics { rules, refills: None }))
}

/// Dynamic sampling (DAPO) over episodes. edgerl cannot re-run an episode (the app runs the
/// environment), so a round keeps a step's informative groups (rewards not all equal) and,
/// while it has fewer than its target (the group count of the round's first step), asks the
/// app for more: each further step of the round is one refill and adds its informative groups.
/// After `max_refill` refills the kept groups train however many they are, as
/// `Trainer::sample_refilled` trains on what it has; with none, the round fails.
#[derive(Clone, Debug, Default)]
pub struct EpisodeRefill {
    round: Option<Round>,
}

#[derive(Clone, Debug)]
struct Round {
    target: usize,
    group_size: usize,
    kept: Vec<EpisodeGroup>,
    refills: usize,
}

/// What a step of a dynamic-sampling round does.
#[derive(Debug)]
pub enum Refilled {
    /// Train on these groups (the round is over).
    Train { groups: Vec<EpisodeGroup>, refills: usize },
    /// Too few informative groups: the app runs `needed` more and steps again; nothing trains.
    More { needed: usize, uninformative: usize, offered: usize, kept: usize, target: usize, refills: usize },
}

impl EpisodeRefill {
    /// How many more informative groups the round waits for (0: no round is open).
    pub fn needed(&self) -> usize {
        self.round.as_ref().map_or(0, |r| r.target.saturating_sub(r.kept.len()))
    }

    /// Offers a step's scored groups (of `group_size` episodes each) to the round, opening one
    /// if none is open. A group size other than the open round's is an error that leaves the
    /// round as it was; a round whose refills are spent with no informative group is an error
    /// that ends it.
    pub fn offer(&mut self, groups: Vec<EpisodeGroup>, group_size: usize, max_refill: usize) -> Result<Refilled> {
        let offered = groups.len();
        let mut round = match self.round.take() {
            None => Round { target: offered, group_size, kept: Vec::new(), refills: 0 },
            Some(r) if r.group_size != group_size => {
                let msg = format!(
                    "dynamic sampling: this step refills a round of groups of {} episodes (it waits for {} more), not {group_size}",
                    r.group_size,
                    r.target.saturating_sub(r.kept.len())
                );
                self.round = Some(r);
                return Err(Error::Invalid(msg));
            }
            Some(mut r) => {
                r.refills += 1;
                r
            }
        };
        let before = round.kept.len();
        round.kept.extend(groups.into_iter().filter(|g| informative(&g.rewards)));
        let uninformative = offered - (round.kept.len() - before);
        if round.kept.len() >= round.target || round.refills >= max_refill {
            if round.kept.is_empty() {
                return Err(Error::Invalid(format!(
                    "dynamic sampling: every group had identical rewards after {} refills (max_refill = {max_refill}); the rewards give this model no signal",
                    round.refills
                )));
            }
            return Ok(Refilled::Train { groups: round.kept, refills: round.refills });
        }
        let more = Refilled::More {
            needed: round.target - round.kept.len(),
            uninformative,
            offered,
            kept: round.kept.len(),
            target: round.target,
            refills: round.refills,
        };
        self.round = Some(round);
        Ok(more)
    }
}
