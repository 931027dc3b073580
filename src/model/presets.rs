//! Configs with the exact shapes of well-known checkpoints, for benchmarks and memory planning
//! on random weights (no download needed).

use super::config::{Arch, LayerAttention, ModelConfig, RopeScaling};
use super::tensors::Presence;
use super::weights::RandomWeights;
use crate::error::{Error, Result};
use crate::gpu::DType;

pub const PRESETS: [&str; 6] = [
    "smollm2-135m",
    "qwen2.5-0.5b",
    "qwen2.5-1.5b",
    "qwen3-0.6b",
    "gemma3-270m",
    "llama3.2-1b",
];

#[allow(clippy::too_many_arguments)]
fn cfg(
    arch: Arch,
    vocab: usize,
    h: usize,
    inter: usize,
    layers: usize,
    heads: usize,
    kv: usize,
    hd: usize,
    theta: f64,
    tied: bool,
) -> ModelConfig {
    ModelConfig {
        arch,
        vocab_size: vocab,
        hidden_size: h,
        intermediate_size: inter,
        num_layers: layers,
        num_heads: heads,
        num_kv_heads: kv,
        head_dim: hd,
        rms_norm_eps: 1e-6,
        rope_theta: theta,
        rope_scaling: RopeScaling::Default,
        tie_word_embeddings: tied,
        max_position_embeddings: 32768,
        bos_token_id: None,
        eos_token_ids: vec![],
        pad_token_id: None,
        hidden_act: crate::gpu::Activation::Silu,
        query_pre_attn_scalar: None,
        sliding_window: None,
        layer_types: vec![LayerAttention::Full; layers],
        rope_local_theta: None,
        text_prefix: "model.",
        image_token_id: None,
    }
}

/// google/gemma-3-270m: every sixth layer global, the others a 512-token window with their own
/// RoPE base.
fn gemma3_270m() -> ModelConfig {
    let layers = 18;
    ModelConfig {
        hidden_act: crate::gpu::Activation::GeluTanh,
        query_pre_attn_scalar: Some(256.0),
        sliding_window: Some(512),
        layer_types: (0..layers)
            .map(|i| {
                if (i + 1) % 6 == 0 {
                    LayerAttention::Full
                } else {
                    LayerAttention::Sliding
                }
            })
            .collect(),
        rope_local_theta: Some(10000.0),
        ..cfg(
            Arch::Gemma3,
            262144,
            640,
            2048,
            layers,
            4,
            1,
            256,
            1000000.0,
            true,
        )
    }
}

/// meta-llama/Llama-3.2-1B: Llama 3 RoPE scaling, tied embeddings.
fn llama32_1b() -> ModelConfig {
    ModelConfig {
        rms_norm_eps: 1e-5,
        rope_scaling: RopeScaling::Llama3 {
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position: 8192.0,
        },
        max_position_embeddings: 131072,
        ..cfg(Arch::Llama, 128256, 2048, 8192, 16, 32, 8, 64, 500000.0, true)
    }
}

/// Vision-language shapes: `preset` gives the text model, `vision_preset` the rest of the
/// checkpoint's config.json (the tower), `vision_processor` its image processor.
pub const VISION_PRESETS: [&str; 1] = ["smolvlm-256m"];

/// HuggingFaceTB/SmolVLM-256M-Instruct's text model: SmolLM2-135M's shapes with SmolVLM's
/// vocabulary (49280, the image tokens added), an untied lm_head, and the image token.
fn smolvlm_256m() -> ModelConfig {
    ModelConfig {
        rms_norm_eps: 1e-5,
        max_position_embeddings: 8192,
        image_token_id: Some(49190),
        ..cfg(Arch::Llama, 49280, 576, 1536, 30, 9, 3, 64, 100000.0, false)
    }
}

/// A vision preset's config.json keys the tower reads (`VisionConfig::from_json`).
pub fn vision_preset(name: &str) -> Option<serde_json::Value> {
    match name {
        "smolvlm-256m" => Some(serde_json::json!({
            "scale_factor": 4,
            "image_token_id": 49190,
            "text_config": {"hidden_size": 576},
            "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                              "num_attention_heads": 12, "patch_size": 16, "image_size": 512}
        })),
        _ => None,
    }
}

/// A vision preset's image processor settings (preprocessor_config.json's keys plus
/// `image_seq_len`, as `ImageProcessor::from_json` takes them) with images resized to `longest_edge` pixels
/// (SmolVLM-256M's own: 2048, up to 4 × 4 tiles of 512 plus the global image; 512: one tile).
pub fn vision_processor(name: &str, longest_edge: usize) -> Option<String> {
    match name {
        "smolvlm-256m" => Some(
            serde_json::json!({
                "do_convert_rgb": true, "do_image_splitting": true, "do_normalize": true,
                "do_pad": true, "do_rescale": true, "do_resize": true,
                "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
                "image_processor_type": "Idefics3ImageProcessor",
                "max_image_size": {"longest_edge": 512}, "resample": 1,
                "rescale_factor": 0.00392156862745098,
                "size": {"longest_edge": longest_edge},
                "image_seq_len": 64
            })
            .to_string(),
        ),
        _ => None,
    }
}

/// Random weights for a vision preset's tower, named as in the checkpoint (`model.vision_model.…`,
/// `model.connector.…`).
pub fn random_tower_weights(cfg: &crate::vision::tower::VisionConfig, dtype: DType, seed: u64) -> RandomWeights {
    let shapes = cfg
        .tower_tensors()
        .map(|t| (format!("model.{}", t.name), t.shape))
        .collect();
    RandomWeights {
        dtype,
        shapes,
        seed,
    }
}

pub fn preset(name: &str) -> Result<ModelConfig> {
    Ok(match name {
        "smolvlm-256m" => smolvlm_256m(),
        "smollm2-135m" => cfg(Arch::Llama, 49152, 576, 1536, 30, 9, 3, 64, 100000.0, true),
        "qwen2.5-0.5b" => cfg(
            Arch::Qwen2,
            151936,
            896,
            4864,
            24,
            14,
            2,
            64,
            1000000.0,
            true,
        ),
        "qwen2.5-1.5b" => cfg(
            Arch::Qwen2,
            151936,
            1536,
            8960,
            28,
            12,
            2,
            128,
            1000000.0,
            true,
        ),
        "qwen3-0.6b" => cfg(
            Arch::Qwen3,
            151936,
            1024,
            3072,
            28,
            16,
            8,
            128,
            1000000.0,
            true,
        ),
        "gemma3-270m" => gemma3_270m(),
        "llama3.2-1b" => llama32_1b(),
        other => {
            return Err(Error::Invalid(format!(
                "unknown shape {other:?}; known: {}, {}",
                PRESETS.join(", "),
                VISION_PRESETS.join(", ")
            )));
        }
    })
}

/// Random weights with every tensor a Hugging Face checkpoint of `cfg` would have (the usual
/// optional ones included: an untied lm_head, Qwen2's q/k/v biases).
pub fn random_weights(cfg: &ModelConfig, dtype: DType, seed: u64) -> RandomWeights {
    let shapes = cfg
        .tensors()
        .filter(|t| t.presence != Presence::Optional)
        .map(|t| (t.name, t.shape))
        .collect();
    RandomWeights {
        dtype,
        shapes,
        seed,
    }
}
