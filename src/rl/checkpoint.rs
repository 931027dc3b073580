//! Checkpoints: `output_dir/checkpoint-N/` with the adapter (PEFT format), the optimizer state
//! (`optimizer.safetensors`) and the trainer state (`trainer_state.bin`, see `state.rs`), so a
//! resumed run continues exactly where it stopped.
//!
//! A checkpoint is written in `.checkpoint-N.tmp-W/` (W: the writer) and renamed into place,
//! so `checkpoint-N` either exists complete or not at all. Replacing one that exists (a
//! damaged one, rewritten) moves it aside to `.checkpoint-N.tmp-old-W/` first; a crash
//! between the two renames leaves both copies, and `latest` puts one back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::state::{FileSum, STATE_FILE, SavedBatch, State, VERSION, decode_state, encode_state};
use super::trainer::{Batch, Trainer};
use crate::error::{Error, Result};
use crate::io::TMP_MARK;
use crate::lora::Lora;
use crate::lora::peft::{CONFIG_FILE, WEIGHTS_FILE};
use crate::model::weights::{SafetensorsWeights, WeightSource, to_f32};

const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The files a checkpoint's state carries checksums of.
const SUMMED: [&str; 3] = [WEIGHTS_FILE, CONFIG_FILE, OPTIMIZER_FILE];

fn step_of(name: &str) -> Option<usize> {
    name.strip_prefix("checkpoint-")?.parse().ok()
}

/// What a name in `output_dir` is to the checkpoint code.
#[derive(Debug, PartialEq)]
enum Entry {
    Complete(usize),
    /// `.checkpoint-N.tmp-W`: a write in progress or interrupted.
    Writing(usize),
    /// `.checkpoint-N.tmp-old-W`: a checkpoint moved aside to be replaced.
    MovedAside(usize),
    Other,
}

fn entry(name: &str) -> Entry {
    if let Some(n) = step_of(name) {
        return Entry::Complete(n);
    }
    let Some(rest) = name.strip_prefix(".checkpoint-") else { return Entry::Other };
    let Some((n, writer)) = rest.split_once(TMP_MARK) else { return Entry::Other };
    match (n.parse(), writer.strip_prefix("old-")) {
        (Ok(n), Some(_)) => Entry::MovedAside(n),
        (Ok(n), None) => Entry::Writing(n),
        _ => Entry::Other,
    }
}

impl Trainer<'_> {
    /// Writes `output_dir/checkpoint-<step>` atomically and returns its path.
    pub fn checkpoint(&self, batch: Option<&Batch>, reward_metrics: &serde_json::Map<String, serde_json::Value>, cursor: usize) -> Result<PathBuf> {
        let out = &self.cfg.output_dir;
        let step = self.optimizer_steps;
        let dir = out.join(format!("checkpoint-{step}"));
        let writer = crate::io::writer_tag();
        let tmp = out.join(format!(".checkpoint-{step}{TMP_MARK}{writer}"));
        std::fs::create_dir_all(&tmp).map_err(|e| Error::file(&tmp, format!("cannot create: {e}")))?;
        // A failed write (a full disk) leaves no temp directory behind.
        if let Err(e) = self.write_checkpoint(&tmp, batch, reward_metrics, cursor) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        crate::io::sync_dir(out)?;
        let old = out.join(format!(".checkpoint-{step}{TMP_MARK}old-{writer}"));
        if dir.exists() {
            crate::io::rename_synced(&dir, &old)?;
        }
        super::faults::abort_in_checkpoint(step, super::faults::Moment::Swap);
        crate::io::rename_synced(&tmp, &dir)?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(dir)
    }

    fn write_checkpoint(&self, tmp: &Path, batch: Option<&Batch>, reward_metrics: &serde_json::Map<String, serde_json::Value>, cursor: usize) -> Result<()> {
        self.lora.save_peft(self.gpu, tmp, &self.cfg.model.to_string_lossy())?;
        super::faults::abort_in_checkpoint(self.optimizer_steps, super::faults::Moment::Write);

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

        // Checksums of what is on disk now (read back: it also proves the files readable).
        let files = SUMMED
            .iter()
            .map(|name| {
                let path = tmp.join(name);
                let bytes = std::fs::read(&path).map_err(|e| Error::file(&path, e))?;
                Ok(FileSum { name: name.to_string(), len: bytes.len() as u64, crc32: super::state::crc32(&bytes) })
            })
            .collect::<Result<Vec<_>>>()?;
        // The batch's image features, read back (a vision-language run with num_iterations > 1).
        let images = match batch {
            Some(b) => b
                .groups
                .iter()
                .map(|g| g.images.as_ref().map(|f| self.gpu.read(&f.0.buffer, 0, f.0.bytes)).transpose())
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        let state = State {
            version: VERSION,
            step: self.optimizer_steps,
            tokens_seen: self.tokens_seen,
            batch: batch.map(|b| SavedBatch {
                groups: b.groups.clone(),
                lp_old: b.items.iter().map(|it| it.lp_old.clone()).collect(),
                lp_ref: b.items.iter().map(|it| it.lp_ref.clone()).collect(),
                counted: b.counted,
                images,
            }),
            reward_metrics: serde_json::Value::Object(reward_metrics.clone()).to_string(),
            cursor,
            skipped_steps: self.skipped_steps,
            consecutive_skips: self.consecutive_skips,
            run: self.run_fingerprint.clone(),
            files,
        };
        crate::io::write_atomic(&tmp.join(STATE_FILE), &encode_state(&state)?)
    }

    /// Loads `dir` into this trainer: adapter, optimizer state, step and token count. Refuses a
    /// checkpoint of another run (its fingerprint differs from this trainer's) or one whose
    /// batch does not fit this model and config.
    pub fn restore(&mut self, dir: &Path) -> Result<State> {
        let state = verify(dir)?;
        let diff = super::state::differences(&state.run, &self.run_fingerprint);
        if !diff.is_empty() {
            return Err(Error::Invalid(format!(
                "cannot resume from {}: it belongs to a different run ({}). Resume with the run's own config, or start a new run (another output_dir, or --overwrite to replace this one)",
                dir.display(),
                diff.join("; ")
            )));
        }
        let bad = |why: String| Error::file(&dir.join(STATE_FILE), format!("does not fit this run: {why}"));
        if let Some(b) = &state.batch {
            for (i, g) in b.groups.iter().enumerate() {
                g.check(self.model.cfg.vocab_size, self.cfg.max_completion_length).map_err(|e| bad(format!("batch group {i}: {e}")))?;
            }
            // Image features: one f32 row of the text model's width per image token.
            for (i, (g, f)) in b.groups.iter().zip(&b.images).enumerate() {
                let tokens = match self.model.cfg.image_token_id {
                    Some(id) => g.prompt_ids.iter().filter(|&&t| t == id).count(),
                    None => 0,
                };
                let want = tokens * self.model.cfg.hidden_size * 4;
                let have = f.as_ref().map_or(0, Vec::len);
                if have != want {
                    return Err(bad(format!("batch group {i} has {tokens} image tokens and {have} bytes of image features ({want} expected)")));
                }
            }
        }
        // Dynamic sampling reads at most (1 + max_refill) rounds of prompts a batch.
        let batches = state.step / self.cfg.num_iterations + 1;
        let most = batches.saturating_mul(self.cfg.prompts_per_step).saturating_mul(self.cfg.max_refill + 1);
        if state.cursor > most {
            return Err(bad(format!("dataset cursor {} is beyond the {most} prompts {} steps can have read", state.cursor, state.step)));
        }
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
                    let v = to_f32(&t)?;
                    if v.iter().any(|x| !x.is_finite()) {
                        return Err(Error::file(&opt, format!("{name} holds NaN or infinite values")));
                    }
                    Ok(v)
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
    decode_state(&bytes, &path)
}

/// A checkpoint's state, once its files are all there, unchanged (their checksums, from
/// version 3 on) and readable.
pub fn verify(dir: &Path) -> Result<State> {
    let state = read_state(dir)?;
    for f in &state.files {
        // Only the checkpoint's own files: a name read from the state file must not lead
        // elsewhere (`../x`, or `/dev/zero`, which would be read until memory ran out).
        if !SUMMED.contains(&f.name.as_str()) {
            return Err(Error::file(
                &dir.join(STATE_FILE),
                format!("damaged: it lists a file {:?}, not one of a checkpoint's ({})", f.name, SUMMED.join(", ")),
            ));
        }
        let path = dir.join(&f.name);
        let damaged = || Error::file(&path, format!("damaged: its length or checksum differs from what {STATE_FILE} recorded"));
        // The length before reading: a file of another size (or not a file) is damaged as it is.
        let meta = std::fs::metadata(&path).map_err(|e| Error::file(&path, e))?;
        if !meta.is_file() || meta.len() != f.len {
            return Err(damaged());
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::file(&path, e))?;
        if bytes.len() as u64 != f.len || super::state::crc32(&bytes) != f.crc32 {
            return Err(damaged());
        }
    }
    SafetensorsWeights::open_file(&dir.join(OPTIMIZER_FILE))?;
    SafetensorsWeights::open_file(&dir.join(WEIGHTS_FILE))?;
    crate::lora::peft::read_config(dir)?;
    Ok(state)
}

/// Whether `out` holds what a run writes (checkpoints, logs, the adapter): a fresh run there
/// would mix with it. Returns the first such entry.
pub fn previous_run(out: &Path) -> Option<String> {
    std::fs::read_dir(out).into_iter().flatten().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).find(|n| {
        entry(n) != Entry::Other || RUN_FILES.contains(&n.as_str()) || n == "adapter"
    })
}

/// Files a run writes in `output_dir` (besides checkpoints and `adapter/`).
const RUN_FILES: [&str; 4] = ["metrics.jsonl", "metrics.csv", "reward.svg", "completions.jsonl"];

/// Removes what a run wrote in `out` (`--overwrite`); other files stay.
pub fn remove_previous_run(out: &Path) -> Result<()> {
    for e in std::fs::read_dir(out).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let r = if entry(&name) != Entry::Other || name == "adapter" {
            std::fs::remove_dir_all(&path)
        } else if RUN_FILES.contains(&name.as_str()) || is_temp_of(&name, &RUN_FILES) {
            std::fs::remove_file(&path)
        } else {
            continue;
        };
        r.map_err(|e| Error::file(&path, format!("cannot remove (--overwrite): {e}")))?;
    }
    Ok(())
}

/// `.NAME.tmp-W` for one of `names`: a `write_atomic` temp file.
fn is_temp_of(entry: &str, names: &[&str]) -> bool {
    names.iter().any(|n| entry.strip_prefix('.').and_then(|r| r.strip_prefix(n)).is_some_and(|r| r.starts_with(TMP_MARK)))
}

/// Puts back what an interrupted replacement left: where `checkpoint-N` is missing and its
/// old copy was moved aside, the new copy (if its write finished) or else the old one
/// becomes `checkpoint-N`. Then removes the leftovers of edgerl's own writes (and nothing
/// else) in `out` and `out/adapter`; an unfinished first write of a checkpoint just goes.
fn recover(out: &Path) {
    let names: Vec<String> = std::fs::read_dir(out).into_iter().flatten().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    let mut candidates: Vec<(usize, bool, &String)> = names
        .iter()
        .filter_map(|n| match entry(n) {
            Entry::Writing(s) => Some((s, false, n)),
            Entry::MovedAside(s) => Some((s, true, n)),
            _ => None,
        })
        .collect();
    // The newer copy (a finished write) first, then the old one.
    candidates.sort_by_key(|&(s, aside, _)| (s, aside));
    let replaced: Vec<usize> = candidates.iter().filter(|c| c.1).map(|c| c.0).collect();
    for (step, _, name) in candidates.iter().filter(|c| replaced.contains(&c.0)) {
        let dir = out.join(format!("checkpoint-{step}"));
        let path = out.join(name);
        if !dir.exists() && verify(&path).is_ok() {
            match std::fs::rename(&path, &dir) {
                Ok(()) => eprintln!("recovered {} from {name}", dir.display()),
                Err(e) => eprintln!("cannot recover {} from {name}: {e}", dir.display()),
            }
        }
    }
    for (_, _, name) in candidates {
        let _ = std::fs::remove_dir_all(out.join(name));
    }
    for n in names.iter().filter(|n| is_temp_of(n, &RUN_FILES)) {
        let _ = std::fs::remove_file(out.join(n));
    }
    crate::lora::peft::recover(&out.join("adapter"));
    let _ = crate::io::sync_dir(out);
}

/// The newest checkpoint in `out` whose files are all intact, after recovering what an
/// interrupted write left (see `recover`); damaged ones are reported and skipped. `Ok(None)`:
/// there is no checkpoint at all; an error: there are some, none intact.
pub fn latest(out: &Path) -> Result<Option<PathBuf>> {
    recover(out);
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| step_of(&e.file_name().to_string_lossy()).map(|s| (s, e.path())))
        .collect();
    found.sort();
    let mut why = Vec::new();
    for (_, dir) in found.into_iter().rev() {
        match verify(&dir) {
            Ok(_) => return Ok(Some(dir)),
            Err(e) => {
                eprintln!("skipping checkpoint {}: {e}", dir.display());
                why.push(e.to_string());
            }
        }
    }
    match why.is_empty() {
        true => Ok(None),
        false => Err(Error::Invalid(format!("no intact checkpoint in {} to resume from: {}", out.display(), why.join("; ")))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(entry("checkpoint-12"), Entry::Complete(12));
        assert_eq!(entry(".checkpoint-3.tmp-77-0"), Entry::Writing(3));
        assert_eq!(entry(".checkpoint-3.tmp-old-77-0"), Entry::MovedAside(3));
        assert_eq!(entry(".checkpoint-x.tmp-1"), Entry::Other);
        assert_eq!(entry(".notes.tmp-1"), Entry::Other);
        assert!(is_temp_of(".metrics.jsonl.tmp-5-1", &RUN_FILES));
        assert!(!is_temp_of(".mine.tmp-5-1", &RUN_FILES));
        assert!(!is_temp_of("metrics.jsonl", &RUN_FILES));
    }
}
