//! Supervised steps in sessions (`edgerl_session_sft_step`): one optimizer step of `edgerl sft`
//! (`rl::sft::step`, TRL SFTTrainer's token-mean NLL) on the rows of the call, with the
//! session's adapter and optimizer, so an app can warm-start and go on with GRPO steps. The
//! learning rate is the session's, or its `[sft]` table's when it has one.

use std::ffi::c_char;

use serde_json::{Map, Value};

use super::budget::{StepLoad, plan_step, with_knobs};
use super::callbacks::EDGERL_PHASE_UPDATE;
use super::session::Session;
use super::{EDGERL_ERR_NONFINITE, Fail, Res, get_session, guard, invalid, text};
use crate::data::dataset::{SftRow, parse_sft_line};
use crate::rl::sft::{self, Example, SftOptions, SftSchedule};
use crate::rl::trainer::Trainer;

/// One SFT step's metrics (`edgerl_sft_metrics`; TRL SFTTrainer's names in the comments).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EdgerlSftMetrics {
    /// Optimizer steps taken so far by this session (GRPO and SFT), after this one.
    pub step: u64,
    /// `loss`: Σ −log p(trained token) / trained tokens, before the update.
    pub loss: f64,
    pub grad_norm: f64,
    pub learning_rate: f64,
    /// `num_tokens`: tokens of the rows the session's SFT steps trained on so far.
    pub num_tokens: u64,
    /// The tokens that carried loss in this step (labels ≠ −100, the first token excluded).
    pub trained_tokens: u64,
    pub mean_token_accuracy: f64,
    pub entropy: f64,
    /// Wall time of the call.
    pub seconds: f64,
}

const _: () = assert!(std::mem::size_of::<EdgerlSftMetrics>() == 72);

/// The rows of a call (a JSON array of TRL SFT rows, all of the first row's format), each
/// checked as `edgerl sft` checks a dataset line.
fn parse_rows(json: &str) -> Res<Vec<SftRow>> {
    let v: Value = serde_json::from_str(json)
        .map_err(|e| invalid(format!("`rows_json` is not valid JSON: {e}")))?;
    let Value::Array(list) = v else {
        return Err(invalid("`rows_json` must be a JSON array of row objects"));
    };
    if list.is_empty() {
        return Err(invalid("`rows_json` is an empty array"));
    }
    let kind = |r: &SftRow| std::mem::discriminant(r);
    let mut rows: Vec<SftRow> = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let row = parse_sft_line(&v.to_string()).map_err(|e| invalid(format!("rows_json[{i}]: {e}")))?;
        if let Some(first) = rows.first()
            && kind(first) != kind(&row)
        {
            return Err(invalid(format!(
                "rows_json[{i}]: a different format from rows_json[0]'s (`messages`, `prompt`/`completion` or `text`: one for all rows, as in an SFT dataset)"
            )));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The rows tokenized as `edgerl sft` tokenizes its dataset (rows that truncation left without
/// a trained token are dropped, as TRL drops them); an error names the row.
fn examples(t: &Trainer<'static>, opts: &SftOptions, rows: &[SftRow]) -> Res<Vec<Example>> {
    let tok = t
        .tokenizer
        .as_ref()
        .ok_or_else(|| invalid("the session's model has no tokenizer"))?;
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let named = |Fail(c, m): Fail| Fail(c, format!("rows_json[{i}]: {m}"));
        let Some(e) = sft::tokenize_with(opts, tok, r).map_err(|e| named(e.into()))? else {
            continue;
        };
        if let Some(&bad) = e.ids.iter().find(|&&id| id as usize >= t.model.cfg.vocab_size) {
            return Err(invalid(format!(
                "rows_json[{i}]: token {bad} is outside the model's vocabulary"
            )));
        }
        out.push(e);
    }
    if out.iter().map(Example::targets).sum::<usize>() == 0 {
        return Err(invalid(
            "rows_json: no row has a trained token (after max_length)",
        ));
    }
    Ok(out)
}

/// One SFT step on TRL rows; see edgerl.h.
///
/// # Safety
/// `rows_json` is a NUL-terminated string; `metrics` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_session_sft_step(
    session: u64,
    rows_json: *const c_char,
    metrics: *mut EdgerlSftMetrics,
) -> i32 {
    guard(|| {
        let t0 = std::time::Instant::now();
        let s = get_session(session)?;
        let rows_json = unsafe { text(rows_json, "rows_json") }?;
        let (out, skipped) = step(&s, rows_json, t0)?;
        if !metrics.is_null() {
            // SAFETY: as the function's contract says, `metrics` is NULL or valid for a write.
            unsafe { metrics.write(out) };
        }
        if skipped {
            return Err(Fail(
                EDGERL_ERR_NONFINITE,
                "the SFT update had a NaN or infinite loss or gradient and was skipped (adapter and optimizer unchanged); metrics written".into(),
            ));
        }
        Ok(())
    })
}

/// Rows → examples → plan → one update (`rl::sft::step`, all rows one micro-batch), with the
/// session's cancel checks and progress reports. Returns the metrics and whether the update
/// was skipped (NaN/Inf).
fn step(s: &Session, rows_json: &str, t0: std::time::Instant) -> Res<(EdgerlSftMetrics, bool)> {
    let mut g = s.lock()?;
    s.cancellable(|| {
        let inner = g.as_mut().ok_or_else(|| invalid("the session is gone"))?;
        let rows = parse_rows(rows_json)?;
        let examples = examples(&inner.trainer, &inner.sft, &rows)?;
        let schedule = inner.sft.schedule.clone();
        let t = &mut inner.trainer;
        // Each row is one sequence: its untrained prefix, then the rest (as one completion).
        let split = |e: &Example| e.trained.iter().skip(1).position(|&b| b).map_or(e.ids.len(), |i| i + 1);
        let load = StepLoad {
            prompt_tokens: examples.iter().map(split).max().unwrap_or(0),
            completion_tokens: examples.iter().map(|e| e.ids.len() - split(e)).max().unwrap_or(0),
            num_generations: 1,
            rollouts: false,
            groups: 1,
        };
        let knobs = plan_step(s, t, &load)?;
        let progress = s.progress();
        progress.report(s.id, EDGERL_PHASE_UPDATE, 0, 1)?;
        // After the report, so that edgerl_cancel from the progress callback stops the update.
        s.check_cancel()?;
        let skipped_before = t.skipped_steps;
        let m = with_knobs(t, knobs, |t| {
            with_schedule(t, schedule.as_ref(), |t| {
                let _g = s.model.rt.lock();
                let micro = vec![examples.iter().collect::<Vec<_>>()];
                sft::step(t, &micro).map_err(|e| Fail::from(s.model.rt.explain(e)))
            })
        })?;
        progress.report(s.id, EDGERL_PHASE_UPDATE, 1, 1)?;
        // The update is applied: a cancel asked for since the last check has nothing to stop.
        s.clear_cancel();
        let out = metrics(&m, t0)?;
        log::info!(
            "session {}: sft step {}: loss {:.6}, grad_norm {:.4}, accuracy {:.4}, {} trained tokens, {:.2} s",
            s.id, out.step, out.loss, out.grad_norm, out.mean_token_accuracy, out.trained_tokens, out.seconds
        );
        Ok((out, t.skipped_steps > skipped_before))
    })
}

/// Runs `f` with the session's `[sft]` learning rate and schedule in place of its own (the
/// GRPO steps'), which the trainer's update reads from its config; restored after.
fn with_schedule<T>(
    t: &mut Trainer<'static>,
    schedule: Option<&SftSchedule>,
    f: impl FnOnce(&mut Trainer<'static>) -> T,
) -> T {
    let Some(sched) = schedule else { return f(t) };
    let c = &t.cfg;
    let own = (c.learning_rate, c.lr_scheduler_type, c.warmup_steps, c.warmup_ratio, c.max_steps);
    sched.apply(&mut t.cfg);
    let out = f(t);
    let c = &mut t.cfg;
    (c.learning_rate, c.lr_scheduler_type, c.warmup_steps, c.warmup_ratio, c.max_steps) = own;
    out
}

/// `rl::sft::step`'s metrics (TRL's names) as the C struct; a missing one is a bug.
fn metrics(m: &Map<String, Value>, t0: std::time::Instant) -> Res<EdgerlSftMetrics> {
    let get = |k: &str| {
        m.get(k)
            .ok_or_else(|| Fail(super::EDGERL_ERR_PANIC, format!("SFT step metrics lack `{k}`")))
    };
    // A non-finite float is JSON null: NaN (a skipped update's grad_norm, say).
    let f = |k: &str| get(k).map(|v| v.as_f64().unwrap_or(f64::NAN));
    let u = |k: &str| get(k).map(|v| v.as_u64().unwrap_or(0));
    Ok(EdgerlSftMetrics {
        step: u("step")?,
        loss: f("loss")?,
        grad_norm: f("grad_norm")?,
        learning_rate: f("learning_rate")?,
        num_tokens: u("num_tokens")?,
        trained_tokens: u("trained_tokens")?,
        mean_token_accuracy: f("mean_token_accuracy")?,
        entropy: f("entropy")?,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
