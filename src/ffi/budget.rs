//! The runtime's memory budget (`edgerl_runtime_create`): a hard cap on what the runtime
//! allocates (`MemoryCounter::set_limit`), and, before each session step samples or trains,
//! a plan of that step's iteration (`crate::plan`) for its real workload against what the
//! session may use; the step runs with the knobs the plan picks, or fails before it starts.

use super::session::Session;
use super::{EDGERL_ERR_GPU, Fail, Res, Runtime};
use crate::error::Error;
use crate::plan::{PlanInput, fmt_bytes};
use crate::rl::config::Checkpointing;
use crate::rl::trainer::Trainer;

impl Runtime {
    /// `e` with the budget named when it is an allocation the budget refused.
    pub(crate) fn explain(&self, e: Error) -> Error {
        match e {
            Error::OutOfMemory { what, bytes, live, peak, advice } if self.budget > 0 && advice.is_empty() => {
                let advice = format!(
                    "The runtime's memory budget is {} ({} bytes, edgerl_runtime_create)",
                    fmt_bytes(self.budget),
                    self.budget
                );
                Error::OutOfMemory { what, bytes, live, peak, advice }
            }
            e => e,
        }
    }
}

/// A step's workload as the planner sees it.
pub(crate) struct StepLoad {
    /// The longest prompt of the step, in tokens.
    pub prompt_tokens: usize,
    /// Tokens per completion: max_completion_length, or the longest episode after its prompt.
    pub completion_tokens: usize,
    /// Completions per prompt (num_generations, or the episodes' group size).
    pub num_generations: usize,
    /// The step samples its groups (edgerl_session_step; episodes were sampled act by act).
    pub rollouts: bool,
    /// Prompts sampled in the step (each group's activations are kept until its pass).
    pub groups: usize,
}

/// The trainer's memory knobs for one step.
pub(crate) struct StepKnobs {
    gradient_checkpointing: bool,
    pack_size: Option<usize>,
    keep_rollouts: bool,
}

/// Without a budget: `None` (the step runs as configured). With one: plans the step for
/// `load` against the budget minus what the runtime holds for others (everything live that
/// this session's trainer does not hold), and returns the knobs that fit — the configured
/// ones when they do, else what `PlanInput::fit` picks. Nothing fits: `EDGERL_ERR_GPU` with
/// the planner's reason, before anything is sampled or trained.
pub(crate) fn plan_step(s: &Session, t: &Trainer<'static>, load: &StepLoad) -> Res<Option<StepKnobs>> {
    let budget = s.model.rt.budget;
    let auto = t.cfg.gradient_checkpointing == Checkpointing::Auto;
    let Some(weights) = s.weights.filter(|_| budget > 0 || auto) else {
        return Ok(None);
    };
    let others = t.gpu.memory.live().saturating_sub(t.held_bytes());
    let available = budget.saturating_sub(others);
    let input = PlanInput {
        model: t.model.cfg.clone(),
        weights,
        lora: t.lora.cfg.clone(),
        optimizer: t.cfg.optimizer,
        // "auto" plans from activations kept: the fit turns recomputation on when needed.
        gradient_checkpointing: t.cfg.gradient_checkpointing == Checkpointing::On,
        pack_size: t.pack_size,
        prompt_tokens: load.prompt_tokens.max(1),
        completion_tokens: load.completion_tokens.max(1),
        num_generations: load.num_generations.max(1),
        rollouts: load.rollouts,
        reference_pass: t.cfg.beta > 0.0,
        groups_per_step: load.groups,
        // Planned steps may keep sampling's activations (`TrainConfig::keep_rollouts`).
        keep_rollouts: true,
        max_binding: t.gpu.max_binding,
    };
    if budget == 0 {
        // "auto" without a budget: the plan's bound decides; no plan, the configured side.
        return Ok(match input.auto_knobs() {
            Ok((recompute, keep_rollouts, why)) => {
                log::info!("session {}: {why}", s.id);
                Some(StepKnobs {
                    gradient_checkpointing: recompute,
                    pack_size: t.pack_size,
                    keep_rollouts,
                })
            }
            Err(e) => {
                log::warn!("session {}: gradient_checkpointing = \"auto\": no memory plan ({e}); checkpointing on", s.id);
                None
            }
        });
    }
    let fit = input.fit(available).map_err(|e| {
        Fail(
            EDGERL_ERR_GPU,
            format!(
                "session {}: step not run ({}adapter unchanged): of the runtime's memory budget of {}, {} ({others} bytes) is held by other models and sessions, leaving {} to this one: {e}",
                s.id,
                if load.rollouts { "nothing sampled, " } else { "" },
                fmt_bytes(budget),
                fmt_bytes(others),
                fmt_bytes(available)
            ),
        )
    })?;
    if !fit.changes.is_empty() {
        log::info!(
            "session {}: memory budget: this step runs with {} (predicted runtime peak {}, budget {})",
            s.id,
            fit.changes.join(", "),
            fmt_bytes(fit.plan.peak_bytes + others),
            fmt_bytes(budget)
        );
    }
    Ok(Some(StepKnobs {
        gradient_checkpointing: fit.plan.knobs.gradient_checkpointing,
        pack_size: fit.pack_size,
        keep_rollouts: fit.plan.knobs.keep_rollouts,
    }))
}

/// Runs `f` with `knobs` set on the trainer (if any), then puts the configured ones back.
pub(crate) fn with_knobs<T>(
    t: &mut Trainer<'static>,
    knobs: Option<StepKnobs>,
    f: impl FnOnce(&mut Trainer<'static>) -> T,
) -> T {
    let Some(k) = knobs else { return f(t) };
    let configured = (t.cfg.gradient_checkpointing, t.pack_size, t.cfg.keep_rollouts);
    t.cfg.gradient_checkpointing = k.gradient_checkpointing.into();
    t.pack_size = k.pack_size;
    t.cfg.keep_rollouts = k.keep_rollouts;
    let out = f(t);
    (t.cfg.gradient_checkpointing, t.pack_size, t.cfg.keep_rollouts) = configured;
    out
}
