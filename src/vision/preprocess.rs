//! Image files to pixel values and image-token prompts, as transformers' Idefics3 processor.
//!
//! `ImageProcessor` reads a model directory's preprocessor_config.json / processor_config.json
//! and turns PNG/JPEG files (or RGB(A) bytes) into the `[samples, tiles, 3, side, side]` pixel
//! values and pixel attention mask the vision tower takes, equal to transformers' slow (PIL)
//! `Idefics3ImageProcessor` — its resizes are PIL's, rounding for rounding (`resize`).
//! `expand_prompt` writes each image's tokens where the prompt says `<image>`, as
//! `Idefics3Processor` does. tests/vision_preprocess.rs checks both against fixtures made with
//! transformers and PIL (tests/fixtures/vision/make_vision_fixtures.py).

use std::path::Path;

use crate::error::Result;

pub mod config;
mod decode;
pub mod processor;
pub mod prompt;
pub mod resize;

pub use config::{ProcessorConfig, Size};
pub use decode::{MAX_IMAGE_FILE_BYTES, RgbImage};
pub use processor::{PixelValues, Plan};
pub use prompt::{ImageLayout, expand_prompt};
pub use resize::Filter;

/// A vision model's image processor: its settings, and the steps that apply them.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageProcessor {
    pub config: ProcessorConfig,
}

impl ImageProcessor {
    /// The processor of the model directory `dir` (see `ProcessorConfig::from_dir`).
    pub fn from_dir(dir: &Path) -> Result<ImageProcessor> {
        Ok(ImageProcessor { config: ProcessorConfig::from_dir(dir)? })
    }

    /// The processor described by one JSON object of preprocessor_config.json's keys.
    pub fn from_json(text: &str) -> Result<ImageProcessor> {
        Ok(ImageProcessor { config: ProcessorConfig::from_json(text)? })
    }

    /// `<image>` tokens per tile.
    pub fn image_seq_len(&self) -> usize {
        self.config.image_seq_len
    }

    /// Pixel values for `images`, each its own sample (one prompt per image).
    pub fn process(&self, images: &[RgbImage]) -> Result<PixelValues> {
        let samples: Vec<Vec<RgbImage>> = images.iter().map(|i| vec![i.clone()]).collect();
        self.config.process_batch(&samples)
    }

    /// Pixel values for a batch of samples, each with its images in prompt order.
    pub fn process_batch(&self, samples: &[Vec<RgbImage>]) -> Result<PixelValues> {
        self.config.process_batch(samples)
    }

    /// Pixel values for one prompt's image files (PNG or JPEG), in prompt order.
    pub fn process_files(&self, paths: &[&Path]) -> Result<PixelValues> {
        let images = paths.iter().map(|p| RgbImage::open(p)).collect::<Result<Vec<_>>>()?;
        self.config.process_batch(&[images])
    }

    /// `text` with each `<image>` expanded for the image in the same place of `layouts`.
    pub fn expand_prompt(&self, text: &str, layouts: &[ImageLayout]) -> Result<String> {
        expand_prompt(text, layouts, self.config.image_seq_len)
    }
}
