//! The tokenizers edgerl builds from real GGUF files' metadata against ids from transformers' own
//! GGUF tokenizer and chat template: SmolLM2-135M-Instruct.Q4_1.gguf (byte-level BPE;
//! tests/fixtures/gguf/smollm2_tokenizer.json, made by
//! tests/fixtures/gguf/make_gguf_tokenizer_fixture.py) and gemma-3-270m-q4_k_m.gguf
//! (sentencepiece; tests/fixtures/tokenizers/gemma3_gguf_ids.json, made by
//! tests/fixtures/tokenizers/make_gguf_spm_fixture.py).
//!
//! The files are $EDGERL_SMOLLM2_GGUF / $EDGERL_GEMMA3_GGUF, else `edgerl fetch`'s cache.
//! Without them the tests are skipped, except in CI (env CI set), where they fail.
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

/// The sentencepiece tokenizer edgerl builds from gemma-3-270m-q4_k_m.gguf's metadata against
/// transformers' GGUF tokenizer (tests/fixtures/tokenizers/gemma3_gguf_ids.json, made by
/// tests/fixtures/tokenizers/make_gguf_spm_fixture.py), and the built-in Gemma chat template
/// (the file has none) against transformers' `apply_chat_template` with Gemma 3's template.
///
/// The fixture also holds llama.cpp's ids (a port of its SPM tokenizer) and SentencePiece's (on
/// the file's pieces); they agree with transformers except on runs of more than 31 spaces,
/// where edgerl follows transformers, i.e. the model's tokenizer.json (see
/// src/model/gguf_tokenizer.rs).
#[test]
fn gemma3_gguf_tokenizer_matches_transformers() {
    let Some(path) = common::gemma3_gguf() else {
        return;
    };
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixtures().join("tokenizers/gemma3_gguf_ids.json"))
            .unwrap(),
    )
    .unwrap();

    let t0 = Instant::now();
    let g = Gguf::open(&path).unwrap();
    let t1 = Instant::now();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    eprintln!(
        "open {:.1} ms, tokenizer {:.1} ms",
        (t1 - t0).as_secs_f64() * 1e3,
        t1.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(tok.eos_token_id, Some(1));
    assert_eq!(
        tok.inner.get_vocab_size(true),
        r["vocab_size"].as_u64().unwrap() as usize
    );

    let cases = r["cases"].as_array().unwrap();
    assert!(cases.len() >= 25);
    let mut llama_cpp_differs = Vec::new();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want = ids(&case["ids"]);
        let differs: Vec<&str> = case["differs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        for other in ["ids_llama_cpp", "ids_sentencepiece"] {
            if let Some(o) = case.get(other) {
                assert_eq!(
                    differs.contains(&other),
                    ids(o) != want,
                    "fixture flag {other} of {text:?}"
                );
            }
        }
        if !differs.is_empty() {
            llama_cpp_differs.push(text);
        }
        assert_eq!(tok.encode(text, true).unwrap(), want, "ids of {text:?}");
        assert_eq!(
            tok.encode(text, false).unwrap(),
            want[1..],
            "ids of {text:?} without BOS"
        );
        assert_eq!(
            tok.decode(&want).unwrap(),
            case["decoded"].as_str().unwrap(),
            "decode of {text:?}"
        );
        assert_eq!(
            tok.inner.decode(&want, false).unwrap(),
            case["decoded_with_special"].as_str().unwrap(),
            "decode of {text:?} with special tokens"
        );
    }
    // 40 spaces: llama.cpp and SentencePiece give 31 + 9, the tokenizer.json 16 + 24.
    assert_eq!(llama_cpp_differs, [format!("x{}y", " ".repeat(40))]);

    assert!(
        r["file_chat_template"].is_null(),
        "the file has no chat template"
    );
    let template = tok.template.as_ref().expect("the built-in Gemma template");
    assert_eq!(template.builtin().unwrap().name, "gemma");
    assert_eq!(
        template.builtin().unwrap().source,
        r["chat_template"].as_str().unwrap()
    );
    assert!(
        template
            .source_note()
            .starts_with("built in: Gemma's turn format"),
        "{}",
        template.source_note()
    );
    let chats = r["chat"].as_array().unwrap();
    assert!(chats.len() >= 3);
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
        if chat["add_generation_prompt"].as_bool().unwrap() {
            assert_eq!(
                template.render(&messages, true).unwrap(),
                chat["rendered"].as_str().unwrap(),
                "chat template"
            );
        }
        assert_eq!(
            tok.messages_ids(&messages).unwrap(),
            ids(&chat["ids"]),
            "chat ids"
        );
        // llama.cpp's built-in gemma format, tokenized with its BOS, gives the same ids.
        assert_eq!(ids(&chat["ids_llama_cpp"]), ids(&chat["ids"]), "fixture: llama.cpp's chat");
    }
}
