//! `edgerl bench --train --shape smolvlm-256m`: a vision-language model's GRPO step on random
//! weights — the tower over one screenshot, then the training step — timed and measured against
//! the plan.

use std::time::Instant;

use crate::error::Result;
use crate::gpu::{DType, Gpu};
use crate::model::{Model, presets};

#[derive(Debug, serde::Serialize)]
pub struct VisionTrainBench {
    pub shape: String,
    pub dtype: DType,
    pub backend: String,
    pub adapter: String,
    /// The screenshot: `image_width` × `image_height` random pixels, resized by the processor
    /// to `image_longest_edge` and cut into `tiles` tiles of 512 (the global image included).
    pub image_width: usize,
    pub image_height: usize,
    pub image_longest_edge: usize,
    pub tiles: usize,
    pub image_tokens: usize,
    /// Text tokens of the prompt besides the image tokens.
    pub text_prompt_tokens: usize,
    pub completions: usize,
    pub completion_tokens: usize,
    pub lora_rank: usize,
    pub gradient_checkpointing: bool,
    pub pack_size: Option<usize>,
    pub text_weight_bytes: u64,
    pub tower_weight_bytes: u64,
    /// The tower over the prompt's tiles (`ImageSide::encode`, features left on the GPU); the
    /// first run, so pipeline builds are included.
    pub tower_seconds: f64,
    /// Peak while the tower runs (weights, adapter, optimizer state, the run, the features).
    pub tower_peak_device_bytes: u64,
    pub planned_tower_peak_bytes: u64,
    /// One GRPO training step over the group with the image features (after a warm-up step).
    pub step_seconds: f64,
    pub peak_device_bytes: u64,
    pub planned_peak_bytes: u64,
    pub planned_by_category: Vec<crate::plan::CategoryBytes>,
}

/// One GRPO step of a vision-language shape (`presets::VISION_PRESETS`) on random weights: the
/// frozen tower over one screenshot (`image_px` wide, 4:3, the processor resizing to
/// `longest_edge`), then one training step of `completions` completions sharing the prompt of
/// `prompt_tokens` text tokens plus the image tokens; time and peak of each against the plan.
#[allow(clippy::too_many_arguments)]
pub fn vision_train_bench(
    gpu: &Gpu,
    shape: &str,
    dtype: DType,
    longest_edge: usize,
    prompt_tokens: usize,
    completions: usize,
    completion_tokens: usize,
    rank: usize,
    gradient_checkpointing: bool,
    pack_size: Option<usize>,
) -> Result<VisionTrainBench> {
    use crate::Error;
    use crate::rl::TrainConfig;
    use crate::rl::rollouts::{Group, ImageFeatures};
    use crate::rl::trainer::Trainer;
    use crate::vision::ImageSide;
    use crate::vision::preprocess::{ImageProcessor, RgbImage};
    use crate::vision::tower::{VisionConfig, VisionTower};
    let unknown = || Error::Invalid(format!("{shape:?} is not a vision-language shape (known: {})", presets::VISION_PRESETS.join(", ")));
    let json = presets::vision_preset(shape).ok_or_else(unknown)?;
    let vcfg = VisionConfig::from_json(&json).map_err(Error::Invalid)?;
    let processor = ImageProcessor::from_json(&presets::vision_processor(shape, longest_edge).ok_or_else(unknown)?)?;
    let cfg = presets::preset(shape)?;
    let image_token = cfg.image_token_id.ok_or_else(unknown)?;
    let model = Model::load(gpu, cfg.clone(), &presets::random_weights(&cfg, dtype, 1), Some(dtype))?;
    let text_weight_bytes = model.weight_bytes();
    let tower = VisionTower::load(gpu, vcfg.clone(), &presets::random_tower_weights(&vcfg, dtype, 2), Some(dtype))?;
    let tower_weight_bytes = tower.weight_bytes();
    let side = ImageSide { processor, tower };
    let toml = format!(
        "model = \"<random>\"\noutput_dir = \"<none>\"\nrollouts = \"<none>\"\nloss_type = \"dapo\"\n\
         max_completion_length = {completion_tokens}\nlearning_rate = 1e-5\ngradient_checkpointing = {gradient_checkpointing}\n\
         [lora]\nr = {rank}\nalpha = {}\n",
        2 * rank
    );
    let tc = TrainConfig::from_toml(&toml).map_err(Error::Invalid)?;
    let mut trainer = Trainer::with_model(gpu, tc, model, None, vec![], None)?;
    trainer.pack_size = pack_size;
    // Warm-up on a tiny batch builds the text model's pipelines and the optimizer state.
    {
        let small = Group {
            prompt_ids: vec![1, 2],
            completions: vec![vec![3], vec![4]],
            rewards: vec![0.0, 1.0],
            weight: 1.0,
            sampler_logps: None,
            images: None,
        };
        let mut b = trainer.batch(&[&small]);
        trainer.step(&mut b)?;
    }
    // A 4:3 screenshot of pseudo-random pixels (no tile all zero).
    let (w, h) = (longest_edge.max(4), (longest_edge * 3 / 4).max(3));
    let pixels: Vec<u8> = (0..w * h * 3).map(|i| ((i as u64).wrapping_mul(2654435761) >> 11) as u8 | 1).collect();
    let img = RgbImage::from_rgb(w, h, pixels)?;
    gpu.wait()?;
    gpu.memory.reset_peak();
    let t0 = Instant::now();
    let enc = side.encode(gpu, &[img])?;
    gpu.wait()?;
    let tower_seconds = t0.elapsed().as_secs_f64();
    let tower_peak = gpu.memory.peak();
    let tiles: usize = enc.layouts.iter().map(|l| l.tiles()).sum();
    let image_tokens = tiles * side.processor.image_seq_len();

    let id = |i: usize| {
        let t = ((i * 7919 + 13) % cfg.vocab_size) as u32;
        if t == image_token { t + 1 } else { t }
    };
    let mut prompt: Vec<u32> = vec![id(0)];
    prompt.extend(std::iter::repeat_n(image_token, image_tokens));
    prompt.extend((1..prompt_tokens.max(1)).map(id));
    let group = Group {
        prompt_ids: prompt,
        completions: (0..completions)
            .map(|c| (0..completion_tokens).map(|i| id(1000 * (c + 1) + i)).collect())
            .collect(),
        rewards: (0..completions).map(|c| c as f64).collect(),
        weight: 1.0,
        sampler_logps: None,
        images: Some(ImageFeatures(std::sync::Arc::new(enc.features))),
    };
    let mut batch = trainer.batch(&[&group]);
    gpu.wait()?;
    gpu.memory.reset_peak();
    let t0 = Instant::now();
    trainer.step(&mut batch)?;
    gpu.wait()?;
    let step_seconds = t0.elapsed().as_secs_f64();
    let peak = gpu.memory.peak();

    let mut input = crate::plan::PlanInput::for_preset(
        shape,
        dtype,
        group.prompt_ids.len(),
        completions,
        completion_tokens,
        rank,
        gpu.max_binding,
    )?;
    input.gradient_checkpointing = gradient_checkpointing;
    input.pack_size = pack_size;
    input.rollouts = false;
    // `for_preset` plans one tile; this screenshot's tiles instead.
    let patches = side.processor.config.max_image_size / vcfg.patch_size;
    input.weights.vision = Some(
        crate::plan::VisionLoad::weights_only(tower_weight_bytes)
            .with_images(&vcfg, tiles, patches, 1, false, false, gpu.max_binding)?,
    );
    let plan = input.plan()?;
    let step = plan
        .phases
        .iter()
        .filter(|p| !matches!(p.phase, crate::plan::Phase::Rollout | crate::plan::Phase::VisionTower))
        .max_by_key(|p| p.peak_bytes);
    Ok(VisionTrainBench {
        shape: shape.into(),
        dtype,
        backend: gpu.adapter.backend.clone(),
        adapter: gpu.adapter.name.clone(),
        image_width: w,
        image_height: h,
        image_longest_edge: longest_edge,
        tiles,
        image_tokens,
        text_prompt_tokens: prompt_tokens.max(1),
        completions,
        completion_tokens,
        lora_rank: rank,
        gradient_checkpointing,
        pack_size,
        text_weight_bytes,
        tower_weight_bytes,
        tower_seconds,
        tower_peak_device_bytes: tower_peak,
        planned_tower_peak_bytes: plan.phase(crate::plan::Phase::VisionTower).map_or(0, |p| p.peak_bytes),
        step_seconds,
        peak_device_bytes: peak,
        planned_peak_bytes: plan.training_step_peak(),
        planned_by_category: step.map(|p| p.by_category.clone()).unwrap_or_default(),
    })
}
