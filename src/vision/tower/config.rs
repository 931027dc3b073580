//! The vision tower's shapes, read from an Idefics3 / SmolVLM `config.json`: `vision_config`,
//! `scale_factor` and `text_config.hidden_size`, with transformers' defaults for the keys a
//! checkpoint leaves out (`Idefics3VisionConfig`, `Idefics3Config`, `LlamaConfig`).

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::gpu::Activation;

#[derive(Clone, Debug, PartialEq)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_channels: usize,
    pub patch_size: usize,
    /// The square image the position embeddings were trained on: `image_size / patch_size`
    /// patches a side.
    pub image_size: usize,
    pub layer_norm_eps: f32,
    pub act: Activation,
    /// The connector's pixel shuffle: `scale_factor`² neighbouring patches become one token.
    pub scale_factor: usize,
    /// The text model's hidden size, the projection's output.
    pub text_hidden_size: usize,
}

impl VisionConfig {
    /// Reads `dir/config.json`.
    pub fn load(dir: &Path) -> Result<VisionConfig> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Error::file(&path, format!("not valid JSON: {e}")))?;
        VisionConfig::from_json(&v).map_err(|reason| Error::file(&path, reason))
    }

    /// Whether `config.json`'s value describes a model with a vision tower.
    pub fn present(v: &Value) -> bool {
        v.get("vision_config").is_some_and(Value::is_object)
    }

    /// Parses and checks the shapes; the error is a bare reason (the caller names the file).
    pub fn from_json(v: &Value) -> std::result::Result<VisionConfig, String> {
        let vc = v
            .get("vision_config")
            .filter(|c| c.is_object())
            .ok_or("no `vision_config` object: not a vision-language (Idefics3 / SmolVLM) model")?;
        let tc = v.get("text_config").filter(|c| c.is_object());
        let get = |obj: Option<&Value>, key: &str, default: usize| -> std::result::Result<usize, String> {
            match obj.and_then(|o| o.get(key)) {
                None | Some(Value::Null) => Ok(default),
                Some(x) => x
                    .as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| format!("`{key}` is {x}, not a non-negative integer")),
            }
        };
        let eps = match vc.get("layer_norm_eps") {
            None | Some(Value::Null) => 1e-6,
            Some(x) => x
                .as_f64()
                .ok_or_else(|| format!("`vision_config.layer_norm_eps` is {x}, not a number"))?,
        };
        let act = match vc.get("hidden_act").and_then(Value::as_str).unwrap_or("gelu_pytorch_tanh") {
            "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Activation::GeluTanh,
            other => {
                return Err(format!(
                    "vision_config.hidden_act {other:?} is not supported (SigLIP's is gelu_pytorch_tanh)"
                ));
            }
        };
        let c = VisionConfig {
            hidden_size: get(Some(vc), "hidden_size", 1152)?,
            intermediate_size: get(Some(vc), "intermediate_size", 3072)?,
            num_layers: get(Some(vc), "num_hidden_layers", 12)?,
            num_heads: get(Some(vc), "num_attention_heads", 16)?,
            num_channels: get(Some(vc), "num_channels", 3)?,
            patch_size: get(Some(vc), "patch_size", 32)?,
            image_size: get(Some(vc), "image_size", 224)?,
            layer_norm_eps: eps as f32,
            act,
            scale_factor: get(Some(v), "scale_factor", 2)?,
            text_hidden_size: get(tc, "hidden_size", 4096)?,
        };
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let positive = [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_attention_heads", self.num_heads),
            ("num_channels", self.num_channels),
            ("patch_size", self.patch_size),
            ("scale_factor", self.scale_factor),
            ("text_config.hidden_size", self.text_hidden_size),
        ];
        if let Some((k, _)) = positive.iter().find(|(_, n)| *n == 0) {
            return Err(format!("`{k}` is 0"));
        }
        if !self.hidden_size.is_multiple_of(self.num_heads) || self.head_dim() > 256 {
            return Err(format!(
                "vision hidden_size {} over {} heads: head_dim must be whole and at most 256",
                self.hidden_size, self.num_heads
            ));
        }
        if self.patches_per_side() == 0 {
            return Err(format!(
                "vision image_size {} is smaller than patch_size {}",
                self.image_size, self.patch_size
            ));
        }
        // Sizes far past any real tower would overflow the u32 offsets of the kernels.
        let widest = [self.hidden_size, self.intermediate_size, self.patch_dim(), self.text_hidden_size]
            .into_iter()
            .chain([self.connector_dim()])
            .max()
            .unwrap_or(0);
        if widest > 1 << 20 || self.num_layers > 1024 || self.patches_per_side() > 1024 {
            return Err(format!("vision tower shapes out of range: {self:?}"));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }
    pub fn patches_per_side(&self) -> usize {
        self.image_size / self.patch_size
    }
    /// Values per patch: the patch embedding's input width.
    pub fn patch_dim(&self) -> usize {
        self.num_channels * self.patch_size * self.patch_size
    }
    /// The pixel-shuffled width: the projection's input.
    pub fn connector_dim(&self) -> usize {
        self.hidden_size.saturating_mul(self.scale_factor.saturating_mul(self.scale_factor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        // SmolVLM-256M's config leaves hidden_act and layer_norm_eps to the defaults.
        let v: Value = serde_json::json!({
            "scale_factor": 4,
            "text_config": {"hidden_size": 576},
            "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                              "num_attention_heads": 12, "patch_size": 16, "image_size": 512}
        });
        let c = VisionConfig::from_json(&v).unwrap();
        assert_eq!((c.head_dim(), c.patches_per_side(), c.patch_dim()), (64, 32, 768));
        assert_eq!((c.connector_dim(), c.text_hidden_size, c.act), (12288, 576, Activation::GeluTanh));
        assert_eq!(c.layer_norm_eps, 1e-6);
        let bad = |patch: Value| {
            let mut w = v.clone();
            w["vision_config"]["patch_size"] = patch;
            VisionConfig::from_json(&w).unwrap_err()
        };
        assert!(bad(serde_json::json!(0)).contains("patch_size"));
        assert!(bad(serde_json::json!(-3)).contains("patch_size"));
        assert!(bad(serde_json::json!(1024)).contains("smaller than patch_size"));
        let mut w = v.clone();
        w["vision_config"]["num_attention_heads"] = serde_json::json!(5);
        assert!(VisionConfig::from_json(&w).unwrap_err().contains("head_dim"));
        w["vision_config"]["hidden_act"] = serde_json::json!("relu");
        assert!(VisionConfig::from_json(&w).unwrap_err().contains("relu"));
        assert!(VisionConfig::from_json(&serde_json::json!({"hidden_size": 8})).is_err());
    }
}
