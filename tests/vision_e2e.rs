//! A vision-language model end to end against transformers, through the tiny SmolVLM-shaped
//! directory in tests/fixtures/vision_e2e (made by make_tiny_smolvlm.py from PNG files):
//! image files → processor → vision tower → image features in the text model's image-token
//! rows. `edgerl score --image` gives the processor's ids and the model's log-probs,
//! `edgerl generate --chat … --image` its greedy ids, and the library does the same on every
//! backend (and with weights split across bindings).

mod common;

use std::path::PathBuf;

use edgerl::model::LoadedModel;
use edgerl::vision::preprocess::RgbImage;
use serde_json::Value;

fn dir() -> PathBuf {
    common::fixtures().join("vision_e2e")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("reference.json")).unwrap()).unwrap()
}

fn image(name: &str) -> PathBuf {
    common::fixtures().join("vision/images").join(name)
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

#[test]
fn score_with_images_matches_transformers() {
    let model = dir().join("model");
    for case in reference()["score"].as_array().unwrap() {
        let mut args = vec!["score", "--model", model.to_str().unwrap(), "--text", case["text"].as_str().unwrap(), "--json"];
        let files: Vec<String> = case["images"].as_array().unwrap().iter()
            .map(|n| image(n.as_str().unwrap()).display().to_string()).collect();
        for f in &files {
            args.extend(["--image", f.as_str()]);
        }
        let (code, stdout, stderr) = common::edgerl(&args);
        assert_eq!(code, 0, "{stderr}");
        let got: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(u32s(&got["ids"]), u32s(&case["ids"]), "ids of {}", case["text"]);
        common::assert_close("log-probs", &f32s(&got["token_logprobs"]), &f32s(&case["logprobs"]), 1e-4, 1e-4);
    }
}

#[test]
fn generate_with_an_image_matches_transformers() {
    let chat = &reference()["chat"];
    let model = dir().join("model");
    let img = image(chat["images"][0].as_str().unwrap());
    let (code, stdout, stderr) = common::edgerl(&[
        "generate", "--model", model.to_str().unwrap(), "--chat", chat["user"].as_str().unwrap(),
        "--image", img.to_str().unwrap(), "--temperature", "0", "--max-new-tokens", "6", "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let got: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(u32s(&got["new_ids"]), u32s(&chat["greedy"]));
}

#[test]
fn every_backend_and_split_weights_agree() {
    let case = &reference()["score"][1];
    let images: Vec<RgbImage> = case["images"].as_array().unwrap().iter()
        .map(|n| RgbImage::open(&image(n.as_str().unwrap())).unwrap()).collect();
    let ids = u32s(&case["ids"]);
    let targets: Vec<Option<u32>> = ids[1..].iter().map(|&i| Some(i)).collect();
    for gpu in common::model_gpus() {
        let m = LoadedModel::open(gpu, &dir().join("model"), None).unwrap();
        let (got_ids, features) = m.encode_with_images(gpu, case["text"].as_str().unwrap(), &images, true).unwrap();
        assert_eq!(got_ids, ids);
        let mut cache = m.model.new_cache(gpu, ids.len()).unwrap();
        let hidden = m.model.forward_with_images(gpu, &ids, features.as_ref(), &mut cache, None).unwrap();
        let lp = m.model.target_logprobs(gpu, &hidden, &targets, 1.0).unwrap();
        common::assert_close(&format!("log-probs on {}", gpu.adapter.name), &lp, &f32s(&case["logprobs"]), 1e-4, 1e-4);
    }
}

#[test]
fn image_mistakes_are_clear_errors() {
    let model = dir().join("model");
    let m = model.to_str().unwrap();
    let png = image("gray_13x11.png");
    let png = png.to_str().unwrap();
    let text_model = common::fixtures().join("models/llama_f32");
    for (args, needle) in [
        (vec!["score", "--model", m, "--text", "<image> and <image>", "--image", png], "placeholder"),
        (vec!["score", "--model", m, "--text", "<image>", "--image", "/no/such.png"], "/no/such.png"),
        (vec!["score", "--model", text_model.to_str().unwrap(), "--text", "hi", "--image", png], "no vision tower"),
    ] {
        let (code, _, stderr) = common::edgerl(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn info_names_the_vision_tower() {
    let (code, stdout, stderr) = common::edgerl(&["info", "--json", "--model", dir().join("model").to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    let vision = v["model"]["vision"].as_str().unwrap();
    assert!(vision.contains("1 layers, hidden 64, patch 4") && vision.contains("16x16 tiles"), "{vision}");
}
