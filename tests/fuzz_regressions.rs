//! Inputs the cargo-fuzz campaign (fuzz/, `fuzz/run.sh`) found crashing, fed to the same entry
//! points (`edgerl::fuzzing`) on stable Rust so the fixes stay fixed. A regression here is a
//! panic in a parser of outside input. The first test runs each entry point on a small valid
//! input, so the targets' harness itself is exercised in the normal suite.

use edgerl::fuzzing;

#[test]
fn entry_points_accept_valid_inputs() {
    let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend(header);
    st.extend([0u8; 8]);
    fuzzing::safetensors_header(&st);
    fuzzing::gguf(
        b"GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    );
    let config = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models/qwen3_f16/config.json"),
    )
    .unwrap();
    fuzzing::model_config(&config);
    fuzzing::train_toml(b"model = \"m\"\noutput_dir = \"o\"\nrollouts = \"r.jsonl\"\n");
    fuzzing::dataset_lines(
        b"{\"prompt\": \"hi\"}\n{\"prompt\": [{\"role\": \"user\", \"content\": \"x\"}]}\n",
    );
    let tok = edgerl::model::Tokenizer::open(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/qwen3_f16"),
    )
    .unwrap();
    fuzzing::rollout_lines(
        b"{\"prompt_ids\": [1, 2], \"completion_ids\": [[3]], \"rewards\": [1], \"weight\": 1}\n\
          {\"prompt\": \"hi\", \"completions\": [\"a\", \"b\"], \"rewards\": [0, 1], \"weight\": 2}",
        &tok,
        403,
    );
    fuzzing::reward(b"<answer>42</answer> click(20, 30)\0{\"answer\": 42}");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/qwen3_f16");
    fuzzing::tokenizer_json(&std::fs::read(fixture.join("tokenizer.json")).unwrap());
    fuzzing::chat_template(
        b"{% for m in messages %}<|{{ m.role }}|>{{ m.content | trim }}\n{% endfor %}\0hi\0 4 ",
    );
    fuzzing::adapter_config(br#"{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}"#);
    // A version-3 trainer_state.bin body (postcard: version, step 7, tokens 1234, no batch,
    // metrics, cursor 3, 1 skipped, 0 in a row, no fingerprint, no files); the target adds
    // the CRC, and an accepted state must survive its round trip.
    let mut state = b"\x03\x07\xd2\x09\x00\x0f{\"reward\": 0.5}\x03\x01\x00\x00\x00".to_vec();
    fuzzing::trainer_state(&state);
    state.extend(edgerl::rl::state::crc32(&state).to_le_bytes());
    let s = edgerl::rl::state::decode_state(&state, std::path::Path::new("t.bin")).unwrap();
    assert_eq!((s.step, s.tokens_seen, s.cursor), (7, 1234, 3));
}

/// fuzz/gguf, 2026-12-01: a llama GGUF whose attn_q has a zero dimension divided by zero
/// while undoing llama.cpp's Q/K row permutation. Now an error naming the tensor.
#[test]
fn gguf_attention_with_zero_rows() {
    use edgerl::model::gguf::Gguf;
    use edgerl::model::gguf_weights::{GgufWeights, config_from_gguf};
    use edgerl::model::weights::WeightSource;
    let bytes = include_bytes!("fixtures/malformed/fuzz/gguf-q-zero-rows.gguf");
    fuzzing::gguf(bytes);
    let g = Gguf::from_bytes(std::path::Path::new("zero-rows.gguf"), bytes.to_vec()).unwrap();
    let q = g.tensor("blk.0.attn_q.weight").unwrap();
    assert!(q.dims.contains(&0), "{:?}", q.dims);
    let cfg = config_from_gguf(&g).unwrap();
    let w = GgufWeights::new(&g, &cfg).unwrap();
    let e = w
        .get("model.layers.0.self_attn.q_proj.weight")
        .err()
        .expect("zero rows refused")
        .to_string();
    assert!(
        e.contains("zero-rows.gguf") && e.contains("blk.0.attn_q.weight") && e.contains("0 rows"),
        "{e}"
    );
}

/// fuzz/chat_template, 2026-12-03: a template storing a namespace in itself
/// (`{% set ns.n = ns %}`) and printing it recursed in minijinja until the stack overflowed,
/// killing the process. Such templates are now refused at load, naming the namespace.
#[test]
fn chat_template_namespace_holding_itself() {
    let src = "{% set ns = namespace(n=0) %}{% set ns.n = ns %}{{ ns }}";
    fuzzing::chat_template(src.as_bytes());
    let e = edgerl::data::ChatTemplate::new(src, "", "").err().expect("refused").to_string();
    assert!(e.contains("namespace `ns` is used as a value"), "{e}");
}

/// fuzz/chat_template, 2026-12-03: the namespace check above sliced a tag at a byte inside a
/// multi-byte character (`{%` then a 2-byte character). Now scanned byte by byte.
#[test]
fn chat_template_tag_with_multibyte_character() {
    for src in ["{%\u{f1}", "{{ '\\\u{e9}' }}", "{{ x }\u{e9}}"] {
        fuzzing::chat_template(src.as_bytes());
    }
    // The minimized input: `{%` and a byte that is not UTF-8 (read as U+FFFD).
    assert!(edgerl::data::ChatTemplate::new("{%\u{fffd}", "", "").is_err());
    let t = edgerl::data::ChatTemplate::new("{{ 'ñ' ~ \"é\" }}", "", "").unwrap();
    assert_eq!(t.render(&[], false).unwrap(), "ñé");
}
