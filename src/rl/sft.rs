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
//!
//! With `packing = true` a row of a batch is a packed row of several sequences (`packing`),
//! each trained as its own sequence; the normaliser is still the trained tokens of the step.

mod batches;
mod options;
pub mod packing;
mod tokenize;
pub mod vision;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::TrainConfig;
use super::run::{Start, check_start, open_log, truncate_log};
use super::trainer::Trainer;
use crate::data::dataset::{self, SftRow};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::Tokenizer;

pub use batches::{micro_batch, step};
pub use options::{SESSION_KEYS, SESSION_SFT_TABLE_KEYS, SftOptions, SftSchedule};
pub use packing::Strategy;
pub use tokenize::{Example, tokenize, tokenize_whole, tokenize_with};

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
    packing_strategy: Option<String>,
    #[serde(default)]
    padding_free: bool,
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
    "packing_strategy",
    "padding_free",
];

/// TRL SFTConfig's default learning rate (GRPO's is 1e-6).
const SFT_LEARNING_RATE: f64 = 2e-5;
/// TRL SFTConfig's default `max_length`, the length of packed rows when packing without one.
pub const PACKED_LENGTH: usize = 1024;
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
    /// Packed rows (of those counts) per micro-batch with `packing`, else rows.
    pub per_device_train_batch_size: usize,
    pub gradient_accumulation_steps: usize,
    /// `packing = true`: how (`packing_strategy`); rows are packed into `max_length` tokens.
    pub packing: Option<Strategy>,
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
        let strategy = Strategy::parse(keys.packing_strategy.as_deref().unwrap_or("bfd"))?;
        let packing = keys.packing.then_some(strategy);
        // edgerl never pads: every sequence runs as its own, as TRL's padding-free batches do.
        // TRL refuses padding_free without packing when max_length is set (it would not
        // truncate): so does edgerl, rather than truncate where TRL would not.
        if keys.padding_free && packing.is_none() && keys.max_length.is_some() {
            return Err("`padding_free = true` without packing does not enforce `max_length` (TRL refuses it): set `packing = true`, or leave out `max_length` or `padding_free`".into());
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
        // TRL's SFT default (GRPO's is "auto", which only the GRPO memory plan can settle).
        table
            .entry("gradient_checkpointing")
            .or_insert(toml::Value::Boolean(true));
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
            // Packing needs a row length: TRL's default max_length.
            max_length: keys.max_length.or(packing.map(|_| PACKED_LENGTH)),
            per_device_train_batch_size: keys.per_device_train_batch_size,
            gradient_accumulation_steps: keys.gradient_accumulation_steps,
            packing,
        })
    }

    /// The keys that say how rows are tokenized.
    pub fn options(&self) -> SftOptions {
        SftOptions {
            assistant_only_loss: self.assistant_only_loss,
            completion_only_loss: self.completion_only_loss,
            max_length: self.max_length,
            schedule: None,
        }
    }
}

/// The rows of `edgerl sft`'s batches, each a list of sequences trained apart: without
/// packing, every row tokenized as its own (rows `max_length` leaves without a trained token
/// dropped, as TRL drops them); with it, TRL's packed rows. An error names the dataset row
/// (a token outside `vocab_size` among them).
///
/// Rows with images (or content parts) go through the model's image processor (`vision`):
/// `vision` is `None` for a text model, whose error names the row. TRL neither packs them nor
/// drops them when `max_length` leaves no trained token.
pub fn batch_rows(cfg: &SftConfig, tok: &Tokenizer, rows: &[SftRow], vocab_size: usize) -> Result<Vec<Vec<Example>>> {
    batch_rows_with(cfg, tok, None, None, rows, vocab_size)
}

/// `batch_rows` with the model's image side and `<image>` id (vision rows).
pub fn batch_rows_with(
    cfg: &SftConfig,
    tok: &Tokenizer,
    side: Option<&crate::vision::ImageSide>,
    image_token: Option<u32>,
    rows: &[SftRow],
    vocab_size: usize,
) -> Result<Vec<Vec<Example>>> {
    let opts = cfg.options();
    let mut examples = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let named = |e: String| Error::file(&cfg.dataset, format!("row {}: {e}", i + 1));
        let is_vision = matches!(r, SftRow::PartsMessages { .. } | SftRow::PartsPair { .. });
        if is_vision && cfg.packing.is_some() {
            return Err(named("packing is not supported for rows with images (TRL refuses it too): set `packing = false`".into()));
        }
        let e = match cfg.packing {
            _ if is_vision => Some(vision::tokenize_vision(&opts, tok, side, image_token, r).map_err(|e| named(e.to_string()))?),
            Some(_) => Some(tokenize_whole(&opts, tok, r).map_err(|e| named(e.to_string()))?),
            None => tokenize(cfg, tok, r).map_err(|e| named(e.to_string()))?,
        };
        if let Some(e) = e {
            if let Some(&bad) = e.ids.iter().find(|&&id| id as usize >= vocab_size) {
                return Err(named(format!("token {bad} is outside the model's vocabulary")));
            }
            examples.push(e);
        }
    }
    Ok(match cfg.packing {
        Some(strategy) => {
            let length = cfg.max_length.unwrap_or(PACKED_LENGTH);
            let n = examples.len();
            let packed = packing::pack(examples, length, strategy);
            log::info!("packing ({}): {n} rows into {} rows of at most {length} tokens", strategy.name(), packed.len());
            packed
        }
        None => examples.into_iter().map(|e| vec![e]).collect(),
    })
}

/// `edgerl sft`: `max_steps` optimizer steps, each over per_device_train_batch_size ×
/// gradient_accumulation_steps rows, or packed rows with `packing` (shuffled per epoch with `seed`), one JSON line of metrics a
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
    // Only when on: the fingerprints of runs without packing stay those of earlier versions.
    if let Some(s) = cfg.packing {
        run.push(("sft.packing_strategy".into(), s.name().into()));
    }
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
    let seqs = batch_rows_with(&cfg, tok, t.vision.as_ref(), t.model.cfg.image_token_id, &rows, t.model.cfg.vocab_size)?;
    if seqs.iter().flatten().all(|e| e.targets() == 0) {
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
        // A micro-batch: bs rows of the batch, each one sequence or (packing) several.
        let micro: Vec<Vec<&Example>> = (0..ga)
            .map(|j| {
                micro_batch(seqs.len(), bs, cfg.train.seed, s * ga + j)
                    .into_iter()
                    .flat_map(|i| &seqs[i])
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
            ("learning_rate = -1.0", "learning_rate"),
            ("[lora]\nrank = 2", "rank"),
            ("packing = true\npacking_strategy = \"ffd\"", "packing_strategy"),
            ("padding_free = true\nmax_length = 8", "padding_free"),
        ] {
            let e = SftConfig::from_toml(&format!("{MIN}{bad}\n")).unwrap_err();
            assert!(e.contains(key), "{bad}: {e}");
        }
        assert!(
            SftConfig::from_toml("model = \"m\"\noutput_dir = \"o\"\n")
                .unwrap_err()
                .contains("dataset")
        );
        let c = SftConfig::from_toml(&format!("{MIN}packing = true\n")).unwrap();
        assert_eq!((c.packing, c.max_length), (Some(Strategy::Bfd), Some(PACKED_LENGTH)));
        let c = SftConfig::from_toml(&format!(
            "{MIN}packing = true\npacking_strategy = \"wrapped\"\nmax_length = 64\npadding_free = true\n"
        ))
        .unwrap();
        assert_eq!((c.packing, c.max_length), (Some(Strategy::Wrapped), Some(64)));
        // A strategy without packing is TRL's: accepted, nothing packed.
        let c = SftConfig::from_toml(&format!("{MIN}packing_strategy = \"bfd_split\"\n")).unwrap();
        assert_eq!((c.packing, c.max_length), (None, None));
    }
}
