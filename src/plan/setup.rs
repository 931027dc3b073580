//! Plan inputs from what a run would load, without loading it onto the GPU: the model's config,
//! tokenizer and weight types (safetensors headers or the GGUF tensor directory), and the
//! dataset's or rollouts' longest prompt; or a preset shape with random weights.

use std::path::Path;

use super::{PlanInput, WeightBytes, weight_bytes};
use crate::error::{Error, Result};
use crate::gpu::DType;
use crate::lora::{LoraConfig, Target};
use crate::model::gguf::Gguf;
use crate::model::weights::SafetensorsWeights;
use crate::model::{ModelConfig, Tokenizer, gguf_weights, presets};
use crate::rl::TrainConfig;
use crate::rl::config::Optimizer;

/// A model as the planner sees it.
pub struct ModelMeta {
    pub cfg: ModelConfig,
    pub tokenizer: Tokenizer,
    pub weights: WeightBytes,
}

/// A Hugging Face directory or a `.gguf` file (as `LoadedModel::open` takes them), read for
/// its config, tokenizer and the on-GPU bytes its weights would take with `dtype`.
pub fn model_meta(path: &Path, dtype: Option<DType>, max_binding: u64) -> Result<ModelMeta> {
    if path.is_file() && crate::model::is_gguf(path) {
        let g = Gguf::open(path)?;
        let cfg = gguf_weights::config_from_gguf(&g)?;
        let tokenizer = Tokenizer::from_gguf(&g)?;
        let src = gguf_weights::GgufWeights::new(&g, &cfg)?;
        let weights = weight_bytes(&cfg, &src, dtype, max_binding)?;
        return Ok(ModelMeta {
            cfg,
            tokenizer,
            weights,
        });
    }
    if !path.is_dir() {
        let what = if path.exists() {
            "not a model directory or a .gguf file"
        } else {
            "no such model directory or .gguf file"
        };
        return Err(Error::file(path, what));
    }
    let cfg = ModelConfig::from_file(&path.join("config.json"))?;
    let tokenizer = Tokenizer::open(path)?;
    let src = SafetensorsWeights::open(path)?;
    let weights = weight_bytes(&cfg, &src, dtype, max_binding)?;
    Ok(ModelMeta {
        cfg,
        tokenizer,
        weights,
    })
}

impl PlanInput {
    /// The plan input of `edgerl train --config`: the model as `Trainer::new` loads it, the
    /// adapter shape (`init_adapter`'s or `[lora]`), and the longest prompt of the dataset
    /// (online, prompts rendered like `Trainer::sample_groups` renders them) or of the rollouts
    /// (offline, with their longest completion and largest group).
    pub fn from_train_config(cfg: &TrainConfig, max_binding: u64) -> Result<PlanInput> {
        let m = model_meta(&cfg.model, None, max_binding)?;
        let lora = match &cfg.init_adapter {
            Some(dir) => crate::lora::peft::read_config(dir)?,
            None => cfg.lora_config()?,
        };
        let (prompt_tokens, completion_tokens, num_generations, rollouts) =
            match (&cfg.dataset, &cfg.rollouts) {
                (Some(path), _) => {
                    let rewards =
                        crate::reward::RewardSet::new(&cfg.rewards, cfg.reward_all_or_nothing)?;
                    let rows = crate::data::dataset::read(path, &rewards.columns())?;
                    let mut p = 0;
                    for row in &rows {
                        p = p.max(crate::rl::rollout::prompt_ids(&m.tokenizer, &row.prompt)?.len());
                    }
                    (p, cfg.max_completion_length, cfg.num_generations, true)
                }
                (None, Some(path)) => {
                    let groups = crate::rl::rollouts::read(
                        path,
                        &m.tokenizer,
                        cfg.weight_column.as_deref(),
                        m.cfg.vocab_size,
                        cfg.max_completion_length,
                    )?;
                    let p = groups.iter().map(|g| g.prompt_ids.len()).max().unwrap_or(0);
                    let c = groups
                        .iter()
                        .flat_map(|g| g.completions.iter().map(Vec::len))
                        .max()
                        .unwrap_or(0);
                    let g = groups
                        .iter()
                        .map(|g| g.completions.len())
                        .max()
                        .unwrap_or(0);
                    (p, c, g, false)
                }
                (None, None) => {
                    return Err(Error::Invalid(
                        "needs `dataset` or `rollouts` to plan".into(),
                    ));
                }
            };
        Ok(PlanInput {
            model: m.cfg,
            weights: m.weights,
            lora,
            optimizer: cfg.optimizer,
            gradient_checkpointing: cfg.gradient_checkpointing.recomputes(),
            pack_size: None,
            prompt_tokens,
            completion_tokens,
            num_generations,
            rollouts,
            reference_pass: cfg.beta > 0.0,
            max_binding,
        })
    }

    /// A preset shape on random `dtype` weights as `edgerl bench --train` builds it: LoRA of
    /// rank `rank` (alpha 2r) on all seven projections, AdamW, no KL; `rollouts` adds the
    /// sampling of the group.
    pub fn for_preset(
        shape: &str,
        dtype: DType,
        prompt_tokens: usize,
        num_generations: usize,
        completion_tokens: usize,
        rank: usize,
        max_binding: u64,
    ) -> Result<PlanInput> {
        let cfg = presets::preset(shape)?;
        let src = presets::random_weights(&cfg, dtype, 1);
        let weights = weight_bytes(&cfg, &src, Some(dtype), max_binding)?;
        Ok(PlanInput {
            model: cfg,
            weights,
            lora: LoraConfig {
                r: rank,
                alpha: 2.0 * rank as f32,
                use_rslora: false,
                targets: Target::ALL.to_vec(),
            },
            optimizer: Optimizer::Adamw,
            gradient_checkpointing: true,
            pack_size: None,
            prompt_tokens,
            completion_tokens,
            num_generations,
            rollouts: true,
            reference_pass: false,
            max_binding,
        })
    }
}
