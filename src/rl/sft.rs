//! `edgerl sft`: a supervised warm start (TRL's `SFTTrainer`) on the training engine: the
//! token-mean negative log-likelihood of the trained tokens, on chat datasets (`messages`,
//! `prompt`/`completion` as strings or message lists, or `text`), LoRA adapter in PEFT format.
//!
//! The loss of an optimizer step is  Σ −log p(trained token) / N,  N the trained tokens of the
//! whole step (every micro-batch of its gradient accumulation), as transformers' Trainer passes
//! `num_items_in_batch` to SFTTrainer.compute_loss. That is the backward pass's Σ a·lp with
//! a = −1/N on trained tokens and 0 elsewhere: one sequence is one pack whose "prompt" is the
//! untrained prefix and whose single completion is the rest, trained tokens picked by `a`
//! (non-contiguous assistant turns included).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::config::TrainConfig;
use super::run::{Start, check_start, open_log, truncate_log};
use super::trainer::{Supervised, Trainer};
use crate::data::Message;
use crate::data::dataset::{self, SftRow};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::Tokenizer;
use crate::model::pack::Pack;

/// Keys of a GRPO run.toml an SFT run shares (TrainConfig parses and checks them).
const SHARED_KEYS: &[&str] = &[
    "model",
    "output_dir",
    "init_adapter",
    "optimizer",
    "learning_rate",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "lr_scheduler_type",
    "warmup_steps",
    "warmup_ratio",
    "max_steps",
    "save_steps",
    "seed",
    "gradient_checkpointing",
    "lora",
    "max_consecutive_skips",
];

/// The keys only SFT has, with TRL `SFTConfig`'s names and defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SftKeys {
    dataset: PathBuf,
    #[serde(default)]
    assistant_only_loss: bool,
    /// `None`: true for prompt/completion datasets (TRL).
    completion_only_loss: Option<bool>,
    /// Sequences are truncated to this many tokens (TRL's `truncation_mode = "keep_start"`).
    max_length: Option<usize>,
    #[serde(default = "d_batch")]
    per_device_train_batch_size: usize,
    #[serde(default = "d_one")]
    gradient_accumulation_steps: usize,
    #[serde(default)]
    packing: bool,
}

fn d_batch() -> usize {
    8
}
fn d_one() -> usize {
    1
}

/// Every key only SFT has (`edgerl sft`'s config).
pub const SFT_KEYS: &[&str] = &[
    "dataset",
    "assistant_only_loss",
    "completion_only_loss",
    "max_length",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "packing",
];

/// The SFT keys a training session's config takes (`edgerl_session_sft_step`): how its rows
/// are tokenized. The others (`dataset`, batch sizes, `packing`) do not apply to a session,
/// which trains on the rows of each call as one batch.
pub const SESSION_KEYS: &[&str] = &["assistant_only_loss", "completion_only_loss", "max_length"];

/// How rows are tokenized (TRL `SFTConfig`'s names and defaults): the part of an SFT config a
/// session's SFT steps use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SftOptions {
    pub assistant_only_loss: bool,
    /// `None`: true for prompt/completion rows (TRL).
    pub completion_only_loss: Option<bool>,
    pub max_length: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionKeys {
    #[serde(default)]
    assistant_only_loss: bool,
    completion_only_loss: Option<bool>,
    max_length: Option<usize>,
}

impl SftOptions {
    /// Removes `SESSION_KEYS` from a config table and parses them (checked as `edgerl sft`
    /// checks them); the rest of the table is left for `TrainConfig`.
    pub fn take(table: &mut toml::Table) -> std::result::Result<SftOptions, String> {
        let mut own = toml::Table::new();
        for k in SESSION_KEYS {
            if let Some(v) = table.remove(*k) {
                own.insert(k.to_string(), v);
            }
        }
        let k: SessionKeys = own
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string().trim().replace('\n', " "))?;
        if k.max_length == Some(0) {
            return Err("`max_length` must be at least 1".into());
        }
        Ok(SftOptions {
            assistant_only_loss: k.assistant_only_loss,
            completion_only_loss: k.completion_only_loss,
            max_length: k.max_length,
        })
    }
}

/// TRL SFTConfig's default learning rate (GRPO's is 1e-6).
const SFT_LEARNING_RATE: f64 = 2e-5;
/// Upper bound of the per-step row counts (a typo is an error, not an allocation).
pub const MAX_BATCH: usize = 1 << 16;

#[derive(Clone, Debug)]
pub struct SftConfig {
    /// The shared keys (model, output_dir, init_adapter, [lora], optimizer, schedule, seed).
    pub train: TrainConfig,
    pub dataset: PathBuf,
    pub assistant_only_loss: bool,
    pub completion_only_loss: Option<bool>,
    pub max_length: Option<usize>,
    pub per_device_train_batch_size: usize,
    pub gradient_accumulation_steps: usize,
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl SftConfig {
    pub fn from_file(path: &Path) -> Result<SftConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        let mut c = SftConfig::from_toml(&text).map_err(|e| Error::file(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        c.train.model = resolve(base, &c.train.model);
        c.train.output_dir = resolve(base, &c.train.output_dir);
        c.train.init_adapter = c.train.init_adapter.as_ref().map(|p| resolve(base, p));
        c.dataset = resolve(base, &c.dataset);
        c.train.rollouts = Some(c.dataset.clone());
        Ok(c)
    }

    /// Splits the SFT keys off and hands the rest to `TrainConfig` (its parsing, defaults and
    /// checks); a key neither has is an error naming it.
    pub fn from_toml(text: &str) -> std::result::Result<SftConfig, String> {
        let one_line = |e: toml::de::Error| e.to_string().trim().replace('\n', " ");
        let mut table: toml::Table = toml::from_str(text).map_err(one_line)?;
        let mut own = toml::Table::new();
        for k in SFT_KEYS {
            if let Some(v) = table.remove(*k) {
                own.insert(k.to_string(), v);
            }
        }
        if let Some(k) = table.keys().find(|k| !SHARED_KEYS.contains(&k.as_str())) {
            return Err(format!(
                "unknown key `{k}` for `edgerl sft` (SFT keys: {}; shared with GRPO runs: {})",
                SFT_KEYS.join(", "),
                SHARED_KEYS.join(", ")
            ));
        }
        let keys: SftKeys = own.try_into().map_err(one_line)?;
        if keys.packing {
            return Err(
                "`packing = true` is not supported yet: every row is its own sequence".into(),
            );
        }
        for (k, v) in [
            (
                "per_device_train_batch_size",
                keys.per_device_train_batch_size,
            ),
            (
                "gradient_accumulation_steps",
                keys.gradient_accumulation_steps,
            ),
        ] {
            if v == 0 || v > MAX_BATCH {
                return Err(format!("`{k}` must be in 1..={MAX_BATCH}, got {v}"));
            }
        }
        if keys.max_length == Some(0) {
            return Err("`max_length` must be at least 1".into());
        }
        table
            .entry("learning_rate")
            .or_insert(toml::Value::Float(SFT_LEARNING_RATE));
        // TrainConfig wants a data source: the SFT dataset stands in as `rollouts` (never read
        // as rollouts).
        table.insert(
            "rollouts".into(),
            toml::Value::String(keys.dataset.to_string_lossy().into()),
        );
        let train = TrainConfig::from_toml(&toml::to_string(&table).map_err(|e| e.to_string())?)?;
        if train.gradient_checkpointing == super::config::Checkpointing::Auto {
            return Err("`gradient_checkpointing = \"auto\"` asks the GRPO memory plan, which does not plan SFT steps: give true or false".into());
        }
        Ok(SftConfig {
            train,
            dataset: keys.dataset,
            assistant_only_loss: keys.assistant_only_loss,
            completion_only_loss: keys.completion_only_loss,
            max_length: keys.max_length,
            per_device_train_batch_size: keys.per_device_train_batch_size,
            gradient_accumulation_steps: keys.gradient_accumulation_steps,
        })
    }

    /// The keys that say how rows are tokenized.
    pub fn options(&self) -> SftOptions {
        SftOptions {
            assistant_only_loss: self.assistant_only_loss,
            completion_only_loss: self.completion_only_loss,
            max_length: self.max_length,
        }
    }
}

/// One tokenized row: its ids and which of them are trained (TRL's labels ≠ −100).
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub ids: Vec<u32>,
    pub trained: Vec<bool>,
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn render(tok: &Tokenizer, messages: &[Message], add_generation_prompt: bool) -> Result<Vec<u32>> {
    tok.encode(&tok.render_chat(messages, add_generation_prompt)?, false)
}

/// Each assistant turn's tokens in the rendering of `messages` (`full`): what the template writes
/// after the generation prompt for that turn, through the end of the turn — as a chat template
/// with `{% generation %}` around the assistant's content and end of turn marks them.
fn assistant_mask(tok: &Tokenizer, messages: &[Message], full: &[u32]) -> Result<Vec<bool>> {
    let mut mask = vec![false; full.len()];
    for (i, m) in messages.iter().enumerate() {
        if m.role != "assistant" {
            continue;
        }
        let start = common_prefix(&render(tok, &messages[..i], true)?, full);
        let end = common_prefix(&render(tok, &messages[..=i], false)?, full);
        mask[start..end.max(start)]
            .iter_mut()
            .for_each(|b| *b = true);
    }
    Ok(mask)
}

/// A row tokenized as SFTTrainer prepares it (chat renders without added special tokens;
/// EOS appended to non-conversational text; labels from the completion and assistant masks;
/// truncation to `max_length`). `None`: a row truncation left without trained tokens (TRL drops it).
pub fn tokenize(cfg: &SftConfig, tok: &Tokenizer, row: &SftRow) -> Result<Option<Example>> {
    tokenize_with(&cfg.options(), tok, row)
}

/// `tokenize` with the tokenizing keys alone (a session's SFT step has no `SftConfig`).
pub fn tokenize_with(cfg: &SftOptions, tok: &Tokenizer, row: &SftRow) -> Result<Option<Example>> {
    let with_eos = |mut ids: Vec<u32>| {
        if let Some(e) = tok.eos_token_id
            && ids.last() != Some(&e)
        {
            ids.push(e);
        }
        ids
    };
    let pair = matches!(row, SftRow::TextPair { .. } | SftRow::ChatPair { .. });
    let completion_only = cfg.completion_only_loss.unwrap_or(pair);
    let chat = matches!(row, SftRow::Messages(_) | SftRow::ChatPair { .. });
    if cfg.assistant_only_loss && !chat {
        return Err(Error::Invalid("assistant_only_loss needs a conversational dataset (`messages`, or message lists in `prompt`/`completion`)".into()));
    }
    let (ids, prompt_len, assistant) = match row {
        // Plain text is tokenized as `tokenizer(text)`, special tokens added (a BOS); chat
        // renders carry the template's own.
        SftRow::Text(t) => (with_eos(tok.encode(t, true)?), 0, None),
        SftRow::TextPair { prompt, completion } => {
            let p = tok.encode(prompt, true)?;
            let full = with_eos(tok.encode(&format!("{prompt}{completion}"), true)?);
            let n = common_prefix(&p, &full);
            (full, n, None)
        }
        SftRow::Messages(m) => {
            let full = render(tok, m, false)?;
            let mask = if cfg.assistant_only_loss {
                Some(assistant_mask(tok, m, &full)?)
            } else {
                None
            };
            (full, 0, mask)
        }
        SftRow::ChatPair { prompt, completion } => {
            let p = render(tok, prompt, true)?;
            let all: Vec<Message> = prompt.iter().chain(completion).cloned().collect();
            let full = render(tok, &all, false)?;
            let n = common_prefix(&p, &full);
            let mask = if cfg.assistant_only_loss {
                Some(assistant_mask(tok, &all, &full)?)
            } else {
                None
            };
            (full, n, mask)
        }
    };
    if let Some(m) = &assistant
        && !m.contains(&true)
    {
        return Err(Error::Invalid(
            "assistant_only_loss: a row has no assistant tokens".into(),
        ));
    }
    let mut trained: Vec<bool> = (0..ids.len())
        .map(|i| {
            (!completion_only || !pair || i >= prompt_len)
                && assistant.as_ref().is_none_or(|m| m[i])
        })
        .collect();
    let mut ids = ids;
    if let Some(l) = cfg.max_length {
        ids.truncate(l);
        trained.truncate(l);
    }
    if !trained.contains(&true) {
        return Ok(None);
    }
    Ok(Some(Example { ids, trained }))
}

impl Example {
    /// Trained targets: positions 1.. whose label is kept (position 0 is never predicted).
    pub fn targets(&self) -> usize {
        self.trained.iter().skip(1).filter(|&&b| b).count()
    }

    /// Its pack (the untrained prefix as the prompt, the rest as one completion) with the
    /// coefficient `a` on every trained target; `None` when nothing is predicted.
    fn supervised(&self, a: f32) -> Result<Option<Supervised>> {
        let Some(first) = self.trained.iter().skip(1).position(|&b| b).map(|i| i + 1) else {
            return Ok(None);
        };
        let pack = Pack::new(&self.ids[..first], &[&self.ids[first..]])?;
        let coefs = self.trained[first..]
            .iter()
            .map(|&b| (if b { a } else { 0.0 }, 0.0))
            .collect();
        Ok(Some(Supervised { pack, coefs }))
    }
}

/// SplitMix64 mixing (the epoch shuffle).
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The row order of `epoch`: a Fisher–Yates shuffle seeded by (seed, epoch).
fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut s = mix(seed, epoch.wrapping_add(0x5F7));
    for i in (1..n).rev() {
        s = mix(s, i as u64);
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}

/// The rows of micro-batch `k` (0-based over the run): epochs of ⌈n / batch⌉ micro-batches, the
/// last one of an epoch shorter, as a DataLoader without drop_last.
pub fn micro_batch(n: usize, batch: usize, seed: u64, k: usize) -> Vec<usize> {
    let per_epoch = n.div_ceil(batch);
    let (epoch, j) = (k / per_epoch, k % per_epoch);
    let order = epoch_order(n, seed, epoch as u64);
    order[j * batch..((j + 1) * batch).min(n)].to_vec()
}

/// Runs one optimizer step over `micro` (a list of micro-batches of examples): loss
/// Σ −lp / N, N the trained targets of all of them. Metrics in TRL's names; `entropy` and
/// `mean_token_accuracy` averaged over the micro-batches, as SFTTrainer logs them.
pub fn step(t: &mut Trainer, micro: &[Vec<&Example>]) -> Result<Map<String, Value>> {
    let t0 = std::time::Instant::now();
    let n: usize = micro.iter().flatten().map(|e| e.targets()).sum();
    let a = -1.0 / n.max(1) as f32;
    let mut seqs = Vec::new();
    let mut owner = Vec::new();
    for (mi, mb) in micro.iter().enumerate() {
        for e in mb {
            if let Some(s) = e.supervised(a)? {
                owner.push((mi, *e));
                seqs.push(s);
            }
        }
    }
    let out = t.step_supervised(&seqs)?;
    let mut ent = vec![(0.0f64, 0usize, 0usize); micro.len()];
    for ((mi, e), (s, rows)) in owner.iter().zip(seqs.iter().zip(&out.rows)) {
        let first = e.ids.len() - s.pack.targets.len();
        for (k, &tr) in e.trained[first..].iter().enumerate() {
            if tr {
                ent[*mi].0 += rows.entropy[k] as f64;
                ent[*mi].1 += 1;
                ent[*mi].2 += rows.top1[k] as usize;
            }
        }
    }
    let mean = |f: &dyn Fn(&(f64, usize, usize)) -> f64| {
        ent.iter().map(f).sum::<f64>() / ent.len().max(1) as f64
    };
    let entropy = mean(&|x| if x.1 > 0 { x.0 / x.1 as f64 } else { 0.0 });
    let accuracy = mean(&|x| {
        if x.1 > 0 {
            x.2 as f64 / x.1 as f64
        } else {
            0.0
        }
    });
    t.tokens_seen += micro.iter().flatten().map(|e| e.ids.len()).sum::<usize>();
    let mut m = Map::new();
    m.insert("step".into(), json!(t.optimizer_steps));
    m.insert("loss".into(), json!(out.loss));
    m.insert("grad_norm".into(), json!(out.grad_norm));
    m.insert("learning_rate".into(), json!(out.lr));
    m.insert("num_tokens".into(), json!(t.tokens_seen));
    m.insert("mean_token_accuracy".into(), json!(accuracy));
    m.insert("entropy".into(), json!(entropy));
    m.insert("trained_tokens".into(), json!(n));
    m.insert("skipped_steps".into(), json!(t.skipped_steps));
    m.insert("step_time".into(), json!(t0.elapsed().as_secs_f64()));
    Ok(m)
}

/// `edgerl sft`: `max_steps` optimizer steps, each over per_device_train_batch_size ×
/// gradient_accumulation_steps rows (shuffled per epoch with `seed`), one JSON line of metrics a
/// step in output_dir/metrics.jsonl (and metrics.csv), then the adapter in output_dir/adapter.
/// `overwrite`: remove a previous run's logs, checkpoints and adapter first (else refused).
pub fn sft(gpu: &Gpu, cfg: SftConfig, overwrite: bool, on_step: impl FnMut(&Map<String, Value>)) -> Result<PathBuf> {
    sft_with(gpu, cfg, if overwrite { Start::Overwrite } else { Start::Fresh }, on_step)
}

/// The run's fingerprint (`rl::fingerprint`): the GRPO keys an SFT run shares (the dataset's
/// contents among them, as `rollouts`), plus the keys only SFT has.
fn fingerprint(cfg: &SftConfig) -> Result<Vec<(String, String)>> {
    let mut run = super::fingerprint::of(&cfg.train)?;
    run.extend([
        ("sft.assistant_only_loss", cfg.assistant_only_loss.to_string()),
        ("sft.completion_only_loss", format!("{:?}", cfg.completion_only_loss)),
        ("sft.max_length", format!("{:?}", cfg.max_length)),
        ("sft.per_device_train_batch_size", cfg.per_device_train_batch_size.to_string()),
        ("sft.gradient_accumulation_steps", cfg.gradient_accumulation_steps.to_string()),
    ].map(|(k, v)| (k.to_string(), v)));
    Ok(run)
}

/// `edgerl sft`, starting as `start` says (a fresh run, `--overwrite`, or `--resume` from the
/// newest intact checkpoint of the same run). Checkpoints as GRPO runs write them: every
/// `save_steps` steps and at the end. Micro-batches are a function of (seed, step), so a
/// resumed run continues exactly where the checkpoint stopped.
pub fn sft_with(gpu: &Gpu, cfg: SftConfig, start_as: Start, mut on_step: impl FnMut(&Map<String, Value>)) -> Result<PathBuf> {
    let out = cfg.train.output_dir.clone();
    let resume_from = check_start(&out, start_as)?;
    let rows = dataset::read_sft(&cfg.dataset)?;
    let mut t = Trainer::new(gpu, cfg.train.clone())?;
    t.run_fingerprint = fingerprint(&cfg)?;
    let mut start = 0;
    if let Some(dir) = &resume_from {
        start = t.restore(dir)?.step;
        log::info!("resuming from {} (step {start})", dir.display());
    }
    let tok = t
        .tokenizer
        .as_ref()
        .ok_or_else(|| Error::Invalid("SFT needs the model's tokenizer".into()))?;
    let mut examples = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let e = tokenize(&cfg, tok, r)
            .map_err(|e| Error::file(&cfg.dataset, format!("row {}: {e}", i + 1)))?;
        if let Some(e) = e {
            if let Some(&bad) = e
                .ids
                .iter()
                .find(|&&id| id as usize >= t.model.cfg.vocab_size)
            {
                return Err(Error::file(
                    &cfg.dataset,
                    format!(
                        "row {}: token {bad} is outside the model's vocabulary",
                        i + 1
                    ),
                ));
            }
            examples.push(e);
        }
    }
    if examples.is_empty() {
        return Err(Error::file(
            &cfg.dataset,
            "no row has a trained token (after max_length)",
        ));
    }
    // Every input is read before anything in `out` changes: bad input loses nothing.
    if start_as == Start::Overwrite {
        super::checkpoint::remove_previous_run(&out)?;
    }
    std::fs::create_dir_all(&out).map_err(|e| Error::file(&out, format!("cannot create: {e}")))?;
    let metrics_path = out.join("metrics.jsonl");
    if resume_from.is_some() {
        truncate_log(&metrics_path, start)?;
    }
    let mut log = open_log(&metrics_path, resume_from.is_some())?;
    let (bs, ga) = (
        cfg.per_device_train_batch_size,
        cfg.gradient_accumulation_steps,
    );
    let (save_steps, max_steps) = (t.cfg.save_steps, t.cfg.max_steps);
    let no_metrics = Map::new();
    for s in start..max_steps {
        let micro: Vec<Vec<&Example>> = (0..ga)
            .map(|j| {
                micro_batch(examples.len(), bs, cfg.train.seed, s * ga + j)
                    .into_iter()
                    .map(|i| &examples[i])
                    .collect()
            })
            .collect();
        let m = step(&mut t, &micro)?;
        writeln!(log, "{}", Value::Object(m.clone())).map_err(|e| Error::file(&metrics_path, e))?;
        log.sync_data().map_err(|e| Error::file(&metrics_path, e))?;
        on_step(&m);
        let max_skips = t.cfg.max_consecutive_skips;
        if max_skips > 0 && t.consecutive_skips >= max_skips {
            let dir = t.checkpoint(None, &no_metrics, 0)?;
            return Err(Error::NonFinite(format!(
                "SFT stopped at step {}: the last {} steps had a NaN or infinite loss or gradient (max_consecutive_skips = {max_skips}); the adapter and optimizer of step {} are saved in {}. Lower learning_rate, then `edgerl sft --resume`",
                t.optimizer_steps,
                t.consecutive_skips,
                t.optimizer_steps - t.consecutive_skips,
                dir.display()
            )));
        }
        if save_steps > 0 && (s + 1) % save_steps == 0 && s + 1 < max_steps {
            t.checkpoint(None, &no_metrics, 0)?;
        }
    }
    // A resumed run that had already finished changed nothing: its checkpoint stays as it is.
    if resume_from.is_none() || t.optimizer_steps > start {
        t.checkpoint(None, &no_metrics, 0)?;
    }
    super::report::write_csv(&metrics_path, &out.join("metrics.csv"))?;
    t.save()?;
    Ok(t.adapter_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "model = \"m\"\noutput_dir = \"o\"\ndataset = \"d.jsonl\"\n";

    #[test]
    fn keys() {
        let c = SftConfig::from_toml(MIN).unwrap();
        assert_eq!(c.train.learning_rate, SFT_LEARNING_RATE);
        assert_eq!(c.per_device_train_batch_size, 8);
        assert_eq!(c.completion_only_loss, None);
        let c = SftConfig::from_toml(&format!(
            "{MIN}learning_rate = 0.1\nmax_length = 5\n[lora]\nr = 4\n"
        ))
        .unwrap();
        assert_eq!(
            (c.train.learning_rate, c.max_length, c.train.lora.unwrap().r),
            (0.1, Some(5), 4)
        );
        for (bad, key) in [
            ("num_generations = 4", "num_generations"),
            ("max_lenght = 3", "max_lenght"),
            (
                "per_device_train_batch_size = 0",
                "per_device_train_batch_size",
            ),
            ("packing = true", "packing"),
            ("learning_rate = -1.0", "learning_rate"),
            ("[lora]\nrank = 2", "rank"),
        ] {
            let e = SftConfig::from_toml(&format!("{MIN}{bad}\n")).unwrap_err();
            assert!(e.contains(key), "{bad}: {e}");
        }
        assert!(
            SftConfig::from_toml("model = \"m\"\noutput_dir = \"o\"\n")
                .unwrap_err()
                .contains("dataset")
        );
    }

    #[test]
    fn session_keys() {
        let mut t: toml::Table =
            "max_length = 7\nassistant_only_loss = true\nlearning_rate = 0.1\n".parse().unwrap();
        let o = SftOptions::take(&mut t).unwrap();
        assert_eq!(
            o,
            SftOptions { assistant_only_loss: true, completion_only_loss: None, max_length: Some(7) }
        );
        assert_eq!(t.keys().collect::<Vec<_>>(), ["learning_rate"]);
        let mut t: toml::Table = "max_length = 0\n".parse().unwrap();
        assert!(SftOptions::take(&mut t).unwrap_err().contains("max_length"));
        let mut t: toml::Table = "completion_only_loss = 3\n".parse().unwrap();
        assert!(SftOptions::take(&mut t).is_err());
        let c = SftConfig::from_toml(&format!("{MIN}max_length = 5\n")).unwrap();
        assert_eq!(c.options().max_length, Some(5));
    }

    #[test]
    fn micro_batches_cover_each_epoch() {
        for k in 0..3 {
            let mut seen: Vec<usize> = (0..3)
                .flat_map(|j| micro_batch(7, 3, 1, k * 3 + j))
                .collect();
            assert_eq!(seen.len(), 7);
            seen.sort();
            assert_eq!(seen, (0..7).collect::<Vec<_>>());
        }
        assert_ne!(epoch_order(20, 1, 0), epoch_order(20, 1, 1));
    }
}
