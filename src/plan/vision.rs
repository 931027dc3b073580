//! A vision-language model's image side as the plan counts it: the frozen tower's weights, one
//! prompt's tower run, and the image-feature buffers that live through sampling and training.
//!
//! What the code allocates (`ImageSide::encode`, `Trainer::prompted`): per prompt with images,
//! the features buffer `[image tokens, text hidden]` f32 (`tower_output_bytes`) is allocated,
//! then the tower runs its tiles chunk by chunk into it (`tower_run_bytes` above it); the buffer
//! is shared (an `Arc`) by the group's sampling prefill and its training passes, and freed with
//! the group. A step's prompts are all encoded before the first is sampled; `edgerl train`'s
//! loop still holds the previous step's batch (its groups, their features) while it samples the
//! next one; dynamic sampling holds the first round's prompts through the refill rounds.

use std::path::Path;

use serde::Serialize;

use super::sim::buffer_bytes;
use crate::error::{Error, Result};
use crate::gpu::{DType, Tensor};
use crate::model::Tokenizer;
use crate::model::weights::WeightSource;
use crate::vision::preprocess::{ImageLayout, ProcessorConfig};
use crate::vision::tower::{
    VisionConfig, images_per_chunk, tensor_prefix, tower_output_bytes, tower_run_bytes,
};

/// The image side's bytes, for the plan. Zero image fields: no prompt has images (only the
/// tower's weights count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VisionLoad {
    /// The tower's weights (`VisionTower::load`); `WeightBytes::total` includes them.
    pub tower_weights: u64,
    /// The most tiles one prompt sends through the tower.
    pub max_tiles: usize,
    /// Patches a side of a tile (`max_image_size / patch_size`).
    pub side: usize,
    /// The largest prompt's tower run: its features buffer plus the run's scratch and uploads
    /// (`tower_output_bytes + tower_run_bytes`).
    pub tower_run: u64,
    /// The largest buffer of that run (a chunk's widest activation, or the features).
    pub tower_largest_buffer: u64,
    /// The largest prompt's features buffer.
    pub features: u64,
    /// Features buffers of other prompts alive while a prompt's tower runs.
    pub held_at_tower: u64,
    /// Features buffers alive while a group is sampled.
    pub held_at_rollout: u64,
    /// Features buffers alive through the training step and the update (the batch's groups).
    pub held_at_step: u64,
}

impl VisionLoad {
    /// The tower's weights alone (no images planned yet).
    pub fn weights_only(tower_weights: u64) -> VisionLoad {
        VisionLoad {
            tower_weights,
            ..Default::default()
        }
    }

    /// The image load of `prompts` prompts a step of at most `max_tiles` tiles each (`side`
    /// patches a side), as `edgerl train` holds them: the step's prompts encoded before the
    /// first is sampled, the previous step's batch alive while the next one samples (`previous`),
    /// and with `dynamic_sampling` the first round's prompts alive through the refill rounds (up
    /// to twice the step's prompts encoded).
    #[allow(clippy::too_many_arguments)]
    pub fn with_images(
        self,
        cfg: &VisionConfig,
        max_tiles: usize,
        side: usize,
        prompts: usize,
        previous: bool,
        dynamic_sampling: bool,
        max_binding: u64,
    ) -> Result<VisionLoad> {
        if max_tiles == 0 {
            return Ok(VisionLoad {
                tower_weights: self.tower_weights,
                ..Default::default()
            });
        }
        let features = tower_output_bytes(cfg, max_tiles, side);
        let run = tower_run_bytes(cfg, max_tiles, side, max_binding)?;
        let k = prompts.max(1) as u64;
        let prev = if previous { k } else { 0 };
        // Encoded in the sampling phase: k prompts, or with refills k + up to k more.
        let encoded = if dynamic_sampling { 2 * k } else { k };
        Ok(VisionLoad {
            tower_weights: self.tower_weights,
            max_tiles,
            side,
            tower_run: features + run,
            tower_largest_buffer: run_largest_buffer(cfg, max_tiles, side, max_binding)?
                .max(features),
            features,
            held_at_tower: (prev + encoded - 1) * features,
            held_at_rollout: (prev + encoded) * features,
            held_at_step: k * features,
        })
    }
}

/// The largest single buffer of `VisionTower::run` over `images` tiles: the widest activation
/// of its largest chunk (patches, hidden states, MLP rows, features).
fn run_largest_buffer(
    cfg: &VisionConfig,
    images: usize,
    side: usize,
    max_binding: u64,
) -> Result<u64> {
    let seq = side * side;
    let rows = images_per_chunk(cfg, seq, max_binding)?.min(images) * seq;
    let tokens = rows / (cfg.scale_factor * cfg.scale_factor);
    Ok([cfg.patch_dim(), cfg.hidden_size, cfg.intermediate_size]
        .iter()
        .map(|w| buffer_bytes((rows * w * 4) as u64))
        .chain([buffer_bytes((tokens * cfg.text_hidden_size * 4) as u64)])
        .max()
        .unwrap_or(0))
}

/// The tower's weights on the GPU (`VisionTower::load`): total and largest piece.
pub(crate) fn tower_weight_pieces(
    cfg: &VisionConfig,
    src: &dyn WeightSource,
    dtype: Option<DType>,
    max_binding: u64,
) -> Result<(u64, u64)> {
    let total = crate::vision::tower::tower_weight_bytes(cfg, src, dtype, max_binding)?;
    let prefix = tensor_prefix(src)?;
    let mut largest = 0;
    for t in cfg.tower_tensors() {
        let name = format!("{prefix}{}", t.name);
        let Some(stored) = src.dtype_of(&name)? else {
            continue;
        };
        let bytes = if t.matrix {
            let dtype = dtype.unwrap_or(stored);
            let row_bytes = dtype
                .row_bytes(t.cols())
                .map_err(|e| Error::Invalid(format!("{name}: {e}")))?
                as u64;
            let per = Tensor::rows_per_piece(t.cols(), dtype, max_binding)?;
            per.min(t.rows()) as u64 * row_bytes
        } else {
            t.rows() as u64 * 4
        };
        largest = largest.max(buffer_bytes(bytes));
    }
    Ok((total, largest))
}

/// An image file's size as the processor sees it (height, width): from its header, turned as
/// its EXIF orientation turns it (`RgbImage::open` applies it), without decoding the pixels.
pub fn image_size(path: &Path) -> Result<(usize, usize)> {
    use image::ImageDecoder;
    use image::metadata::Orientation;
    let reader = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| Error::file(path, format!("reading the image: {e}")))?;
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| Error::file(path, format!("reading the image: {e}")))?;
    let (w, h) = decoder.dimensions();
    let turned = matches!(
        decoder.orientation().unwrap_or(Orientation::NoTransforms),
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (w, h) = if turned { (h, w) } else { (w, h) };
    Ok((h as usize, w as usize))
}

/// One prompt with images as the planner sees it: its token count with each `<image>`
/// expanded (`ImageSide::encode_text`) and the tiles its images send through the tower.
pub fn prompt_with_images(
    tokenizer: &Tokenizer,
    processor: &ProcessorConfig,
    text: &str,
    add_special_tokens: bool,
    images: &[std::path::PathBuf],
) -> Result<(usize, usize)> {
    let layouts: Vec<ImageLayout> = images
        .iter()
        .map(|p| {
            let (h, w) = image_size(p)?;
            Ok(processor.plan(h, w).layout)
        })
        .collect::<Result<_>>()?;
    let tiles = layouts.iter().map(ImageLayout::tiles).sum();
    let expanded =
        crate::vision::preprocess::expand_prompt(text, &layouts, processor.image_seq_len)?;
    Ok((
        tokenizer.encode(&expanded, add_special_tokens)?.len(),
        tiles,
    ))
}
