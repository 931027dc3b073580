//! A GGUF file as a model: its metadata as a `ModelConfig` and its tensors under Hugging Face
//! names, so the loader that reads safetensors reads GGUF too. Quantized tensors stay packed
//! (the matmuls dequantize). llama.cpp stores the Q and K rows of `llama` models permuted for
//! its interleaved RoPE; they are put back in Hugging Face order here (rows are whole blocks,
//! so this works on quantized data), and our rotate-half RoPE then applies unchanged.

use std::borrow::Cow;
use std::path::PathBuf;

use serde_json::json;

use super::config::ModelConfig;
use super::gguf::{GgmlType, Gguf};
use super::weights::{RawTensor, WeightSource};
use crate::error::{Error, Result};
use crate::gpu::DType;

/// The Hugging Face architecture for a GGUF `general.architecture`.
fn hf_arch(arch: &str) -> Option<&'static str> {
    match arch {
        "llama" => Some("LlamaForCausalLM"),
        "qwen2" => Some("Qwen2ForCausalLM"),
        "qwen3" => Some("Qwen3ForCausalLM"),
        "gemma3" => Some("Gemma3ForCausalLM"),
        _ => None,
    }
}

/// The config.json transformers would write for this file, then parsed like one.
pub fn config_from_gguf(g: &Gguf) -> Result<ModelConfig> {
    let arch = g.architecture()?;
    let hf = hf_arch(arch).ok_or_else(|| {
        Error::file(
            g.path(),
            format!("unsupported architecture {arch:?} (supported: llama, qwen2, qwen3, gemma3)"),
        )
    })?;
    let key = |k: &str| format!("{arch}.{k}");
    let opt_u64 = |k: &str| g.get(&key(k)).map(|_| g.get_u64(&key(k))).transpose();
    let opt_f64 = |k: &str| g.get(&key(k)).map(|_| g.get_f64(&key(k))).transpose();
    let layers = g.get_u64(&key("block_count"))?;
    check_layers(g, &key("block_count"), layers)?;
    let heads = g.get_u64(&key("attention.head_count"))?;
    let hidden = g.get_u64(&key("embedding_length"))?;
    let mut cfg = json!({
        "architectures": [hf],
        "hidden_size": hidden,
        "intermediate_size": g.get_u64(&key("feed_forward_length"))?,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": opt_u64("attention.head_count_kv")?.unwrap_or(heads),
        "rms_norm_eps": g.get_f64(&key("attention.layer_norm_rms_epsilon"))?,
        "rope_theta": opt_f64("rope.freq_base")?.unwrap_or(10000.0),
        "tie_word_embeddings": g.tensor("output.weight").is_none(),
    });
    let vocab = match opt_u64("vocab_size")? {
        Some(v) => v,
        None => g.get_str_array("tokenizer.ggml.tokens")?.len() as u64,
    };
    cfg["vocab_size"] = json!(vocab);
    if let Some(n) = opt_u64("context_length")? {
        cfg["max_position_embeddings"] = json!(n);
    }
    let head_dim = match opt_u64("attention.key_length")? {
        Some(d) => {
            cfg["head_dim"] = json!(d);
            d
        }
        None => hidden / heads.max(1),
    };
    if let Some(v) = opt_u64("attention.value_length")?
        && v != head_dim
    {
        return Err(Error::file(
            g.path(),
            format!("value head size {v} differs from key head size {head_dim}: not supported"),
        ));
    }
    if let Some(r) = opt_u64("rope.dimension_count")?
        && r != head_dim
    {
        return Err(Error::file(
            g.path(),
            format!("RoPE on {r} of {head_dim} head dimensions (partial rotary) is not supported"),
        ));
    }
    match g
        .get(&key("rope.scaling.type"))
        .map(|_| g.get_str(&key("rope.scaling.type")))
        .transpose()?
    {
        None | Some("none") => {}
        Some("linear") => {
            let factor = g.get_f64(&key("rope.scaling.factor"))?;
            cfg["rope_scaling"] = json!({"rope_type": "linear", "factor": factor});
        }
        Some(other) => {
            return Err(Error::file(
                g.path(),
                format!("RoPE scaling {other:?} is not supported (supported: none, linear)"),
            ));
        }
    }
    if g.tensor("rope_freqs.weight").is_some() {
        return Err(Error::file(
            g.path(),
            "per-frequency RoPE factors (rope_freqs.weight, Llama 3.1 style) are not supported yet",
        ));
    }
    if arch == "gemma3" {
        // As llama.cpp reads these files: the window from the metadata, the layer pattern
        // (every sixth global) and the local RoPE base (10,000) fixed for the family, and
        // scores scaled by head_dim^-½, except the 62-layer 27B's (hidden / heads)^-½ — which
        // is what each model's config.json says too.
        if let Some(w) = opt_u64("attention.sliding_window")? {
            cfg["sliding_window"] = json!(w);
        }
        cfg["sliding_window_pattern"] = json!(6);
        cfg["rope_local_base_freq"] = json!(10000.0);
        let scalar = if layers == 62 { hidden / heads.max(1) } else { head_dim };
        cfg["query_pre_attn_scalar"] = json!(scalar);
    }
    let tok = |k: &str| g.get(k).and_then(|v| v.as_u64());
    for (hf_key, gg) in [
        ("bos_token_id", "tokenizer.ggml.bos_token_id"),
        ("eos_token_id", "tokenizer.ggml.eos_token_id"),
        ("pad_token_id", "tokenizer.ggml.padding_token_id"),
    ] {
        if let Some(id) = tok(gg) {
            cfg[hf_key] = json!(id);
        }
    }
    ModelConfig::from_json(&cfg).map_err(|e| Error::file(g.path(), e))
}

/// Every layer the metadata counts must have tensors in the file (`blk.N.*`), checked before
/// anything is sized by the count: a block count far above the tensors present once made the
/// loader reserve gigabytes and abort.
fn check_layers(g: &Gguf, key: &str, layers: u64) -> Result<()> {
    let mut present = vec![false; layers.min(g.tensors().len() as u64) as usize];
    for t in g.tensors() {
        let n = t.name.strip_prefix("blk.").and_then(|r| r.split_once('.'));
        if let Some(n) = n.and_then(|(n, _)| n.parse::<usize>().ok())
            && let Some(p) = present.get_mut(n)
        {
            *p = true;
        }
    }
    // Layer 0 may lack tensors here: the loader names the first one missing.
    match (1..layers).find(|&l| !present.get(l as usize).copied().unwrap_or(false)) {
        None => Ok(()),
        Some(l) => Err(Error::file(
            g.path(),
            format!("{key} is {layers}, but the file has no tensors for layer {l} (no blk.{l}.*)"),
        )),
    }
}

/// The GGUF name of a Hugging Face tensor name. Gemma's `post_attention_layernorm` is on the
/// attention output (llama.cpp's `post_attention_norm`), where Llama's is before the MLP.
fn gguf_name(hf: &str, gemma: bool) -> Option<String> {
    let top = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "lm_head.weight" => Some("output.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        _ => None,
    };
    if let Some(t) = top {
        return Some(t.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (n, part) = rest.split_once('.')?;
    let (module, kind) = part.rsplit_once('.')?;
    let g = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" if gemma => "post_attention_norm",
        "pre_feedforward_layernorm" if gemma => "ffn_norm",
        "post_feedforward_layernorm" if gemma => "post_ffw_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{n}.{g}.{kind}"))
}

fn dtype_of(t: GgmlType) -> Option<DType> {
    Some(match t {
        GgmlType::F32 => DType::F32,
        GgmlType::F16 => DType::F16,
        GgmlType::BF16 => DType::BF16,
        GgmlType::Q8_0 => DType::Q8_0,
        GgmlType::Q4_0 => DType::Q4_0,
        GgmlType::Q4_1 => DType::Q4_1,
        GgmlType::Q5_0 => DType::Q5_0,
        GgmlType::Q4_K => DType::Q4_K,
        GgmlType::Q6_K => DType::Q6_K,
        GgmlType::Q5_1 => DType::Q5_1,
        GgmlType::Q5_K => DType::Q5_K,
        GgmlType::Q2_K => DType::Q2_K,
        GgmlType::Q3_K => DType::Q3_K,
        GgmlType::IQ4_NL => DType::IQ4_NL,
        GgmlType::IQ4_XS => DType::IQ4_XS,
        _ => return None,
    })
}

/// Undoes llama.cpp's Q/K row permutation: within each head, GGUF row `2j + half` is Hugging
/// Face row `half · head_dim/2 + j`.
fn unpermute_rows(data: &[u8], rows: usize, heads: usize) -> Option<Vec<u8>> {
    // Zero rows would divide by zero below (found by fuzz/: gguf).
    if heads == 0
        || rows == 0
        || !rows.is_multiple_of(heads)
        || !(rows / heads).is_multiple_of(2)
        || !data.len().is_multiple_of(rows.max(1))
    {
        return None;
    }
    let (hd, row_bytes) = (rows / heads, data.len() / rows);
    let mut out = vec![0u8; data.len()];
    for h in 0..heads {
        for half in 0..2 {
            for j in 0..hd / 2 {
                let src = h * hd + 2 * j + half;
                let dst = h * hd + half * (hd / 2) + j;
                out[dst * row_bytes..(dst + 1) * row_bytes]
                    .copy_from_slice(&data[src * row_bytes..(src + 1) * row_bytes]);
            }
        }
    }
    Some(out)
}

/// The tensors of a GGUF file, looked up by Hugging Face name.
pub struct GgufWeights<'a> {
    g: &'a Gguf,
    /// Heads for the Q and K un-permutation; `None` for architectures llama.cpp doesn't permute.
    permute: Option<(usize, usize)>,
    /// llama.cpp stores Gemma's norm weights as 1 + w; they are given back as w (as
    /// transformers' GGUF loader does), the form the loader expects of every checkpoint.
    gemma: bool,
}

impl<'a> GgufWeights<'a> {
    pub fn new(g: &'a Gguf, cfg: &ModelConfig) -> Result<GgufWeights<'a>> {
        let permute = (g.architecture()? == "llama").then_some((cfg.num_heads, cfg.num_kv_heads));
        let gemma = g.architecture()? == "gemma3";
        Ok(GgufWeights { g, permute, gemma })
    }
}

impl WeightSource for GgufWeights<'_> {
    fn config_source(&self) -> &'static str {
        "its metadata"
    }
    fn get(&self, name: &str) -> Result<Option<RawTensor<'_>>> {
        let Some(info) = gguf_name(name, self.gemma).and_then(|n| self.g.tensor(&n)) else {
            return Ok(None);
        };
        let dtype = dtype_of(info.ggml_type).ok_or_else(|| {
            Error::file(
                self.g.path(),
                format!(
                    "tensor {} has type {:?}, which edgerl cannot load yet (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS)",
                    info.name, info.ggml_type
                ),
            )
        })?;
        let shape: Vec<usize> = info.dims.iter().rev().map(|&d| d as usize).collect();
        let mut data = Cow::Borrowed(self.g.data(info));
        let heads = match (self.permute, name) {
            (Some((q, _)), n) if n.contains("self_attn.q_proj.") => Some(q),
            (Some((_, k)), n) if n.contains("self_attn.k_proj.") => Some(k),
            _ => None,
        };
        if let Some(heads) = heads {
            let rows = shape.first().copied().unwrap_or(0);
            let fixed = unpermute_rows(&data, rows, heads).ok_or_else(|| {
                Error::file(
                    self.g.path(),
                    format!(
                        "tensor {}: {rows} rows don't split into {heads} heads of even size",
                        info.name
                    ),
                )
            })?;
            data = Cow::Owned(fixed);
        }
        if self.gemma && name.ends_with("norm.weight") {
            if dtype != DType::F32 || !data.len().is_multiple_of(4) {
                return Err(Error::file(
                    self.g.path(),
                    format!("norm tensor {} is {dtype:?}, expected F32", info.name),
                ));
            }
            let w: Vec<f32> = data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) - 1.0)
                .collect();
            data = Cow::Owned(bytemuck::cast_slice(&w).to_vec());
        }
        Ok(Some(RawTensor {
            dtype,
            shape,
            data,
            origin: self.g.path().to_path_buf(),
        }))
    }

    fn has(&self, name: &str) -> bool {
        gguf_name(name, self.gemma).is_some_and(|n| self.g.tensor(&n).is_some())
    }

    /// From the tensor directory alone (no data read, no Q/K un-permutation).
    fn dtype_of(&self, name: &str) -> Result<Option<DType>> {
        let Some(info) = gguf_name(name, self.gemma).and_then(|n| self.g.tensor(&n)) else {
            return Ok(None);
        };
        dtype_of(info.ggml_type).map(Some).ok_or_else(|| {
            Error::file(
                self.g.path(),
                format!(
                    "tensor {} has type {:?}, which edgerl cannot load yet",
                    info.name, info.ggml_type
                ),
            )
        })
    }

    fn origin(&self) -> PathBuf {
        self.g.path().to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways_we_need() {
        assert_eq!(
            gguf_name("model.layers.3.self_attn.q_proj.weight", false).unwrap(),
            "blk.3.attn_q.weight"
        );
        assert_eq!(
            gguf_name("model.layers.0.mlp.down_proj.weight", false).unwrap(),
            "blk.0.ffn_down.weight"
        );
        assert_eq!(
            gguf_name("model.layers.12.self_attn.k_proj.bias", false).unwrap(),
            "blk.12.attn_k.bias"
        );
        assert_eq!(
            gguf_name("model.norm.weight", false).unwrap(),
            "output_norm.weight"
        );
        assert!(gguf_name("model.layers.0.foo.weight", false).is_none());
        // Gemma's sandwich norms; Llama has no pre/post feed-forward norms.
        let gemma = |n: &str| gguf_name(&format!("model.layers.2.{n}.weight"), true);
        assert_eq!(gemma("post_attention_layernorm").unwrap(), "blk.2.post_attention_norm.weight");
        assert_eq!(gemma("pre_feedforward_layernorm").unwrap(), "blk.2.ffn_norm.weight");
        assert_eq!(gemma("post_feedforward_layernorm").unwrap(), "blk.2.post_ffw_norm.weight");
        assert!(gguf_name("model.layers.2.post_feedforward_layernorm.weight", false).is_none());
    }

    /// llama.cpp's permute, written from its definition: reshape(heads, 2, hd/2) → swap → flatten.
    fn permute(rows: &[u32], heads: usize) -> Vec<u32> {
        let hd = rows.len() / heads;
        let mut out = Vec::new();
        for h in 0..heads {
            for j in 0..hd / 2 {
                for half in 0..2 {
                    out.push(rows[h * hd + half * (hd / 2) + j]);
                }
            }
        }
        out
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        for (rows, heads) in [(8, 1), (12, 3), (24, 2)] {
            let hf: Vec<u32> = (0..rows as u32).collect();
            let gg = permute(&hf, heads);
            let bytes: Vec<u8> = gg
                .iter()
                .flat_map(|r| [*r as u8, 0, (*r >> 8) as u8])
                .collect();
            let back = unpermute_rows(&bytes, rows, heads).unwrap();
            let got: Vec<u32> = back
                .chunks(3)
                .map(|c| c[0] as u32 | (c[2] as u32) << 8)
                .collect();
            assert_eq!(got, hf, "rows {rows} heads {heads}");
        }
        assert!(unpermute_rows(&[0; 6], 3, 1).is_none(), "odd head size");
    }
}
