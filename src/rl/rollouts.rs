//! Offline rollouts (JSONL, one group per line): token ids, or text tokenized like `score`;
//! optionally the sampler's per-token log-probs (`sampler_logps`) for the importance-sampling
//! correction.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::Tokenizer;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Group {
    pub prompt_ids: Vec<u32>,
    pub completions: Vec<Vec<u32>>,
    pub rewards: Vec<f64>,
    /// Per-prompt loss weight (from `weight_column`), 1 by default.
    pub weight: f64,
    /// The sampler's log-prob of each completion token (one list per completion), for the
    /// importance-sampling correction (`vllm_importance_sampling_correction`, `icepop_beta`):
    /// recorded by online sampling, or given as `sampler_logps` in offline rollouts. Skipped
    /// here (`serde(skip)`): checkpoints keep them beside the groups (`state::SavedBatch`), so
    /// the layout of the groups in older checkpoints still reads.
    #[serde(skip)]
    pub sampler_logps: Option<Vec<Vec<f32>>>,
    /// The features of the prompt's image tokens (a vision-language model's row), as sampled,
    /// for every update of the batch (`num_iterations`). Checkpoints keep their bytes beside
    /// the groups (`state::SavedBatch::images`).
    #[serde(skip)]
    pub images: Option<ImageFeatures>,
}

/// Image features on the GPU, shared by a group's sampling and training passes.
#[derive(Clone)]
pub struct ImageFeatures(pub std::sync::Arc<crate::gpu::GpuBuffer>);

impl std::fmt::Debug for ImageFeatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageFeatures({} bytes)", self.0.bytes)
    }
}

impl PartialEq for ImageFeatures {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Group {
    /// What every group the trainer takes must satisfy (from a file, or a checkpoint).
    pub fn check(&self, vocab: usize, max_len: usize) -> std::result::Result<(), String> {
        if self.completions.is_empty() {
            return Err("a group needs at least one completion".into());
        }
        if self.rewards.len() != self.completions.len() {
            return Err(format!(
                "{} rewards for {} completions",
                self.rewards.len(),
                self.completions.len()
            ));
        }
        if self.prompt_ids.is_empty() {
            return Err("the prompt is empty".into());
        }
        for (i, c) in self.completions.iter().enumerate() {
            if c.is_empty() {
                return Err(format!("completion {i} is empty"));
            }
            if c.len() > max_len {
                return Err(format!(
                    "completion {i} has {} tokens, more than max_completion_length {max_len}",
                    c.len()
                ));
            }
        }
        if let Some(&bad) = self
            .prompt_ids
            .iter()
            .chain(self.completions.iter().flatten())
            .find(|&&id| id as usize >= vocab)
        {
            return Err(format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            ));
        }
        if self.rewards.iter().any(|r| !r.is_finite()) || !self.weight.is_finite() {
            return Err("a reward or the weight is not a finite number".into());
        }
        if let Some(lps) = &self.sampler_logps {
            if lps.len() != self.completions.len() {
                return Err(format!("{} lists of `sampler_logps` for {} completions", lps.len(), self.completions.len()));
            }
            for (i, (lp, c)) in lps.iter().zip(&self.completions).enumerate() {
                if lp.len() != c.len() {
                    return Err(format!("completion {i} has {} tokens but {} `sampler_logps`", c.len(), lp.len()));
                }
                if lp.iter().any(|x| !(x.is_finite() && *x <= 0.0)) {
                    return Err(format!("`sampler_logps` of completion {i} must be finite log-probs (<= 0)"));
                }
            }
        }
        Ok(())
    }
}

fn ids(v: &Value, what: &str) -> std::result::Result<Vec<u32>, String> {
    let a = v
        .as_array()
        .ok_or_else(|| format!("`{what}` must be a list of token ids"))?;
    a.iter()
        .map(|x| {
            x.as_u64()
                .filter(|&n| n <= u32::MAX as u64)
                .map(|n| n as u32)
                .ok_or_else(|| format!("`{what}` holds {x}, not a token id"))
        })
        .collect()
}

pub(crate) fn parse_line(
    line: &str,
    tok: &Tokenizer,
    weight_column: Option<&str>,
    vocab: usize,
    max_len: usize,
) -> std::result::Result<Group, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    if !v.is_object() {
        return Err("expected a JSON object".into());
    }
    let (prompt_ids, completions) =
        if v.get("prompt_ids").is_some() || v.get("completion_ids").is_some() {
            let p = ids(
                v.get("prompt_ids")
                    .ok_or("`completion_ids` without `prompt_ids`")?,
                "prompt_ids",
            )?;
            let list = v
                .get("completion_ids")
                .and_then(|c| c.as_array())
                .ok_or("`completion_ids` must be a list of lists")?;
            let cs = list
                .iter()
                .map(|c| ids(c, "completion_ids"))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            (p, cs)
        } else {
            let prompt = v
                .get("prompt")
                .and_then(|p| p.as_str())
                .ok_or("needs `prompt_ids` + `completion_ids` or `prompt` + `completions`")?;
            let list = v
                .get("completions")
                .and_then(|c| c.as_array())
                .ok_or("`completions` must be a list of strings")?;
            let p = tok.encode(prompt, true).map_err(|e| e.to_string())?;
            let mut cs = Vec::new();
            for c in list {
                let s = c
                    .as_str()
                    .ok_or("`completions` must be a list of strings")?;
                cs.push(tok.encode(s, false).map_err(|e| e.to_string())?);
            }
            (p, cs)
        };
    let rewards: Vec<f64> = v
        .get("rewards")
        .and_then(|r| r.as_array())
        .ok_or("`rewards` must be a list of numbers")?
        .iter()
        .map(|x| {
            x.as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| format!("reward {x} is not a finite number"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let weight = match weight_column {
        None => 1.0,
        Some(col) => v
            .get(col)
            .and_then(|w| w.as_f64())
            .filter(|w| w.is_finite())
            .ok_or_else(|| format!("weight column `{col}` is missing or not a number"))?,
    };
    let sampler_logps = match v.get("sampler_logps") {
        None => None,
        Some(list) => {
            let bad = || "`sampler_logps` must be a list of lists of numbers (one per completion token)".to_string();
            let outer = list.as_array().ok_or_else(bad)?;
            let lists = outer
                .iter()
                .map(|l| {
                    l.as_array()
                        .ok_or_else(bad)?
                        .iter()
                        .map(|x| x.as_f64().map(|f| f as f32).ok_or_else(bad))
                        .collect::<std::result::Result<Vec<f32>, String>>()
                })
                .collect::<std::result::Result<Vec<_>, String>>()?;
            Some(lists)
        }
    };
    let g = Group {
        prompt_ids,
        completions,
        rewards,
        weight,
        sampler_logps,
        images: None,
    };
    g.check(vocab, max_len)?;
    Ok(g)
}

pub fn read(
    path: &Path,
    tok: &Tokenizer,
    weight_column: Option<&str>,
    vocab: usize,
    max_len: usize,
) -> Result<Vec<Group>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let g = parse_line(line, tok, weight_column, vocab, max_len)
            .map_err(|e| Error::file(path, format!("line {}: {e}", i + 1)))?;
        out.push(g);
    }
    if out.is_empty() {
        return Err(Error::file(path, "no rollouts"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(sampler_logps: Option<Vec<Vec<f32>>>) -> Group {
        Group { prompt_ids: vec![1], completions: vec![vec![2, 3], vec![4]], rewards: vec![1.0, 0.0], weight: 1.0, sampler_logps, images: None }
    }

    #[test]
    fn sampler_logps_match_the_completions() {
        assert!(group(None).check(10, 8).is_ok());
        assert!(group(Some(vec![vec![-0.5, -1.0], vec![-2.0]])).check(10, 8).is_ok());
        for (bad, needle) in [
            (vec![vec![-0.5, -1.0]], "lists"),
            (vec![vec![-0.5], vec![-2.0]], "completion 0"),
            (vec![vec![-0.5, 0.5], vec![-2.0]], "log-probs"),
            (vec![vec![-0.5, f32::NAN], vec![-2.0]], "log-probs"),
        ] {
            let e = group(Some(bad)).check(10, 8).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        // Checkpoints (postcard) do not carry them: the layout is the one before they existed.
        let old = postcard::to_allocvec(&(vec![1u32], vec![vec![2u32, 3], vec![4]], vec![1.0f64, 0.0], 1.0f64)).unwrap();
        assert_eq!(postcard::to_allocvec(&group(Some(vec![vec![-0.5, -1.0], vec![-2.0]]))).unwrap(), old);
        assert_eq!(postcard::from_bytes::<Group>(&old).unwrap(), group(None));
    }
}
