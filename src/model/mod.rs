//! Models: config, weights, forward pass, tokenizer, generation.

pub mod adapter;
pub mod config;
pub mod decode;
pub mod forward;
pub mod generate;
pub mod gguf;
pub mod gguf_tokenizer;
pub mod gguf_weights;
pub mod keep;
pub mod layer;
pub mod pack;
pub mod presets;
pub mod tensors;
pub mod tokenizer;
pub mod train;
pub mod weights;

use std::path::Path;

pub use config::{Arch, ModelConfig};
pub use forward::{KvCache, Model};
pub use generate::{SamplingOptions, generate};
pub use tokenizer::Tokenizer;

use crate::error::{Error, Result};
use crate::gpu::{DType, Gpu};

/// A Hugging Face model directory loaded onto the GPU, with its tokenizer.
pub struct LoadedModel {
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// Every id that ends generation (config.json, generation_config.json, tokenizer).
    pub eos: Vec<u32>,
    /// `pad_token_id` from config.json or generation_config.json.
    pub pad: Option<u32>,
    /// A vision-language model's processor and vision tower (`None`: a text model).
    pub vision: Option<crate::vision::ImageSide>,
}

impl LoadedModel {
    /// A Hugging Face model directory, or a `.gguf` file. `dtype` overrides how matrices are
    /// stored on the GPU (`None` keeps the checkpoint's types, quantized ones included).
    pub fn open(gpu: &Gpu, dir: &Path, dtype: Option<DType>) -> Result<LoadedModel> {
        if dir.is_file() && is_gguf(dir) {
            return LoadedModel::open_gguf(gpu, dir, dtype);
        }
        if !dir.is_dir() {
            let what = if dir.exists() {
                "not a model directory or a .gguf file"
            } else {
                "no such model directory or .gguf file"
            };
            return Err(Error::file(dir, what));
        }
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| Error::file(&config_path, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::file(&config_path, format!("not valid JSON: {e}")))?;
        let cfg = ModelConfig::from_json(&json).map_err(|e| Error::file(&config_path, e))?;
        let tokenizer = Tokenizer::open(dir)?;
        let mut eos = cfg.eos_token_ids.clone();
        let mut pad = cfg.pad_token_id;
        let gen_path = dir.join("generation_config.json");
        if gen_path.exists() {
            let text = std::fs::read_to_string(&gen_path).map_err(|e| Error::file(&gen_path, e))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::file(&gen_path, format!("not valid JSON: {e}")))?;
            pad = pad.or(config::token_ids(v.get("pad_token_id")).first().copied());
            for id in config::token_ids(v.get("eos_token_id")) {
                if !eos.contains(&id) {
                    eos.push(id);
                }
            }
        }
        if eos.is_empty() {
            eos.extend(tokenizer.eos_token_id);
        }
        let weights = weights::SafetensorsWeights::open(dir)?;
        let model = Model::load(gpu, cfg, &weights, dtype)?;
        let vision = crate::vision::ImageSide::open(gpu, dir, &json, &weights, dtype)?;
        Ok(LoadedModel {
            model,
            tokenizer,
            eos,
            pad,
            vision,
        })
    }

    /// A GGUF file: config, tokenizer and chat template from its metadata.
    pub fn open_gguf(gpu: &Gpu, path: &Path, dtype: Option<DType>) -> Result<LoadedModel> {
        let g = gguf::Gguf::open(path)?;
        let cfg = gguf_weights::config_from_gguf(&g)?;
        let mut eos = cfg.eos_token_ids.clone();
        let pad = cfg.pad_token_id;
        // The tokenizer is built from the vocabulary (0.7 s for Gemma 3's 262,144 pieces) on
        // another thread while the weights load; its error, if any, is reported first.
        let (tokenizer, model) = std::thread::scope(|s| {
            let tokenizer = s.spawn(|| Tokenizer::from_gguf(&g));
            let model = gguf_weights::GgufWeights::new(&g, &cfg).and_then(|w| Model::load(gpu, cfg.clone(), &w, dtype));
            (tokenizer.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), model)
        });
        let (tokenizer, model) = (tokenizer?, model?);
        // llama.cpp also stops at the end-of-turn token when the file names one.
        if let Some(id) = g
            .get("tokenizer.ggml.eot_token_id")
            .and_then(|v| v.as_u64())
            && !eos.contains(&(id as u32))
        {
            eos.push(id as u32);
        }
        if eos.is_empty() {
            eos.extend(tokenizer.eos_token_id);
        }
        Ok(LoadedModel {
            model,
            tokenizer,
            eos,
            pad,
            vision: None,
        })
    }
}

impl LoadedModel {
    /// `text` with `images` in its `<image>` places (one each, in order), tokenized as the
    /// transformers processor does (`add_special_tokens` as `Tokenizer::encode`), and the image
    /// features for `Model::forward_with_images` (`None` without images).
    pub fn encode_with_images(
        &self,
        gpu: &Gpu,
        text: &str,
        images: &[crate::vision::preprocess::RgbImage],
        add_special_tokens: bool,
    ) -> Result<(Vec<u32>, Option<crate::gpu::GpuBuffer>)> {
        if images.is_empty() {
            return Ok((self.tokenizer.encode(text, add_special_tokens)?, None));
        }
        let side = self.vision.as_ref().ok_or_else(crate::vision::model::no_tower)?;
        let (ids, features) = side.encode_text(gpu, &self.tokenizer, text, add_special_tokens, images)?;
        Ok((ids, Some(features)))
    }

    /// One user message with `images` before its text, rendered with the chat template and the
    /// generation prompt (content parts, as TRL's vision datasets write them).
    pub fn chat_with_images(
        &self,
        gpu: &Gpu,
        user: &str,
        images: &[crate::vision::preprocess::RgbImage],
    ) -> Result<(Vec<u32>, Option<crate::gpu::GpuBuffer>)> {
        if images.is_empty() {
            return Ok((self.tokenizer.chat_ids(user)?, None));
        }
        use crate::data::template::{ContentPart, PartsMessage};
        let mut content = vec![ContentPart::Image; images.len()];
        content.push(ContentPart::Text { text: user.to_string() });
        let text = self
            .tokenizer
            .render_parts(&[PartsMessage { role: "user".into(), content }], true)?;
        self.encode_with_images(gpu, &text, images, false)
    }
}

/// A model's config and tokenizer without its weights (`edgerl info --model`): a Hugging Face
/// directory or a `.gguf` file.
pub fn open_meta(path: &Path) -> Result<(ModelConfig, Tokenizer)> {
    if path.is_file() && is_gguf(path) {
        let g = gguf::Gguf::open(path)?;
        return Ok((gguf_weights::config_from_gguf(&g)?, Tokenizer::from_gguf(&g)?));
    }
    if !path.is_dir() {
        return Err(Error::file(path, "no such model directory or .gguf file"));
    }
    let cfg = ModelConfig::from_file(&path.join("config.json"))?;
    Ok((cfg, Tokenizer::open(path)?))
}

/// Whether `path` starts with the GGUF magic (the extension alone could lie).
pub(crate) fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|_| &magic == b"GGUF")
        || path.extension().is_some_and(|e| e == "gguf")
}
