//! config.json → `ModelConfig`, accepting both rope spellings (top-level `rope_theta` as on the
//! Hub, and transformers 5's `rope_parameters`).

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Arch {
    /// LlamaForCausalLM (also SmolLM2).
    Llama,
    /// Qwen2ForCausalLM: biases on q/k/v.
    Qwen2,
    /// Qwen3ForCausalLM: RMSNorm on each q and k head.
    Qwen3,
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
            other => {
                return Err(format!(
                    "unsupported architecture {other:?} (supported: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)"
                ));
            }
        };
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
        let params = v.get("rope_parameters").filter(|p| p.is_object());
        let scaling = params.or_else(|| v.get("rope_scaling").filter(|p| p.is_object()));
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
        for (key, x) in [("rope_theta", rope_theta)].into_iter().chain(factors) {
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
        })
    }

    /// Inverse frequencies as transformers computes them in f32, with scaling applied.
    pub fn inv_freq(&self) -> Vec<f32> {
        let d = self.head_dim;
        let base: Vec<f32> = (0..d / 2)
            .map(|i| {
                let exponent = (2 * i) as f32 / d as f32;
                1.0f32 / (self.rope_theta as f32).powf(exponent)
            })
            .collect();
        match &self.rope_scaling {
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
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "architectures": ["Qwen2ForCausalLM"], "vocab_size": 10, "hidden_size": 8,
            "intermediate_size": 12, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 1, "eos_token_id": [3, 4]
        })
    }

    #[test]
    fn both_rope_spellings() {
        let mut hub = base();
        hub["rope_theta"] = json!(1234.0);
        let mut tf5 = base();
        tf5["rope_parameters"] = json!({"rope_theta": 5678.0, "rope_type": "default"});
        assert_eq!(ModelConfig::from_json(&hub).unwrap().rope_theta, 1234.0);
        let c = ModelConfig::from_json(&tf5).unwrap();
        assert_eq!(c.rope_theta, 5678.0);
        assert_eq!(c.head_dim, 4);
        assert_eq!(c.eos_token_ids, vec![3, 4]);
    }

    #[test]
    fn rejects_what_it_cannot_run() {
        let mut v = base();
        v["num_key_value_heads"] = json!(3);
        assert!(
            ModelConfig::from_json(&v)
                .unwrap_err()
                .contains("num_key_value_heads")
        );
        let mut v = base();
        v["rope_parameters"] = json!({"rope_type": "yarn", "factor": 4.0});
        assert!(ModelConfig::from_json(&v).unwrap_err().contains("yarn"));
        let mut v = base();
        v["hidden_size"] = json!("eight");
        assert!(
            ModelConfig::from_json(&v)
                .unwrap_err()
                .contains("hidden_size")
        );
        assert!(ModelConfig::from_json(&json!([1, 2])).is_err());
        // The layer count has its own bound: the layer lists are reserved from it.
        let mut v = base();
        v["num_hidden_layers"] = json!(MAX_LAYERS);
        assert!(ModelConfig::from_json(&v).is_ok());
        v["num_hidden_layers"] = json!(MAX_LAYERS + 1);
        let e = ModelConfig::from_json(&v).unwrap_err();
        assert!(
            e.contains("`num_hidden_layers` = 4097") && e.contains("(4096)"),
            "{e}"
        );
    }

    #[test]
    fn llama3_scaling_keeps_high_and_divides_low_frequencies() {
        let mut v = base();
        v["hidden_size"] = json!(32);
        v["num_attention_heads"] = json!(1);
        v["num_key_value_heads"] = json!(1);
        v["rope_parameters"] = json!({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64});
        let c = ModelConfig::from_json(&v).unwrap();
        let mut plain = c.clone();
        plain.rope_scaling = RopeScaling::Default;
        let (s, p) = (c.inv_freq(), plain.inv_freq());
        // Wavelength 2π/f below 64/4 = 16: unchanged; above 64: divided by the factor.
        assert_eq!(s[0], p[0]);
        let last = p.len() - 1;
        assert!(2.0 * std::f32::consts::PI / p[last] > 64.0);
        assert!((s[last] - p[last] / 8.0).abs() <= 1e-6 * p[last]);
    }
}
