//! The tensors a checkpoint of a config holds, under their Hugging Face names: written once
//! here and read by the loader (`Model::load`), the planner's weight sizing, the random-weight
//! presets and the fuzzing entry points, so a new family's tensors are added in one place.

use super::config::{Arch, ModelConfig};

/// How a tensor is stored on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [rows, cols], in the checkpoint's type or the override (16-bit or quantized allowed).
    Matrix,
    /// [len], always f32 (norms, biases).
    Vector,
}

/// Whether a checkpoint must hold the tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// A missing one is an error.
    Required,
    /// Loaded when the file has it; checkpoints of this architecture do (an untied lm_head,
    /// Qwen2's q/k/v biases), so random weights include it.
    Usual,
    /// Loaded when the file has it (Llama's `attention_bias` and `mlp_bias`).
    Optional,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub kind: Kind,
    pub presence: Presence,
    /// Gemma's norm weights: the checkpoint stores w, the model scales by 1 + w, so 1 is
    /// added on load.
    pub add_one: bool,
}

impl TensorSpec {
    fn matrix(name: String, rows: usize, cols: usize) -> TensorSpec {
        TensorSpec {
            name,
            shape: vec![rows, cols],
            kind: Kind::Matrix,
            presence: Presence::Required,
            add_one: false,
        }
    }

    fn vector(name: String, len: usize) -> TensorSpec {
        TensorSpec {
            name,
            shape: vec![len],
            kind: Kind::Vector,
            presence: Presence::Required,
            add_one: false,
        }
    }

    fn with(self, presence: Presence) -> TensorSpec {
        TensorSpec { presence, ..self }
    }

    fn norm(self, cfg: &ModelConfig) -> TensorSpec {
        TensorSpec {
            add_one: cfg.norm_plus_one(),
            ..self
        }
    }

    /// May be absent from the file.
    pub fn optional(&self) -> bool {
        self.presence != Presence::Required
    }
}

/// The tensors outside the layers.
pub struct GlobalTensors {
    pub embed: TensorSpec,
    /// `None` when tied: the embedding serves, and a file's lm_head is ignored.
    pub lm_head: Option<TensorSpec>,
    pub norm: TensorSpec,
}

/// The tensors of one layer, in the order they are loaded.
pub struct LayerTensors {
    pub attn_norm: TensorSpec,
    pub q: TensorSpec,
    pub k: TensorSpec,
    pub v: TensorSpec,
    pub o: TensorSpec,
    pub q_bias: TensorSpec,
    pub k_bias: TensorSpec,
    pub v_bias: TensorSpec,
    pub o_bias: TensorSpec,
    pub gate_bias: TensorSpec,
    pub up_bias: TensorSpec,
    pub down_bias: TensorSpec,
    /// Qwen3 and Gemma 3.
    pub q_norm: Option<TensorSpec>,
    pub k_norm: Option<TensorSpec>,
    /// Gemma 3: on the attention block's output.
    pub post_attn_norm: Option<TensorSpec>,
    pub mlp_norm: TensorSpec,
    /// Gemma 3: on the MLP's output.
    pub post_mlp_norm: Option<TensorSpec>,
    pub gate: TensorSpec,
    pub up: TensorSpec,
    pub down: TensorSpec,
}

impl GlobalTensors {
    pub fn into_list(self) -> impl Iterator<Item = TensorSpec> {
        [Some(self.embed), self.lm_head, Some(self.norm)]
            .into_iter()
            .flatten()
    }
}

impl LayerTensors {
    pub fn into_list(self) -> impl Iterator<Item = TensorSpec> {
        let l = self;
        [l.attn_norm, l.q, l.k, l.v, l.o]
            .into_iter()
            .chain([
                l.q_bias,
                l.k_bias,
                l.v_bias,
                l.o_bias,
                l.gate_bias,
                l.up_bias,
                l.down_bias,
            ])
            .chain([l.q_norm, l.k_norm, l.post_attn_norm].into_iter().flatten())
            .chain([l.mlp_norm, l.gate, l.up, l.down])
            .chain(l.post_mlp_norm)
    }
}

impl ModelConfig {
    pub fn global_tensors(&self) -> GlobalTensors {
        let (h, vocab) = (self.hidden_size, self.vocab_size);
        let lm_head = TensorSpec::matrix("lm_head.weight".into(), vocab, h).with(Presence::Usual);
        GlobalTensors {
            embed: TensorSpec::matrix(format!("{}embed_tokens.weight", self.text_prefix), vocab, h),
            lm_head: (!self.tie_word_embeddings).then_some(lm_head),
            norm: TensorSpec::vector(format!("{}norm.weight", self.text_prefix), h).norm(self),
        }
    }

    pub fn layer_tensors(&self, n: usize) -> LayerTensors {
        let (h, hd, i) = (self.hidden_size, self.head_dim, self.intermediate_size);
        let (qd, kvd) = (self.num_heads * hd, self.num_kv_heads * hd);
        let p = |s: &str| format!("{}layers.{n}.{s}", self.text_prefix);
        let (matrix, vector) = (TensorSpec::matrix, TensorSpec::vector);
        // Qwen2ForCausalLM biases q/k/v; Llama's `attention_bias` / `mlp_bias` may bias any.
        let qkv = if self.arch == Arch::Qwen2 {
            Presence::Usual
        } else {
            Presence::Optional
        };
        let bias = |s: &str, len: usize, pr: Presence| vector(p(s), len).with(pr);
        let norm = |s: &str, len: usize| vector(p(s), len).norm(self);
        let qk_norm = |s: &str| self.qk_norm().then(|| norm(s, hd));
        let sandwich = |s: &str| self.sandwich_norms().then(|| norm(s, h));
        // Gemma's `post_attention_layernorm` is on the attention output; Llama's is before the MLP.
        let mlp_norm = if self.sandwich_norms() {
            "pre_feedforward_layernorm.weight"
        } else {
            "post_attention_layernorm.weight"
        };
        LayerTensors {
            attn_norm: norm("input_layernorm.weight", h),
            q: matrix(p("self_attn.q_proj.weight"), qd, h),
            k: matrix(p("self_attn.k_proj.weight"), kvd, h),
            v: matrix(p("self_attn.v_proj.weight"), kvd, h),
            o: matrix(p("self_attn.o_proj.weight"), h, qd),
            q_bias: bias("self_attn.q_proj.bias", qd, qkv),
            k_bias: bias("self_attn.k_proj.bias", kvd, qkv),
            v_bias: bias("self_attn.v_proj.bias", kvd, qkv),
            o_bias: bias("self_attn.o_proj.bias", h, Presence::Optional),
            gate_bias: bias("mlp.gate_proj.bias", i, Presence::Optional),
            up_bias: bias("mlp.up_proj.bias", i, Presence::Optional),
            down_bias: bias("mlp.down_proj.bias", h, Presence::Optional),
            q_norm: qk_norm("self_attn.q_norm.weight"),
            k_norm: qk_norm("self_attn.k_norm.weight"),
            post_attn_norm: sandwich("post_attention_layernorm.weight"),
            mlp_norm: norm(mlp_norm, h),
            post_mlp_norm: sandwich("post_feedforward_layernorm.weight"),
            gate: matrix(p("mlp.gate_proj.weight"), i, h),
            up: matrix(p("mlp.up_proj.weight"), i, h),
            down: matrix(p("mlp.down_proj.weight"), h, i),
        }
    }

    /// Every tensor, in load order: globals, then layer by layer (lazily, as a file's layer
    /// count is only checked against its tensors). Optional ones are listed whether or not a
    /// given file has them.
    pub fn tensors(&self) -> impl Iterator<Item = TensorSpec> + '_ {
        let layers = (0..self.num_layers).flat_map(|n| self.layer_tensors(n).into_list());
        self.global_tensors().into_list().chain(layers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::presets::{PRESETS, preset};

    #[test]
    fn names_are_unique_and_arch_rules_hold() {
        for name in PRESETS {
            let cfg = preset(name).unwrap();
            let all: Vec<_> = cfg.tensors().collect();
            let names: std::collections::HashSet<_> = all.iter().map(|t| &t.name).collect();
            assert_eq!(names.len(), all.len(), "{name}");
            let extra = match cfg.arch {
                Arch::Qwen3 => 2,
                Arch::Gemma3 => 4,
                _ => 0,
            };
            assert_eq!(all.len(), 2 + cfg.num_layers * (16 + extra), "{name}");
            let gemma = cfg.arch == Arch::Gemma3;
            assert!(all.iter().all(|t| !t.add_one || (gemma && t.kind == Kind::Vector)));
            assert_eq!(all.iter().any(|t| t.add_one), gemma, "{name}");
            let q_bias = cfg.layer_tensors(0).q_bias.presence;
            assert_eq!(q_bias == Presence::Usual, cfg.arch == Arch::Qwen2, "{name}");
        }
    }
}
