//! Multi-turn episodes (WebAgent-R1, Mobile-R1): a prompt, then the model's acts and the
//! environment's observations in turn, one reward at the end. Training runs one sequence per
//! episode, the prompt and everything after it; only the model's sampled tokens carry loss and
//! count in the normalisers (T_i = the model's tokens), the observations are attended to but
//! masked out. Episodes of one task form a GRPO group: the group's advantage of an episode is
//! spread over all of its acts.

use super::rollout::Completion;
use super::rollouts::Group;
use super::trainer::{Batch, Trainer};
use crate::data::Message;
use crate::error::{Error, Result};
use crate::model::Tokenizer;

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
}

impl Episode {
    pub fn new(prompt_ids: Vec<u32>) -> Result<Episode> {
        if prompt_ids.is_empty() {
            return Err(Error::Invalid("the episode's prompt tokenizes to nothing".into()));
        }
        Ok(Episode { prompt_ids, tokens: Vec::new(), sampled: Vec::new(), acts: 0 })
    }

    /// The model's tokens of one act.
    pub fn push_act(&mut self, ids: &[u32]) {
        self.tokens.extend_from_slice(ids);
        self.sampled.extend(std::iter::repeat_n(true, ids.len()));
        self.acts += 1;
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

/// The training batch of `episodes` with their `rewards`: each run of `group_size` consecutive
/// episodes is one GRPO group (the same task), whose episodes must start from the same prompt.
pub fn episode_batch(t: &Trainer, episodes: &[&Episode], rewards: &[f64], group_size: usize) -> Result<Batch> {
    let n = episodes.len();
    if n == 0 {
        return Err(Error::Invalid("no episodes".into()));
    }
    if rewards.len() != n {
        return Err(Error::Invalid(format!("{} rewards for {n} episodes", rewards.len())));
    }
    if group_size == 0 || !n.is_multiple_of(group_size) {
        return Err(Error::Invalid(format!(
            "group_size {group_size} does not divide the {n} episodes into groups"
        )));
    }
    for (i, (e, r)) in episodes.iter().zip(rewards).enumerate() {
        if e.acts == 0 {
            return Err(Error::Invalid(format!("episodes[{i}] has no act: nothing to train")));
        }
        if !r.is_finite() {
            return Err(Error::Invalid(format!("rewards[{i}] is {r}, not a finite number")));
        }
        if e.prompt_ids != episodes[i - i % group_size].prompt_ids {
            return Err(Error::Invalid(format!(
                "episodes[{i}] starts from another prompt than episodes[{}]: a group's episodes are one task, from one prompt",
                i - i % group_size
            )));
        }
    }
    let groups: Vec<Group> = episodes
        .chunks(group_size)
        .zip(rewards.chunks(group_size))
        .map(|(es, rs)| Group {
            prompt_ids: es[0].prompt_ids.clone(),
            completions: es.iter().map(|e| e.tokens.clone()).collect(),
            rewards: rs.to_vec(),
            weight: 1.0,
            sampler_logps: None,
            images: None,
        })
        .collect();
    let masks: Vec<Vec<bool>> = episodes.iter().map(|e| e.sampled.clone()).collect();
    let refs: Vec<&Group> = groups.iter().collect();
    Ok(t.masked_batch(&refs, &masks))
}
