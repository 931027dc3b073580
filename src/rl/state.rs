//! `trainer_state.bin`: what a checkpoint needs besides the adapter and Adam's moments — the
//! step, counters, the batch in flight, the run's fingerprint and the other files' checksums.
//! postcard, then (from version 3) a CRC-32 of everything before it. Every length, id and
//! float is checked on the way in: a corrupt file is an error naming it, never a panic.
//! Older versions are read into today's `State` through their own layouts (`StateV1`..`V4`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::rollouts::Group;
use crate::error::{Error, Result};

pub const STATE_FILE: &str = "trainer_state.bin";
/// 2 added the skip counters, 3 the run fingerprint, the file checksums and the trailing CRC,
/// 4 the sampler log-probs of the batch in flight, 5 its groups' image features. Versions 1 to
/// 4 still load (1 and 2: no fingerprint to compare, no checksums to verify; 1 to 3: a restored
/// batch has no sampler log-probs, so its remaining updates run without the importance-sampling
/// correction; 1 to 4 held no batch with images: vision-language runs took num_iterations = 1).
pub const VERSION: u32 = 5;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
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
    /// What makes this run this run (model, data, the keys that shape its trajectory), as
    /// (key, value) pairs: a resume with other values is refused, naming them.
    pub run: Vec<(String, String)>,
    /// Length and CRC-32 of each other file of the checkpoint.
    pub files: Vec<FileSum>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FileSum {
    pub name: String,
    pub len: u64,
    pub crc32: u32,
}

/// The batch in flight. Its groups carry their sampler log-probs (`Group::sampler_logps`, which
/// `Group` itself does not serialize): on disk they are a list beside the groups (`BatchV5`), so
/// a batch resumed mid-way is corrected as it would have been without the interruption.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(try_from = "BatchV5", into = "BatchV5")]
pub struct SavedBatch {
    pub groups: Vec<Group>,
    pub lp_old: Vec<Option<Vec<f32>>>,
    pub lp_ref: Vec<Option<Vec<f32>>>,
    pub counted: bool,
    /// Per group, the bytes of its image features (`Group::images`, on the GPU while the run
    /// lives; read back for the checkpoint, uploaded again on resume) or `None` (no images).
    pub images: Vec<Option<Vec<u8>>>,
}

/// `SavedBatch` on disk in version 4: one entry of `sampler_logps` per group.
#[derive(Serialize, Deserialize)]
struct BatchV4 {
    groups: Vec<Group>,
    lp_old: Vec<Option<Vec<f32>>>,
    lp_ref: Vec<Option<Vec<f32>>>,
    counted: bool,
    sampler_logps: Vec<Option<Vec<Vec<f32>>>>,
}

/// `SavedBatch` on disk from version 5: version 4's, then one entry of image features per group.
#[derive(Serialize, Deserialize)]
struct BatchV5 {
    groups: Vec<Group>,
    lp_old: Vec<Option<Vec<f32>>>,
    lp_ref: Vec<Option<Vec<f32>>>,
    counted: bool,
    sampler_logps: Vec<Option<Vec<Vec<f32>>>>,
    images: Vec<Option<Vec<u8>>>,
}

impl From<SavedBatch> for BatchV5 {
    fn from(b: SavedBatch) -> BatchV5 {
        let mut groups = b.groups;
        let sampler_logps = groups.iter_mut().map(|g| g.sampler_logps.take()).collect();
        BatchV5 { groups, lp_old: b.lp_old, lp_ref: b.lp_ref, counted: b.counted, sampler_logps, images: b.images }
    }
}

impl TryFrom<BatchV5> for SavedBatch {
    type Error = String;
    fn try_from(b: BatchV5) -> std::result::Result<SavedBatch, String> {
        let n = b.groups.len();
        if b.sampler_logps.len() != n {
            return Err(format!("{} lists of sampler log-probs for {n} batch groups", b.sampler_logps.len()));
        }
        let mut groups = b.groups;
        for (g, lps) in groups.iter_mut().zip(b.sampler_logps) {
            g.sampler_logps = lps;
        }
        Ok(SavedBatch { groups, lp_old: b.lp_old, lp_ref: b.lp_ref, counted: b.counted, images: b.images })
    }
}

impl TryFrom<BatchV4> for SavedBatch {
    type Error = String;
    fn try_from(b: BatchV4) -> std::result::Result<SavedBatch, String> {
        let images = vec![None; b.groups.len()];
        let v5 = BatchV5 { groups: b.groups, lp_old: b.lp_old, lp_ref: b.lp_ref, counted: b.counted, sampler_logps: b.sampler_logps, images };
        SavedBatch::try_from(v5)
    }
}

/// Versions 1 to 3's batch: without the sampler log-probs.
#[derive(Serialize, Deserialize)]
struct SavedBatchV3 {
    groups: Vec<Group>,
    lp_old: Vec<Option<Vec<f32>>>,
    lp_ref: Vec<Option<Vec<f32>>>,
    counted: bool,
}

impl From<SavedBatchV3> for SavedBatch {
    fn from(b: SavedBatchV3) -> SavedBatch {
        let images = vec![None; b.groups.len()];
        SavedBatch { groups: b.groups, lp_old: b.lp_old, lp_ref: b.lp_ref, counted: b.counted, images }
    }
}

/// Version 4's layout: `State` with the batch of `BatchV4`.
#[derive(Serialize, Deserialize)]
struct StateV4 {
    version: u32,
    step: usize,
    tokens_seen: usize,
    batch: Option<BatchV4>,
    reward_metrics: String,
    cursor: usize,
    skipped_steps: usize,
    consecutive_skips: usize,
    run: Vec<(String, String)>,
    files: Vec<FileSum>,
}

impl TryFrom<StateV4> for State {
    type Error = String;
    fn try_from(s: StateV4) -> std::result::Result<State, String> {
        Ok(State {
            version: s.version,
            step: s.step,
            tokens_seen: s.tokens_seen,
            batch: s.batch.map(SavedBatch::try_from).transpose()?,
            reward_metrics: s.reward_metrics,
            cursor: s.cursor,
            skipped_steps: s.skipped_steps,
            consecutive_skips: s.consecutive_skips,
            run: s.run,
            files: s.files,
        })
    }
}

/// Version 3's layout: `State` with the batch of `SavedBatchV3`.
#[derive(Serialize, Deserialize)]
struct StateV3 {
    version: u32,
    step: usize,
    tokens_seen: usize,
    batch: Option<SavedBatchV3>,
    reward_metrics: String,
    cursor: usize,
    skipped_steps: usize,
    consecutive_skips: usize,
    run: Vec<(String, String)>,
    files: Vec<FileSum>,
}

/// Version 2's layout: without the fingerprint and checksums.
#[derive(Serialize, Deserialize)]
struct StateV2 {
    version: u32,
    step: usize,
    tokens_seen: usize,
    batch: Option<SavedBatchV3>,
    reward_metrics: String,
    cursor: usize,
    skipped_steps: usize,
    consecutive_skips: usize,
}

/// Version 1's layout: without the skip counters either.
#[derive(Serialize, Deserialize)]
struct StateV1 {
    version: u32,
    step: usize,
    tokens_seen: usize,
    batch: Option<SavedBatchV3>,
    reward_metrics: String,
    cursor: usize,
}

impl From<StateV3> for State {
    fn from(s: StateV3) -> State {
        State {
            version: s.version,
            step: s.step,
            tokens_seen: s.tokens_seen,
            batch: s.batch.map(SavedBatch::from),
            reward_metrics: s.reward_metrics,
            cursor: s.cursor,
            skipped_steps: s.skipped_steps,
            consecutive_skips: s.consecutive_skips,
            run: s.run,
            files: s.files,
        }
    }
}

impl From<StateV2> for State {
    fn from(s: StateV2) -> State {
        let v3 = StateV3 {
            version: s.version,
            step: s.step,
            tokens_seen: s.tokens_seen,
            batch: s.batch,
            reward_metrics: s.reward_metrics,
            cursor: s.cursor,
            skipped_steps: s.skipped_steps,
            consecutive_skips: s.consecutive_skips,
            run: Vec::new(),
            files: Vec::new(),
        };
        v3.into()
    }
}

pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// The bytes of `trainer_state.bin` for `state`.
pub fn encode_state(state: &State) -> Result<Vec<u8>> {
    let mut bytes = postcard::to_allocvec(state).map_err(|e| Error::Invalid(format!("encoding trainer state: {e}")))?;
    let sum = crc32(&bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
    Ok(bytes)
}

/// The bytes version 3 wrote for `state` (its batch without sampler log-probs): test-only, for
/// the tests that resume from an older checkpoint.
#[cfg(feature = "fault-injection")]
pub fn encode_state_v3(state: &State) -> Result<Vec<u8>> {
    let s = state.clone();
    let v3 = StateV3 {
        version: 3,
        step: s.step,
        tokens_seen: s.tokens_seen,
        batch: s.batch.map(|b| SavedBatchV3 { groups: b.groups, lp_old: b.lp_old, lp_ref: b.lp_ref, counted: b.counted }),
        reward_metrics: s.reward_metrics,
        cursor: s.cursor,
        skipped_steps: s.skipped_steps,
        consecutive_skips: s.consecutive_skips,
        run: s.run,
        files: s.files,
    };
    let mut bytes = postcard::to_allocvec(&v3).map_err(|e| Error::Invalid(format!("encoding trainer state: {e}")))?;
    let sum = crc32(&bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
    Ok(bytes)
}

/// Decodes and checks the bytes of `trainer_state.bin` (errors name `path`).
pub fn decode_state(bytes: &[u8], path: &Path) -> Result<State> {
    let corrupt = |why: String| Error::file(path, format!("corrupt trainer state: {why}"));
    // Every version starts with its number.
    let (version, _) = postcard::take_from_bytes::<u32>(bytes).map_err(|e| corrupt(e.to_string()))?;
    fn whole<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> std::result::Result<T, String> {
        match postcard::take_from_bytes(bytes) {
            Ok((v, [])) => Ok(v),
            Ok((_, rest)) => Err(format!("{} bytes after the end", rest.len())),
            Err(e) => Err(e.to_string()),
        }
    }
    let state: State = match version {
        1 => {
            let v1: StateV1 = whole(bytes).map_err(corrupt)?;
            StateV2 { version: 1, step: v1.step, tokens_seen: v1.tokens_seen, batch: v1.batch, reward_metrics: v1.reward_metrics, cursor: v1.cursor, skipped_steps: 0, consecutive_skips: 0 }.into()
        }
        2 => State::from(whole::<StateV2>(bytes).map_err(corrupt)?),
        3 => State::from(whole::<StateV3>(checksummed(bytes).map_err(corrupt)?).map_err(corrupt)?),
        4 => State::try_from(whole::<StateV4>(checksummed(bytes).map_err(corrupt)?).map_err(corrupt)?).map_err(corrupt)?,
        VERSION => whole(checksummed(bytes).map_err(corrupt)?).map_err(corrupt)?,
        v => return Err(Error::file(path, format!("trainer state version {v}: this edgerl reads versions 1 to {VERSION}"))),
    };
    state.check().map_err(corrupt)?;
    Ok(state)
}

/// The body of a file that ends in the CRC-32 of that body (versions 3 on).
fn checksummed(bytes: &[u8]) -> std::result::Result<&[u8], String> {
    let Some(split) = bytes.len().checked_sub(4) else { return Err("too short".into()) };
    let (body, sum) = bytes.split_at(split);
    if crc32(body).to_le_bytes() != sum {
        return Err("its checksum does not match (the file was damaged)".into());
    }
    Ok(body)
}

impl State {
    /// What a state must satisfy whatever the run: counters that agree, a batch whose parts
    /// have matching lengths, finite numbers.
    fn check(&self) -> std::result::Result<(), String> {
        if self.skipped_steps > self.step || self.consecutive_skips > self.skipped_steps {
            return Err(format!("{} skipped steps ({} in a row) in {} steps", self.skipped_steps, self.consecutive_skips, self.step));
        }
        if !matches!(serde_json::from_str(&self.reward_metrics), Ok(serde_json::Value::Object(_))) {
            return Err("its reward metrics are not a JSON object".into());
        }
        let Some(b) = &self.batch else { return Ok(()) };
        let lens: Vec<usize> = b.groups.iter().flat_map(|g| g.completions.iter().map(Vec::len)).collect();
        if b.groups.is_empty() {
            return Err("its batch has no groups".into());
        }
        for (i, g) in b.groups.iter().enumerate() {
            // The vocabulary and length limits are the run's: checked against it on restore.
            g.check(usize::MAX, usize::MAX).map_err(|e| format!("batch group {i}: {e}"))?;
        }
        for (what, lps) in [("old", &b.lp_old), ("reference", &b.lp_ref)] {
            if lps.len() != lens.len() {
                return Err(format!("{} {what} log-prob rows for {} completions", lps.len(), lens.len()));
            }
            for (i, (lp, n)) in lps.iter().zip(&lens).enumerate() {
                let Some(lp) = lp else { continue };
                if lp.len() != *n {
                    return Err(format!("completion {i} has {n} tokens and {} {what} log-probs", lp.len()));
                }
                if lp.iter().any(|x| !x.is_finite() || *x > 0.0) {
                    return Err(format!("completion {i}'s {what} log-probs are not all finite and <= 0"));
                }
            }
        }
        // One entry per group, of f32 values; their count against the group's image tokens is
        // the run's check (restore).
        if b.images.len() != b.groups.len() {
            return Err(format!("{} entries of image features for {} batch groups", b.images.len(), b.groups.len()));
        }
        for (i, f) in b.images.iter().enumerate() {
            if let Some(f) = f
                && (f.is_empty() || f.len() % 4 != 0)
            {
                return Err(format!("batch group {i}'s image features are {} bytes, not a whole number of f32s", f.len()));
            }
        }
        Ok(())
    }
}

/// Keys whose values differ between a checkpoint's run and this one, as "key: then → now"
/// (keys only one side has count as differing; an old checkpoint without a fingerprint
/// differs in nothing).
pub fn differences(then: &[(String, String)], now: &[(String, String)]) -> Vec<String> {
    if then.is_empty() {
        return Vec::new();
    }
    let get = |list: &[(String, String)], k: &str| list.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let mut keys: Vec<&String> = then.iter().chain(now).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (get(then, k), get(now, k));
            (a != b).then(|| format!("{k}: {} → {}", a.as_deref().unwrap_or("(unset)"), b.as_deref().unwrap_or("(unset)")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            version: VERSION,
            step: 3,
            tokens_seen: 40,
            batch: Some(SavedBatch {
                groups: vec![Group {
                    prompt_ids: vec![1, 2],
                    completions: vec![vec![3, 4], vec![5]],
                    rewards: vec![1.0, 0.0],
                    weight: 1.0,
                    sampler_logps: Some(vec![vec![-0.75, -2.0], vec![-0.125]]),
                    images: None,
                }],
                lp_old: vec![Some(vec![-0.5, -1.0]), Some(vec![-0.25])],
                lp_ref: vec![None, None],
                counted: true,
                images: vec![Some(vec![0, 0, 128, 63, 0, 0, 0, 192])],
            }),
            reward_metrics: "{}".into(),
            cursor: 6,
            skipped_steps: 1,
            consecutive_skips: 0,
            run: vec![("seed".into(), "0".into())],
            files: vec![FileSum { name: "optimizer.safetensors".into(), len: 8, crc32: 7 }],
        }
    }

    fn decode(bytes: &[u8]) -> std::result::Result<State, String> {
        decode_state(bytes, Path::new("ckpt/trainer_state.bin")).map_err(|e| e.to_string())
    }

    #[test]
    fn round_trip_and_older_versions() {
        let s = state();
        assert_eq!(decode(&encode_state(&s).unwrap()).unwrap(), s);
        let v1 = StateV1 { version: 1, step: 7, tokens_seen: 99, batch: None, reward_metrics: "{}".into(), cursor: 14 };
        let got = decode(&postcard::to_allocvec(&v1).unwrap()).unwrap();
        assert_eq!((got.step, got.tokens_seen, got.cursor, got.skipped_steps, got.run.len()), (7, 99, 14, 0, 0));
        let v2 = StateV2 { version: 2, step: 5, tokens_seen: 9, batch: None, reward_metrics: "{}".into(), cursor: 2, skipped_steps: 2, consecutive_skips: 1 };
        let got = decode(&postcard::to_allocvec(&v2).unwrap()).unwrap();
        assert_eq!((got.step, got.skipped_steps, got.consecutive_skips), (5, 2, 1));
        // Version 3: the batch comes back without sampler log-probs (`Group` never wrote them).
        let s4 = state();
        let b = s4.batch.clone().unwrap();
        let v3 = StateV3 {
            version: 3,
            step: s4.step,
            tokens_seen: s4.tokens_seen,
            batch: Some(SavedBatchV3 { groups: b.groups, lp_old: b.lp_old, lp_ref: b.lp_ref, counted: b.counted }),
            reward_metrics: s4.reward_metrics.clone(),
            cursor: s4.cursor,
            skipped_steps: s4.skipped_steps,
            consecutive_skips: s4.consecutive_skips,
            run: s4.run.clone(),
            files: s4.files.clone(),
        };
        let mut bytes = postcard::to_allocvec(&v3).unwrap();
        bytes.extend_from_slice(&crc32(&bytes).to_le_bytes());
        let got = decode(&bytes).unwrap();
        let mut want = State { version: 3, ..s4.clone() };
        want.batch.as_mut().unwrap().groups[0].sampler_logps = None;
        want.batch.as_mut().unwrap().images = vec![None];
        assert_eq!(got, want);
        // Version 4: the sampler log-probs come back, no image features.
        let b = s4.batch.clone().unwrap();
        let mut groups = b.groups.clone();
        let sampler_logps = groups.iter_mut().map(|g| g.sampler_logps.take()).collect();
        let v4 = StateV4 {
            version: 4,
            step: s4.step,
            tokens_seen: s4.tokens_seen,
            batch: Some(BatchV4 { groups, lp_old: b.lp_old, lp_ref: b.lp_ref, counted: b.counted, sampler_logps }),
            reward_metrics: s4.reward_metrics.clone(),
            cursor: s4.cursor,
            skipped_steps: s4.skipped_steps,
            consecutive_skips: s4.consecutive_skips,
            run: s4.run.clone(),
            files: s4.files.clone(),
        };
        let mut v4_bytes = postcard::to_allocvec(&v4).unwrap();
        v4_bytes.extend_from_slice(&crc32(&v4_bytes).to_le_bytes());
        let mut want = State { version: 4, ..s4.clone() };
        want.batch.as_mut().unwrap().images = vec![None];
        assert_eq!(decode(&v4_bytes).unwrap(), want);
        // A damaged version 3 file is caught by its checksum as well.
        bytes[6] ^= 1;
        assert!(decode(&bytes).unwrap_err().contains("checksum"));
        let v9 = StateV1 { version: 9, step: 1, tokens_seen: 0, batch: None, reward_metrics: String::new(), cursor: 0 };
        let e = decode(&postcard::to_allocvec(&v9).unwrap()).unwrap_err();
        assert!(e.contains("trainer_state.bin") && e.contains("version 9") && e.contains("1 to 5"), "{e}");
    }

    /// Each damage that once panicked on resume (short log-probs, fewer rewards than
    /// completions) or could, is an error naming the file, with the checksum off as well.
    #[test]
    fn damaged_states_are_errors() {
        type Edit = fn(&mut State);
        let cases: [(&str, Edit); 11] = [
            ("rewards", |s| {
                s.batch.as_mut().unwrap().groups[0].rewards.pop();
            }),
            ("log-probs", |s| s.batch.as_mut().unwrap().lp_old[0].as_mut().unwrap().truncate(1)),
            ("log-prob rows", |s| s.batch.as_mut().unwrap().lp_ref.push(None)),
            ("finite", |s| s.batch.as_mut().unwrap().lp_old[1] = Some(vec![f32::NAN])),
            ("finite", |s| s.batch.as_mut().unwrap().groups[0].weight = f64::INFINITY),
            ("sampler_logps", |s| {
                s.batch.as_mut().unwrap().groups[0].sampler_logps.as_mut().unwrap()[0].pop();
            }),
            ("sampler_logps", |s| s.batch.as_mut().unwrap().groups[0].sampler_logps.as_mut().unwrap()[1][0] = f32::NAN),
            ("image features", |s| {
                s.batch.as_mut().unwrap().images[0].as_mut().unwrap().pop();
            }),
            ("image features", |s| s.batch.as_mut().unwrap().images.push(None)),
            ("skipped", |s| s.skipped_steps = 9),
            ("JSON object", |s| s.reward_metrics = "[".into()),
        ];
        for (needle, edit) in cases {
            let mut s = state();
            edit(&mut s);
            let e = decode(&encode_state(&s).unwrap()).unwrap_err();
            assert!(e.contains("trainer_state.bin") && e.contains(needle), "{needle}: {e}");
        }
        // Every single bit flip is caught (by the checksum if nothing else).
        let good = encode_state(&state()).unwrap();
        for i in 0..good.len() * 8 {
            let mut b = good.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(decode(&b).is_err(), "bit {i} flipped went unnoticed");
        }
        for n in 0..good.len() {
            assert!(decode(&good[..n]).is_err(), "truncated to {n} bytes");
        }
    }

    /// A batch needs one list of sampler log-probs (or none) per group (one entry of image
    /// features each too: `State::check`, see `damaged_states_are_errors`).
    #[test]
    fn sampler_logps_are_one_entry_per_group() {
        let b = state().batch.unwrap();
        let wire = BatchV5::from(b.clone());
        assert_eq!(wire.sampler_logps, vec![b.groups[0].sampler_logps.clone()]);
        assert_eq!(SavedBatch::try_from(wire).unwrap(), b);
        let short = BatchV5 { sampler_logps: Vec::new(), ..BatchV5::from(b) };
        assert!(SavedBatch::try_from(short).unwrap_err().contains("1 batch groups"));
    }

    #[test]
    fn differences_name_the_keys() {
        let a = vec![("seed".to_string(), "0".to_string()), ("model".into(), "m1".into())];
        let b = vec![("seed".to_string(), "1".to_string()), ("model".into(), "m1".into())];
        assert_eq!(differences(&a, &b), vec!["seed: 0 → 1".to_string()]);
        assert!(differences(&a, &a).is_empty());
        assert!(differences(&[], &b).is_empty());
    }
}
