//! `edgerl plan`: what the command line asks for, planned, and the text or JSON it prints.

use std::path::PathBuf;

use serde_json::json;

use super::{PlanInput, fmt_bytes, parse_budget};
use crate::error::{Error, Result};
use crate::gpu::DType;

/// The command's options: a config, or a preset shape with its workload.
pub struct PlanArgs {
    pub config: Option<PathBuf>,
    pub shape: Option<String>,
    pub dtype: Option<DType>,
    pub prompt_tokens: Option<usize>,
    pub completions: Option<usize>,
    pub completion_tokens: Option<usize>,
    pub rank: Option<usize>,
    pub no_checkpointing: bool,
    pub pack_size: Option<usize>,
    pub memory_budget: Option<String>,
    pub json: bool,
}

/// Plans for `a` on a device whose storage bindings hold `max_binding` bytes; returns what
/// `edgerl plan` prints.
pub fn plan_command(a: &PlanArgs, max_binding: u64) -> Result<String> {
    let budget = a.memory_budget.as_deref().map(parse_budget).transpose()?;
    if a.pack_size == Some(0) {
        return Err(Error::Invalid("--pack-size must be at least 1".into()));
    }
    let shape_only = a.dtype.is_some()
        || a.prompt_tokens.is_some()
        || a.completions.is_some()
        || a.completion_tokens.is_some()
        || a.rank.is_some()
        || a.no_checkpointing;
    if a.shape.is_none() && shape_only {
        return Err(Error::Invalid(
            "--dtype, --prompt-tokens, --completions, --completion-tokens, --rank and --no-checkpointing go with --shape (a config sets them itself)".into(),
        ));
    }
    let mut input = match (&a.config, &a.shape) {
        (Some(path), _) => {
            PlanInput::from_train_config(&crate::rl::TrainConfig::from_file(path)?, max_binding)?
        }
        (None, Some(shape)) => {
            let mut i = PlanInput::for_preset(
                shape,
                a.dtype.unwrap_or(DType::F16),
                a.prompt_tokens.unwrap_or(128),
                a.completions.unwrap_or(8),
                a.completion_tokens.unwrap_or(256),
                a.rank.unwrap_or(16),
                max_binding,
            )?;
            i.gradient_checkpointing = !a.no_checkpointing;
            i
        }
        (None, None) => return Err(Error::Invalid("give --config or --shape".into())),
    };
    input.pack_size = a.pack_size;
    let (p, changes) = match budget {
        Some(b) => {
            let fit = input.fit(b)?;
            (fit.plan, Some(fit.changes))
        }
        None => (input.plan()?, None),
    };
    if a.json {
        let mut v = serde_json::to_value(&p).map_err(|e| Error::Invalid(e.to_string()))?;
        v["training_step_peak_bytes"] = json!(p.training_step_peak());
        if let (Some(b), Some(c)) = (budget, &changes) {
            v["budget"] = json!(b);
            v["changes"] = json!(c);
        }
        return Ok(v.to_string());
    }
    let mut out = format!(
        "{p}\ntraining step alone (what `edgerl bench --train` measures): {} bytes",
        p.training_step_peak()
    );
    if let (Some(b), Some(c)) = (budget, &changes) {
        let c = if c.is_empty() {
            "nothing changed".to_string()
        } else {
            c.join(", ")
        };
        out += &format!("\nbudget {} ({b} bytes): fits; {c}", fmt_bytes(b));
    }
    Ok(out)
}
