//! config.json → `ModelConfig`, accepting both rope spellings (top-level `rope_theta` as on the
//! Hub, and transformers 5's `rope_parameters`).

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::gpu::Activation;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Arch {
    /// LlamaForCausalLM (also SmolLM2).
    Llama,
    /// Qwen2ForCausalLM: biases on q/k/v.
    Qwen2,
    /// Qwen3ForCausalLM: RMSNorm on each q and k head.
    Qwen3,
    /// Gemma3ForCausalLM (`gemma3_text`): q/k norms, norms with (1 + w) and around both
    /// blocks, GELU-tanh, embeddings scaled by √hidden, sliding-window local layers.
    Gemma3,
}

/// Which keys a layer's attention sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum LayerAttention {
    Full,
    /// The last `sliding_window` positions (when the config gives a window).
    Sliding,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum RopeScaling {
    Default,
    /// Llama 3.x frequency-dependent scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position: f64,
    },
    /// Linear position interpolation.
    Linear {
        factor: f64,
    },
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f32,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub tie_word_embeddings: bool,
    pub max_position_embeddings: usize,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: Option<u32>,
    pub hidden_act: Activation,
    /// Attention scores scale by query_pre_attn_scalar^-½ (Gemma) instead of head_dim^-½.
    pub query_pre_attn_scalar: Option<f64>,
    /// Keys a sliding layer sees; `None` turns sliding layers into full ones (Qwen2 without
    /// `use_sliding_window`).
    pub sliding_window: Option<usize>,
    /// One per layer.
    pub layer_types: Vec<LayerAttention>,
    /// RoPE base of the sliding layers when it differs from `rope_theta` (Gemma 3's
    /// `rope_local_base_freq`); they take no scaling.
    pub rope_local_theta: Option<f64>,
    /// Where the text model's tensors are named: "model." (`model.layers.0…`), or
    /// "model.text_model." inside a vision-language checkpoint (Idefics3 / SmolVLM).
    pub text_prefix: &'static str,
    /// A vision-language model's image token: its rows of the embeddings take the image
    /// features (`None`: a text model).
    pub image_token_id: Option<u32>,
}

/// The largest vocabulary, width or head count a config may give.
const MAX_DIM: usize = 1 << 24;
/// The most layers (real models have at most a few hundred): the layer lists of the model and
/// the adapter are reserved from this count before any layer's tensors are read, so 2^24 layers
/// aborted the process on a 14 GiB reservation.
const MAX_LAYERS: usize = 1 << 12;

fn get_usize(v: &Value, key: &str) -> std::result::Result<Option<usize>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| format!("`{key}` must be a non-negative integer, got {x}")),
    }
}

fn get_f64(v: &Value, key: &str) -> std::result::Result<Option<f64>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("`{key}` must be a number, got {x}")),
    }
}

/// The sliding window and each layer's attention: `layer_types` when the config lists them,
/// else Gemma 3's pattern (every `sliding_window_pattern`-th layer full, default 6) or, for
/// Qwen2/Qwen3 with `use_sliding_window`, the layers from `max_window_layers` on.
fn sliding_layers(
    v: &Value,
    arch: Arch,
    layers: usize,
) -> std::result::Result<(Option<usize>, Vec<LayerAttention>), String> {
    let window = match arch {
        Arch::Llama => None,
        Arch::Gemma3 => Some(get_usize(v, "sliding_window")?.unwrap_or(4096)),
        Arch::Qwen2 | Arch::Qwen3 => {
            let on = v.get("use_sliding_window").and_then(|b| b.as_bool()) == Some(true);
            if on { get_usize(v, "sliding_window")? } else { None }
        }
    };
    if window == Some(0) || window.is_some_and(|w| w > u32::MAX as usize) {
        return Err(format!("`sliding_window` = {} is out of range", window.unwrap_or(0)));
    }
    let types = match v.get("layer_types").filter(|t| !t.is_null()) {
        Some(Value::Array(a)) => {
            if a.len() != layers {
                return Err(format!(
                    "`layer_types` lists {} layers, `num_hidden_layers` is {layers}",
                    a.len()
                ));
            }
            a.iter()
                .map(|t| match t.as_str() {
                    Some("full_attention") => Ok(LayerAttention::Full),
                    Some("sliding_attention") => Ok(LayerAttention::Sliding),
                    _ => Err(format!(
                        "`layer_types` entry {t} is not supported (supported: full_attention, sliding_attention)"
                    )),
                })
                .collect::<std::result::Result<Vec<_>, String>>()?
        }
        Some(other) => return Err(format!("`layer_types` must be a list, got {other}")),
        None => {
            let sliding: Box<dyn Fn(usize) -> bool> = match arch {
                Arch::Gemma3 => {
                    let n = get_usize(v, "sliding_window_pattern")?
                        .or(get_usize(v, "_sliding_window_pattern")?)
                        .unwrap_or(6)
                        .max(1);
                    Box::new(move |i| (i + 1) % n != 0)
                }
                Arch::Qwen2 | Arch::Qwen3 if window.is_some() => {
                    let from = get_usize(v, "max_window_layers")?.unwrap_or(28);
                    Box::new(move |i| i >= from)
                }
                _ => Box::new(|_| false),
            };
            (0..layers)
                .map(|i| {
                    if sliding(i) {
                        LayerAttention::Sliding
                    } else {
                        LayerAttention::Full
                    }
                })
                .collect()
        }
    };
    Ok((window, types))
}

/// Token ids given as an int or a list of ints.
pub fn token_ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64().map(|n| n as u32))
            .collect(),
        _ => vec![],
    }
}

/// Idefics3 (SmolVLM): the text model from `text_config` (by its `model_type`, default
/// llama: SmolVLM's lists an architecture of its own), its weights under "model.text_model.",
/// the top-level `image_token_id` and `tie_word_embeddings`.
fn idefics3_text(v: &Value) -> std::result::Result<ModelConfig, String> {
    let Some(Value::Object(text)) = v.get("text_config") else {
        return Err("Idefics3: no `text_config` object".into());
    };
    let mut text = text.clone();
    text.remove("architectures");
    text.entry("model_type").or_insert_with(|| "llama".into());
    if let Some(m) = text.get("model_type").and_then(|m| m.as_str())
        && matches!(m, "idefics3" | "gemma3")
    {
        return Err(format!("Idefics3: text_config's model_type {m:?} is not a text model"));
    }
    let mut cfg = ModelConfig::from_json(&Value::Object(text))?;
    let image = get_usize(v, "image_token_id")?.ok_or("Idefics3: missing `image_token_id`")?;
    if image >= cfg.vocab_size {
        return Err(format!(
            "`image_token_id` {image} is outside the text model's vocabulary of {}",
            cfg.vocab_size
        ));
    }
    if let Some(tied) = v.get("tie_word_embeddings").and_then(|b| b.as_bool()) {
        cfg.tie_word_embeddings = tied;
    }
    cfg.image_token_id = Some(image as u32);
    cfg.text_prefix = "model.text_model.";
    Ok(cfg)
}

impl ModelConfig {
    pub fn from_file(path: &Path) -> Result<ModelConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Error::file(path, format!("not valid JSON: {e}")))?;
        ModelConfig::from_json(&v).map_err(|e| Error::file(path, e))
    }

    pub fn from_json(v: &Value) -> std::result::Result<ModelConfig, String> {
        if !v.is_object() {
            return Err("expected a JSON object".into());
        }
        let arch_name = v
            .get("architectures")
            .and_then(|a| a.get(0))
            .and_then(|a| a.as_str())
            .map(str::to_string)
            .or_else(|| {
                v.get("model_type")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .ok_or("no `architectures` or `model_type`")?;
        let arch = match arch_name.as_str() {
            "LlamaForCausalLM" | "llama" => Arch::Llama,
            "Qwen2ForCausalLM" | "qwen2" => Arch::Qwen2,
            "Qwen3ForCausalLM" | "qwen3" => Arch::Qwen3,
            "Gemma3ForCausalLM" | "gemma3_text" => Arch::Gemma3,
            "Idefics3ForConditionalGeneration" | "idefics3" => return idefics3_text(v),
            "Gemma3ForConditionalGeneration" | "gemma3" => {
                return Err(format!(
                    "{arch_name:?} is Gemma 3 with its vision tower; edgerl runs the text model (Gemma3ForCausalLM, e.g. gemma-3-270m or 1b)"
                ));
            }
            other => {
                return Err(format!(
                    "unsupported architecture {other:?} (supported: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma3ForCausalLM, Idefics3ForConditionalGeneration)"
                ));
            }
        };
        let gemma = arch == Arch::Gemma3;
        for key in ["final_logit_softcapping", "attn_logit_softcapping"] {
            if let Some(x) = get_f64(v, key)? {
                return Err(format!("`{key}` = {x}: logit soft-capping is not supported yet"));
            }
        }
        if v.get("use_bidirectional_attention").and_then(|b| b.as_bool()) == Some(true) {
            return Err("`use_bidirectional_attention` (an encoder) is not supported".into());
        }
        let need = |key: &str| -> std::result::Result<usize, String> {
            get_usize(v, key)?.ok_or_else(|| format!("missing `{key}`"))
        };
        let hidden_size = need("hidden_size")?;
        let num_heads = need("num_attention_heads")?;
        let num_kv_heads = get_usize(v, "num_key_value_heads")?.unwrap_or(num_heads);
        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(format!(
                "num_attention_heads {num_heads} is not a multiple of num_key_value_heads {num_kv_heads}"
            ));
        }
        let head_dim = match get_usize(v, "head_dim")? {
            Some(d) => d,
            None => {
                if hidden_size % num_heads != 0 {
                    return Err(format!(
                        "hidden_size {hidden_size} is not divisible by num_attention_heads {num_heads}"
                    ));
                }
                hidden_size / num_heads
            }
        };
        if head_dim == 0 || head_dim % 2 != 0 || head_dim > 256 {
            return Err(format!("head_dim {head_dim} must be even and at most 256"));
        }

        // Rope: transformers 5 nests it in `rope_parameters`; Hub checkpoints keep `rope_theta`
        // at the top level and optional `rope_scaling`.
        // Gemma 3 nests one set per layer type (`full_attention`, `sliding_attention`), and on
        // the Hub keeps the sliding layers' base as `rope_local_base_freq`.
        let nested = v.get("rope_parameters").filter(|p| p.get("full_attention").is_some());
        let params = match nested {
            Some(n) => n.get("full_attention").filter(|p| p.is_object()),
            None => v.get("rope_parameters").filter(|p| p.is_object()),
        };
        let scaling = params.or_else(|| v.get("rope_scaling").filter(|p| p.is_object()));
        let rope_local_theta = match nested.and_then(|n| n.get("sliding_attention")) {
            Some(local) => {
                let kind = local.get("rope_type").and_then(|t| t.as_str());
                if !matches!(kind, None | Some("default")) {
                    return Err(format!(
                        "sliding layers' rope type {kind:?} is not supported (supported: default)"
                    ));
                }
                get_f64(local, "rope_theta")?
            }
            None => get_f64(v, "rope_local_base_freq")?,
        }
        .or(gemma.then_some(10000.0));
        let rope_theta = match params
            .map(|p| get_f64(p, "rope_theta"))
            .transpose()?
            .flatten()
        {
            Some(t) => t,
            None => get_f64(v, "rope_theta")?.unwrap_or(10000.0),
        };
        let rope_type = scaling
            .and_then(|s| s.get("rope_type").or_else(|| s.get("type")))
            .and_then(|t| t.as_str())
            .unwrap_or("default");
        let factor = || -> std::result::Result<f64, String> {
            scaling
                .map(|s| get_f64(s, "factor"))
                .transpose()?
                .flatten()
                .ok_or_else(|| format!("rope type {rope_type} needs `factor`"))
        };
        let rope_scaling = match rope_type {
            "default" => RopeScaling::Default,
            "linear" => RopeScaling::Linear { factor: factor()? },
            "llama3" => {
                let s = scaling.ok_or("llama3 rope without parameters")?;
                RopeScaling::Llama3 {
                    factor: factor()?,
                    low_freq_factor: get_f64(s, "low_freq_factor")?.unwrap_or(1.0),
                    high_freq_factor: get_f64(s, "high_freq_factor")?.unwrap_or(4.0),
                    original_max_position: get_f64(s, "original_max_position_embeddings")?
                        .unwrap_or(8192.0),
                }
            }
            other => {
                return Err(format!(
                    "unsupported rope type {other:?} (supported: default, linear, llama3)"
                ));
            }
        };
        let factors = match &rope_scaling {
            RopeScaling::Default => vec![],
            RopeScaling::Linear { factor } => vec![("factor", *factor)],
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position,
            } => vec![
                ("factor", *factor),
                ("low_freq_factor", *low_freq_factor),
                ("high_freq_factor", *high_freq_factor),
                ("original_max_position_embeddings", *original_max_position),
            ],
        };
        let local = rope_local_theta.map(|t| ("rope_local_base_freq", t));
        for (key, x) in [("rope_theta", rope_theta)].into_iter().chain(local).chain(factors) {
            if !(x > 0.0 && x.is_finite()) {
                return Err(format!("`{key}` must be a positive number, got {x}"));
            }
        }
        let vocab_size = need("vocab_size")?;
        let intermediate_size = need("intermediate_size")?;
        let num_layers = need("num_hidden_layers")?;
        if vocab_size == 0 || hidden_size == 0 || intermediate_size == 0 || num_layers == 0 {
            return Err(
                "vocab_size, hidden_size, intermediate_size and num_hidden_layers must be positive"
                    .into(),
            );
        }
        // Far above any real model, low enough that no size computed from these overflows
        // and no count allocates before the weights are checked against it.
        for (key, n, max) in [
            ("vocab_size", vocab_size, MAX_DIM),
            ("hidden_size", hidden_size, MAX_DIM),
            ("intermediate_size", intermediate_size, MAX_DIM),
            ("num_hidden_layers", num_layers, MAX_LAYERS),
            ("num_attention_heads", num_heads, MAX_DIM),
            ("num_key_value_heads", num_kv_heads, MAX_DIM),
        ] {
            if n > max {
                return Err(format!(
                    "`{key}` = {n} is larger than edgerl supports ({max})"
                ));
            }
        }
        let (sliding_window, layer_types) = sliding_layers(v, arch, num_layers)?;
        let query_pre_attn_scalar = get_f64(v, "query_pre_attn_scalar")?.or(gemma.then_some(256.0));
        if let Some(x) = query_pre_attn_scalar
            && !(x > 0.0 && x.is_finite())
        {
            return Err(format!("`query_pre_attn_scalar` must be a positive number, got {x}"));
        }
        let act = ["hidden_activation", "hidden_act"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|a| a.as_str()))
            .unwrap_or(if gemma { "gelu_pytorch_tanh" } else { "silu" });
        let hidden_act = match act {
            "silu" | "swish" => Activation::Silu,
            "gelu_pytorch_tanh" | "gelu_tanh" => Activation::GeluTanh,
            other => {
                return Err(format!(
                    "hidden activation {other:?} is not supported (supported: silu, gelu_pytorch_tanh)"
                ));
            }
        };
        Ok(ModelConfig {
            arch,
            vocab_size,
            hidden_size,
            intermediate_size,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: get_f64(v, "rms_norm_eps")?.unwrap_or(1e-6) as f32,
            rope_theta,
            rope_scaling,
            tie_word_embeddings: v
                .get("tie_word_embeddings")
                .and_then(|b| b.as_bool())
                .unwrap_or(false),
            max_position_embeddings: get_usize(v, "max_position_embeddings")?.unwrap_or(32768),
            bos_token_id: token_ids(v.get("bos_token_id")).first().copied(),
            eos_token_ids: token_ids(v.get("eos_token_id")),
            pad_token_id: token_ids(v.get("pad_token_id")).first().copied(),
            hidden_act,
            query_pre_attn_scalar,
            sliding_window,
            layer_types,
            rope_local_theta,
            text_prefix: "model.",
            image_token_id: None,
        })
    }

    /// The window of layer `layer`'s attention (0: none).
    pub fn window(&self, layer: usize) -> usize {
        match (self.layer_types.get(layer), self.sliding_window) {
            (Some(LayerAttention::Sliding), Some(w)) => w,
            _ => 0,
        }
    }

    /// The factor on q·k.
    pub fn attn_scale(&self) -> f32 {
        let d = self.query_pre_attn_scalar.unwrap_or(self.head_dim as f64);
        (1.0 / d.sqrt()) as f32
    }

    /// Gemma multiplies the embeddings by √hidden (in f32, as transformers does it).
    pub fn embed_scale(&self) -> Option<f32> {
        (self.arch == Arch::Gemma3).then(|| (self.hidden_size as f64).sqrt() as f32)
    }

    /// Gemma's RMSNorms scale by (1 + w): checkpoints store w, and 1 is added on load.
    pub fn norm_plus_one(&self) -> bool {
        self.arch == Arch::Gemma3
    }

    /// Gemma normalises each block's output too (post-attention and post-feed-forward norms).
    pub fn sandwich_norms(&self) -> bool {
        self.arch == Arch::Gemma3
    }

    /// Per-head RMSNorm of q and k before RoPE (Qwen3, Gemma 3).
    pub fn qk_norm(&self) -> bool {
        matches!(self.arch, Arch::Qwen3 | Arch::Gemma3)
    }

    /// Whether a layer's q, k and v may be stored as one tensor and computed in one product
    /// (`Layer::qkv`), given that their types agree (`Tensor::stacks`): no q/k norms between
    /// the product and RoPE, heads of whole vec4 pairs (`rope_qkv4`), and q|k|v rows no wider
    /// than the MLP's, whose `gate` scratch holds them until the MLP.
    pub fn stacks_qkv(&self) -> bool {
        let width = (self.num_heads + 2 * self.num_kv_heads) * self.head_dim;
        !self.qk_norm() && self.head_dim.is_multiple_of(8) && width <= self.intermediate_size
    }

    /// Inverse frequencies as transformers computes them in f32, with scaling applied.
    pub fn inv_freq(&self) -> Vec<f32> {
        self.inv_freq_with(self.rope_theta, &self.rope_scaling)
    }

    /// Those of the sliding layers, when their RoPE differs.
    pub fn local_inv_freq(&self) -> Option<Vec<f32>> {
        let uses = self.layer_types.contains(&LayerAttention::Sliding);
        let theta = self.rope_local_theta.filter(|_| uses)?;
        Some(self.inv_freq_with(theta, &RopeScaling::Default))
    }

    fn inv_freq_with(&self, theta: f64, scaling: &RopeScaling) -> Vec<f32> {
        let d = self.head_dim;
        let base: Vec<f32> = (0..d / 2)
            .map(|i| {
                let exponent = (2 * i) as f32 / d as f32;
                1.0f32 / (theta as f32).powf(exponent)
            })
            .collect();
        match scaling {
            RopeScaling::Default => base,
            RopeScaling::Linear { factor } => base.iter().map(|f| f / *factor as f32).collect(),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position,
            } => {
                let low_wavelen = original_max_position / low_freq_factor;
                let high_wavelen = original_max_position / high_freq_factor;
                base.iter()
                    .map(|&f| {
                        let f = f as f64;
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        let scaled = if wavelen > low_wavelen { f / factor } else { f };
                        let smooth = (original_max_position / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        let smoothed = (1.0 - smooth) * scaled / factor + smooth * scaled;
                        let medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
                        (if medium { smoothed } else { scaled }) as f32
                    })
                    .collect()
            }
        }
    }

    /// cos and sin for positions `p0 .. p0 + t`, laid out [2, t, head_dim/2] for the rope kernel.
    pub fn rope_table(&self, inv_freq: &[f32], p0: usize, t: usize) -> Vec<f32> {
        let positions: Vec<u32> = (p0..p0 + t).map(|p| p as u32).collect();
        self.rope_table_at(inv_freq, &positions)
    }

    /// The same for any positions, one per token.
    pub fn rope_table_at(&self, inv_freq: &[f32], positions: &[u32]) -> Vec<f32> {
        let (half, t) = (inv_freq.len(), positions.len());
        let mut out = vec![0f32; 2 * t * half];
        for (i, &p) in positions.iter().enumerate() {
            for (j, f) in inv_freq.iter().enumerate() {
                let angle = p as f32 * f; // f32 product, as torch does
                out[i * half + j] = (angle as f64).cos() as f32;
                out[t * half + i * half + j] = (angle as f64).sin() as f32;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
