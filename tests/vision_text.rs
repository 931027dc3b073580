//! The text side of a vision-language model (Idefics3 / SmolVLM) against transformers, through
//! tests/fixtures/vision_text (made by make_vision_text_fixture.py): the text model loads from
//! the Idefics3 checkpoint (`model.text_model.*`, `text_config`), image features replace the
//! image token's rows in order, and per-token log-probs and greedy ids then match the full
//! model run with pixel values. The features come from the fixture (the vision tower is tested
//! on its own in tests/vision_tower.rs).

mod common;

use edgerl::model::weights::SafetensorsWeights;
use edgerl::model::{Model, ModelConfig};
use serde_json::Value;

fn fixture() -> (std::path::PathBuf, Value) {
    let dir = common::fixtures().join("vision_text");
    let r = std::fs::read_to_string(dir.join("reference.json")).unwrap();
    (dir.join("model"), serde_json::from_str(&r).unwrap())
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn the_text_model_loads_from_an_idefics3_checkpoint() {
    let (dir, _) = fixture();
    let cfg = ModelConfig::from_file(&dir.join("config.json")).unwrap();
    assert_eq!(cfg.image_token_id, Some(63));
    assert_eq!((cfg.hidden_size, cfg.num_layers, cfg.vocab_size), (32, 2, 64));
    assert!(!cfg.tie_word_embeddings);
    assert!(cfg.tensors().all(|t| t.name.starts_with("model.text_model.") || t.name == "lm_head.weight"));
}

#[test]
fn image_features_fill_the_image_rows_as_transformers_does() {
    let (dir, r) = fixture();
    let ids: Vec<u32> = nums(&r["ids"]).iter().map(|&x| x as u32).collect();
    let features: Vec<f32> = nums(&r["features"]).iter().map(|&x| x as f32).collect();
    let want = nums(&r["logprobs"]);
    let want_text = nums(&r["text_logprobs"]);
    let greedy: Vec<u32> = nums(&r["greedy"]).iter().map(|&x| x as u32).collect();
    // The images matter: without them the log-probs after the first image differ.
    assert!(want.iter().zip(&want_text).skip(3).any(|(a, b)| (a - b).abs() > 1e-2));
    let targets: Vec<Option<u32>> = ids[1..].iter().map(|&i| Some(i)).collect();
    for gpu in common::model_gpus() {
        let cfg = ModelConfig::from_file(&dir.join("config.json")).unwrap();
        let model = Model::load(gpu, cfg, &SafetensorsWeights::open(&dir).unwrap(), None).unwrap();
        let feats = gpu.upload(bytemuck::cast_slice(&features), "image features").unwrap();

        let mut cache = model.new_cache(gpu, ids.len() + greedy.len()).unwrap();
        let hidden = model.forward_with_images(gpu, &ids, Some(&feats), &mut cache, None).unwrap();
        let got = model.target_logprobs(gpu, &hidden, &targets, 1.0).unwrap();
        let got: Vec<f32> = got.into_iter().collect();
        let want32: Vec<f32> = want.iter().map(|&x| x as f32).collect();
        common::assert_close("log-probs with images", &got, &want32, 1e-4, 1e-4);

        // Greedy decoding from the prompt: the images are in the cache, new tokens are text.
        let mut next = argmax(&model.row_logits(gpu, &hidden, ids.len() - 1).unwrap());
        let mut out = vec![next];
        while out.len() < greedy.len() {
            let h = model.forward(gpu, &[next], &mut cache, None).unwrap();
            next = argmax(&model.row_logits(gpu, &h, 0).unwrap());
            out.push(next);
        }
        assert_eq!(out, greedy, "greedy ids on {}", gpu.adapter.name);

        // Without features the image tokens are plain tokens, as transformers without pixels.
        let mut cache = model.new_cache(gpu, ids.len()).unwrap();
        let hidden = model.forward(gpu, &ids, &mut cache, None).unwrap();
        let got = model.target_logprobs(gpu, &hidden, &targets, 1.0).unwrap();
        let want32: Vec<f32> = want_text.iter().map(|&x| x as f32).collect();
        common::assert_close("log-probs without images", &got, &want32, 1e-4, 1e-4);
    }
}

#[test]
fn feature_rows_must_match_the_image_tokens() {
    let (dir, r) = fixture();
    let ids: Vec<u32> = nums(&r["ids"]).iter().map(|&x| x as u32).collect();
    let gpu = &common::backends().normal[0];
    let cfg = ModelConfig::from_file(&dir.join("config.json")).unwrap();
    let model = Model::load(gpu, cfg, &SafetensorsWeights::open(&dir).unwrap(), None).unwrap();
    let seven = gpu.upload(&vec![0u8; 7 * 32 * 4], "features").unwrap();
    let mut cache = model.new_cache(gpu, ids.len()).unwrap();
    let err = model.forward_with_images(gpu, &ids, Some(&seven), &mut cache, None).unwrap_err();
    assert!(err.to_string().contains("8 image tokens but the images give 7"), "{err}");
}

fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = i;
        }
    }
    best as u32
}

#[test]
fn idefics3_configs_are_checked() {
    let (dir, _) = fixture();
    let good: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    // SmolVLM's text_config names an architecture of its own; its model_type decides.
    let mut smolvlm = good.clone();
    smolvlm["text_config"]["architectures"] = serde_json::json!(["VLlama3ForCausalLM"]);
    smolvlm["tie_word_embeddings"] = serde_json::json!(true);
    let c = ModelConfig::from_json(&smolvlm).unwrap();
    assert!(c.tie_word_embeddings && c.text_prefix == "model.text_model.");
    for (edit, needle) in [
        (serde_json::json!({"text_config": null}), "text_config"),
        (serde_json::json!({"image_token_id": null}), "image_token_id"),
        (serde_json::json!({"image_token_id": 64}), "outside the text model's vocabulary of 64"),
        (serde_json::json!({"image_token_id": "x"}), "image_token_id"),
    ] {
        let mut v = good.clone();
        for (k, x) in edit.as_object().unwrap() {
            v[k] = x.clone();
        }
        let e = ModelConfig::from_json(&v).unwrap_err();
        assert!(e.contains(needle), "{edit}: {e}");
    }
    let mut bad = good.clone();
    bad["text_config"]["hidden_size"] = serde_json::json!(0);
    assert!(ModelConfig::from_json(&bad).is_err());
}
