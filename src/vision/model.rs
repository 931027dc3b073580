//! A vision-language model's image side, as one piece: the processor (pixel values, `<image>`
//! expansion) and the tower (image features), and how a prompt with images becomes token ids
//! plus the features that fill its image-token rows (`Model::forward_with_images`).

use std::path::Path;

use crate::error::{Error, Result};
use crate::gpu::{DType, Gpu, GpuBuffer};
use crate::model::Tokenizer;
use crate::model::weights::WeightSource;

use super::preprocess::{ImageLayout, ImageProcessor, RgbImage};
use super::tower::{Pixels, VisionConfig, VisionTower};

pub struct ImageSide {
    pub processor: ImageProcessor,
    pub tower: VisionTower,
}

/// A prompt's images, ready for the text model.
pub struct EncodedImages {
    /// [image tokens, text hidden] f32: the rows of the prompt's image tokens, in order.
    pub features: GpuBuffer,
    /// Each image's tile grid (what its `<image>` expands to).
    pub layouts: Vec<ImageLayout>,
}

impl ImageSide {
    /// The image side of the model directory `dir` whose config.json is `config` (`None`: a
    /// text model).
    pub fn open(
        gpu: &Gpu,
        dir: &Path,
        config: &serde_json::Value,
        weights: &dyn WeightSource,
        dtype: Option<DType>,
    ) -> Result<Option<ImageSide>> {
        if !VisionConfig::present(config) {
            return Ok(None);
        }
        let cfg = VisionConfig::from_json(config).map_err(|e| Error::file(&dir.join("config.json"), e))?;
        let processor = ImageProcessor::from_dir(dir)?;
        check_tiles(&cfg, &processor.config).map_err(|e| Error::file(dir, e))?;
        let tower = VisionTower::load(gpu, cfg, weights, dtype)?;
        Ok(Some(ImageSide { processor, tower }))
    }

    /// Runs `images` (one prompt's, in prompt order) through the processor and the tower. The
    /// features stay on the GPU (`image_features_on_gpu`: allocated first, the tower's run on
    /// top of them; no read-back) — the memory plan's vision-tower phase (`plan::VisionLoad`).
    pub fn encode(&self, gpu: &Gpu, images: &[RgbImage]) -> Result<EncodedImages> {
        let px = self.processor.process_batch(&[images.to_vec()])?;
        let layouts = px.layouts.first().cloned().unwrap_or_default();
        let (f, features) = self.tower.image_features_on_gpu(gpu, &Pixels::from(&px))?;
        let tiles: usize = layouts.iter().map(|l| l.tiles()).sum();
        if f.real.len() != tiles {
            // A tile whose pixel values are all exactly zero reads as padding to the tower.
            return Err(Error::Invalid(format!(
                "{} of the images' {tiles} tiles reached the vision tower (an all-zero tile is taken for padding)",
                f.real.len()
            )));
        }
        Ok(EncodedImages { features, layouts })
    }

    /// `text` with each `<image>` expanded for the matching image.
    pub fn expand(&self, text: &str, layouts: &[ImageLayout]) -> Result<String> {
        self.processor.expand_prompt(text, layouts)
    }

    /// `text` with `images` in its `<image>` places, tokenized (`add_special_tokens` as
    /// `Tokenizer::encode`), and the features of its image tokens.
    pub fn encode_text(
        &self,
        gpu: &Gpu,
        tokenizer: &Tokenizer,
        text: &str,
        add_special_tokens: bool,
        images: &[RgbImage],
    ) -> Result<(Vec<u32>, GpuBuffer)> {
        let enc = self.encode(gpu, images)?;
        let expanded = self.expand(text, &enc.layouts)?;
        Ok((tokenizer.encode(&expanded, add_special_tokens)?, enc.features))
    }
}

/// The processor's tiles against the tower, checked at load (and by the planner): a tile of
/// `side` pixels gives (side / patch_size)² / scale_factor² image features (transformers'
/// `Idefics3Model.image_seq_len`), which the prompt spells out as `image_seq_len` tokens a tile.
/// A processor that disagrees could run no image; a tiny tile (`max_image_size` 1) made millions
/// of tiles, and with a large `image_seq_len` a prompt of terabytes, before the tower refused
/// them. (A side that is not a multiple of patch_size × scale_factor, as SmolVLM-Instruct's 384
/// over patches of 14, loads: the tower refuses its images, the text model still runs.)
pub(crate) fn check_tiles(cfg: &VisionConfig, p: &super::preprocess::ProcessorConfig) -> std::result::Result<(), String> {
    let (tile, patch, r) = (p.max_image_size, cfg.patch_size, cfg.scale_factor);
    if tile < patch * r {
        return Err(format!(
            "the image processor's tiles of {tile} pixels (max_image_size.longest_edge) are smaller than \
             the vision tower's patch_size {patch} × scale_factor {r} = {} (config.json)",
            patch * r
        ));
    }
    let per_tile = (tile / patch).pow(2) / (r * r);
    if p.image_seq_len != per_tile {
        return Err(format!(
            "the image processor's image_seq_len {} is not the {per_tile} image features a tile of {tile} pixels gives \
             (({tile} / patch_size {patch})² / scale_factor {r}², config.json)",
            p.image_seq_len
        ));
    }
    Ok(())
}

/// The error for images given to a text model.
pub fn no_tower() -> Error {
    Error::Invalid(
        "this model has no vision tower: images need a vision-language model (Idefics3 / SmolVLM)".into(),
    )
}
