//! Whole-model numerics against Hugging Face transformers, through the committed fixtures in
//! tests/fixtures (made by make_fixtures.py): token ids, per-token log-probs, greedy ids.

mod common;

use std::path::{Path, PathBuf};

use edgerl::model::{LoadedModel, SamplingOptions, generate};
use serde_json::Value;

const MODELS: [&str; 6] = [
    "llama_f32",
    "qwen2_bf16",
    "qwen3_f16",
    "smollm_tied_f32",
    "llama_bias_bf16",
    "gemma3_f32",
];

fn model_dir(name: &str) -> PathBuf {
    common::fixtures().join("models").join(name)
}

fn reference(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn check_score(name: &str) {
    let dir = model_dir(name);
    let r = reference(&dir);
    for gpu in common::model_gpus() {
        let m = LoadedModel::open(gpu, &dir, None).unwrap();
        for case in r["score"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want_ids = ids(&case["ids"]);
            let got_ids = m.tokenizer.encode(text, true).unwrap();
            assert_eq!(got_ids, want_ids, "{name}: ids of {text:?}");
            let mut cache = m.model.new_cache(gpu, got_ids.len()).unwrap();
            let hidden = m.model.forward(gpu, &got_ids, &mut cache, None).unwrap();
            let targets: Vec<Option<u32>> = got_ids[1..].iter().map(|&i| Some(i)).collect();
            let lp = m
                .model
                .target_logprobs(gpu, &hidden, &targets, 1.0)
                .unwrap();
            common::assert_close(
                &format!(
                    "{name} on {} (binding {}): log-probs of {text:?}",
                    gpu.adapter.backend, gpu.max_binding
                ),
                &lp,
                &floats(&case["token_logprobs"]),
                1e-4,
                0.0,
            );
        }
    }
}

fn check_greedy(name: &str) {
    let dir = model_dir(name);
    let r = reference(&dir);
    for gpu in common::model_gpus() {
        let m = LoadedModel::open(gpu, &dir, None).unwrap();
        for case in r["greedy"].as_array().unwrap() {
            let want_prompt = ids(&case["prompt_ids"]);
            let prompt = if let Some(p) = case["prompt"].as_str() {
                m.tokenizer.encode(p, true).unwrap()
            } else {
                m.tokenizer
                    .chat_ids(case["chat"].as_str().unwrap())
                    .unwrap()
            };
            assert_eq!(prompt, want_prompt, "{name}: prompt ids");
            let want = ids(&case["new_ids"]);
            let margins = floats(&case["margins"]);
            let opts = SamplingOptions {
                max_new_tokens: want.len().max(16),
                temperature: 0.0,
                ..Default::default()
            };
            let got = generate(gpu, &m.model, None, &prompt, &m.eos, &opts).unwrap();
            // Equal up to the first step where the reference's top-2 margin is within noise.
            let exact = margins
                .iter()
                .position(|&d| d <= 1e-3)
                .unwrap_or(want.len());
            assert!(
                got.len() >= exact.min(want.len()),
                "{name}: generated {got:?}, want {want:?}"
            );
            assert_eq!(
                &got[..exact.min(want.len())],
                &want[..exact.min(want.len())],
                "{name} on {}: greedy ids",
                gpu.adapter.backend
            );
            if exact == want.len() {
                assert_eq!(got, want, "{name}: greedy ids (stop)");
            }
        }
    }
}

#[test]
fn llama_f32_matches_transformers() {
    check_score(MODELS[0]);
    check_greedy(MODELS[0]);
}

#[test]
fn qwen2_bf16_sharded_tied_matches_transformers() {
    check_score(MODELS[1]);
    check_greedy(MODELS[1]);
}

#[test]
fn qwen3_f16_matches_transformers() {
    check_score(MODELS[2]);
    check_greedy(MODELS[2]);
}

#[test]
fn smollm_tied_f32_matches_transformers() {
    check_score(MODELS[3]);
    check_greedy(MODELS[3]);
}

#[test]
fn llama_all_biases_llama3_rope_bf16_matches_transformers() {
    check_score(MODELS[4]);
    check_greedy(MODELS[4]);
}

/// Sliding layers with a window (8) shorter than the texts and their own RoPE base, a global
/// layer with linear RoPE scaling, sandwich norms with (1 + w), GELU-tanh, √hidden embeddings.
#[test]
fn gemma3_f32_sliding_window_matches_transformers() {
    check_score(MODELS[5]);
    check_greedy(MODELS[5]);
}
