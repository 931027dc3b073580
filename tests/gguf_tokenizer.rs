//! The tokenizer edgerl builds from SmolLM2-135M-Instruct.Q4_1.gguf's metadata against ids from
//! transformers' own GGUF tokenizer and chat template (tests/fixtures/gguf/smollm2_tokenizer.json,
//! made by tests/fixtures/gguf/make_gguf_tokenizer_fixture.py).
//!
//! The file is $EDGERL_SMOLLM2_GGUF, else `edgerl fetch smollm2`'s cache. Without it the test
//! is skipped, except in CI (env CI set), where it fails.
//!
//! transformers 5.24 ignores `tokenizer.ggml.pre = smollm` and splits text with plain GPT-2 rules;
//! llama.cpp and SmolLM2's own tokenizer.json split every digit off first. Where the two disagree
//! the fixture marks the case `transformers_differs` and also holds `ids_smollm2` (transformers'
//! tokenizer with SmolLM2's pre-tokenizer) and `ids_llama_cpp` (llama.cpp's tokenize); edgerl
//! follows llama.cpp there.

mod common;

use std::time::Instant;

use edgerl::data::Message;
use edgerl::model::Tokenizer;
use edgerl::model::gguf::Gguf;
use serde_json::Value;

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The ids edgerl must produce: transformers', or llama.cpp's where transformers ignores the
/// `smollm` pre-tokenizer. Also checks the fixture's sources against each other.
fn expected(case: &Value, what: &str) -> Vec<u32> {
    let hf = ids(&case["ids"]);
    let smollm2 = ids(&case["ids_smollm2"]);
    let differs = case["transformers_differs"].as_bool().unwrap();
    assert_eq!(differs, hf != smollm2, "fixture flag of {what}");
    if let Some(llama) = case.get("ids_llama_cpp") {
        assert_eq!(
            ids(llama),
            smollm2,
            "fixture: llama.cpp vs SmolLM2 on {what}"
        );
    }
    if differs {
        eprintln!("transformers ignores pre=smollm on {what}: expecting llama.cpp's ids");
    }
    smollm2
}

#[test]
fn smollm2_gguf_tokenizer_matches_transformers() {
    let Some(path) = common::smollm2_gguf() else {
        return;
    };
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gguf/smollm2_tokenizer.json");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();

    let t0 = Instant::now();
    let g = Gguf::open(&path).unwrap();
    let t1 = Instant::now();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    eprintln!(
        "open {:.1} ms, tokenizer {:.1} ms",
        (t1 - t0).as_secs_f64() * 1e3,
        t1.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(tok.eos_token_id, Some(2));
    assert_eq!(tok.inner.get_vocab_size(true), 49152);

    let cases = r["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let mut differing = 0;
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want = expected(case, &format!("{text:?}"));
        differing += case["transformers_differs"].as_bool().unwrap() as usize;
        assert_eq!(tok.encode(text, true).unwrap(), want, "ids of {text:?}");
        let plain = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s, ""));
        assert_eq!(tok.decode(&want).unwrap(), plain, "decode of {text:?}");
    }
    // "a  3 ..." and "... ٣٤ and ①②" (whitespace before a digit).
    assert_eq!(differing, 2, "cases where transformers ignores pre=smollm");

    let chats = r["chat"].as_array().unwrap();
    assert!(!chats.is_empty());
    for chat in chats {
        let messages: Vec<Message> = chat["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| Message {
                role: m["role"].as_str().unwrap().into(),
                content: m["content"].as_str().unwrap().into(),
            })
            .collect();
        // A conversation that ends with the assistant is continued (no generation prompt).
        if messages.last().unwrap().role != "assistant" {
            let rendered = tok
                .template
                .as_ref()
                .unwrap()
                .render(&messages, true)
                .unwrap();
            assert_eq!(
                rendered,
                chat["rendered"].as_str().unwrap(),
                "chat template"
            );
        }
        let want = expected(chat, "a chat");
        assert_eq!(tok.messages_ids(&messages).unwrap(), want, "chat ids");
    }
}
