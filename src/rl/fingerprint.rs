//! A run's fingerprint: what makes a resumed run the same run — the model's and the data's
//! contents and every config key that changes the trajectory — stored in each checkpoint so
//! `--resume` refuses to continue a different run.
//!
//! Left out on purpose: `output_dir`, `save_steps`, `max_steps` (a finished run may be
//! extended, as with transformers' Trainer), `gradient_checkpointing` and the pack size (the
//! same numbers, less memory), `success_threshold` (eval only), `max_consecutive_skips`.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::config::TrainConfig;
use crate::error::{Error, Result};

/// How much of each end of a large file goes into its identity: enough to tell checkpoints,
/// quantizations and fine-tunes apart, cheap on a 1 GB model.
const EDGE: u64 = 1 << 20;

pub fn of(cfg: &TrainConfig) -> Result<Vec<(String, String)>> {
    let mut out = vec![("model".to_string(), model_identity(&cfg.model)?)];
    for (key, path) in [("dataset", &cfg.dataset), ("rollouts", &cfg.rollouts)] {
        if let Some(p) = path {
            out.push((key.into(), file_identity(p, true)?));
        }
    }
    if let Some(dir) = &cfg.init_adapter {
        out.push(("init_adapter".into(), model_identity(dir)?));
    }
    let lora = cfg.lora.clone().unwrap_or_default();
    let mut targets = lora.target_modules.clone();
    targets.sort();
    targets.dedup();
    let keys: Vec<(&str, String)> = vec![
        ("num_generations", cfg.num_generations.to_string()),
        ("top_k", cfg.top_k.to_string()),
        ("top_p", format!("{:?}", cfg.top_p)),
        ("min_p", format!("{:?}", cfg.min_p)),
        ("stop", format!("{:?}", cfg.stop)),
        ("rewards", format!("{:?}", cfg.rewards)),
        ("reward_all_or_nothing", cfg.reward_all_or_nothing.to_string()),
        ("dynamic_sampling", cfg.dynamic_sampling.to_string()),
        ("max_refill", cfg.max_refill.to_string()),
        ("optimizer", format!("{:?}", cfg.optimizer)),
        ("learning_rate", format!("{:?}", cfg.learning_rate)),
        ("weight_decay", format!("{:?}", cfg.weight_decay)),
        ("adam_beta1", format!("{:?}", cfg.adam_beta1)),
        ("adam_beta2", format!("{:?}", cfg.adam_beta2)),
        ("adam_epsilon", format!("{:?}", cfg.adam_epsilon)),
        ("max_grad_norm", format!("{:?}", cfg.max_grad_norm)),
        ("lr_scheduler_type", format!("{:?}", cfg.lr_scheduler_type)),
        ("warmup_steps", cfg.warmup_steps.to_string()),
        ("warmup_ratio", format!("{:?}", cfg.warmup_ratio)),
        ("loss_type", format!("{:?}", cfg.loss_type)),
        ("scale_rewards", format!("{:?}", cfg.scale_rewards)),
        ("advantage", format!("{:?}", cfg.advantage)),
        ("w_reinforce_lambda", format!("{:?}", cfg.w_reinforce_lambda)),
        ("temperature", format!("{:?}", cfg.temperature)),
        ("max_completion_length", cfg.max_completion_length.to_string()),
        ("beta", format!("{:?}", cfg.beta)),
        ("epsilon", format!("{:?}", cfg.epsilon)),
        ("epsilon_high", format!("{:?}", cfg.epsilon_high())),
        ("delta", format!("{:?}", cfg.delta)),
        ("importance_sampling_level", format!("{:?}", cfg.importance_sampling_level)),
        ("entropy_coef", format!("{:?}", cfg.entropy_coef)),
        ("weight_column", format!("{:?}", cfg.weight_column)),
        ("mask_truncated_completions", cfg.mask_truncated_completions.to_string()),
        ("num_iterations", cfg.num_iterations.to_string()),
        ("prompts_per_step", cfg.prompts_per_step.to_string()),
        ("seed", cfg.seed.to_string()),
        ("lora.r", lora.r.to_string()),
        ("lora.alpha", format!("{:?}", lora.alpha)),
        ("lora.use_rslora", lora.use_rslora.to_string()),
        ("lora.target_modules", targets.join(",")),
    ];
    out.extend(keys.into_iter().map(|(k, v)| (k.to_string(), v)));
    // Later keys join only when set, so checkpoints written before them still resume.
    let later = [
        ("difficulty_weight", cfg.difficulty_weight.then(|| "true".to_string())),
        ("loss_divisor", cfg.loss_divisor.map(|d| format!("{d:?}"))),
        // Present when the rows are shuffled, absent in file order: the rule from before the
        // default became true, kept so that a checkpoint without the key (written in file
        // order) resumes only with `shuffle_dataset = false` ("shuffle_dataset: (unset) →
        // true" otherwise), and one written with `shuffle_dataset = true` still resumes.
        ("shuffle_dataset", cfg.shuffle_dataset.then(|| "true".to_string())),
        // The sampler correction as it acts (mode and bounds), IcePop's β, and the sampler
        // log-probs it reads when they are not the default ones.
        (
            "vllm_importance_sampling_correction",
            cfg.vllm_importance_sampling_correction
                .then(|| cfg.sampler_correction().map(|k| format!("{:?} [{:?}, {:?}]", k.mode, k.clip_min, k.clip_max)))
                .flatten(),
        ),
        ("icepop_beta", cfg.icepop_beta.map(|b| format!("{b:?}"))),
        (
            "sampler_logprobs",
            (cfg.sampler_logprobs != super::config::SamplerLogprobs::Processed).then(|| format!("{:?}", cfg.sampler_logprobs)),
        ),
    ];
    out.extend(later.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))));
    Ok(out)
}

/// A model directory (or `.gguf` file, or adapter directory): its name and the identity of
/// its weight, config and tokenizer files.
fn model_identity(path: &Path) -> Result<String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !path.is_dir() {
        return Ok(format!("{name} {}", file_identity(path, false)?));
    }
    let mut files: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| Error::file(path, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            !n.starts_with('.') && (n.ends_with(".safetensors") || n.ends_with(".gguf") || n.ends_with(".json"))
        })
        // Files only (links followed): a folder named `x.json` failed the run, a link to a
        // device (`/dev/zero`) was read until memory ran out.
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut h = crc32fast::Hasher::new();
    let mut total = 0;
    for f in &files {
        let (len, crc) = edges(f)?;
        total += len;
        h.update(f.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default());
        h.update(&len.to_le_bytes());
        h.update(&crc.to_le_bytes());
    }
    Ok(format!("{name} ({} files, {total} bytes, crc {:08x})", files.len(), h.finalize()))
}

/// `(N bytes, crc X)` of a file: of all of it (`whole`), or of its ends.
fn file_identity(path: &Path, whole: bool) -> Result<String> {
    let (len, crc) = if whole {
        let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
        (bytes.len() as u64, crc32fast::hash(&bytes))
    } else {
        edges(path)?
    };
    Ok(format!("({len} bytes, crc {crc:08x})"))
}

/// Length and CRC of the first and last `EDGE` bytes (the whole file when smaller).
fn edges(path: &Path) -> Result<(u64, u32)> {
    let read = || -> std::io::Result<(u64, u32)> {
        let mut f = std::fs::File::open(path)?;
        let len = f.metadata()?.len();
        let mut h = crc32fast::Hasher::new();
        let mut buf = Vec::new();
        (&mut f).take(EDGE).read_to_end(&mut buf)?;
        h.update(&buf);
        if len > 2 * EDGE {
            f.seek(SeekFrom::Start(len - EDGE))?;
            buf.clear();
            f.take(EDGE).read_to_end(&mut buf)?;
        } else {
            buf.clear();
            // The rest of the `len` bytes, and no more (a file growing meanwhile, a device).
            f.take(len).read_to_end(&mut buf)?;
        }
        h.update(&buf);
        Ok((len, h.finalize()))
    };
    read().map_err(|e| Error::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sampler-correction keys join a run's identity only when set, so checkpoints of runs
    /// without them still resume.
    #[test]
    fn sampler_correction_keys_join_only_when_set() {
        let root = env!("CARGO_MANIFEST_DIR");
        let base = format!("model = \"{root}/tests/fixtures/models/llama_f32\"\noutput_dir = \"o\"\nrollouts = \"{root}/Cargo.toml\"\n");
        let keys = |extra: &str| -> Vec<(String, String)> {
            let c = TrainConfig::from_toml(&format!("{base}{extra}")).unwrap();
            of(&c).unwrap().into_iter().filter(|(k, _)| k.contains("importance_sampling") && k != "importance_sampling_level" || k == "icepop_beta" || k == "sampler_logprobs").collect()
        };
        assert!(keys("").is_empty());
        // The mode and bounds alone change nothing while the correction is off.
        assert!(keys("vllm_importance_sampling_mode = \"token_mask\"").is_empty());
        let on = keys("vllm_importance_sampling_correction = true");
        assert_eq!(on, vec![("vllm_importance_sampling_correction".to_string(), "SequenceMask [-inf, 3.0]".to_string())]);
        assert_ne!(on, keys("vllm_importance_sampling_correction = true\nvllm_importance_sampling_clip_max = 2.0"));
        assert_eq!(keys("icepop_beta = 5.0"), vec![("icepop_beta".to_string(), "5.0".to_string())]);
        assert_eq!(keys("sampler_logprobs = \"unfiltered\"").len(), 1);
    }

    /// `shuffle_dataset` defaults to true but its key keeps the earlier rule (present when
    /// true), so a checkpoint without it, written in file order, resumes only in file order.
    #[test]
    fn file_order_runs_keep_their_fingerprint() {
        let root = env!("CARGO_MANIFEST_DIR");
        let base = format!("model = \"{root}/tests/fixtures/models/llama_f32\"\noutput_dir = \"o\"\nrollouts = \"{root}/Cargo.toml\"\n");
        let fp = |extra: &str| of(&TrainConfig::from_toml(&format!("{base}{extra}")).unwrap()).unwrap();
        let shuffled = fp("");
        let file_order = fp("shuffle_dataset = false");
        assert!(shuffled.contains(&("shuffle_dataset".to_string(), "true".to_string())));
        assert!(!file_order.iter().any(|(k, _)| k == "shuffle_dataset"));
        // What an old file-order checkpoint holds is what a file-order run has now.
        assert!(crate::rl::state::differences(&file_order, &fp("shuffle_dataset = false")).is_empty());
        assert_eq!(crate::rl::state::differences(&file_order, &shuffled), vec!["shuffle_dataset: (unset) → true".to_string()]);
        assert_eq!(fp("shuffle_dataset = true"), shuffled);
    }
}
