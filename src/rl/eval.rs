//! `edgerl eval`: every dataset row through generation and the config's reward rules, with the
//! prompt handling, stop strings, length limit and scoring that training uses. Greedy by
//! default (one completion per row); with a temperature above 0, `samples` seeded completions
//! per row (the config's `seed`, `top_k`, `top_p`, `min_p`), so a rerun gives the same numbers.
//! Rows are decoded `batch_size` at a time, side by side (`Model::sample_prompts_after`): one
//! forward pass per token for every unfinished completion of the batch. The prefix every
//! row's prompt starts with (the chat template's system prompt, shared instructions) is
//! prefilled once for the whole dataset; each completion's KV segment holds the rest of its
//! prompt, then its tokens. Row i is random stream i whatever the batch, and the shared prefix
//! is the dataset's, so the batch size changes the speed, not the results.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::config::TrainConfig;
use super::rollout::{Completion, Decoding, GroupSampler, prompt_ids, prompt_with_images};
use crate::data::dataset::Row;
use crate::model::decode::{SharedPrefix, common_prefix_len};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuBuffer};
use crate::lora::Lora;
use crate::model::{LoadedModel, Tokenizer};
use crate::reward::RewardSet;

/// A reward this close below `success_threshold` still counts as a success, so the rounding
/// of a weighted sum (0.1 + 0.2 + 0.7 < 1.0 in floating point) doesn't decide it.
pub const SUCCESS_TOLERANCE: f64 = 1e-9;

#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// A prompts JSONL to use instead of the config's `dataset`.
    pub dataset: Option<PathBuf>,
    /// Completions per row (K). More than one needs `temperature > 0`.
    pub samples: usize,
    /// 0 is greedy; above 0, sampling with the config's `top_k`, `top_p`, `min_p` and `seed`.
    pub temperature: f64,
    /// Dataset rows decoded side by side (TRL's `per_device_eval_batch_size`): rows are taken
    /// in order, `batch_size` at a time, one forward pass per token for all of a batch's
    /// unfinished completions. The results do not depend on it. `None`:
    /// `default_eval_batch_size(samples)`.
    pub batch_size: Option<usize>,
}

/// Rows decoded side by side unless told otherwise: 16, where TRL's default is 8. On CPU
/// devices a decoding step's cost barely grows from 8 to 16 rows (the weights are read once
/// a step either way), so 16 evaluated the demo's 16 held-out screens 8 % faster on lavapipe,
/// for 44 MB more resident memory (the cache of 8 more rows).
pub const DEFAULT_EVAL_BATCH_SIZE: usize = 16;

/// `EvalOptions::batch_size` unless told otherwise: `DEFAULT_EVAL_BATCH_SIZE` rows, but at most
/// 64 completions a decoding step (one tile of the products' rows; more rows a step gain
/// nothing there and only grow the cache), so with `samples` K above 4 it is 64 / K rows (8 at
/// K = 8, as before the default was raised) and at least 1.
pub fn default_eval_batch_size(samples: usize) -> usize {
    (64 / samples.max(1)).clamp(1, DEFAULT_EVAL_BATCH_SIZE)
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            dataset: None,
            samples: 1,
            temperature: 0.0,
            batch_size: None,
        }
    }
}

impl EvalOptions {
    /// The rows of a batch: `batch_size`, or the default for `samples`.
    pub fn rows_per_batch(&self) -> usize {
        self.batch_size.unwrap_or_else(|| default_eval_batch_size(self.samples))
    }

    /// Checks the options alone (before any model is loaded).
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::Invalid(format!(
                "--temperature must be >= 0, got {}",
                self.temperature
            )));
        }
        if self.batch_size == Some(0) {
            return Err(Error::Invalid(
                "--batch-size must be at least 1 (dataset rows decoded together)".into(),
            ));
        }
        if self.samples == 0 {
            return Err(Error::Invalid("--samples must be at least 1".into()));
        }
        if self.samples > 1 && self.temperature == 0.0 {
            return Err(Error::Invalid(format!(
                "--samples {} needs --temperature > 0: at temperature 0 (greedy) every sample is the same",
                self.samples
            )));
        }
        Ok(())
    }
}

/// One scored completion.
#[derive(Clone, Debug)]
pub struct EvalCompletion {
    /// The dataset row (0-based, blank lines not counted) and the sample's index within it.
    pub row: usize,
    pub sample: usize,
    /// The prompt as the model saw it (decoded prompt ids, chat template applied).
    pub prompt: String,
    pub completion: String,
    pub completion_tokens: usize,
    /// Ended by EOS or a stop string rather than `max_completion_length`.
    pub finished: bool,
    /// The total reward and the unweighted score of each rule, in rule order.
    pub reward: f64,
    pub rewards: Vec<f64>,
}

#[derive(Clone, Debug)]
pub struct EvalReport {
    pub dataset: PathBuf,
    pub adapter: Option<PathBuf>,
    pub rows: usize,
    pub samples: usize,
    pub temperature: f64,
    pub success_threshold: f64,
    pub mean_reward: f64,
    /// Fraction of completions whose reward reaches `success_threshold` (= pass@1).
    pub accuracy: f64,
    /// Fraction of rows with at least one successful completion (pass@K).
    pub any_success: f64,
    /// Mean unweighted score of each rule, in rule order.
    pub rule_means: Vec<(String, f64)>,
    /// Row by row, sample by sample.
    pub completions: Vec<EvalCompletion>,
}

impl EvalReport {
    /// `{"rows", "completions", "mean_reward", "accuracy", "any_success", "rewards": {rule:
    /// mean}, "adapter", "samples", "temperature"}`.
    pub fn to_json(&self) -> Value {
        let rewards: Map<String, Value> = self
            .rule_means
            .iter()
            .map(|(n, m)| (n.clone(), json!(m)))
            .collect();
        json!({
            "rows": self.rows,
            "completions": self.completions.len(),
            "samples": self.samples,
            "temperature": self.temperature,
            "mean_reward": self.mean_reward,
            "accuracy": self.accuracy,
            "any_success": self.any_success,
            "rewards": rewards,
            "adapter": self.adapter.as_ref().map(|p| p.to_string_lossy().into_owned()),
        })
    }

    /// One JSON line per completion: `{"row", "prompt", "completion", "reward", "rewards": {rule:
    /// score}}`, the shape of training's completions.jsonl.
    pub fn completions_jsonl(&self) -> String {
        let mut out = String::new();
        for c in &self.completions {
            let by_rule: Map<String, Value> = self
                .rule_means
                .iter()
                .map(|(n, _)| n.clone())
                .zip(c.rewards.iter().map(|v| json!(v)))
                .collect();
            let line = json!({
                "row": c.row,
                "prompt": c.prompt,
                "completion": c.completion,
                "reward": c.reward,
                "rewards": by_rule,
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        out
    }

    /// Writes [`completions_jsonl`](Self::completions_jsonl) to `path` (temp file + rename).
    pub fn write_completions(&self, path: &Path) -> Result<()> {
        crate::io::write_atomic(path, self.completions_jsonl().as_bytes())
    }
}

/// Evaluates the base model (`adapter = None`) or a PEFT adapter on the dataset
/// (`opts.dataset`, else the config's). The config's `init_adapter` is not applied.
pub fn evaluate(
    gpu: &Gpu,
    cfg: &TrainConfig,
    adapter: Option<&Path>,
    opts: EvalOptions,
) -> Result<EvalReport> {
    opts.validate()?;
    if cfg.rewards.is_empty() {
        return Err(Error::Invalid(
            "eval needs at least one `[[rewards]]` rule in the config".into(),
        ));
    }
    let path = opts
        .dataset
        .clone()
        .or_else(|| cfg.dataset.clone())
        .ok_or_else(|| {
            Error::Invalid("eval needs a dataset: `dataset` in the config, or --dataset".into())
        })?;
    let rewards = RewardSet::new(&cfg.rewards, cfg.reward_all_or_nothing)?;
    // Every row's target columns are checked before the model loads or anything generates.
    let rows = rewards.read_dataset(&path)?;
    let data_error = |i: usize, e: Error| match e {
        Error::Invalid(msg) => Error::file(&path, format!("row {}: {msg}", i + 1)),
        e => e,
    };

    let m = LoadedModel::open(gpu, &cfg.model, None)?;
    let lora = adapter
        .map(|d| Lora::load_peft(gpu, d, &m.model.cfg))
        .transpose()?;
    let sampler = GroupSampler {
        decoding: Decoding::Batched,
        gpu,
        model: &m.model,
        lora: lora.as_ref(),
        tokenizer: Some(&m.tokenizer),
        eos: &m.eos,
        stop: &cfg.stop,
        max_new_tokens: cfg.max_completion_length,
        opts: cfg.sampling(opts.temperature),
    };
    let names = rewards.names();
    let k = opts.samples;
    let threshold = cfg.success_threshold - SUCCESS_TOLERANCE;
    let mut completions = Vec::with_capacity(rows.len() * k);
    let mut rows_with_success = 0usize;
    let mut score_row = |i: usize, ids: &[u32], group: Vec<Completion>| -> Result<()> {
        let row = &rows[i];
        let prompt = m.tokenizer.decode(ids)?;
        let mut any = false;
        for (j, c) in group.into_iter().enumerate() {
            let sc = rewards
                .score(&c.text, c.ids.len(), &row.columns)
                .map_err(|e| data_error(i, e))?;
            any |= sc.total >= threshold;
            completions.push(EvalCompletion {
                row: i,
                sample: j,
                prompt: prompt.clone(),
                completion: c.text,
                completion_tokens: c.ids.len(),
                finished: c.finished,
                reward: sc.total,
                rewards: sc.per_rule,
            });
        }
        rows_with_success += any as usize;
        Ok(())
    };
    // The dataset's common prefix (a chat template's system prompt, shared instructions) is
    // prefilled once and every batch decodes after it. It is the dataset's, not the batch's,
    // so the batch size cannot change how a prompt is prefilled.
    let (text_ids, prefix) = dataset_prefix(&sampler, &m.tokenizer, &rows)?;
    log::info!("eval: {} prompt tokens shared by every row, prefilled once", prefix.len());
    // Rows in order, `batch_size` at a time: the KV cache holds the prefix and one batch's
    // prompts and completions.
    let mut i = 0;
    while i < rows.len() {
        let end = rows.len().min(i + opts.rows_per_batch());
        // A row with images runs them through the vision tower once, for all its samples.
        let (ids, images): (Vec<Vec<u32>>, Vec<Option<GpuBuffer>>) = match &text_ids {
            Some(all) => (all[i..end].to_vec(), (i..end).map(|_| None).collect()),
            None => rows[i..end]
                .iter()
                .map(|row| prompt_with_images(gpu, &m.tokenizer, m.vision.as_ref(), &row.prompt, &row.images))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .unzip(),
        };
        // Row i is random stream i: a row's samples depend neither on the rows before it nor
        // on the rows decoded beside it.
        let batch: Vec<(&[u32], Option<&GpuBuffer>, u64)> = ids
            .iter()
            .zip(&images)
            .enumerate()
            .map(|(b, (ids, f))| (ids.as_slice(), f.as_ref(), (i + b) as u64))
            .collect();
        let groups = sampler.sample_prompts_after(&prefix, &batch, k)?;
        for (b, group) in groups.into_iter().enumerate() {
            score_row(i + b, &ids[b], group)?;
        }
        i = end;
        log::info!("eval: rows {end}/{} done", rows.len());
    }
    let n = completions.len() as f64;
    let mean = |f: &dyn Fn(&EvalCompletion) -> f64| completions.iter().map(f).sum::<f64>() / n;
    let rule_means = names
        .iter()
        .enumerate()
        .map(|(r, name)| (name.clone(), mean(&|c| c.rewards[r])))
        .collect();
    Ok(EvalReport {
        dataset: path.clone(),
        adapter: adapter.map(Path::to_path_buf),
        rows: rows.len(),
        samples: k,
        temperature: opts.temperature,
        success_threshold: cfg.success_threshold,
        mean_reward: mean(&|c| c.reward),
        accuracy: mean(&|c| (c.reward >= threshold) as u8 as f64),
        any_success: rows_with_success as f64 / rows.len() as f64,
        rule_means,
        completions,
    })
}

/// Every row's prompt ids, and the longest prefix they all share (`common_prefix_len`),
/// prefilled. With images in any row nothing is shared and no ids come back: a row's ids come
/// with its vision features, batch by batch.
fn dataset_prefix(sampler: &GroupSampler, tokenizer: &Tokenizer, rows: &[Row]) -> Result<(Option<Vec<Vec<u32>>>, SharedPrefix)> {
    if rows.iter().any(|r| !r.images.is_empty()) {
        return Ok((None, sampler.prefill_prefix(&[])?));
    }
    let ids = rows.iter().map(|r| prompt_ids(tokenizer, &r.prompt)).collect::<Result<Vec<_>>>()?;
    let all: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let l = common_prefix_len(&all);
    let prefix = sampler.prefill_prefix(all.first().map_or(&[][..], |p| &p[..l]))?;
    Ok((Some(ids), prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_batch_is_16_rows_and_at_most_64_completions() {
        let rows: Vec<usize> = [1, 2, 4, 5, 8, 16, 64, 100].into_iter().map(default_eval_batch_size).collect();
        assert_eq!(rows, [16, 16, 16, 12, 8, 4, 1, 1]);
        let o = EvalOptions { samples: 8, temperature: 1.0, ..Default::default() };
        assert_eq!(o.rows_per_batch(), 8);
        assert_eq!(EvalOptions { batch_size: Some(3), ..o }.rows_per_batch(), 3);
    }
}
