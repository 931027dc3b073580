//! Training sessions over the C ABI: the app gives prompts and scores the sampled completions
//! through a callback (or the config's rule rewards); the session owns the trainer and its
//! adapter, and takes the model's weights for as long as it lives.

use std::ffi::{CString, c_char, c_void};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use serde_json::{Map, Value};

use super::callbacks::{EDGERL_PHASE_SAMPLE, EDGERL_PHASE_UPDATE, Progress};
use super::model::prompt_ids;
use super::{
    EDGERL_ERR_BUSY, EDGERL_ERR_CALLBACK, EDGERL_ERR_CANCELLED, EDGERL_ERR_NONFINITE, Entry, Fail, ModelEntry, Res, Slot,
    get_model, get_session, guard, insert, invalid, new_id, put, release, text,
};
use super::budget::{StepLoad, plan_step, with_knobs};
use crate::gpu::Gpu;
use crate::lora::Lora;
use crate::plan::{WeightBytes, model_meta};
use crate::model::LoadedModel;
use crate::reward::RewardSet;
use crate::data::dataset::{Row, parse_line};
use crate::rl::TrainConfig;
use crate::rl::sft::{self, SftOptions};
use crate::rl::rollouts::Group;
use crate::rl::step::{Hooks, Prompted, column_weight};
use crate::rl::trainer::{Batch, RewardMetrics, Trainer};

/// `int32_t (*)(void* user_data, size_t prompt_index, size_t completion_index,
/// const char* completion, double* reward_out)`: 0 = ok, anything else aborts the step.
pub type EdgerlRewardFn =
    Option<unsafe extern "C" fn(*mut c_void, usize, usize, *const c_char, *mut f64) -> i32>;

/// One step's metrics (`edgerl_step_metrics`; TRL's names in the comments).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EdgerlStepMetrics {
    /// Optimizer steps taken so far by this session (after this one).
    pub step: u64,
    pub loss: f64,
    /// `reward`, `reward_std`: over every completion of the step.
    pub reward_mean: f64,
    pub reward_std: f64,
    pub grad_norm: f64,
    pub learning_rate: f64,
    /// `completions/mean_length` in tokens; `completions/clipped_ratio`.
    pub completion_mean_length: f64,
    pub clipped_ratio: f64,
    /// Wall time of the whole call: sampling, rewards and the update.
    pub seconds: f64,
}

const _: () = assert!(std::mem::size_of::<EdgerlStepMetrics>() == 72);

pub(crate) struct Inner {
    pub(crate) trainer: Trainer<'static>,
    /// The config's `[[rewards]]`, used when the step gets no callback.
    pub(crate) rules: Option<RewardSet>,
    /// The config's SFT keys: how edgerl_session_sft_step tokenizes its rows.
    pub(crate) sft: SftOptions,
    /// The open dynamic-sampling round of edgerl_session_step_episodes.
    pub(crate) episode_refill: crate::rl::episode::EpisodeRefill,
}

pub(crate) struct Session {
    /// Declared before `model`: the trainer borrows the runtime's GPU that `model` keeps alive.
    inner: Mutex<Option<Inner>>,
    pub(crate) model: Arc<ModelEntry>,
    pub(crate) model_id: u64,
    pub(crate) id: u64,
    /// Set by edgerl_cancel; shared with `crate::cancel` while a call of the session runs.
    cancel: Arc<AtomicBool>,
    pub(crate) progress: Mutex<Progress>,
    /// The model's weights as the memory planner counts them, read from the model's headers
    /// once at create; `None` when the runtime has no budget (no step is planned).
    pub(crate) weights: Option<WeightBytes>,
    /// The model's image side (a vision-language model), handed back with the weights.
    pub(crate) vision: Option<crate::vision::ImageSide>,
}

impl Session {
    pub(crate) fn lock(&self) -> Res<std::sync::MutexGuard<'_, Option<Inner>>> {
        match self.inner.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::Poisoned(e)) => Ok(e.into_inner()),
            Err(TryLockError::WouldBlock) => Err(Fail(
                EDGERL_ERR_BUSY,
                format!("session {} is running another call", self.id),
            )),
        }
    }

    /// Runs `f` on the trainer; `EDGERL_ERR_BUSY` while another call on this session runs.
    pub(crate) fn with_trainer<T>(&self, f: impl FnOnce(&Trainer<'static>) -> Res<T>) -> Res<T> {
        let g = self.lock()?;
        f(&g.as_ref()
            .ok_or_else(|| invalid("the session is gone"))?
            .trainer)
    }

    /// The progress callback as set now (a call keeps the one it started with).
    pub(crate) fn progress(&self) -> Progress {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops a cancel asked for after a call's last check (its update is applied).
    pub(crate) fn clear_cancel(&self) {
        self.cancel.store(false, Ordering::SeqCst);
    }

    pub(crate) fn check_cancel(&self) -> Res<()> {
        if self.cancel.swap(false, Ordering::SeqCst) {
            return Err(Fail(
                EDGERL_ERR_CANCELLED,
                format!("session {}: cancelled", self.id),
            ));
        }
        Ok(())
    }

    /// Runs a call's work (with the session locked) with the session's cancel flag installed
    /// for this thread, so code with no session in sight (a chat template's render) can stop
    /// on edgerl_cancel. A failure while the flag is up is reported as the cancellation, which
    /// consumes it; the message keeps what stopped the call.
    pub(crate) fn cancellable<T>(&self, f: impl FnOnce() -> Res<T>) -> Res<T> {
        let _scope = crate::cancel::scope(self.cancel.clone());
        f().map_err(|Fail(code, msg)| {
            // NONFINITE: the step ran to its end (metrics written); its own cancel is dropped.
            if code == EDGERL_ERR_CANCELLED || code == EDGERL_ERR_NONFINITE {
                return Fail(code, msg);
            }
            match self.check_cancel() {
                Err(Fail(c, m)) => Fail(c, format!("{m} ({msg})")),
                Ok(()) => Fail(code, msg),
            }
        })
    }
}

impl Drop for Session {
    /// Hands the model's weights back to its model handle.
    fn drop(&mut self) {
        let Some(inner) = self
            .inner
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        let t = inner.trainer;
        let mut slot = self.model.slot.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*slot, Slot::Lent(id) if id == self.id)
            && let Some(tokenizer) = t.tokenizer
        {
            *slot = Slot::Here(Box::new(LoadedModel {
                model: t.model,
                tokenizer,
                eos: t.eos,
                pad: t.pad,
                vision: self.vision.take(),
            }));
        }
    }
}

/// The session's `TrainConfig`: the app's TOML (TRL key names) with the model and placeholders
/// for the keys the session owns (prompts and rewards come through the calls); and the SFT
/// keys of its SFT steps (`rl::sft::SESSION_KEYS`), split off first as `edgerl sft` does.
fn config(toml_text: Option<&str>, model: &Path) -> Res<(TrainConfig, SftOptions)> {
    let mut t: toml::Table = match toml_text {
        Some(s) => s.parse::<toml::Table>().map_err(|e| {
            invalid(format!(
                "config: {}",
                e.to_string().trim().replace('\n', " ")
            ))
        })?,
        None => toml::Table::new(),
    };
    for k in ["model", "output_dir", "dataset", "rollouts"] {
        if t.contains_key(k) {
            return Err(invalid(format!(
                "config: `{k}` is set by the session, not the config"
            )));
        }
    }
    if let Some(k) = sft::SFT_KEYS
        .iter()
        .find(|k| t.contains_key(**k) && !sft::SESSION_KEYS.contains(k))
    {
        return Err(invalid(format!(
            "config: `{k}` does not apply to a session: edgerl_session_sft_step trains on the rows of each call as one batch (SFT keys a session takes: {}; and an [sft] table with {})",
            sft::SESSION_KEYS.join(", "),
            sft::SESSION_SFT_TABLE_KEYS.join(", ")
        )));
    }
    let sft_options = SftOptions::take(&mut t).map_err(|e| invalid(format!("config: {e}")))?;
    // A session has no fixed length: without `max_steps` the learning rate stays constant
    // (the config default, a linear decay over max_steps = 1, would stop it after one step).
    if !t.contains_key("max_steps") && !t.contains_key("lr_scheduler_type") {
        t.insert(
            "lr_scheduler_type".into(),
            toml::Value::String("constant".into()),
        );
    }
    let placeholder = toml::Value::String("<app>".into());
    t.insert("model".into(), placeholder.clone());
    t.insert("output_dir".into(), placeholder.clone());
    // Validation wants a source: online (with rule rewards) or offline (the app's rewards).
    let source = if t.contains_key("rewards") {
        "dataset"
    } else {
        "rollouts"
    };
    t.insert(source.into(), placeholder);
    let text = toml::to_string(&t).map_err(|e| invalid(format!("config: {e}")))?;
    let mut cfg = TrainConfig::from_toml(&text).map_err(|e| invalid(format!("config: {e}")))?;
    cfg.model = model.to_path_buf();
    cfg.dataset = None;
    cfg.rollouts = None;
    Ok((cfg, sft_options))
}

/// # Safety
/// `config_toml` is NULL or a NUL-terminated string; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_session_create(
    model: u64,
    config_toml: *const c_char,
    out: *mut u64,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(invalid("`out` is NULL"));
        }
        let m = get_model(model)?;
        let toml_text = if config_toml.is_null() {
            None
        } else {
            Some(unsafe { text(config_toml, "config_toml") }?)
        };
        let (cfg, sft) = config(toml_text, &m.path)?;
        let rules = if cfg.rewards.is_empty() {
            None
        } else {
            Some(RewardSet::new(&cfg.rewards, cfg.reward_all_or_nothing)?)
        };
        // SAFETY: the session holds `m`, which holds the runtime, so the GPU outlives the
        // trainer (dropped in `Session::drop`, before the session's fields).
        let gpu: &'static Gpu = unsafe { &*(&m.rt.gpu as *const Gpu) };
        // Headers only (no weights are read), as the model was loaded: with its own dtypes.
        // The plan needs them for a budget and for `gradient_checkpointing = "auto"`.
        let weights = if m.rt.budget > 0 || cfg.gradient_checkpointing == crate::rl::config::Checkpointing::Auto {
            Some(model_meta(&m.path, None, gpu.max_binding)?.weights)
        } else {
            None
        };
        let id = new_id();
        let mut slot = m.slot.lock().unwrap_or_else(|e| e.into_inner());
        let lm = match &*slot {
            Slot::Lent(sid) => {
                return Err(Fail(
                    EDGERL_ERR_BUSY,
                    format!(
                        "model {model} is already trained by session {sid} (one session per model)"
                    ),
                ));
            }
            Slot::Here(lm) => lm,
        };
        let lora = {
            let _g = m.rt.lock();
            Trainer::initial_lora(gpu, &cfg, &lm.model).map_err(|e| m.rt.explain(e))?
        };
        let Slot::Here(lm) = std::mem::replace(&mut *slot, Slot::Lent(id)) else {
            unreachable!()
        };
        drop(slot);
        let lm = *lm;
        let trainer =
            Trainer::with_lora(gpu, cfg, lm.model, Some(lm.tokenizer), lm.eos, lm.pad, lora);
        let s = Session {
            inner: Mutex::new(Some(Inner { trainer, rules, sft, episode_refill: Default::default() })),
            model: m,
            model_id: model,
            id,
            cancel: Arc::new(AtomicBool::new(false)),
            progress: Mutex::new(Progress::NONE),
            weights,
            vision: lm.vision,
        };
        insert(id, Entry::Session(Arc::new(s)));
        unsafe { put(out, "out", id) }
    })
}

/// Drops the handle and cancels a step running on it; the weights go back to the model handle
/// once that step has returned.
#[unsafe(no_mangle)]
pub extern "C" fn edgerl_session_free(session: u64) -> i32 {
    guard(|| {
        if let Ok(s) = get_session(session) {
            s.cancel.store(true, Ordering::SeqCst);
        }
        release(session, "a session", |e| matches!(e, Entry::Session(_)))
    })
}

/// Asks the session's running step (or, if none runs, its next one) to stop with
/// `EDGERL_ERR_CANCELLED`. Safe from any thread, also from a reward callback.
#[unsafe(no_mangle)]
pub extern "C" fn edgerl_cancel(session: u64) -> i32 {
    guard(|| {
        get_session(session)?.cancel.store(true, Ordering::SeqCst);
        Ok(())
    })
}

/// One GRPO step: `num_generations` completions per prompt, rewards from `cb` (or the config's
/// rules when `cb` is NULL), then `num_iterations` optimizer updates on that batch.
///
/// # Safety
/// `prompts` is valid for `n_prompts` NUL-terminated strings; `metrics` is NULL or valid for a
/// write; `cb` is NULL or a function that may be called with `user_data` on this thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_session_step(
    session: u64,
    prompts: *const *const c_char,
    n_prompts: usize,
    flags: u32,
    cb: EdgerlRewardFn,
    user_data: *mut c_void,
    metrics: *mut EdgerlStepMetrics,
) -> i32 {
    guard(|| {
        let t0 = std::time::Instant::now();
        let s = get_session(session)?;
        if n_prompts == 0 {
            return Err(invalid("`n_prompts` is 0"));
        }
        if prompts.is_null() {
            return Err(invalid("`prompts` is NULL"));
        }
        let prompts: Vec<&str> = (0..n_prompts)
            .map(|i| unsafe { text(*prompts.add(i), &format!("prompts[{i}]")) })
            .collect::<Res<_>>()?;
        let out = step(&s, Input::Texts { prompts, flags }, cb, user_data, t0)?;
        // SAFETY: as the function's contract says, `metrics` is NULL or valid for a write.
        unsafe { finish(out, metrics) }
    })
}

/// One GRPO step on dataset rows with their data columns; see edgerl.h.
///
/// # Safety
/// `rows_json` is a NUL-terminated string; `metrics` is NULL or valid for a write; `cb` is
/// NULL or a function that may be called with `user_data` on this thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_session_step_rows(
    session: u64,
    rows_json: *const c_char,
    cb: EdgerlRewardFn,
    user_data: *mut c_void,
    metrics: *mut EdgerlStepMetrics,
) -> i32 {
    guard(|| {
        let t0 = std::time::Instant::now();
        let s = get_session(session)?;
        let rows_json = unsafe { text(rows_json, "rows_json") }?;
        let out = step(&s, Input::Rows(rows_json, Vec::new()), cb, user_data, t0)?;
        // SAFETY: as the function's contract says, `metrics` is NULL or valid for a write.
        unsafe { finish(out, metrics) }
    })
}

/// A step's prompts as the app gave them.
pub(super) enum Input<'a> {
    /// Prompt strings (`EDGERL_PROMPT_*` flags), no data columns; a callback replaces the rules.
    Texts { prompts: Vec<&'a str>, flags: u32 },
    /// A JSON array of dataset rows (`prompt` and data columns; a callback adds to the rules),
    /// and the images their image places take (`step_images::row_prompts`).
    Rows(&'a str, Vec<crate::vision::preprocess::RgbImage>),
}

/// The rows of `edgerl_session_step_rows`, each checked by `parse_row`.
fn parse_rows(json: &str, rules: Option<&RewardSet>, cfg: &TrainConfig) -> Res<Vec<Row>> {
    let v: Value = serde_json::from_str(json).map_err(|e| invalid(format!("`rows_json` is not valid JSON: {e}")))?;
    let Value::Array(list) = v else {
        return Err(invalid("`rows_json` must be a JSON array of row objects"));
    };
    if list.is_empty() {
        return Err(invalid("`rows_json` is an empty array"));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| parse_row(v, rules, cfg).map_err(|e| invalid(format!("rows_json[{i}]: {e}"))))
        .collect()
}

/// One row (of `edgerl_session_step_rows`, or an episode's), checked as `edgerl train` checks a
/// dataset line (`RewardSet::check_row`): a `prompt`, every column a rule reads, targets the
/// rules can parse, and the `weight_column` when the config names one.
pub(super) fn parse_row(v: &Value, rules: Option<&RewardSet>, cfg: &TrainConfig) -> std::result::Result<Row, String> {
    let row = parse_line(&v.to_string())?;
    if let Some(rules) = rules {
        rules.check_row(&row)?;
    }
    column_weight(cfg, &row.columns).map_err(|e| e.to_string())?;
    Ok(row)
}

/// What a session adds to the shared sampling step (`rl::step`): the runtime's lock, cancel
/// checks, progress reports and the app's reward callback.
struct SessionHooks<'a> {
    s: &'a Session,
    progress: Progress,
    cb: EdgerlRewardFn,
    user_data: *mut c_void,
    num_generations: usize,
    /// The call's prompts: draw j (dynamic sampling's refills continue the count) is prompt
    /// j mod n_prompts, the index the callback sees.
    n_prompts: usize,
}

impl Hooks for SessionHooks<'_> {
    type Error = Fail;

    fn gpu<T>(&mut self, f: impl FnOnce() -> crate::error::Result<T>) -> Res<T> {
        let rt = &self.s.model.rt;
        let _g = rt.lock();
        f().map_err(|e| rt.explain(e).into())
    }

    fn check(&mut self) -> Res<()> {
        self.s.check_cancel()
    }

    fn sampled(&mut self, j: usize, n: usize) -> Res<()> {
        let g = self.num_generations;
        self.progress.report(self.s.id, EDGERL_PHASE_SAMPLE, (j + 1) * g, n * g)
    }

    fn reward(&mut self, j: usize, k: usize, text: &str) -> Res<Option<f64>> {
        let Some(f) = self.cb else { return Ok(None) };
        let j = j % self.n_prompts.max(1);
        let ctext = CString::new(text.replace('\0', "")).map_err(|e| invalid(e.to_string()))?;
        let mut r = f64::NAN;
        let rc = unsafe { f(self.user_data, j, k, ctext.as_ptr(), &mut r) };
        if rc != 0 {
            return Err(Fail(
                EDGERL_ERR_CALLBACK,
                format!("reward callback returned {rc} for prompt {j}, completion {k}: step aborted, adapter unchanged"),
            ));
        }
        if !r.is_finite() {
            return Err(Fail(
                EDGERL_ERR_CALLBACK,
                format!("reward {r} for prompt {j}, completion {k} is not a finite number: step aborted, adapter unchanged"),
            ));
        }
        Ok(Some(r))
    }
}

/// Both steps: prompts to ids, the plan, the shared sampling step (`Trainer::sample_scored`,
/// as `edgerl train`), then the updates.
pub(super) fn step(s: &Session, input: Input, cb: EdgerlRewardFn, user_data: *mut c_void, t0: std::time::Instant) -> Res<Trained> {
    let mut g = s.lock()?;
    s.cancellable(|| {
        let inner = g.as_mut().ok_or_else(|| invalid("the session is gone"))?;
        let t = &mut inner.trainer;
        if cb.is_none() && inner.rules.is_none() {
            return Err(invalid(
                "no reward callback and no `[[rewards]]` rules in the session's config",
            ));
        }
        let tok = t
            .tokenizer
            .as_ref()
            .ok_or_else(|| invalid("the session's model has no tokenizer"))?;
        let no_columns = Map::new();
        let (rows, rules, prompts) = match input {
            Input::Texts { prompts, flags } => {
                if let Some(col) = &t.cfg.weight_column {
                    return Err(invalid(format!(
                        "the config's weight_column `{col}` needs data columns, which edgerl_session_step's prompts do not have: use edgerl_session_step_rows"
                    )));
                }
                let ids: Vec<(Vec<u32>, _)> = prompts.iter().map(|p| Ok((prompt_ids(tok, p, flags)?, None))).collect::<Res<_>>()?;
                // The callback replaces the rules (which would see no columns).
                (Vec::new(), if cb.is_some() { None } else { inner.rules.as_ref() }, ids)
            }
            Input::Rows(json, images) => {
                let rows = parse_rows(json, inner.rules.as_ref(), &t.cfg)?;
                // Ids and each prompt's image features (the tower runs here, once a prompt).
                let prompts = super::step_images::row_prompts(s, t.gpu, tok, &rows, images)?;
                (rows, inner.rules.as_ref(), prompts)
            }
        };
        // Planned before anything is sampled: a step that cannot fit fails here.
        let load = StepLoad {
            prompt_tokens: prompts.iter().map(|p| p.0.len()).max().unwrap_or(0),
            completion_tokens: t.cfg.max_completion_length,
            num_generations: t.cfg.num_generations,
            rollouts: true,
            groups: prompts.len(),
        };
        let knobs = plan_step(s, t, &load)?;
        let prompts: Vec<Prompted> = prompts
            .into_iter()
            .enumerate()
            .map(|(j, (ids, images))| Prompted { ids, columns: rows.get(j).map_or(&no_columns, |r| &r.columns), images })
            .collect();
        let n = prompts.len();
        let mut hooks = SessionHooks { s, progress: s.progress(), cb, user_data, num_generations: t.cfg.num_generations, n_prompts: n };
        // The batch index `edgerl train` samples batch b with (a session step is one batch).
        let stream = t.optimizer_steps.div_ceil(t.cfg.num_iterations.max(1)) as u64;
        // As `edgerl train`'s step (`Trainer::sample_refilled`): with dynamic_sampling, groups
        // with all-equal rewards are replaced by the next draws, which cycle through the call's
        // prompts (draw d is prompt d mod n).
        // The knobs hold from sampling on: without checkpointing, sampling keeps the groups'
        // activations for the training pass (`Trainer::keeps_rollouts`), as `edgerl train` does.
        with_knobs(t, knobs, |t| {
            let ((groups, rewards, _), _) = t.sample_refilled(n, stream, rules, &mut hooks, |d| {
                let p = &prompts[d % n];
                Ok(Prompted { ids: p.ids.clone(), columns: p.columns, images: p.images.clone() })
            })?;
            let refs: Vec<&Group> = groups.iter().collect();
            let mut batch = t.batch(&refs);
            train_scored(s, t, &mut batch, rewards, t0)
        })
    })
}

/// What a step's updates gave: the metrics, and how many of the updates were skipped.
pub(crate) struct Trained {
    metrics: EdgerlStepMetrics,

    skipped: usize,
    updates: usize,
}

/// Writes the step's metrics (also when updates were skipped), then reports the skips as
/// `EDGERL_ERR_NONFINITE`.
///
/// # Safety
/// `metrics` is NULL or valid for a write.
pub(crate) unsafe fn finish(out: Trained, metrics: *mut EdgerlStepMetrics) -> Res<()> {
    if !metrics.is_null() {
        unsafe { metrics.write(out.metrics) };
    }
    if out.skipped > 0 {
        return Err(Fail(
            EDGERL_ERR_NONFINITE,
            format!(
                "{} of the step's {} updates had a NaN or infinite loss or gradient and were skipped (those left the adapter and optimizer unchanged); metrics written",
                out.skipped, out.updates
            ),
        ));
    }
    Ok(())
}

/// The update part of a step: `num_iterations` optimizer updates on `batch`, each after a
/// cancel check and a progress report, and the step's metrics (with the per-rule reward
/// metrics of its scoring, logged with the step).
pub(crate) fn train_scored(
    s: &Session,
    t: &mut Trainer<'static>,
    batch: &mut Batch,
    rewards: RewardMetrics,
    t0: std::time::Instant,
) -> Res<Trained> {
    let progress = s.progress();
    let n = t.cfg.num_iterations;
    let skipped_before = t.skipped_steps;
    let mut last = None;
    for i in 0..n {
        progress.report(s.id, EDGERL_PHASE_UPDATE, i, n)?;
        // After the report, so that edgerl_cancel from the progress callback stops this update.
        s.check_cancel()?;
        let _g = s.model.rt.lock();
        last = Some(t.step(batch).map_err(|e| s.model.rt.explain(e))?);
    }
    progress.report(s.id, EDGERL_PHASE_UPDATE, n, n)?;
    // The updates are applied: a cancel asked for since the last check (during the last update,
    // or from the final report) has nothing left to stop, and must not stop the next call.
    s.cancel.store(false, Ordering::SeqCst);
    let mut m = last.ok_or_else(|| invalid("num_iterations is 0: the step made no update"))?;
    m.rewards = rewards;
    let out = EdgerlStepMetrics {
        step: t.optimizer_steps as u64,
        loss: m.loss,
        reward_mean: m.reward,
        reward_std: m.reward_std,
        grad_norm: m.grad_norm,
        learning_rate: m.learning_rate,
        completion_mean_length: m.completion_mean_length,
        clipped_ratio: m.clipped_ratio,
        seconds: t0.elapsed().as_secs_f64(),
    };
    for r in &m.rewards.rules {
        log::info!("session {}: step {}: rewards/{}: mean {:.4} (std {:.4})", s.id, out.step, r.name, r.mean, r.std);
    }
    if let Some(n) = m.rewards.refills {
        log::info!("session {}: step {}: dynamic_sampling/refills: {n}", s.id, out.step);
    }
    log::info!(
        "session {}: step {}: reward {:.4} (std {:.4}), loss {:.6}, grad_norm {:.4}, {:.2} s",
        s.id, out.step, out.reward_mean, out.reward_std, out.loss, out.grad_norm, out.seconds
    );
    Ok(Trained { metrics: out, skipped: t.skipped_steps - skipped_before, updates: n })
}

/// Writes the session's adapter to `dir` in PEFT format (adapter_config.json and
/// adapter_model.safetensors, each written to a temp file and renamed).
///
/// # Safety
/// `dir` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_session_save_adapter(session: u64, dir: *const c_char) -> i32 {
    guard(|| {
        let s = get_session(session)?;
        let dir = Path::new(unsafe { text(dir, "dir") }?);
        s.with_trainer(|t| {
            let _g = s.model.rt.lock();
            Ok(t.lora
                .save_peft(t.gpu, dir, &s.model.path.to_string_lossy())?)
        })
    })
}

/// Replaces the session's adapter with a PEFT adapter from `dir` (optimizer state restarts).
///
/// # Safety
/// `dir` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_session_load_adapter(session: u64, dir: *const c_char) -> i32 {
    guard(|| {
        let s = get_session(session)?;
        let dir = Path::new(unsafe { text(dir, "dir") }?);
        let mut g = s.lock()?;
        let t = &mut g
            .as_mut()
            .ok_or_else(|| invalid("the session is gone"))?
            .trainer;
        let lora = {
            let _g = s.model.rt.lock();
            Lora::load_peft(t.gpu, dir, &t.model.cfg)?
        };
        t.lora = lora;
        t.clear_moments();
        Ok(())
    })
}
