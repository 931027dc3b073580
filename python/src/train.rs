//! `Trainer`: GRPO steps as `edgerl train` takes them (the same draws, sampling streams, rule
//! rewards, batches and updates, so the same config and seed train the same adapter), with the
//! rewards of Python reward functions added to the rules' (as a C session's callback adds).
//!
//! TRL calls its reward functions once per batch with every completion; edgerl's shared step
//! (`Trainer::sample_scored`) scores one completion at a time. So each round of the shared
//! step (`Trainer::sample_refilled`) samples and scores the rules first, then calls Python once
//! with all the round's completions and adds its rewards (`Hooks::round`, recomputing each
//! group's difficulty weight) before dynamic sampling keeps or drops the groups.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;
use serde_json::{Map, Value, json};

use edgerl::Error;
use edgerl::data::dataset::{Prompt, Row};
use edgerl::reward::RewardSet;
use edgerl::rl::TrainConfig;
use edgerl::rl::loss::mean_std;
use edgerl::rl::rollouts::Group;
use edgerl::rl::run::RowOrder;
use edgerl::rl::step::{Hooks, Sampled, column_weight, difficulty};
use edgerl::rl::trainer::{Batch, RewardMetrics, RuleReward};

use edgerl::model::SamplingOptions;

use crate::model::{PromptArg, Target, generate_on, image_args, score_on};
use crate::{Fail, Unchecked, gpu, gpu_lock, invalid, to_py};

/// The trainer's model with its current adapter, for generate and score.
fn target<'a>(t: &'a edgerl::rl::trainer::Trainer<'static>) -> Result<Target<'a>, Error> {
    let tokenizer = t.tokenizer.as_ref().ok_or_else(|| Error::Invalid("the trainer's model has no tokenizer".into()))?;
    Ok(Target { model: &t.model, tokenizer, eos: &t.eos, lora: Some(&t.lora), vision: t.vision.as_ref() })
}

/// What stops a step between its GPU pieces: `Trainer.cancel()`'s flag, or a signal Python
/// has pending (Ctrl-C; its handler runs here, so the default one raises KeyboardInterrupt).
/// The GIL is taken only for the check, never around GPU work.
struct PyHooks {
    cancel: Arc<AtomicBool>,
}

/// `Trainer.cancel()`'s error: KeyboardInterrupt, as Ctrl-C's, so one `except` serves both.
fn cancelled() -> Fail {
    Fail::Py(pyo3::exceptions::PyKeyboardInterrupt::new_err(
        "Trainer.cancel(): the step was stopped before its update (nothing applied: adapter, optimizer, global_step and the dataset cursor are as before it)",
    ))
}

impl Hooks for PyHooks {
    type Error = Fail;

    // The lock is held per piece (not across the checks, which take the GIL): a thread holding
    // the GIL never waits for it while this one waits for the GIL.
    fn gpu<T>(&mut self, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Fail> {
        let _g = gpu_lock();
        f().map_err(Fail::from)
    }

    fn check(&mut self) -> Result<(), Fail> {
        if self.cancel.swap(false, Ordering::SeqCst) {
            return Err(cancelled());
        }
        // Handlers run on the main thread only; elsewhere this is a no-op.
        Python::with_gil(|py| py.check_signals()).map_err(Fail::Py)
    }
}

/// Shares a trainer's cancel flag with other threads: `_Trainer` is mutably borrowed while a
/// step runs, so its own methods can't be called then.
#[pyclass(module = "edgerl._edgerl", frozen)]
pub struct CancelFlag(Arc<AtomicBool>);

#[pymethods]
impl CancelFlag {
    /// Asks the running step (or, when none runs, the next one) to stop at its next check.
    fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A new batch, sampled but not yet taken: `_step` keeps it only once its update is applied.
struct Fresh {
    batch: Batch,
    metrics: RewardMetrics,
    lines: Vec<Value>,
    draws: usize,
}

/// Keys the Python front end owns (taken out of the config before `TrainConfig` sees it).
const PY_KEYS: &[&str] = &["reward_weights"];

/// A config error, named as `edgerl train --config` names it (`<path>: <reason>`), or
/// `config: <reason>` for a dict.
pub(crate) fn blame(path: Option<&Path>, e: String) -> Error {
    match path {
        Some(p) => Error::Invalid(format!("{}: {e}", p.display())),
        None => Error::Invalid(format!("config: {e}")),
    }
}

/// The config's table: TOML text (a run.toml's), or JSON (a Python dict's).
pub(crate) fn config_table(toml_text: Option<&str>, json_text: Option<&str>, path: Option<&Path>) -> Result<toml::Table, Error> {
    let bad = |e: String| blame(path, e.trim().replace('\n', " "));
    match (toml_text, json_text) {
        (Some(t), None) => t.parse::<toml::Table>().map_err(|e| bad(e.to_string())),
        (None, Some(j)) => {
            let v: Value = serde_json::from_str(j).map_err(|e| bad(e.to_string()))?;
            toml::Table::try_from(v).map_err(|e| bad(e.to_string()))
        }
        _ => Err(Error::Invalid("give the config as TOML or as a dict".into())),
    }
}

/// A run config from its table (`path`: the run.toml; relative paths are relative to its
/// directory, as for `edgerl train --config`; `None`: as given). Returns the config, the keys `PY_KEYS` took out
/// (as JSON), and whether `output_dir` was given.
fn parse_config(mut t: toml::Table, path: Option<&Path>, has_rows: bool, has_funcs: bool) -> Result<(TrainConfig, Map<String, Value>, bool), Error> {
    let bad = |e: String| blame(path, e);
    let base = path.map(|p| p.parent().unwrap_or(Path::new(".")));
    let mut own = Map::new();
    for k in PY_KEYS {
        if let Some(v) = t.remove(*k) {
            own.insert(k.to_string(), serde_json::to_value(v).map_err(|e| bad(e.to_string()))?);
        }
    }
    if !t.contains_key("model") {
        return Err(bad("no `model` (a Hugging Face directory or a .gguf file)".into()));
    }
    if t.contains_key("rollouts") {
        return Err(bad("`rollouts` (offline training) is not supported from Python yet: give prompts as `dataset`".into()));
    }
    let has_output = t.contains_key("output_dir");
    if !has_output {
        t.insert("output_dir".into(), toml::Value::String("<python>".into()));
    }
    let placeholder = toml::Value::String("<python>".into());
    if has_rows {
        if t.contains_key("dataset") {
            return Err(bad("`dataset` is given both in the config and as the `dataset` argument".into()));
        }
        t.insert("dataset".into(), placeholder.clone());
    } else if !t.contains_key("dataset") {
        return Err(bad("no dataset: give `dataset` (rows) or the config's `dataset` (a JSONL file)".into()));
    }
    // The config's check wants rule rewards for an online run; with Python reward functions
    // alone there are none.
    let dataset = t.get("dataset").cloned();
    let no_rules = !t.contains_key("rewards");
    if no_rules {
        if !has_funcs {
            return Err(bad("no reward: give `reward_funcs` or `[[rewards]]` rules in the config".into()));
        }
        t.remove("dataset");
        t.insert("rollouts".into(), placeholder);
    }
    let toml_text = toml::to_string(&t).map_err(|e| bad(e.to_string()))?;
    let mut cfg = TrainConfig::from_toml(&toml_text).map_err(bad)?;
    cfg.rollouts = None;
    cfg.dataset = match (has_rows, dataset) {
        (false, Some(toml::Value::String(s))) => Some(PathBuf::from(s)),
        _ => None,
    };
    if let Some(b) = base {
        let r = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { b.join(p) };
        cfg.model = r(&cfg.model);
        cfg.output_dir = r(&cfg.output_dir);
        cfg.dataset = cfg.dataset.as_deref().map(r);
        cfg.init_adapter = cfg.init_adapter.as_deref().map(r);
    }
    Ok((cfg, own, has_output))
}

/// A dataset row from its JSON (as `edgerl train` parses a JSONL line), checked against the
/// rules as the CLI checks its dataset: the prompt, every column a rule reads, targets the rules
/// parse, and the weight column.
fn parse_row(json: &str, rules: Option<&RewardSet>, cfg: &TrainConfig) -> Result<Row, String> {
    let row = edgerl::data::dataset::parse_line(json)?;
    if let Some(rules) = rules {
        rules.check_row(&row)?;
    }
    column_weight(cfg, &row.columns).map_err(|e| e.to_string())?;
    Ok(row)
}

/// A row as the JSON object Python sees (`prompt` first, then the columns).
fn row_json(r: &Row) -> String {
    let prompt = match &r.prompt {
        Prompt::Text(s) => json!(s),
        Prompt::Chat(m) => Value::Array(m.iter().map(|m| json!({"role": m.role, "content": m.content})).collect()),
        Prompt::Parts(m) => json!(m),
    };
    let mut o = Map::new();
    o.insert("prompt".into(), prompt);
    if !r.images.is_empty() {
        o.insert("images".into(), json!(r.images));
    }
    for (k, v) in &r.columns {
        o.insert(k.clone(), v.clone());
    }
    Value::Object(o).to_string()
}

#[pyclass(module = "edgerl._edgerl")]
pub struct Trainer {
    t: edgerl::rl::trainer::Trainer<'static>,
    rules: Option<RewardSet>,
    rows: Vec<Row>,
    order: RowOrder,
    /// The next draw (dynamic sampling's refills continue the count), as `edgerl train`'s cursor.
    cursor: usize,
    batch: Option<Batch>,
    reward_metrics: RewardMetrics,
    /// `callback(rows, completions, completion_ids) -> (totals, [per-function values])`: the
    /// Python side's reward functions, weighted and summed (`None`: rules only).
    reward_cb: Option<Py<PyAny>>,
    reward_names: Vec<String>,
    /// Keys the Python side owns (`PY_KEYS`), as JSON.
    own: Map<String, Value>,
    has_output: bool,
    /// The last sampling rounds' completions (one JSON line each, as completions.jsonl).
    last_completions: Vec<Value>,
    /// What the memory plan chose before the run (`"auto"` settled, or a budget's fit).
    memory_plan: Option<String>,
    /// Set by `Trainer.cancel()` (through `CancelFlag`); consumed by the check that stops a step.
    cancel: Arc<AtomicBool>,
}

/// A step's hooks with the Python reward functions: `PyHooks`' checks and lock, and each round's
/// completions handed to `callback(rows, completions, completion_ids) -> (totals, [per-function
/// values])` at once, their weighted totals added to the rules' (`Hooks::round`).
struct PyRound<'a> {
    hooks: PyHooks,
    cb: Option<&'a Py<PyAny>>,
    names: &'a [String],
    cfg: &'a TrainConfig,
    rows: &'a [Row],
    /// The dataset row of each draw of the step so far (refills continue the count), pushed by
    /// the draw closure before its round is sampled.
    drawn: &'a std::cell::RefCell<Vec<usize>>,
}

impl Hooks for PyRound<'_> {
    type Error = Fail;

    fn gpu<T>(&mut self, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Fail> {
        self.hooks.gpu(f)
    }

    fn check(&mut self) -> Result<(), Fail> {
        self.hooks.check()
    }

    fn round(&mut self, base: usize, sampled: &mut Sampled) -> Result<(), Fail> {
        let Some(cb) = self.cb else { return Ok(()) };
        let (groups, m, lines) = sampled;
        let rows_of = self.drawn.borrow();
        // Every completion of the round, prompt by prompt (TRL's order).
        let mut rows_idx = Vec::new();
        let mut texts = Vec::new();
        let mut ids = Vec::new();
        for (j, g) in groups.iter().enumerate() {
            for (k, c) in g.completions.iter().enumerate() {
                rows_idx.push(rows_of[base + j]);
                let line = &lines[j * g.completions.len().max(1) + k];
                texts.push(line["completion"].as_str().unwrap_or_default().to_string());
                ids.push(c.clone());
            }
        }
        let n = texts.len();
        let (totals, per_func): (Vec<f64>, Vec<Vec<f64>>) =
            Python::with_gil(|py| cb.call1(py, (rows_idx, texts, ids))?.extract(py)).map_err(Fail::Py)?;
        if totals.len() != n || per_func.len() != self.names.len() || per_func.iter().any(|v| v.len() != n) {
            return Err(Error::Invalid(format!("reward callback: expected {n} totals and {} lists of {n}", self.names.len())).into());
        }
        if let Some((i, r)) = totals.iter().enumerate().find(|(_, r)| !r.is_finite()) {
            return Err(Error::Invalid(format!("the reward of completion {i} is {r}, not a finite number (a reward function gave an infinite reward)")).into());
        }
        let mut i = 0;
        for (j, g) in groups.iter_mut().enumerate() {
            for k in 0..g.rewards.len() {
                g.rewards[k] += totals[i];
                let line = &mut lines[j * g.rewards.len() + k];
                line["reward"] = json!(g.rewards[k]);
                if !line["rewards"].is_object() {
                    line["rewards"] = json!({});
                }
                for (name, vals) in self.names.iter().zip(&per_func) {
                    line["rewards"][name] = if vals[i].is_nan() { Value::Null } else { json!(vals[i]) };
                }
                i += 1;
            }
            g.weight = column_weight(self.cfg, &self.rows[rows_of[base + j]].columns)? * difficulty(self.cfg, &g.rewards);
        }
        for (name, vals) in self.names.iter().zip(&per_func) {
            // As TRL's nanmean / nanstd: a function's None (NaN) entries are left out.
            let vals: Vec<f64> = vals.iter().copied().filter(|v| !v.is_nan()).collect();
            let (mean, std) = if vals.is_empty() { (f64::NAN, f64::NAN) } else { mean_std(&vals) };
            m.rules.push(RuleReward { name: name.clone(), mean, std });
        }
        Ok(())
    }
}

impl Trainer {
    /// The groups of batch `b` as `edgerl train` draws them (`Trainer::sample_refilled`, with
    /// the Python rewards added each round), as a batch the caller takes (of the trainer only
    /// the row order's cache changes).
    fn sample_batch(&mut self, py: Python<'_>, b: u64) -> Result<Fresh, Fail> {
        let per = self.t.cfg.prompts_per_step;
        let first = self.cursor;
        let drawn = std::cell::RefCell::new(Vec::new());
        let job = Unchecked((&self.t, &self.rows, &mut self.order, &drawn, self.rules.as_ref(), self.reward_cb.as_ref(), &self.reward_names[..], self.cancel.clone()));
        let ((groups, m, lines), draws) = py
            .allow_threads(move || {
                let job = job;
                let (t, rows, order, drawn, rules, cb, names, cancel) = job.0;
                let mut hooks = PyRound { hooks: PyHooks { cancel: cancel.clone() }, cb, names, cfg: &t.cfg, rows, drawn };
                // A chat template's render also stops on the flag (`edgerl::cancel::requested`).
                let _scope = edgerl::cancel::scope(cancel.clone());
                let mut run = || -> Result<_, Fail> {
                    let tok = t.tokenizer.as_ref().ok_or_else(|| Error::Invalid("sampling needs the model's tokenizer".into()))?;
                    // Draws get the same checks and lock as the hooks' pieces.
                    let mut own = PyHooks { cancel: cancel.clone() };
                    t.sample_refilled(per, b, rules, &mut hooks, |d| {
                        let r = order.index(first + d);
                        drawn.borrow_mut().push(r);
                        own.check()?;
                        // As `edgerl train` draws a row (`Trainer::prompted`): its ids, and its
                        // images run through the vision tower once for sampling and training.
                        let p = own.gpu(|| {
                            t.prompted(tok, &rows[r]).map_err(|e| match e {
                                Error::Invalid(m) => Error::Invalid(format!("dataset row {r}: {m}")),
                                e => e,
                            })
                        })?;
                        if p.ids.is_empty() {
                            return Err(Error::Invalid(format!("dataset row {r}: the prompt tokenizes to nothing")).into());
                        }
                        Ok(p)
                    })
                };
                match run() {
                    Ok(s) => Ok(Unchecked(s)),
                    // What the flag stopped (a render) reports the cancel, which consumes it.
                    Err(Fail::Edgerl(_)) if cancel.swap(false, Ordering::SeqCst) => Err(cancelled()),
                    Err(e) => Err(e),
                }
            })?
            .0;
        let refs: Vec<&Group> = groups.iter().collect();
        Ok(Fresh { batch: self.t.batch(&refs), metrics: m, lines, draws })
    }
}

#[pymethods]
impl Trainer {
    /// `_Trainer(config_toml, base_dir, rows_json, reward_cb, reward_names)`; the `edgerl`
    /// package's `Trainer` builds these arguments.
    #[new]
    #[pyo3(signature = (config_toml=None, config_json=None, config_path=None, rows_json=None, reward_cb=None, reward_names=Vec::new(), memory_budget=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        config_toml: Option<&str>,
        config_json: Option<&str>,
        config_path: Option<PathBuf>,
        rows_json: Option<Vec<String>>,
        reward_cb: Option<Py<PyAny>>,
        reward_names: Vec<String>,
        memory_budget: Option<String>,
    ) -> PyResult<Trainer> {
        let budget = memory_budget.as_deref().map(edgerl::plan::parse_budget).transpose().map_err(to_py)?;
        let path = config_path.as_deref();
        let table = config_table(config_toml, config_json, path).map_err(to_py)?;
        let own_keys = PY_KEYS.iter().any(|k| table.contains_key(*k));
        let (cfg, own, has_output) = parse_config(table, path, rows_json.is_some(), reward_cb.is_some()).map_err(|e| {
            // The run.toml's own error where it has one, as `edgerl train` words it (the table
            // above was rewritten, so its line numbers would be off).
            if let (Some(text), false) = (config_toml, own_keys)
                && let Err(orig) = toml::from_str::<TrainConfig>(text)
            {
                return to_py(blame(path, orig.to_string().trim().replace('\n', " ")));
            }
            to_py(e)
        })?;
        let rules = if cfg.rewards.is_empty() { None } else { Some(RewardSet::new(&cfg.rewards, cfg.reward_all_or_nothing).map_err(to_py)?) };
        if let Some(r) = &rules {
            let names = r.names();
            if let Some(n) = reward_names.iter().find(|n| names.contains(n)) {
                return Err(invalid(format!("reward function `{n}` has the name of a `[[rewards]]` rule; rename one of them (metric names would clash)")));
            }
        }
        let rows: Vec<Row> = match (&rows_json, &cfg.dataset) {
            (Some(list), _) => {
                if list.is_empty() {
                    return Err(invalid("the dataset is empty"));
                }
                list.iter()
                    .enumerate()
                    .map(|(i, s)| parse_row(s, rules.as_ref(), &cfg).map_err(|e| invalid(format!("dataset row {i}: {e}"))))
                    .collect::<PyResult<_>>()?
            }
            (None, Some(path)) => {
                let none = RewardSet::new(&[], false).map_err(to_py)?;
                let rows = rules.as_ref().unwrap_or(&none).read_dataset(path).map_err(to_py)?;
                if let Some((i, e)) = rows.iter().enumerate().find_map(|(i, r)| column_weight(&cfg, &r.columns).err().map(|e| (i, e))) {
                    return Err(invalid(format!("{}: line {}: {e}", path.display(), i + 1)));
                }
                rows
            }
            (None, None) => return Err(invalid("no dataset")),
        };
        if rows.is_empty() {
            return Err(invalid("the dataset is empty"));
        }
        let mut rows = rows;
        if rows_json.is_some() && rows.iter().any(|r| r.images.iter().any(|p| p.is_relative())) {
            // Rows given from Python name their image files relative to the current directory
            // (now: a later chdir does not move them); a dataset file's rows, to the file.
            let cwd = std::env::current_dir().map_err(|e| to_py(Error::Invalid(format!("the current directory: {e}"))))?;
            for r in &mut rows {
                r.images = r.images.iter().map(|p| cwd.join(p)).collect();
            }
        }
        let order = RowOrder::new(cfg.seed, cfg.shuffle_dataset, rows.len());
        // The run's fingerprint, as `edgerl train` writes it into checkpoints, plus what only
        // Python has: rows given as `dataset` (their JSON) and the reward functions' names (their
        // code can't be compared).
        let mut extra = vec![("reward_funcs".to_string(), reward_names.join(","))];
        if let Some(list) = &rows_json {
            extra.push(("dataset".into(), format!("{} rows from Python, crc32 {:08x}", list.len(), edgerl::rl::state::crc32(list.join("\n").as_bytes()))));
        }
        // As `edgerl train [--memory-budget]` plans the run before loading it: a budget's fit
        // picks the knobs (or refuses the run); without one `gradient_checkpointing = "auto"`
        // (the default) is settled. Planned over the rows given from Python when there are some.
        let given = rows_json.is_some().then(|| rows.clone());
        let (t, memory_plan) = py
            .allow_threads(move || -> Result<_, Error> {
                let gpu = gpu()?;
                let mut cfg = cfg;
                let mut pack_size = None;
                let memory_plan = match budget {
                    Some(b) => {
                        let fit = edgerl::plan::fit_train_config(&mut cfg, given.as_deref(), b, gpu.max_binding)?;
                        pack_size = fit.pack_size;
                        Some(fit.summary())
                    }
                    None => edgerl::plan::settle_auto_checkpointing_rows(&mut cfg, given.as_deref(), gpu.max_binding),
                };
                if let Some(line) = &memory_plan {
                    log::info!("memory plan: {line}");
                }
                let _g = gpu_lock();
                let mut t = edgerl::rl::trainer::Trainer::new(gpu, cfg)?;
                t.pack_size = pack_size;
                // After loading: a missing model is the loader's error, as for the CLI's others.
                let mut fingerprint = edgerl::rl::fingerprint::of(&t.cfg)?;
                fingerprint.extend(extra);
                t.run_fingerprint = fingerprint;
                Ok(Unchecked((t, memory_plan)))
            })
            .map_err(to_py)?
            .0;
        if t.vision.is_none()
            && let Some(i) = rows.iter().position(|r| !r.images.is_empty())
        {
            let e = edgerl::vision::model::no_tower();
            return Err(invalid(match (&rows_json, &t.cfg.dataset) {
                (None, Some(path)) => format!("{}: line {}: {e}", path.display(), i + 1),
                _ => format!("dataset row {i}: {e}"),
            }));
        }
        Ok(Trainer {
            t,
            rules,
            rows,
            order,
            cursor: 0,
            batch: None,
            reward_metrics: RewardMetrics::default(),
            reward_cb,
            reward_names,
            own,
            has_output,
            last_completions: Vec::new(),
            memory_plan,
            cancel: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The trainer's cancel flag, to set from any thread (`Trainer.cancel()`).
    fn _cancel_flag(&self) -> CancelFlag {
        CancelFlag(self.cancel.clone())
    }

    /// The dataset cursor: the next draw (tests compare it around a cancelled step).
    #[getter]
    fn _cursor(&self) -> usize {
        self.cursor
    }

    /// One optimizer step (a new batch every `num_iterations` steps, as `edgerl train`):
    /// the step's metrics line as JSON (metrics.jsonl's keys).
    fn _step(&mut self, py: Python<'_>) -> PyResult<String> {
        let iters = self.t.cfg.num_iterations.max(1);
        // Nothing of the trainer changes until the update is applied: a step stopped (Ctrl-C,
        // `cancel()`) or failed before it leaves the next `step()` to run as this one would have.
        let mut fresh = None;
        if self.t.optimizer_steps.is_multiple_of(iters) || self.batch.is_none() {
            let b = (self.t.optimizer_steps / iters) as u64;
            fresh = Some(self.sample_batch(py, b)?);
        }
        // The last check: the update is one GPU piece, not stopped once begun.
        PyHooks { cancel: self.cancel.clone() }.check()?;
        let batch = match &mut fresh {
            Some(f) => &mut f.batch,
            None => self.batch.as_mut().expect("a batch in flight"),
        };
        let job = Unchecked((&mut self.t, batch));
        let mut sm = py
            .allow_threads(move || {
                let job = job;
                let (t, batch) = job.0;
                let _g = gpu_lock();
                t.step(batch).map(Unchecked)
            })
            .map_err(to_py)?
            .0;
        // Applied: a cancel asked for during the update has nothing left to stop (a pending
        // Ctrl-C still raises once this returns, after the step).
        self.cancel.store(false, Ordering::SeqCst);
        if let Some(f) = fresh {
            self.cursor += f.draws;
            self.batch = Some(f.batch);
            self.reward_metrics = f.metrics;
            self.last_completions = f.lines;
        }
        sm.rewards = self.reward_metrics.clone();
        Ok(Value::Object(sm.to_map()).to_string())
    }

    /// Writes `output_dir/checkpoint-<global_step>` as `edgerl train` writes its checkpoints
    /// (adapter, optimizer state, the batch in flight, the cursor, the run's fingerprint);
    /// returns its path.
    fn _checkpoint(&mut self, py: Python<'_>) -> PyResult<String> {
        if !self.has_output {
            return Err(invalid("config: no `output_dir` (checkpoints are written there)"));
        }
        let metrics = self.reward_metrics.to_map();
        let job = Unchecked((&self.t, self.batch.as_ref(), metrics, self.cursor));
        py.allow_threads(move || {
            let job = job;
            let (t, batch, metrics, cursor) = job.0;
            let _g = gpu_lock();
            t.checkpoint(batch, &metrics, cursor)
        })
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(to_py)
    }

    /// Continues from the newest intact checkpoint of `output_dir` (as `edgerl train --resume`):
    /// the adapter, optimizer state, step, cursor and a batch in flight come back; a checkpoint
    /// of another run (other model, rows, keys or reward functions) is refused. Returns the
    /// step it resumes at.
    fn _resume(&mut self, py: Python<'_>) -> PyResult<usize> {
        if !self.has_output {
            return Err(invalid("config: no `output_dir` (resume reads its checkpoints)"));
        }
        let out = self.t.cfg.output_dir.clone();
        let job = Unchecked(&mut self.t);
        let (st, resumed) = py
            .allow_threads(move || -> Result<_, Error> {
                let job = job;
                let t = job.0;
                let dir = edgerl::rl::checkpoint::latest(&out)?.ok_or_else(|| {
                    Error::Invalid(format!("resume: {} holds no checkpoint to resume from; start the run without resume", out.display()))
                })?;
                let _g = gpu_lock();
                let st = t.restore(&dir)?;
                let (step, cursor) = (st.step, st.cursor);
                Ok(Unchecked(((step, cursor), t.resumed_batch(st)?)))
            })
            .map_err(to_py)?
            .0;
        let (step, cursor) = st;
        self.cursor = cursor;
        (self.batch, self.reward_metrics) = match resumed {
            Some((b, m)) => (Some(b), m),
            None => (None, RewardMetrics::default()),
        };
        self.last_completions.clear();
        Ok(step)
    }

    /// What `output_dir` holds of an earlier run (a checkpoint, a log, the adapter), if anything.
    fn _previous_run(&self) -> Option<String> {
        if !self.has_output {
            return None;
        }
        edgerl::rl::checkpoint::previous_run(&self.t.cfg.output_dir)
    }

    /// Removes an earlier run's checkpoints, logs and adapter from `output_dir` (`--overwrite`).
    fn _remove_previous_run(&self) -> PyResult<()> {
        if !self.has_output {
            return Ok(());
        }
        edgerl::rl::checkpoint::remove_previous_run(&self.t.cfg.output_dir).map_err(to_py)
    }

    /// What the memory plan chose before the run: `"auto"` settled ("gradient checkpointing
    /// off (auto: …)") or a budget's fit ("predicted peak … within the … budget (…)"); `None`
    /// when the config fixed `gradient_checkpointing` and no budget was given.
    #[getter]
    fn memory_plan(&self) -> Option<String> {
        self.memory_plan.clone()
    }

    #[getter]
    fn save_steps(&self) -> usize {
        self.t.cfg.save_steps
    }

    /// Writes the adapter to `dir` in PEFT format (adapter_config.json, adapter_model.safetensors).
    fn save_adapter(&mut self, py: Python<'_>, dir: PathBuf) -> PyResult<String> {
        let job = Unchecked((&self.t, dir.clone()));
        py.allow_threads(move || {
            let job = job;
            let (t, dir) = job.0;
            let gpu = gpu()?;
            let _g = gpu_lock();
            t.lora.save_peft(gpu, &dir, &t.cfg.model.to_string_lossy())
        })
        .map_err(to_py)?;
        Ok(dir.to_string_lossy().into_owned())
    }

    /// `Model._generate` with the trainer's model and current adapter.
    #[pyo3(signature = (prompt=None, chat=None, messages=None, parts_json=None, images=None, max_new_tokens=64, temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, seed=0))]
    #[allow(clippy::too_many_arguments)]
    fn _generate(
        &mut self,
        py: Python<'_>,
        prompt: Option<String>,
        chat: Option<String>,
        messages: Option<Vec<(String, String)>>,
        parts_json: Option<String>,
        images: Option<Vec<Bound<'_, PyAny>>>,
        max_new_tokens: usize,
        temperature: f32,
        top_k: usize,
        top_p: f32,
        min_p: f32,
        seed: u64,
    ) -> PyResult<(Vec<u32>, String)> {
        let arg = PromptArg::new(prompt, chat, messages, parts_json)?;
        let opts = SamplingOptions { max_new_tokens, temperature, top_k, top_p, min_p, seed };
        opts.validate().map_err(to_py)?;
        let images = image_args(images)?;
        let t = Unchecked(&self.t);
        py.allow_threads(move || {
            let t = t;
            generate_on(target(t.0)?, &arg, images, &opts)
        })
        .map_err(to_py)
    }

    /// `Model._score` with the trainer's model and current adapter.
    #[pyo3(signature = (text, images=None))]
    fn _score(&mut self, py: Python<'_>, text: String, images: Option<Vec<Bound<'_, PyAny>>>) -> PyResult<(Vec<u32>, Vec<f32>)> {
        let images = image_args(images)?;
        let t = Unchecked(&self.t);
        py.allow_threads(move || {
            let t = t;
            score_on(target(t.0)?, &text, images)
        })
        .map_err(to_py)
    }

    /// Whether the trainer's model has a vision tower (rows may carry images).
    #[getter]
    fn has_vision(&self) -> bool {
        self.t.vision.is_some()
    }

    /// The rows, each as a JSON object (`prompt` first).
    fn _rows(&self) -> Vec<String> {
        self.rows.iter().map(row_json).collect()
    }

    /// The keys the Python side owns, as a JSON object.
    fn _own_keys(&self) -> String {
        Value::Object(self.own.clone()).to_string()
    }

    /// The last batch's completions, one JSON object each (as completions.jsonl has them).
    fn _last_completions(&self) -> Vec<String> {
        self.last_completions.iter().map(Value::to_string).collect()
    }

    /// Optimizer steps taken.
    #[getter]
    fn global_step(&self) -> usize {
        self.t.optimizer_steps
    }

    #[getter]
    fn max_steps(&self) -> usize {
        self.t.cfg.max_steps
    }

    /// `output_dir` (None when the config has none).
    #[getter]
    fn output_dir(&self) -> Option<String> {
        self.has_output.then(|| self.t.cfg.output_dir.to_string_lossy().into_owned())
    }

    #[getter]
    fn num_iterations(&self) -> usize {
        self.t.cfg.num_iterations.max(1)
    }

    #[getter]
    fn num_generations(&self) -> usize {
        self.t.cfg.num_generations
    }
}
