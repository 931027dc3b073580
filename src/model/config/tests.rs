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

fn gemma() -> Value {
    json!({
        "architectures": ["Gemma3ForCausalLM"], "vocab_size": 10, "hidden_size": 8,
        "intermediate_size": 12, "num_hidden_layers": 7, "num_attention_heads": 2,
        "num_key_value_heads": 1, "head_dim": 6, "sliding_window": 5
    })
}

#[test]
fn gemma3_both_spellings_and_defaults() {
    use LayerAttention::{Full, Sliding};
    // transformers 5: rope per layer type, layer_types listed.
    let mut tf5 = gemma();
    tf5["rope_parameters"] = json!({
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
        "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}});
    tf5["layer_types"] = json!(["sliding_attention", "full_attention", "sliding_attention",
        "sliding_attention", "sliding_attention", "sliding_attention", "full_attention"]);
    let c = ModelConfig::from_json(&tf5).unwrap();
    assert_eq!((c.rope_theta, c.rope_local_theta), (1e6, Some(1e4)));
    assert_eq!(c.rope_scaling, RopeScaling::Linear { factor: 8.0 });
    assert_eq!(c.layer_types[..2], [Sliding, Full]);
    assert_eq!((c.window(0), c.window(1)), (5, 0));
    let (global, local) = (c.inv_freq(), c.local_inv_freq().unwrap());
    assert_eq!(global[0], local[0] / 8.0); // 1 / θ⁰ = 1 in both, scaled in the global one
    assert!(local[1] > 8.0 * global[1]);
    // The Hub's spelling, and the defaults: pattern 6, local base 10,000, scalar 256, GELU.
    let mut hub = gemma();
    hub["rope_theta"] = json!(1e6);
    let c = ModelConfig::from_json(&hub).unwrap();
    let want: Vec<_> = (0..7).map(|i| if i == 5 { Full } else { Sliding }).collect();
    assert_eq!(c.layer_types, want);
    assert_eq!(c.rope_local_theta, Some(1e4));
    assert_eq!(c.query_pre_attn_scalar, Some(256.0));
    assert_eq!(c.attn_scale(), 1.0 / 16.0);
    assert_eq!(c.hidden_act, Activation::GeluTanh);
    assert_eq!(c.embed_scale(), Some(8f32.sqrt()));
    hub["sliding_window_pattern"] = json!(2);
    let c = ModelConfig::from_json(&hub).unwrap();
    assert_eq!(c.layer_types[..3], [Sliding, Full, Sliding]);
    // What it cannot run is refused by name.
    for (key, value, needle) in [
        ("final_logit_softcapping", json!(30.0), "soft-capping"),
        ("attn_logit_softcapping", json!(50.0), "soft-capping"),
        ("layer_types", json!(["full_attention"]), "lists 1 layers"),
        ("layer_types", json!(vec!["chunked_attention"; 7]), "chunked_attention"),
        ("sliding_window", json!(0), "sliding_window"),
        ("hidden_activation", json!("relu"), "relu"),
        ("architectures", json!(["Gemma3ForConditionalGeneration"]), "vision"),
    ] {
        let mut v = gemma();
        v[key] = value;
        let e = ModelConfig::from_json(&v).unwrap_err();
        assert!(e.contains(needle), "{key}: {e}");
    }
}

#[test]
fn qwen2_use_sliding_window_is_honoured() {
    let mut v = base();
    v["num_hidden_layers"] = json!(4);
    v["sliding_window"] = json!(16);
    v["max_window_layers"] = json!(2);
    // Off (the default): no layer slides, whatever `sliding_window` says.
    let c = ModelConfig::from_json(&v).unwrap();
    assert!((0..4).all(|l| c.window(l) == 0));
    assert_eq!(c.sliding_window, None);
    v["use_sliding_window"] = json!(true);
    let c = ModelConfig::from_json(&v).unwrap();
    let w: Vec<usize> = (0..4).map(|l| c.window(l)).collect();
    assert_eq!(w, [0, 0, 16, 16]);
    // Llama has no window; plain Qwen keeps 1/√head_dim and SiLU.
    assert_eq!(c.attn_scale(), 0.5);
    assert_eq!(c.hidden_act, Activation::Silu);
    assert_eq!(c.local_inv_freq(), None);
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
