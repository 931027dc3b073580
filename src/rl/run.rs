//! `edgerl train`'s loop: groups from given rollouts or sampled and scored here, one batch
//! per `num_iterations` steps, metrics and completion logs, checkpoints and `--resume`.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::config::TrainConfig;
use super::rollouts::Group;
use super::trainer::{RewardMetrics, Trainer};
use crate::data::dataset::Row;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::reward::RewardSet;

/// Where a run's groups come from: given completions, or prompts sampled and scored here.
enum Source {
    Offline(Vec<Group>),
    Online { rows: Vec<Row>, rewards: RewardSet, log: std::fs::File, log_path: PathBuf },
}

pub use super::step::Sampled;
use super::step::{NoHooks, Prompted, difficulty};

impl Trainer<'_> {
    /// Samples `num_generations` completions for each row with the current adapter and scores
    /// them with `rewards` (`Trainer::sample_scored`, the step sessions take too). Returns the
    /// groups, the per-rule reward metrics, and one log line per completion.
    pub fn sample_groups(&self, rows: &[&Row], stream: u64, rewards: &RewardSet) -> Result<Sampled> {
        let tok = self.tokenizer.as_ref().ok_or_else(|| Error::Invalid("sampling needs the model's tokenizer".into()))?;
        let prompts: Vec<Prompted> = rows
            .iter()
            .map(|r| self.prompted(tok, r))
            .collect::<Result<_>>()?;
        self.sample_scored(&prompts, stream, Some(rewards), &mut NoHooks)
    }
}

impl Trainer<'_> {
    /// A dataset row's prompt: its ids, and its images' features (run through the vision
    /// tower once; the group's sampling and training passes share them).
    pub fn prompted<'r>(&self, tok: &crate::model::Tokenizer, row: &'r Row) -> Result<Prompted<'r>> {
        let (ids, images) =
            super::rollout::prompt_with_images(self.gpu, tok, self.vision.as_ref(), &row.prompt, &row.images)?;
        let images = images.map(|f| super::rollouts::ImageFeatures(std::sync::Arc::new(f)));
        Ok(Prompted { ids, columns: &row.columns, images })
    }
}

impl Trainer<'_> {
    /// The batch in flight a restored checkpoint holds (`Trainer::restore`'s state), rebuilt on
    /// this trainer with its first-use log-probs, its image features back on the GPU (checked
    /// against its image tokens by `restore`) and its reward metrics; `None` at a batch
    /// boundary (the next step samples a new batch) or when the state holds none.
    pub fn resumed_batch(&self, st: super::state::State) -> Result<Option<(super::trainer::Batch, RewardMetrics)>> {
        let Some(sb) = st.batch.filter(|_| st.step % self.cfg.num_iterations.max(1) != 0) else {
            return Ok(None);
        };
        let mut groups = sb.groups;
        for (g, f) in groups.iter_mut().zip(sb.images) {
            if let Some(bytes) = f {
                let buf = self.gpu.upload(&bytes, "image features (resumed batch)")?;
                g.images = Some(super::rollouts::ImageFeatures(std::sync::Arc::new(buf)));
            }
        }
        let refs: Vec<&Group> = groups.iter().collect();
        let mut b = self.batch(&refs);
        for ((it, old), rf) in b.items.iter_mut().zip(sb.lp_old).zip(sb.lp_ref) {
            it.lp_old = old;
            it.lp_ref = rf;
        }
        b.counted = sb.counted;
        let m = match serde_json::from_str(&st.reward_metrics) {
            Ok(Value::Object(m)) => RewardMetrics::from_map(&m),
            _ => RewardMetrics::default(),
        };
        Ok(Some((b, m)))
    }
}

/// Which dataset row the `k`-th draw of a run reads (draws count across steps and dynamic
/// sampling's refills, as the checkpoint's cursor does). Without `shuffle_dataset`, file order,
/// cycling. With it, epoch e = k / n visits the rows in a permutation drawn from (seed, e)
/// alone (Fisher–Yates over a SplitMix64 stream), so a run resumed at any cursor continues
/// with the same rows. As TRL's sampler, a fresh order each epoch from the seed; not
/// bit-identical to torch's RandomSampler (another generator), so the same seed picks other
/// rows than TRL does.
pub struct RowOrder {
    seed: u64,
    shuffle: bool,
    n: usize,
    /// The permutation of epoch `epoch` (cached: draws go forward through an epoch).
    epoch: usize,
    perm: Vec<usize>,
}

impl RowOrder {
    pub fn new(seed: u64, shuffle: bool, n: usize) -> RowOrder {
        RowOrder { seed, shuffle, n, epoch: usize::MAX, perm: Vec::new() }
    }

    /// The permutation of rows for epoch `epoch`.
    pub fn permutation(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
        let mut state = super::rollout::sample_seed(seed ^ 0x5348_5546_464c_4521, epoch as u64, n);
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            // Multiply-shift: j uniform in 0..=i up to a bias of (i+1)/2^64.
            let j = ((next() as u128 * (i as u128 + 1)) >> 64) as usize;
            perm.swap(i, j);
        }
        perm
    }

    /// The row index of draw `k`.
    pub fn index(&mut self, k: usize) -> usize {
        if !self.shuffle || self.n == 0 {
            return k % self.n.max(1);
        }
        let epoch = k / self.n;
        if epoch != self.epoch {
            self.perm = RowOrder::permutation(self.seed, epoch, self.n);
            self.epoch = epoch;
        }
        self.perm[k % self.n]
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
pub(super) fn truncate_log(path: &std::path::Path, step: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: String = text
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).ok().and_then(|v| v["step"].as_u64()).is_some_and(|s| s as usize <= step))
        .map(|l| format!("{l}\n"))
        .collect();
    crate::io::write_atomic(path, kept.as_bytes())
}

pub(super) fn open_log(path: &std::path::Path, append: bool) -> Result<std::fs::File> {
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
pub(super) fn check_start(out: &std::path::Path, start: Start) -> Result<Option<PathBuf>> {
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
pub fn train_packed(gpu: &Gpu, mut cfg: TrainConfig, start_as: Start, pack_size: Option<usize>, mut on_step: impl FnMut(&Map<String, Value>)) -> Result<PathBuf> {
    // "auto" settled as `edgerl train` and sessions settle it, so that every front end runs
    // the same passes (with activations kept, sampling keeps them for the step).
    if let Some(why) = crate::plan::settle_auto_checkpointing(&mut cfg, gpu.max_binding) {
        log::info!("memory plan: {why}");
    }
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
            Some((rewards.read_dataset(path)?, rewards))
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
    let mut reward_metrics = RewardMetrics::default();
    let restored_cursor = restored.as_ref().map(|st| st.cursor);
    if let Some(st) = restored
        && let Some((b, m)) = t.resumed_batch(st)?
    {
        batch = Some(b);
        reward_metrics = m;
    }
    let save_steps = t.cfg.save_steps;
    // Next dataset row to sample (dynamic sampling may consume more than prompts_per_step).
    let mut cursor = restored_cursor.unwrap_or(start / t.cfg.num_iterations * per);
    let n_rows = match &source {
        Source::Online { rows, .. } => rows.len(),
        Source::Offline(_) => 0,
    };
    let mut order = RowOrder::new(t.cfg.seed, t.cfg.shuffle_dataset, n_rows);
    for step in start..t.cfg.max_steps {
        if step % t.cfg.num_iterations == 0 {
            let b = step / t.cfg.num_iterations;
            let groups: Vec<Group> = match &mut source {
                Source::Offline(all) => (0..per)
                    .map(|j| {
                        let mut g = all[(b * per + j) % all.len()].clone();
                        g.weight *= difficulty(&t.cfg, &g.rewards);
                        g
                    })
                    .collect(),
                Source::Online { rows, rewards, log, log_path } => {
                    // The row index of each prompt sampled, for the log (`edgerl select`): draws
                    // first.. (refills continue the count), one prompt each.
                    let first = cursor;
                    let mut drawn: Vec<usize> = Vec::new();
                    let tok = t.tokenizer.as_ref().ok_or_else(|| Error::Invalid("sampling needs the model's tokenizer".into()))?;
                    // Dynamic sampling (DAPO) refills with the next draws: `Trainer::sample_refilled`,
                    // as the sessions' steps.
                    let ((groups, m, lines), draws) = t.sample_refilled(per, b as u64, Some(&*rewards), &mut NoHooks, |d| {
                        let r = order.index(first + d);
                        drawn.push(r);
                        t.prompted(tok, &rows[r])
                    })?;
                    cursor += draws;
                    // num_generations lines a prompt, in the order the prompts were drawn.
                    let g = t.cfg.num_generations.max(1);
                    for (i, mut l) in lines.into_iter().enumerate() {
                        l["step"] = json!(step + 1);
                        l["draw"] = json!(first + i / g);
                        l["row"] = json!(drawn.get(i / g));
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
        let mut sm = t.step(batch)?;
        sm.rewards = reward_metrics.clone();
        let m = sm.to_map();
        writeln!(metrics, "{}", Value::Object(m.clone()))
            .map_err(|e| Error::file(&metrics_path, e))?;
        metrics.sync_data().map_err(|e| Error::file(&metrics_path, e))?;
        on_step(&m);
        let max_skips = t.cfg.max_consecutive_skips;
        if max_skips > 0 && t.consecutive_skips >= max_skips {
            // The adapter and optimizer are still the last good ones: save them to resume from.
            let dir = t.checkpoint(Some(&*batch), &reward_metrics.to_map(), cursor)?;
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
            t.checkpoint(Some(&*batch), &reward_metrics.to_map(), cursor)?;
            refresh_reports(&out)?;
        }
    }
    // A resumed run that had already finished changed nothing: its checkpoint stays as it is.
    if resume_from.is_none() || t.optimizer_steps > start {
        t.checkpoint(batch.as_ref(), &reward_metrics.to_map(), cursor)?;
    }
    refresh_reports(&out)?;
    t.save()?;
    Ok(t.adapter_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_order_is_a_function_of_seed_and_epoch() {
        // Off: file order, cycling.
        let mut o = RowOrder::new(7, false, 3);
        assert_eq!((0..7).map(|k| o.index(k)).collect::<Vec<_>>(), [0, 1, 2, 0, 1, 2, 0]);
        // On: each epoch a permutation of all rows; epochs and seeds differ.
        let n = 10;
        let mut o = RowOrder::new(7, true, n);
        let draws: Vec<usize> = (0..3 * n).map(|k| o.index(k)).collect();
        let epochs: Vec<Vec<usize>> = draws.chunks(n).map(<[usize]>::to_vec).collect();
        for e in &epochs {
            let mut s = e.clone();
            s.sort();
            assert_eq!(s, (0..n).collect::<Vec<_>>());
        }
        assert_ne!(epochs[0], epochs[1]);
        assert_ne!(epochs[0], (0..n).collect::<Vec<_>>());
        assert_eq!(epochs[1], RowOrder::permutation(7, 1, n));
        assert_ne!(RowOrder::permutation(8, 0, n), epochs[0]);
        // A resumed run starts a fresh RowOrder at its checkpoint's cursor: same rows.
        for cursor in [0, 4, 10, 17, 29] {
            let mut resumed = RowOrder::new(7, true, n);
            let rest: Vec<usize> = (cursor..3 * n).map(|k| resumed.index(k)).collect();
            assert_eq!(rest, draws[cursor..], "cursor {cursor}");
        }
        // Every row is drawn about equally often over many epochs, and first draws spread.
        let mut first = vec![0usize; n];
        for e in 0..2000 {
            first[RowOrder::permutation(3, e, n)[0]] += 1;
        }
        assert!(first.iter().all(|&c| (120..280).contains(&c)), "{first:?}");
        // One row: always row 0.
        let mut one = RowOrder::new(1, true, 1);
        assert_eq!((0..3).map(|k| one.index(k)).collect::<Vec<_>>(), [0, 0, 0]);
    }

    fn cfg(extra: &str) -> TrainConfig {
        TrainConfig::from_toml(&format!("model = \"m\"\noutput_dir = \"o\"\nrollouts = \"r\"\nmax_completion_length = 8\n{extra}")).unwrap()
    }

    #[test]
    fn difficulty_multiplies_the_column_weight() {
        assert_eq!(difficulty(&cfg(""), &[1.0, 0.0]), 1.0);
        let c = cfg("difficulty_weight = true\nsuccess_threshold = 0.5");
        assert_eq!(difficulty(&c, &[1.0, 0.0, 0.4, 0.6]), 0.5);
    }
}
