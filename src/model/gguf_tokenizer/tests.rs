//! Tokenizers built from tiny GGUF vocabularies: pre-tokenizer per type, added tokens, BOS,
//! re-spelling, and the errors; sentencepiece vocabularies in spm.rs. (The real SmolLM2 and
//! Gemma 3 vocabularies are checked against transformers in tests/gguf_tokenizer.rs.)

use std::path::Path;

use super::*;
use crate::model::gguf::writer::Writer;
use crate::model::gguf::{Array, Value};

mod spm;

const SPECIALS: [(&str, i32); 5] = [
    ("<|endoftext|>", 3),
    ("<|im_start|>", 3),
    ("<|im_end|>", 3),
    ("<think>", 4),
    ("<｜bad｜>", 3),
];
const MERGES: [&str; 16] = [
    "h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "Ġ Ġ", "Ġ 3", "1 2",
    "12 3", "4 5", "a b", "Ġ a",
];

/// Specials (ids 0-4), the 256 byte characters (5-260), one token per merge, then "xyz" and
/// "x y" (an unmerged token, and one with a space that gets re-spelled).
fn vocab() -> (Vec<String>, Vec<i32>) {
    let mut toks: Vec<String> = SPECIALS.iter().map(|s| s.0.to_string()).collect();
    let mut types: Vec<i32> = SPECIALS.iter().map(|s| s.1).collect();
    toks.extend((0..=255u8).map(|b| byte_char(b).to_string()));
    toks.extend(MERGES.iter().map(|m| m.replace(' ', "")));
    toks.push("xyz".into());
    toks.push("x y".into());
    types.resize(toks.len(), 1);
    (toks, types)
}

fn writer(pre: Option<&str>) -> Writer {
    let (toks, types) = vocab();
    let mut w = Writer::new()
        .kv("tokenizer.ggml.model", Value::Str("gpt2".into()))
        .kv("tokenizer.ggml.tokens", Value::Array(Array::Str(toks)))
        .kv("tokenizer.ggml.token_type", Value::Array(Array::I32(types)))
        .kv(
            "tokenizer.ggml.merges",
            Value::Array(Array::Str(MERGES.iter().map(|m| m.to_string()).collect())),
        )
        .kv("tokenizer.ggml.bos_token_id", Value::U32(1))
        .kv("tokenizer.ggml.eos_token_id", Value::U32(2));
    if let Some(p) = pre {
        w = w.kv("tokenizer.ggml.pre", Value::Str(p.into()));
    }
    w
}

fn gguf(w: Writer) -> Gguf {
    Gguf::from_bytes(Path::new("tok.gguf"), w.bytes()).unwrap()
}

fn build(w: Writer) -> tokenizers::Tokenizer {
    tokenizer_from_gguf(&gguf(w)).unwrap()
}

fn tokens(t: &tokenizers::Tokenizer, text: &str) -> Vec<String> {
    let ids = t.encode(text, true).unwrap().get_ids().to_vec();
    ids.iter().map(|&i| t.id_to_token(i).unwrap()).collect()
}

fn build_err(w: Writer) -> String {
    match tokenizer_from_gguf(&gguf(w)) {
        Ok(_) => panic!("built a tokenizer"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn byte_alphabet() {
    assert_eq!(byte_char(b' '), 'Ġ');
    assert_eq!(byte_char(b'\n'), 'Ċ');
    assert_eq!(byte_char(b'a'), 'a');
    assert_eq!(byte_char(0xad), '\u{143}');
    let all: std::collections::HashSet<char> = (0..=255u8).map(byte_char).collect();
    assert_eq!(all.len(), 256);
    assert!(all.iter().all(|&c| in_byte_alphabet(c)));
    assert_eq!(respell("Ġhello"), "Ġhello");
    assert_eq!(respell("x y"), "xĠy");
    assert_eq!(respell("é"), "é"); // in the alphabet: kept, as transformers does
    assert_eq!(respell("日"), "æĹ¥");
}

#[test]
fn pre_tokenizers_split_as_llama_cpp() {
    let cases: [(Option<&str>, [&[&str]; 3]); 4] = [
        (None, [&["a", "Ġ", "Ġ3"], &["123", "45"], &["x", "y", "z"]]),
        (
            Some("smollm"),
            [
                &["a", "ĠĠ", "3"],
                &["1", "2", "3", "4", "5"],
                &["x", "y", "z"],
            ],
        ),
        (
            Some("qwen2"),
            [
                &["a", "Ġ", "Ġ", "3"],
                &["1", "2", "3", "4", "5"],
                &["x", "y", "z"],
            ],
        ),
        (
            Some("llama-bpe"),
            [
                &["<|im_start|>", "a", "Ġ", "Ġ", "3"],
                &["<|im_start|>", "123", "45"],
                &["<|im_start|>", "xyz"],
            ],
        ),
    ];
    for (pre, want) in cases {
        let t = build(writer(pre));
        for (text, w) in ["a  3", "12345", "xyz"].iter().zip(want) {
            assert_eq!(tokens(&t, text), w, "pre {pre:?}, text {text:?}");
        }
        assert_eq!(
            tokens(&t, "hello world").last().unwrap(),
            "Ġworld",
            "pre {pre:?}"
        );
        let ids = t.encode("hello world\n", false).unwrap().get_ids().to_vec();
        assert_eq!(t.decode(&ids, true).unwrap(), "hello world\n");
    }
    for name in ["gpt2", "gpt-2", "default"] {
        assert_eq!(tokens(&build(writer(Some(name))), "a  3"), ["a", "Ġ", "Ġ3"]);
    }
    assert_eq!(
        tokens(&build(writer(Some("deepseek-r1-qwen"))), "a  3").len(),
        4
    );
}

#[test]
fn added_tokens() {
    let t = build(writer(Some("smollm")));
    let ids = t
        .encode("<|im_start|>hello<|im_end|><think>x<|endoftext|>", true)
        .unwrap()
        .get_ids()
        .to_vec();
    assert_eq!(ids[..2], [1, t.token_to_id("hello").unwrap()]);
    assert_eq!(ids[2..4], [2, 3]);
    assert_eq!(*ids.last().unwrap(), 0);
    // Specials are dropped on decode; the user-defined <think> is kept.
    assert_eq!(t.decode(&ids, true).unwrap(), "hello<think>x");
    // A control token outside the byte alphabet is not special (transformers skips it), and its
    // vocabulary entry is re-spelled, like "x y".
    let bad = tokens(&t, "<｜bad｜>");
    assert!(bad.len() > 3, "{bad:?}");
    assert_eq!(t.token_to_id(&respell("<｜bad｜>")), Some(4));
    assert_eq!(
        t.token_to_id("xĠy"),
        Some(5 + 256 + MERGES.len() as u32 + 1)
    );
    assert_eq!(t.get_vocab_size(true), 5 + 256 + MERGES.len() + 2);
}

#[test]
fn bos_and_eos_from_flags() {
    let t = build(writer(Some("smollm")).kv("tokenizer.ggml.add_bos_token", Value::Bool(true)));
    assert_eq!(tokens(&t, "ab"), ["<|im_start|>", "ab"]);
    assert_eq!(t.encode("ab", false).unwrap().get_ids().len(), 1);
    let t = build(
        writer(Some("smollm"))
            .kv("tokenizer.ggml.add_bos_token", Value::Bool(true))
            .kv("tokenizer.ggml.add_eos_token", Value::Bool(true)),
    );
    assert_eq!(tokens(&t, "ab"), ["<|im_start|>", "ab", "<|im_end|>"]);
    // Llama-3's pre-tokenizer adds BOS unless the file says not to.
    let t = build(writer(Some("llama3")).kv("tokenizer.ggml.add_bos_token", Value::Bool(false)));
    assert_eq!(tokens(&t, "ab"), ["ab"]);
    assert_eq!(tokens(&build(writer(None)), "ab"), ["ab"]);
}

#[test]
fn info() {
    let g = gguf(
        writer(Some("smollm"))
            .kv("tokenizer.ggml.padding_token_id", Value::U32(99_999))
            .kv(
                "tokenizer.chat_template",
                Value::Str("{{ messages }}".into()),
            ),
    );
    let i = GgufTokenizerInfo::read(&g).unwrap();
    assert_eq!((i.bos, i.eos, i.pad), (Some(1), Some(2), None));
    assert_eq!(i.bos_token.as_deref(), Some("<|im_start|>"));
    assert_eq!(i.eos_token.as_deref(), Some("<|im_end|>"));
    assert!(!i.add_bos && !i.add_eos);
    assert_eq!(i.chat_template.as_deref(), Some("{{ messages }}"));
}

#[test]
fn wrapper_from_gguf() {
    let template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    let g = gguf(writer(Some("smollm")).kv("tokenizer.chat_template", Value::Str(template.into())));
    let t = crate::model::Tokenizer::from_gguf(&g).unwrap();
    assert_eq!(t.eos_token_id, Some(2));
    let ids = t.chat_ids("hello").unwrap();
    assert_eq!(
        ids[..3],
        [
            1,
            t.inner.token_to_id("u").unwrap(),
            t.inner.token_to_id("s").unwrap()
        ]
    );
    assert_eq!(ids.iter().filter(|&&i| i == 1).count(), 2);
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 1);
    let t = crate::model::Tokenizer::from_gguf(&gguf(writer(None))).unwrap();
    assert!(t.template.is_none());
}

#[test]
fn errors() {
    let w = writer(None);
    // `w` with `key` set to `v`.
    let with = |w: &Writer, key: &str, v: Value| {
        let mut w = Writer {
            kv: w.kv.clone(),
            tensors: Vec::new(),
            ..Writer::new()
        };
        w.kv.retain(|(k, _, _)| k != key);
        w.kv(key, v)
    };
    let e = build_err(with(&w, "tokenizer.ggml.model", Value::Str("t5".into())));
    assert_eq!(
        e,
        "tok.gguf: tokenizer.ggml.model 't5' (unigram) is not supported yet (only 'gpt2', byte-level BPE, and 'llama', sentencepiece)"
    );
    let e = build_err(with(&w, "tokenizer.ggml.model", Value::U32(2)));
    assert!(
        e.contains("metadata key tokenizer.ggml.model is u32 2, expected a string"),
        "{e}"
    );
    let e = build_err(with(&w, "tokenizer.ggml.pre", Value::Str("foo".into())));
    assert!(
        e.contains("tokenizer.ggml.pre 'foo' is not supported (supported: gpt2, gpt-2, default, smollm, qwen2"),
        "{e}"
    );
    let mut no_merges = with(&w, "x", Value::U8(0));
    no_merges
        .kv
        .retain(|(k, _, _)| k != "tokenizer.ggml.merges");
    assert!(build_err(no_merges).contains("tokenizer.ggml.merges is missing"));
    let e = build_err(with(
        &w,
        "tokenizer.ggml.merges",
        Value::Array(Array::Str(vec!["h e".into(), "a b c".into()])),
    ));
    assert!(
        e.contains("tokenizer.ggml.merges[1] \"a b c\" is not two tokens"),
        "{e}"
    );
    let e = build_err(with(
        &w,
        "tokenizer.ggml.merges",
        Value::Array(Array::Str(vec!["h q".into()])),
    ));
    assert!(e.contains("cannot build the tokenizer"), "{e}");
    let e = build_err(with(
        &w,
        "tokenizer.ggml.token_type",
        Value::Array(Array::I32(vec![1; 3])),
    ));
    assert!(
        e.contains("token_type has 3 entries but tokenizer.ggml.tokens has"),
        "{e}"
    );
    let mut no_bos = with(&w, "tokenizer.ggml.add_bos_token", Value::Bool(true));
    no_bos
        .kv
        .retain(|(k, _, _)| k != "tokenizer.ggml.bos_token_id");
    assert!(
        build_err(no_bos)
            .contains("add_bos_token is true, but tokenizer.ggml.bos_token_id is not set")
    );
    let mut no_tokens = with(&w, "x", Value::U8(0));
    no_tokens
        .kv
        .retain(|(k, _, _)| k != "tokenizer.ggml.tokens");
    assert!(build_err(no_tokens).contains("metadata key tokenizer.ggml.tokens is missing"));
}
