//! Models: config, weights, forward pass, tokenizer, generation.

pub mod config;
pub mod forward;
pub mod generate;
pub mod layer;
pub mod presets;
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
}

impl LoadedModel {
    pub fn open(gpu: &Gpu, dir: &Path, dtype: Option<DType>) -> Result<LoadedModel> {
        if !dir.is_dir() {
            return Err(Error::file(dir, "not a model directory"));
        }
        let cfg = ModelConfig::from_file(&dir.join("config.json"))?;
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
        Ok(LoadedModel {
            model,
            tokenizer,
            eos,
            pad,
        })
    }
}
