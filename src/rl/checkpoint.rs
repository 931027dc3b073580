//! Checkpoints: `output_dir/checkpoint-N/` with the adapter (PEFT format), the optimizer state
//! (`optimizer.safetensors`) and the trainer state (`trainer_state.bin`, postcard): step, token
//! count, skip counters, and the batch in flight with its old/reference log-probs, so a resumed run continues
//! exactly where it stopped. A checkpoint is written in a temporary directory and renamed into
//! place, so `checkpoint-N` either exists complete or not at all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::rollouts::Group;
use super::trainer::{Batch, Trainer};
use crate::error::{Error, Result};
use crate::lora::Lora;
use crate::model::weights::{SafetensorsWeights, WeightSource, to_f32};

const STATE_FILE: &str = "trainer_state.bin";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// 2 added the skip counters; version-1 states still load (no step was ever skipped then).
const VERSION: u32 = 2;

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct State {
    pub version: u32,
    /// Optimizer steps done.
    pub step: usize,
    pub tokens_seen: usize,
    /// The batch being reused (num_iterations > 1), with what its first use recorded.
    pub batch: Option<SavedBatch>,
    /// Reward metrics of that batch (JSON object text).
    pub reward_metrics: String,
    /// Next dataset row to sample.
    pub cursor: usize,
    /// `Trainer::skipped_steps` and `consecutive_skips` (Adam's step count is
    /// `step - skipped_steps`).
    pub skipped_steps: usize,
    pub consecutive_skips: usize,
}

/// Version 1's layout: `State` without the skip counters.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct StateV1 {
    version: u32,
    step: usize,
    tokens_seen: usize,
    batch: Option<SavedBatch>,
    reward_metrics: String,
    cursor: usize,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct SavedBatch {
    pub groups: Vec<Group>,
    pub lp_old: Vec<Option<Vec<f32>>>,
    pub lp_ref: Vec<Option<Vec<f32>>>,
    pub counted: bool,
}

fn step_of(name: &str) -> Option<usize> {
    name.strip_prefix("checkpoint-")?.parse().ok()
}

impl Trainer<'_> {
    /// Writes `output_dir/checkpoint-<step>` atomically and returns its path.
    pub fn checkpoint(&self, batch: Option<&Batch>, reward_metrics: &serde_json::Map<String, serde_json::Value>, cursor: usize) -> Result<PathBuf> {
        let out = &self.cfg.output_dir;
        let dir = out.join(format!("checkpoint-{}", self.optimizer_steps));
        let tmp = out.join(format!(".checkpoint-{}.tmp-{}", self.optimizer_steps, std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::file(&tmp, format!("cannot create: {e}")))?;
        self.lora.save_peft(self.gpu, &tmp, &self.cfg.model.to_string_lossy())?;
        super::faults::abort_in_checkpoint(self.optimizer_steps);

        // Optimizer state: Adam's moments per adapter tensor, in the trainer's fixed order.
        let mut host = Vec::new();
        for (i, (m, v, n)) in self.moment_buffers().into_iter().enumerate() {
            host.push((format!("{i}.exp_avg"), n, self.gpu.read(&m.buffer, 0, (n * 4) as u64)?));
            host.push((format!("{i}.exp_avg_sq"), n, self.gpu.read(&v.buffer, 0, (n * 4) as u64)?));
        }
        let views = host
            .iter()
            .map(|(name, n, d)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![*n], d)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::Invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let bytes = safetensors::tensor::serialize(views, Some(HashMap::from([("format".into(), "pt".into())])))
            .map_err(|e| Error::Invalid(format!("serializing optimizer state: {e}")))?;
        crate::io::write_atomic(&tmp.join(OPTIMIZER_FILE), &bytes)?;

        let state = State {
            version: VERSION,
            step: self.optimizer_steps,
            tokens_seen: self.tokens_seen,
            batch: batch.map(|b| SavedBatch {
                groups: b.groups.clone(),
                lp_old: b.items.iter().map(|it| it.lp_old.clone()).collect(),
                lp_ref: b.items.iter().map(|it| it.lp_ref.clone()).collect(),
                counted: b.counted,
            }),
            reward_metrics: serde_json::Value::Object(reward_metrics.clone()).to_string(),
            cursor,
            skipped_steps: self.skipped_steps,
            consecutive_skips: self.consecutive_skips,
        };
        let bytes = postcard::to_allocvec(&state).map_err(|e| Error::Invalid(format!("encoding trainer state: {e}")))?;
        crate::io::write_atomic(&tmp.join(STATE_FILE), &bytes)?;

        // A checkpoint written again (a resumed run that had finished) replaces the old one
        // by renames, so a crash never leaves a half-deleted `checkpoint-N` behind; `latest`
        // removes the old copy if it is still there.
        let old = out.join(format!(".checkpoint-{}.tmp-old-{}", self.optimizer_steps, std::process::id()));
        if dir.exists() {
            std::fs::rename(&dir, &old).map_err(|e| Error::file(&dir, format!("cannot replace: {e}")))?;
        }
        std::fs::rename(&tmp, &dir).map_err(|e| Error::file(&dir, format!("cannot move into place: {e}")))?;
        let _ = std::fs::remove_dir_all(&old);
        if let Ok(d) = std::fs::File::open(out) {
            let _ = d.sync_all(); // make the rename durable
        }
        Ok(dir)
    }

    /// Loads `dir` into this trainer: adapter, optimizer state, step and token count.
    pub fn restore(&mut self, dir: &Path) -> Result<State> {
        let state = read_state(dir)?;
        self.lora = Lora::load_peft(self.gpu, dir, &self.model.cfg)?;
        self.optimizer_steps = state.step;
        self.tokens_seen = state.tokens_seen;
        self.skipped_steps = state.skipped_steps;
        self.consecutive_skips = state.consecutive_skips;
        let opt = dir.join(OPTIMIZER_FILE);
        let w = SafetensorsWeights::open_file(&opt)?;
        let sizes: Vec<usize> = self.tensor_sizes();
        if w.names().count() == 0 {
            self.clear_moments();
        } else {
            let mut moments = Vec::new();
            for (i, n) in sizes.iter().enumerate() {
                let get = |name: String| -> Result<Vec<f32>> {
                    let t = w.get(&name)?.ok_or_else(|| Error::file(&opt, format!("missing {name}")))?;
                    if t.shape != [*n] {
                        return Err(Error::file(&opt, format!("{name} has shape {:?}, the adapter needs [{n}]", t.shape)));
                    }
                    to_f32(&t)
                };
                moments.push((get(format!("{i}.exp_avg"))?, get(format!("{i}.exp_avg_sq"))?));
            }
            self.set_moments(moments)?;
        }
        Ok(state)
    }
}

fn read_state(dir: &Path) -> Result<State> {
    let path = dir.join(STATE_FILE);
    let bytes = std::fs::read(&path).map_err(|e| Error::file(&path, e))?;
    let corrupt = |e: postcard::Error| Error::file(&path, format!("corrupt trainer state: {e}"));
    // Every version starts with its number.
    let (version, _) = postcard::take_from_bytes::<u32>(&bytes).map_err(corrupt)?;
    let state = match version {
        1 => {
            let v1: StateV1 = postcard::from_bytes(&bytes).map_err(corrupt)?;
            State {
                version: v1.version,
                step: v1.step,
                tokens_seen: v1.tokens_seen,
                batch: v1.batch,
                reward_metrics: v1.reward_metrics,
                cursor: v1.cursor,
                skipped_steps: 0,
                consecutive_skips: 0,
            }
        }
        VERSION => postcard::from_bytes(&bytes).map_err(corrupt)?,
        v => return Err(Error::file(&path, format!("trainer state version {v}: this edgerl reads versions 1 to {VERSION}"))),
    };
    Ok(state)
}

/// The newest checkpoint in `out` whose files are all readable; broken ones are reported and
/// skipped. Leftovers of interrupted writes (temporary checkpoint directories, and the temp
/// files of `write_atomic` in `out` and `out/adapter`) are removed.
pub fn latest(out: &Path) -> Option<PathBuf> {
    let leftover = |name: &str| name.starts_with('.') && name.contains(".tmp-");
    for e in std::fs::read_dir(out.join("adapter")).into_iter().flatten().flatten() {
        if leftover(&e.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let entries = std::fs::read_dir(out).ok()?;
    let mut found: Vec<(usize, PathBuf)> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if leftover(&name) {
            let _ = if e.path().is_dir() { std::fs::remove_dir_all(e.path()) } else { std::fs::remove_file(e.path()) };
        } else if let Some(step) = step_of(&name) {
            found.push((step, e.path()));
        }
    }
    found.sort();
    for (_, dir) in found.into_iter().rev() {
        let check = read_state(&dir).and_then(|_| {
            SafetensorsWeights::open_file(&dir.join(OPTIMIZER_FILE))?;
            SafetensorsWeights::open_file(&dir.join(crate::lora::peft::WEIGHTS_FILE))?;
            crate::lora::peft::read_config(&dir)
        });
        match check {
            Ok(_) => return Some(dir),
            Err(e) => eprintln!("skipping checkpoint {}: {e}", dir.display()),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(tag: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("edgerl-ckpt-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(STATE_FILE), bytes).unwrap();
        dir
    }

    #[test]
    fn version_1_states_load_without_skips() {
        let v1 = StateV1 { version: 1, step: 7, tokens_seen: 99, batch: None, reward_metrics: "{}".into(), cursor: 14 };
        let dir = dir_with("v1", &postcard::to_allocvec(&v1).unwrap());
        let s = read_state(&dir).unwrap();
        assert_eq!((s.step, s.tokens_seen, s.cursor, s.skipped_steps, s.consecutive_skips), (7, 99, 14, 0, 0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn newer_versions_are_named() {
        let v9 = StateV1 { version: 9, step: 1, tokens_seen: 0, batch: None, reward_metrics: String::new(), cursor: 0 };
        let dir = dir_with("v9", &postcard::to_allocvec(&v9).unwrap());
        let e = read_state(&dir).unwrap_err().to_string();
        assert!(e.contains("trainer_state.bin") && e.contains("version 9") && e.contains("1 to 2"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
