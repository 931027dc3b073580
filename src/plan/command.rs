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
    let mut auto = None;
    let mut input = match (&a.config, &a.shape) {
        (Some(path), _) => {
            let cfg = crate::rl::TrainConfig::from_file(path)?;
            let mut i = PlanInput::from_train_config(&cfg, max_binding)?;
            if cfg.gradient_checkpointing == crate::rl::config::Checkpointing::Auto {
                // "auto": a budget's fit starts from activations kept; without one the
                // plan's bound decides.
                i.gradient_checkpointing = false;
                i.keep_rollouts = true;
                if budget.is_none() {
                    let (recompute, keep_rollouts, why) = i.auto_knobs()?;
                    (i.gradient_checkpointing, i.keep_rollouts) = (recompute, keep_rollouts);
                    auto = Some(why);
                }
            }
            i
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
            // As `edgerl train --memory-budget`: the fit may keep sampling's activations too.
            input.keep_rollouts = a.config.is_some();
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
        if let Some(why) = &auto {
            v["auto"] = json!(why);
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
    if let Some(why) = auto {
        out += &format!("\n{why}");
    }
    Ok(out)
}

/// `e` with advice added when it is the GPU running out of memory during `edgerl train
/// --config <config>`: what the plan picks for the memory there was (the simulated limit, else
/// the most the run held at once), or why nothing fits, and the commands that apply it.
pub fn with_out_of_memory_advice(e: Error, cfg: &crate::rl::TrainConfig, config: &std::path::Path, gpu: &crate::gpu::Gpu) -> Error {
    let Error::OutOfMemory { what, bytes, live, peak, .. } = e else { return e };
    let available = gpu.memory.limit().unwrap_or(peak.max(live));
    // Rounded down to whole MiB (KiB below 64 MiB), as `--memory-budget` reads them.
    let budget = if available >= 64 << 20 { format!("{}MiB", available >> 20) } else { format!("{}KiB", (available >> 10).max(1)) };
    let cmd = |c: &str| format!("`edgerl {c} --config {} --memory-budget {budget}`", config.display());
    let plan = PlanInput::from_train_config(cfg, gpu.max_binding).and_then(|i| Ok((i.plan()?, i.fit(parse_budget(&budget)?))));
    let advice = match plan {
        Ok((_, Ok(fit))) if !fit.changes.is_empty() => format!(
            "For {budget} the memory plan changes {} (predicted peak {}): {} applies that, {} shows the breakdown",
            fit.changes.join(", "),
            fmt_bytes(fit.plan.peak_bytes),
            cmd("train"),
            cmd("plan")
        ),
        Ok((now, Ok(_))) => format!(
            "The memory plan predicts a peak of {} for this config, within {budget}: the device has less free memory than it reports, or shares it; {} shows the breakdown, and gradient checkpointing or a smaller pack size (`--memory-budget` with a smaller budget) lowers the peak",
            fmt_bytes(now.peak_bytes),
            cmd("plan")
        ),
        Ok((_, Err(why))) => format!("Memory plan: {why}; {} shows the breakdown", cmd("plan")),
        Err(why) => format!("No memory plan for this config ({why}); gradient checkpointing or a smaller pack size lowers the peak"),
    };
    Error::OutOfMemory { what, bytes, live, peak, advice }
}
