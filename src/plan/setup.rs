//! Plan inputs from what a run would load, without loading it onto the GPU: the model's config,
//! tokenizer and weight types (safetensors headers or the GGUF tensor directory), and the
//! dataset's or rollouts' longest prompt; or a preset shape with random weights.

use std::path::Path;

use super::{PlanInput, VisionLoad, WeightBytes, weight_bytes};
use crate::error::{Error, Result};
use crate::gpu::DType;
use crate::lora::{LoraConfig, Target};
use crate::model::gguf::Gguf;
use crate::model::weights::SafetensorsWeights;
use crate::data::dataset::Row;
use crate::model::{ModelConfig, Tokenizer, gguf_weights, presets};
use crate::rl::TrainConfig;
use crate::rl::config::Optimizer;
use crate::vision::preprocess::ProcessorConfig;
use crate::vision::tower::VisionConfig;

/// A model as the planner sees it.
pub struct ModelMeta {
    pub cfg: ModelConfig,
    pub tokenizer: Tokenizer,
    /// With a vision-language model's tower weights (`weights.vision`).
    pub weights: WeightBytes,
    /// A vision-language model's tower shapes and image processor.
    pub vision: Option<(VisionConfig, ProcessorConfig)>,
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
            vision: None,
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
    let config = path.join("config.json");
    let cfg = ModelConfig::from_file(&config)?;
    let tokenizer = Tokenizer::open(path)?;
    let src = SafetensorsWeights::open(path)?;
    let mut weights = weight_bytes(&cfg, &src, dtype, max_binding)?;
    // A vision-language model: the tower as `ImageSide::open` loads it (same dtype override).
    let json: serde_json::Value = std::fs::read_to_string(&config)
        .map_err(|e| Error::file(&config, e))
        .and_then(|t| serde_json::from_str(&t).map_err(|e| Error::file(&config, format!("not valid JSON: {e}"))))?;
    let mut vision = None;
    if VisionConfig::present(&json) {
        let vc = VisionConfig::from_json(&json).map_err(|e| Error::file(&config, e))?;
        let processor = ProcessorConfig::from_dir(path)?;
        // As `ImageSide::open` checks it: the prompts planned below expand each tile.
        crate::vision::model::check_tiles(&vc, &processor).map_err(|e| Error::file(path, e))?;
        let (tower, largest) = super::vision::tower_weight_pieces(&vc, &src, dtype, max_binding)?;
        weights.total += tower;
        weights.largest_piece = weights.largest_piece.max(largest);
        weights.vision = Some(VisionLoad::weights_only(tower));
        vision = Some((vc, processor));
    }
    Ok(ModelMeta {
        cfg,
        tokenizer,
        weights,
        vision,
    })
}

impl PlanInput {
    /// The plan input of `edgerl train --config`: the model as `Trainer::new` loads it, the
    /// adapter shape (`init_adapter`'s or `[lora]`), and the longest prompt of the dataset
    /// (online, prompts rendered like `Trainer::sample_groups` renders them) or of the rollouts
    /// (offline, with their longest completion and largest group).
    pub fn from_train_config(cfg: &TrainConfig, max_binding: u64) -> Result<PlanInput> {
        Self::from_train_config_rows(cfg, None, max_binding)
    }

    /// [`from_train_config`](Self::from_train_config) of an online run whose dataset rows are
    /// given (Python's `dataset` rows) instead of read from `cfg.dataset`.
    pub fn from_train_config_rows(cfg: &TrainConfig, given: Option<&[Row]>, max_binding: u64) -> Result<PlanInput> {
        let mut m = model_meta(&cfg.model, None, max_binding)?;
        let lora = match &cfg.init_adapter {
            Some(dir) => crate::lora::peft::read_config(dir)?,
            None => cfg.lora_config()?,
        };
        let read;
        let online: Option<&[Row]> = match (given, &cfg.dataset) {
            (Some(rows), _) => Some(rows),
            (None, Some(path)) => {
                let rewards = crate::reward::RewardSet::new(&cfg.rewards, cfg.reward_all_or_nothing)?;
                read = crate::data::dataset::read(path, &rewards.columns())?;
                Some(&read)
            }
            (None, None) => None,
        };
        let (prompt_tokens, completion_tokens, num_generations, rollouts) =
            match (online, &cfg.rollouts) {
                (Some(rows), _) => {
                    let (mut p, mut tiles) = (0, 0);
                    for row in rows {
                        if row.images.is_empty() {
                            p = p.max(crate::rl::rollout::prompt_ids(&m.tokenizer, &row.prompt)?.len());
                            continue;
                        }
                        // As `rollout::prompt_with_images`: `<image>` expanded for each image's
                        // tile grid (from its size alone).
                        let (_, processor) = m.vision.as_ref().ok_or_else(crate::vision::model::no_tower)?;
                        let (text, special) = crate::rl::rollout::prompt_text(&m.tokenizer, &row.prompt)?;
                        let (n, t) = super::vision::prompt_with_images(&m.tokenizer, processor, &text, special, &row.images)?;
                        p = p.max(n);
                        tiles = tiles.max(t);
                    }
                    if let (Some((vc, processor)), Some(v)) = (&m.vision, m.weights.vision) {
                        let side = processor.max_image_size / vc.patch_size.max(1);
                        // `edgerl train` holds the previous step's batch while it samples the next.
                        let previous = cfg.max_steps > cfg.num_iterations.max(1);
                        m.weights.vision = Some(v.with_images(
                            vc,
                            tiles,
                            side,
                            cfg.prompts_per_step,
                            previous,
                            cfg.dynamic_sampling,
                            max_binding,
                        )?);
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
            groups_per_step: cfg.prompts_per_step,
            keep_rollouts: cfg.keep_rollouts,
            max_binding,
        })
    }

    /// A preset shape on random `dtype` weights as `edgerl bench --train` builds it: LoRA of
    /// rank `rank` (alpha 2r) on all seven projections, AdamW, no KL; `rollouts` adds the
    /// sampling of the group. A vision-language shape adds its tower and one tile's image
    /// features (`prompt_tokens` then counts the image tokens too).
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
        let mut weights = weight_bytes(&cfg, &src, Some(dtype), max_binding)?;
        // A vision-language shape: its tower, and one prompt of one 512-pixel tile (what
        // `edgerl bench --train` runs by default; `VisionLoad::with_images` sets others).
        if let Some(json) = presets::vision_preset(shape) {
            let vc = VisionConfig::from_json(&json).map_err(Error::Invalid)?;
            let tower_src = presets::random_tower_weights(&vc, dtype, 2);
            let (tower, largest) =
                super::vision::tower_weight_pieces(&vc, &tower_src, Some(dtype), max_binding)?;
            weights.total += tower;
            weights.largest_piece = weights.largest_piece.max(largest);
            let side = vc.patches_per_side();
            weights.vision = Some(
                VisionLoad::weights_only(tower)
                    .with_images(&vc, 1, side, 1, false, false, max_binding)?,
            );
        }
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
            groups_per_step: 1,
            // As `edgerl bench --train` runs it: its groups are given, not sampled.
            keep_rollouts: false,
            max_binding,
        })
    }
}

/// Settles `gradient_checkpointing = "auto"` for a run without a memory budget (the default):
/// the plan of `cfg` as `edgerl train` would run it decides (`PlanInput::auto_recompute`), and
/// the returned line says why. When the run can't be planned (an unreadable dataset is
/// reported again, clearly, when the run reads it), checkpointing stays on: the side that needs
/// less memory. Anything but `"auto"` is left alone (`None`).
pub fn settle_auto_checkpointing(cfg: &mut TrainConfig, max_binding: u64) -> Option<String> {
    settle_auto_checkpointing_rows(cfg, None, max_binding)
}

/// [`settle_auto_checkpointing`] of an online run whose dataset rows are given (Python's).
pub fn settle_auto_checkpointing_rows(cfg: &mut TrainConfig, rows: Option<&[Row]>, max_binding: u64) -> Option<String> {
    use crate::rl::config::Checkpointing;
    if cfg.gradient_checkpointing != Checkpointing::Auto {
        return None;
    }
    // The plan may keep sampling's activations too (see `TrainConfig::keep_rollouts`).
    let decided = PlanInput::from_train_config_rows(cfg, rows, max_binding)
        .and_then(|i| PlanInput { keep_rollouts: true, ..i }.auto_knobs());
    let (recompute, keep_rollouts, why) = decided.unwrap_or_else(|e| {
        (true, false, format!("gradient checkpointing on (auto: the run could not be planned: {e})"))
    });
    cfg.gradient_checkpointing = recompute.into();
    cfg.keep_rollouts = keep_rollouts;
    Some(why)
}

/// A run under a memory budget (`edgerl train --memory-budget`, Python's `memory_budget`): the
/// knobs `PlanInput::fit` picks for `budget` bytes, applied to `cfg` (`"auto"` starts from
/// every activation kept and recomputes only when that doesn't fit), planned over `rows` when
/// given (Python's) instead of `cfg`'s dataset. The caller sets `Trainer::pack_size` from the
/// result. Nothing fits: the planner's error, before anything is loaded.
pub fn fit_train_config(cfg: &mut TrainConfig, rows: Option<&[Row]>, budget: u64, max_binding: u64) -> Result<super::Fitted> {
    use crate::rl::config::Checkpointing;
    let mut input = PlanInput::from_train_config_rows(cfg, rows, max_binding)?;
    input.gradient_checkpointing = cfg.gradient_checkpointing == Checkpointing::On;
    input.keep_rollouts = true;
    let fit = input.fit(budget)?;
    cfg.gradient_checkpointing = fit.plan.knobs.gradient_checkpointing.into();
    cfg.keep_rollouts = fit.plan.knobs.keep_rollouts;
    Ok(fit)
}
