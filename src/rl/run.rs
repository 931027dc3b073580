//! `edgerl train`'s loop: groups from given rollouts or sampled and scored here, one batch
//! per `num_iterations` steps, metrics and completion logs, checkpoints and `--resume`.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::config::TrainConfig;
use super::rollouts::Group;
use super::trainer::Trainer;
use crate::data::dataset::{self, Row};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::reward::RewardSet;

/// Where a run's groups come from: given completions, or prompts sampled and scored here.
enum Source {
    Offline(Vec<Group>),
    Online { rows: Vec<Row>, rewards: RewardSet, log: std::fs::File, log_path: PathBuf },
}

impl Trainer<'_> {
    /// Samples `num_generations` completions for each row with the current adapter and scores
    /// them. Returns the groups, the per-rule reward metrics, and one log line per completion.
    pub fn sample_groups(&self, rows: &[&Row], stream: u64, rewards: &RewardSet) -> Result<(Vec<Group>, Map<String, Value>, Vec<Value>)> {
        let cfg = &self.cfg;
        let tok = self.tokenizer.as_ref().ok_or_else(|| Error::Invalid("sampling needs the model's tokenizer".into()))?;
        let sampler = self.sampler(cfg.max_completion_length);
        let names = rewards.names();
        let mut per_rule: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        let mut groups = Vec::with_capacity(rows.len());
        let mut log = Vec::new();
        for (j, row) in rows.iter().enumerate() {
            let prompt_ids = super::rollout::prompt_ids(tok, &row.prompt)?;
            let weight = match &cfg.weight_column {
                None => 1.0,
                Some(col) => row.columns.get(col).and_then(|v| v.as_f64()).filter(|w| w.is_finite()).ok_or_else(|| {
                    Error::Invalid(format!("dataset: weight column `{col}` is missing or not a number"))
                })?,
            };
            let completions = sampler.sample(&prompt_ids, cfg.num_generations, stream.wrapping_mul(1 << 20) + j as u64)?;
            let mut totals = Vec::with_capacity(completions.len());
            for c in &completions {
                let sc = rewards.score(&c.text, c.ids.len(), &row.columns)?;
                for (k, v) in sc.per_rule.iter().enumerate() {
                    per_rule[k].push(*v);
                }
                let by_rule: Map<String, Value> = names.iter().cloned().zip(sc.per_rule.iter().map(|v| json!(v))).collect();
                log.push(json!({ "prompt": tok.decode(&prompt_ids)?, "completion": c.text, "reward": sc.total, "rewards": by_rule }));
                totals.push(sc.total);
            }
            groups.push(Group { prompt_ids, completions: completions.into_iter().map(|c| c.ids).collect(), rewards: totals, weight });
        }
        let mut m = Map::new();
        for (name, vals) in names.iter().zip(&per_rule) {
            let (mean, std) = super::loss::mean_std(vals);
            m.insert(format!("rewards/{name}/mean"), json!(mean));
            m.insert(format!("rewards/{name}/std"), json!(std));
        }
        Ok((groups, m, log))
    }
}

/// How a run treats what `output_dir` already holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new run; refused when `output_dir` holds another run's checkpoints, logs or adapter.
    Fresh,
    /// A new run that first removes another run's checkpoints, logs and adapter (TRL's
    /// `overwrite_output_dir`); other files stay.
    Overwrite,
    /// Continue from the newest intact checkpoint of this same run; an error when there is
    /// none or it belongs to another run.
    Resume,
}

/// `edgerl train`: runs `max_steps` optimizer steps over the rollouts (cycling through them,
/// prompts_per_step groups a batch), appending one JSON line per step to output_dir/metrics.jsonl, then saves the
/// adapter. `on_step` sees each step's metrics. A fresh run: see `Start::Fresh`.
pub fn train(gpu: &Gpu, cfg: TrainConfig, on_step: impl FnMut(&Map<String, Value>)) -> Result<PathBuf> {
    train_with(gpu, cfg, Start::Fresh, on_step)
}

/// Keeps the lines of a JSONL log whose "step" is at most `step` (a resumed run rewrites what
/// came after its checkpoint).
fn truncate_log(path: &std::path::Path, step: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: String = text
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).ok().and_then(|v| v["step"].as_u64()).is_some_and(|s| s as usize <= step))
        .map(|l| format!("{l}\n"))
        .collect();
    crate::io::write_atomic(path, kept.as_bytes())
}

fn open_log(path: &std::path::Path, append: bool) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .map_err(|e| Error::file(path, e))
}

/// metrics.csv and reward.svg from metrics.jsonl.
fn refresh_reports(out: &std::path::Path) -> Result<()> {
    let jsonl = out.join("metrics.jsonl");
    super::report::write_csv(&jsonl, &out.join("metrics.csv"))?;
    super::report::plot_rewards(&jsonl, &out.join("reward.svg"))
}

/// `train`, starting as `start` says.
pub fn train_with(gpu: &Gpu, cfg: TrainConfig, start: Start, on_step: impl FnMut(&Map<String, Value>)) -> Result<PathBuf> {
    train_packed(gpu, cfg, start, None, on_step)
}

/// Checks `start` against what `out` holds before anything is loaded; returns the
/// checkpoint to resume from.
fn check_start(out: &std::path::Path, start: Start) -> Result<Option<PathBuf>> {
    match start {
        Start::Fresh => match super::checkpoint::previous_run(out) {
            Some(found) => Err(Error::Invalid(format!(
                "{} already holds a run ({found}): `--resume` continues it, `--overwrite` replaces it, or choose another output_dir",
                out.display()
            ))),
            None => Ok(None),
        },
        Start::Overwrite => Ok(None),
        Start::Resume => match super::checkpoint::latest(out)? {
            Some(dir) => Ok(Some(dir)),
            None => Err(Error::Invalid(format!(
                "--resume: {} holds no checkpoint to resume from; start the run without --resume",
                out.display()
            ))),
        },
    }
}

/// `train_with` with `Trainer::pack_size` set (completions per packed pass; `None`: a whole
/// group), as `edgerl train --memory-budget` picks it.
pub fn train_packed(gpu: &Gpu, cfg: TrainConfig, start_as: Start, pack_size: Option<usize>, mut on_step: impl FnMut(&Map<String, Value>)) -> Result<PathBuf> {
    let out = cfg.output_dir.clone();
    let resume_from = check_start(&out, start_as)?;
    let fingerprint = super::fingerprint::of(&cfg)?;
    let mut t = Trainer::new(gpu, cfg)?;
    t.pack_size = pack_size;
    t.run_fingerprint = fingerprint;
    let mut start = 0;
    let mut restored: Option<super::state::State> = None;
    if let Some(dir) = &resume_from {
        let st = t.restore(dir)?;
        log::info!("resuming from {} (step {})", dir.display(), st.step);
        start = st.step;
        restored = Some(st);
    }
    // Every input is read before anything in `out` changes: bad input loses nothing.
    let offline = match &t.cfg.dataset {
        None => Some(t.read_rollouts()?),
        Some(_) => None,
    };
    let online = match &t.cfg.dataset {
        None => None,
        Some(path) => {
            let rewards = RewardSet::new(&t.cfg.rewards, t.cfg.reward_all_or_nothing)?;
            Some((dataset::read_for(path, &rewards)?, rewards))
        }
    };
    if start_as == Start::Overwrite {
        super::checkpoint::remove_previous_run(&out)?;
    }
    std::fs::create_dir_all(&out).map_err(|e| Error::file(&out, format!("cannot create: {e}")))?;
    let mut source = match (offline, online) {
        (Some(groups), _) => Source::Offline(groups),
        (None, Some((rows, rewards))) => {
            let log_path = out.join("completions.jsonl");
            if restored.is_some() {
                truncate_log(&log_path, start)?;
            }
            let log = open_log(&log_path, restored.is_some())?;
            Source::Online { rows, rewards, log, log_path }
        }
        (None, None) => return Err(Error::Invalid("needs `dataset` or `rollouts`".into())),
    };
    let metrics_path = out.join("metrics.jsonl");
    if restored.is_some() {
        truncate_log(&metrics_path, start)?;
    }
    let mut metrics = open_log(&metrics_path, restored.is_some())?;
    // TRL's semantics: max_steps counts optimizer steps, and each rollout batch serves
    // num_iterations consecutive steps.
    let per = t.cfg.prompts_per_step;
    let mut batch = None;
    let mut reward_metrics = Map::new();
    let restored_cursor = restored.as_ref().map(|st| st.cursor);
    if let Some(st) = restored {
        // Mid-batch (num_iterations > 1): the batch and its first-use log-probs come back too.
        if let Some(sb) = st.batch.filter(|_| start % t.cfg.num_iterations != 0) {
            let refs: Vec<&Group> = sb.groups.iter().collect();
            let mut b = t.batch(&refs);
            for ((it, old), rf) in b.items.iter_mut().zip(sb.lp_old).zip(sb.lp_ref) {
                it.lp_old = old;
                it.lp_ref = rf;
            }
            b.counted = sb.counted;
            batch = Some(b);
            if let Ok(Value::Object(m)) = serde_json::from_str(&st.reward_metrics) {
                reward_metrics = m;
            }
        }
    }
    let save_steps = t.cfg.save_steps;
    // Next dataset row to sample (dynamic sampling may consume more than prompts_per_step).
    let mut cursor = restored_cursor.unwrap_or(start / t.cfg.num_iterations * per);
    for step in start..t.cfg.max_steps {
        if step % t.cfg.num_iterations == 0 {
            let b = step / t.cfg.num_iterations;
            let groups: Vec<Group> = match &mut source {
                Source::Offline(all) => (0..per).map(|j| all[(b * per + j) % all.len()].clone()).collect(),
                Source::Online { rows, rewards, log, log_path } => {
                    let picked: Vec<&Row> = (0..per).map(|j| &rows[(cursor + j) % rows.len()]).collect();
                    cursor += per;
                    let (mut groups, mut m, mut lines) = t.sample_groups(&picked, b as u64, rewards)?;
                    // DAPO's dynamic sampling: groups whose rewards are all equal carry no signal;
                    // replace them with fresh prompts, at most `max_refill` extra rounds.
                    let mut refills = 0;
                    if t.cfg.dynamic_sampling {
                        groups.retain(|g| super::loss::mean_std(&g.rewards).1 > 1e-8);
                        while groups.len() < per && refills < t.cfg.max_refill {
                            refills += 1;
                            let need = per - groups.len();
                            let more: Vec<&Row> = (0..need).map(|j| &rows[(cursor + j) % rows.len()]).collect();
                            cursor += need;
                            let stream = b as u64 | ((refills as u64) << 40);
                            let (g2, m2, l2) = t.sample_groups(&more, stream, rewards)?;
                            groups.extend(g2.into_iter().filter(|g| super::loss::mean_std(&g.rewards).1 > 1e-8));
                            lines.extend(l2);
                            m = m2; // per-rule means of the last round; the batch's reward is below
                        }
                        if groups.is_empty() {
                            return Err(Error::Invalid(format!(
                                "dynamic sampling: every group had identical rewards after {refills} refills (max_refill = {}); the rules give this model no signal",
                                t.cfg.max_refill
                            )));
                        }
                        m.insert("dynamic_sampling/refills".into(), json!(refills));
                    }
                    for mut l in lines {
                        l["step"] = json!(step + 1);
                        writeln!(log, "{l}").map_err(|e| Error::file(log_path, e))?;
                    }
                    reward_metrics = m;
                    groups
                }
            };
            let refs: Vec<&Group> = groups.iter().collect();
            batch = Some(t.batch(&refs));
        }
        let Some(batch) = batch.as_mut() else {
            continue;
        };
        let mut m = t.step(batch)?;
        m.extend(reward_metrics.clone());
        writeln!(metrics, "{}", Value::Object(m.clone()))
            .map_err(|e| Error::file(&metrics_path, e))?;
        metrics.sync_data().map_err(|e| Error::file(&metrics_path, e))?;
        on_step(&m);
        let max_skips = t.cfg.max_consecutive_skips;
        if max_skips > 0 && t.consecutive_skips >= max_skips {
            // The adapter and optimizer are still the last good ones: save them to resume from.
            let dir = t.checkpoint(Some(&*batch), &reward_metrics, cursor)?;
            refresh_reports(&out)?;
            return Err(Error::NonFinite(format!(
                "training stopped at step {}: the last {} steps had a NaN or infinite loss or gradient and were skipped (max_consecutive_skips = {max_skips}); the adapter and optimizer of step {} are saved in {}. Lower learning_rate or max_grad_norm, check the rewards and the model, then `edgerl train --resume`",
                t.optimizer_steps,
                t.consecutive_skips,
                t.optimizer_steps - t.consecutive_skips,
                dir.display()
            )));
        }
        if save_steps > 0 && (step + 1) % save_steps == 0 && step + 1 < t.cfg.max_steps {
            t.checkpoint(Some(&*batch), &reward_metrics, cursor)?;
            refresh_reports(&out)?;
        }
    }
    // A resumed run that had already finished changed nothing: its checkpoint stays as it is.
    if resume_from.is_none() || t.optimizer_steps > start {
        t.checkpoint(batch.as_ref(), &reward_metrics, cursor)?;
    }
    refresh_reports(&out)?;
    t.save()?;
    Ok(t.adapter_dir())
}
