//! Malformed-input corpus, library level (no GPU): safetensors files cut short, bit-flipped or
//! lying about their layout, bad config.json / tokenizer / adapter_config.json / datasets /
//! reward rules. Every case is built here from the committed fixtures and must give an error
//! naming the file and the reason, never a panic. The same inputs through the CLI (exit code,
//! no partial outputs): tests/malformed_runs.rs.

mod common;

use std::path::{Path, PathBuf};

use edgerl::data::dataset;
use edgerl::lora::peft;
use edgerl::model::weights::{SafetensorsWeights, WeightSource};
use edgerl::model::{ModelConfig, Tokenizer};
use edgerl::reward::RewardSet;
use edgerl::rl::TrainConfig;
use serde_json::{Value, json};

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgerl-malformed-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fixture_model(name: &str) -> PathBuf {
    common::fixtures().join("models").join(name)
}

/// The error's text, which must name `file` (its file name) and contain every phrase.
fn expect_err<T>(what: &str, r: edgerl::Result<T>, file: &Path, phrases: &[&str]) -> String {
    let e = match r {
        Ok(_) => panic!("{what}: accepted"),
        Err(e) => e.to_string(),
    };
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(e.contains(name), "{what}: {e:?} should name {name}");
    for p in phrases {
        assert!(e.contains(p), "{what}: {e:?} should say {p:?}");
    }
    e
}

/// A safetensors image: 8-byte header length, the header JSON as given, then `data`.
fn image(header: &Value, data: &[u8]) -> Vec<u8> {
    let h = header.to_string();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h.as_bytes());
    out.extend(data);
    out
}

/// Three small tensors back to back (F32, F16, BF16): 16 + 6 + 4 bytes.
fn small_image() -> Vec<u8> {
    let header = json!({
        "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "b": {"dtype": "F16", "shape": [3], "data_offsets": [16, 22]},
        "c": {"dtype": "BF16", "shape": [1, 2], "data_offsets": [22, 26]},
        "__metadata__": {"format": "pt"},
    });
    image(&header, &(0..26).collect::<Vec<u8>>())
}

fn open_bytes(
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> (PathBuf, edgerl::Result<SafetensorsWeights>) {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let r = SafetensorsWeights::open_file(&p);
    (p, r)
}

/// What an accepted file promises: every tensor readable, its bytes matching dtype × shape.
fn check_accepted(w: &SafetensorsWeights) {
    let names: Vec<String> = w.names().map(str::to_string).collect();
    for n in names {
        let t = w.get(&n).unwrap().unwrap();
        let elems: usize = t.shape.iter().product();
        assert_eq!(t.data.len(), elems * t.dtype.file_block_bytes(), "{n}");
    }
}

#[test]
fn safetensors_cut_short_anywhere() {
    let dir = scratch("st-cut");
    let full = std::fs::read(fixture_model("qwen3_f16").join("model.safetensors")).unwrap();
    let header_end = 8 + u64::from_le_bytes(full[..8].try_into().unwrap()) as usize;
    let cuts = [
        0,
        1,
        7,
        8,
        9,
        header_end / 2,
        header_end - 1,
        header_end,
        header_end + 1,
        full.len() - 1,
    ];
    for cut in cuts {
        let (p, r) = open_bytes(&dir, &format!("cut{cut}.safetensors"), &full[..cut]);
        expect_err(
            &format!("cut at {cut}"),
            r,
            &p,
            &["not a valid safetensors file"],
        );
    }
    // Through the model directory, as the loaders open it.
    let m = dir.join("model");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("model.safetensors"), &full[..full.len() / 2]).unwrap();
    let p = m.join("model.safetensors");
    expect_err(
        "model dir",
        SafetensorsWeights::open(&m),
        &p,
        &["not a valid safetensors file"],
    );
}

#[test]
fn safetensors_bit_flips_never_panic() {
    let dir = scratch("st-flip");
    let good = small_image();
    let header_end = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let (mut refused, mut accepted) = (0, 0);
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[i] ^= 1 << bit;
            let (p, r) = open_bytes(&dir, "flip.safetensors", &bad);
            match r {
                Ok(w) => {
                    // A flipped data byte, or a header flip that stays valid (a name).
                    check_accepted(&w);
                    accepted += 1;
                }
                Err(e) => {
                    let e = e.to_string();
                    assert!(e.contains(p.to_str().unwrap()), "byte {i} bit {bit}: {e}");
                    refused += 1;
                }
            }
            // A changed length field can never describe the same file.
            if i < 8 {
                let (p, r) = open_bytes(&dir, "flip.safetensors", &bad);
                expect_err(&format!("length byte {i} bit {bit}"), r, &p, &[]);
            }
        }
    }
    assert!(
        refused > 0 && accepted >= 8 * (good.len() - header_end),
        "{refused} refused, {accepted} accepted"
    );
}

#[test]
fn safetensors_header_lengths_near_2_pow_64() {
    let dir = scratch("st-len");
    let body = &small_image()[8..];
    for len in [
        u64::MAX,
        u64::MAX - 7,
        1 << 63,
        1 << 32,
        100_000_001,
        body.len() as u64 + 1,
    ] {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend(body);
        let (p, r) = open_bytes(&dir, "len.safetensors", &bytes);
        expect_err(
            &format!("header length {len}"),
            r,
            &p,
            &["not a valid safetensors file"],
        );
    }
}

#[test]
fn safetensors_tensors_overlapping_past_the_end_or_mistyped() {
    let dir = scratch("st-layout");
    let data = vec![0u8; 24];
    let f32x4 = |a: u64, b: u64| json!({"dtype": "F32", "shape": [4], "data_offsets": [a, b]});
    let cases: Vec<(&str, Value, &[&str])> = vec![
        (
            "overlap",
            json!({"a": f32x4(0, 16), "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}),
            &[],
        ),
        (
            "past-end",
            json!({"a": f32x4(0, 16), "b": f32x4(16, 32)}),
            &[],
        ),
        (
            "gap",
            json!({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": f32x4(8, 24), "c": f32x4(40, 56)}),
            &[],
        ),
        (
            "reversed",
            json!({"a": {"dtype": "F32", "shape": [0], "data_offsets": [24, 0]}}),
            &[],
        ),
        (
            "shape-vs-bytes",
            json!({"a": {"dtype": "F32", "shape": [5], "data_offsets": [0, 24]}}),
            &[],
        ),
        (
            "huge-shape",
            json!({"a": {"dtype": "F32", "shape": [u64::MAX, 2], "data_offsets": [0, 24]}}),
            &[],
        ),
        (
            "int-dtype",
            json!({"a": {"dtype": "I64", "shape": [3], "data_offsets": [0, 24]}}),
            &["tensor a", "I64", "F32, F16 or BF16"],
        ),
        (
            "unknown-dtype",
            json!({"a": {"dtype": "Q9", "shape": [3], "data_offsets": [0, 24]}}),
            &["not a valid safetensors file"],
        ),
        (
            "not-an-object",
            json!([1, 2, 3]),
            &["not a valid safetensors file"],
        ),
    ];
    for (name, header, phrases) in cases {
        let (p, r) = open_bytes(&dir, &format!("{name}.safetensors"), &image(&header, &data));
        expect_err(name, r, &p, phrases);
    }
    // Not UTF-8, not JSON.
    let mut bytes = 4u64.to_le_bytes().to_vec();
    bytes.extend([0xff, 0xfe, b'{', b'}']);
    let (p, r) = open_bytes(&dir, "not-utf8.safetensors", &bytes);
    expect_err("not utf-8", r, &p, &["not a valid safetensors file"]);
}

#[test]
fn safetensors_shard_index_problems() {
    let dir = scratch("st-index");
    let write =
        |text: &str| std::fs::write(dir.join("model.safetensors.index.json"), text).unwrap();
    let index = dir.join("model.safetensors.index.json");
    let cases: [(&str, &[&str]); 4] = [
        ("{not json", &["not valid JSON"]),
        (r#"{"weight_map": [1]}"#, &["weight_map"]),
        (r#"{"weight_map": {"a": 3}}"#, &["weight_map[\"a\"]"]),
        (
            r#"{"weight_map": {"a": "../model.safetensors"}}"#,
            &["leaves the model directory"],
        ),
    ];
    for (text, phrases) in cases {
        write(text);
        expect_err(text, SafetensorsWeights::open(&dir), &index, phrases);
    }
    // A shard the index names but the directory lacks.
    write(r#"{"weight_map": {"a": "model-00001-of-00002.safetensors"}}"#);
    let shard = dir.join("model-00001-of-00002.safetensors");
    expect_err("missing shard", SafetensorsWeights::open(&dir), &shard, &[]);
    // The same tensor in two shards.
    std::fs::write(&shard, small_image()).unwrap();
    std::fs::write(dir.join("model-00002-of-00002.safetensors"), small_image()).unwrap();
    write(
        r#"{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#,
    );
    let second = dir.join("model-00002-of-00002.safetensors");
    expect_err(
        "duplicate",
        SafetensorsWeights::open(&dir),
        &second,
        &["more than one shard"],
    );
}

#[test]
fn config_json_problems() {
    let dir = scratch("config");
    let mut base: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_model("qwen3_f16").join("config.json")).unwrap(),
    )
    .unwrap();
    // RoPE keys at the top level (Hub style), so the cases below can break them one by one.
    base.as_object_mut().unwrap().remove("rope_parameters");
    base["rope_theta"] = json!(1e6);
    let p = dir.join("good.json");
    std::fs::write(&p, base.to_string()).unwrap();
    ModelConfig::from_file(&p).expect("the fixture's config loads");
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c.to_string()
    };
    let without = |k: &str| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().remove(k);
        c.to_string()
    };
    let cases: Vec<(String, &[&str])> = vec![
        ("".into(), &["not valid JSON"]),
        ("{\"hidden_size\": 64,".into(), &["not valid JSON"]),
        ("\u{feff}{}".into(), &["not valid JSON"]),
        ("[1, 2]".into(), &["expected a JSON object"]),
        (without("hidden_size"), &["missing `hidden_size`"]),
        (
            {
                let mut c = base.clone();
                c.as_object_mut().unwrap().remove("architectures");
                c.as_object_mut().unwrap().remove("model_type");
                c.to_string()
            },
            &["no `architectures` or `model_type`"],
        ),
        (
            with("architectures", json!(["GPT2LMHeadModel"])),
            &["unsupported architecture", "GPT2LMHeadModel"],
        ),
        (
            with("hidden_size", json!("64")),
            &["`hidden_size` must be a non-negative integer", "\"64\""],
        ),
        (
            with("hidden_size", json!(-64)),
            &["`hidden_size` must be a non-negative integer"],
        ),
        (
            with("hidden_size", json!(64.5)),
            &["`hidden_size` must be a non-negative integer"],
        ),
        (with("vocab_size", json!(0)), &["must be positive"]),
        (
            with("num_attention_heads", json!(0)),
            &["num_attention_heads 0"],
        ),
        (
            with("num_key_value_heads", json!(3)),
            &["not a multiple of num_key_value_heads 3"],
        ),
        (with("head_dim", json!(7)), &["head_dim 7"]),
        (
            with("num_hidden_layers", json!(1u64 << 40)),
            &["`num_hidden_layers` = 1099511627776 is larger than edgerl supports"],
        ),
        (
            with("vocab_size", json!(u64::MAX)),
            &["`vocab_size`", "larger than edgerl supports"],
        ),
        (
            with("rope_theta", json!(0)),
            &["`rope_theta` must be a positive number"],
        ),
        (
            with("rope_theta", json!("big")),
            &["`rope_theta` must be a number"],
        ),
        (
            with("rope_scaling", json!({"rope_type": "yarn", "factor": 4})),
            &["unsupported rope type \"yarn\""],
        ),
        (
            with("rope_scaling", json!({"rope_type": "linear"})),
            &["needs `factor`"],
        ),
        (
            with("rope_scaling", json!({"rope_type": "linear", "factor": -2})),
            &["`factor` must be a positive number"],
        ),
    ];
    for (i, (text, phrases)) in cases.into_iter().enumerate() {
        let p = dir.join(format!("config{i}.json"));
        std::fs::write(&p, &text).unwrap();
        expect_err(&text, ModelConfig::from_file(&p), &p, phrases);
    }
}

/// A copy of the qwen3_f16 fixture's tokenizer files in a fresh directory.
fn tokenizer_dir(name: &str) -> PathBuf {
    let d = scratch(name);
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture_model("qwen3_f16").join(f), d.join(f)).unwrap();
    }
    Tokenizer::open(&d).expect("the fixture's tokenizer loads");
    d
}

#[test]
fn tokenizer_files_that_do_not_parse() {
    let d = tokenizer_dir("tok");
    let tok = d.join("tokenizer.json");
    let full = std::fs::read(&tok).unwrap();
    for (what, bytes) in [
        ("not json", b"not json".to_vec()),
        ("cut short", full[..full.len() / 2].to_vec()),
        ("wrong schema", br#"{"model": 3}"#.to_vec()),
        ("empty", vec![]),
    ] {
        std::fs::write(&tok, &bytes).unwrap();
        expect_err(what, Tokenizer::open(&d), &tok, &["cannot load"]);
    }
    std::fs::remove_file(&tok).unwrap();
    expect_err("missing", Tokenizer::open(&d), &tok, &["missing"]);

    let d = tokenizer_dir("tok-config");
    let cfg = d.join("tokenizer_config.json");
    std::fs::write(&cfg, "{\"bos_token\": ").unwrap();
    expect_err(
        "tokenizer_config.json",
        Tokenizer::open(&d),
        &cfg,
        &["not valid JSON"],
    );
    std::fs::write(&cfg, json!({"chat_template": "{% if %}"}).to_string()).unwrap();
    expect_err(
        "template in the config",
        Tokenizer::open(&d),
        &cfg,
        &["chat template does not parse"],
    );
    let jinja = d.join("chat_template.jinja");
    std::fs::write(&jinja, "{% for m in messages %}{{ m.content }").unwrap();
    expect_err(
        "chat_template.jinja",
        Tokenizer::open(&d),
        &jinja,
        &["chat template does not parse"],
    );
}

/// The fixture's tokenizer.json with `edit` applied, written into a fresh copy of its
/// directory: (directory, tokenizer.json path).
fn edited_tokenizer(name: &str, edit: impl FnOnce(&mut Value)) -> (PathBuf, PathBuf) {
    let d = tokenizer_dir(name);
    let p = d.join("tokenizer.json");
    let mut t: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    edit(&mut t);
    std::fs::write(&p, t.to_string()).unwrap();
    (d, p)
}

/// A base64 `precompiled_charsmap`: the trie's byte length, its units, then normalized text.
fn charsmap(trie: &[u32]) -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = ((trie.len() * 4) as u32).to_le_bytes().to_vec();
    bytes.extend(trie.iter().flat_map(|u| u.to_le_bytes()));
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = c.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..=c.len() {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        out.extend(std::iter::repeat_n('=', 3 - c.len()));
    }
    out
}

/// issue 15: tokenizer.json files that made the `tokenizers` crate panic, at load or only at
/// encode. Each is now refused at load naming the file, or (where only encoding can tell) an
/// encode error naming it.
#[test]
fn tokenizer_files_that_panicked_in_tokenizers() {
    let precompiled = |charsmap: Value| {
        move |t: &mut Value| t["normalizer"] = json!({"type": "Precompiled", "precompiled_charsmap": charsmap})
    };
    let template = |single: Value, special: Value| {
        move |t: &mut Value| {
            t["post_processor"] = json!({"type": "TemplateProcessing", "single": single,
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": special})
        }
    };
    let seq = |id: &str| json!({"Sequence": {"id": id, "type_id": 0}});
    let sp = |id: &str| json!({"SpecialToken": {"id": id, "type_id": 0}});
    let im = |ids: Value, tokens: Value| json!({"<|im_start|>": {"id": "<|im_start|>", "ids": ids, "tokens": tokens}});
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(&str, Edit, &[&str])> = vec![
        ("null charsmap", Box::new(precompiled(Value::Null)), &["no precompiled_charsmap"]),
        // 0xFFFF_FFF0 bytes of trie announced in 8: tokenizers reserves 8 GiB before reading.
        ("charsmap announcing 4 GiB", Box::new(precompiled(json!("8P///wAAAAA="))), &["announces a"]),
        ("template naming an undefined token", Box::new(template(json!([sp("<nope>"), seq("A")]), im(json!([401]), json!(["<|im_start|>"])))), &["\"<nope>\"", "does not define"]),
        ("single template with sequence B", Box::new(template(json!([seq("B")]), json!({}))), &["sequence B"]),
        ("special token ids and tokens disagree", Box::new(template(json!([sp("<|im_start|>"), seq("A")]), im(json!([401, 402]), json!(["<|im_start|>"])))), &["2 ids but 1 tokens"]),
        ("special token beyond the vocabulary", Box::new(template(json!([sp("<|im_start|>"), seq("A")]), im(json!([4000]), json!(["<|im_start|>"])))), &["id 4000, beyond the vocabulary (403)"]),
    ];
    for (i, (what, edit, phrases)) in cases.into_iter().enumerate() {
        let (d, p) = edited_tokenizer(&format!("tok-panic{i}"), edit);
        let e = expect_err(what, Tokenizer::open(&d), &p, phrases);
        assert!(e.contains("cannot load") && !e.contains('\n'), "{what}: {e}");
    }

    // A charsmap whose root points far outside its one-unit trie: only a lookup finds out.
    let (d, p) = edited_tokenizer("tok-trie", precompiled(json!(charsmap(&[0xFFFF_FC00]))));
    let tok = Tokenizer::open(&d).expect("the trie is not walked at load");
    let e = expect_err("encoding through a broken trie", tok.encode("hello", true), &p, &["tokenizing", "panicked"]);
    assert!(!e.contains('\n'), "{e}");
    // The wrapper stays usable afterwards.
    assert!(tok.encode("again", false).is_err());
}

/// issue 15: padding and truncation settings (a stride not below max_length panicked at
/// encode) are dropped at load, as transformers' `tokenizer(text)` drops them: the ids are
/// the file's without them.
#[test]
fn tokenizer_padding_and_truncation_are_ignored() {
    let plain = Tokenizer::open(&tokenizer_dir("tok-plain")).unwrap();
    let text = "hello world, hello tokens";
    let want = plain.encode(text, true).unwrap();
    assert!(want.len() > 4, "{want:?}");
    let pad = |n: u64| json!({"strategy": {"Fixed": n}, "direction": "Left", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "a"});
    let trunc = |max: u64, stride: u64| json!({"direction": "Right", "max_length": max, "strategy": "LongestFirst", "stride": stride});
    for (i, (padding, truncation)) in [
        (Value::Null, trunc(0, 0)),
        (Value::Null, trunc(2, 2)),
        (Value::Null, trunc(3, 1)),
        (pad(64), Value::Null),
    ]
    .into_iter()
    .enumerate()
    {
        let (d, _) = edited_tokenizer(&format!("tok-pad{i}"), |t| {
            t["padding"] = padding.clone();
            t["truncation"] = truncation.clone();
        });
        let tok = Tokenizer::open(&d).unwrap();
        assert_eq!(tok.encode(text, true).unwrap(), want, "padding {padding}, truncation {truncation}");
    }
}

#[test]
fn adapter_config_problems() {
    let dir = scratch("peft");
    let path = dir.join(peft::CONFIG_FILE);
    let good = json!({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj"]});
    assert_eq!(
        {
            std::fs::write(&path, good.to_string()).unwrap();
            peft::read_config(&dir).unwrap().r
        },
        2
    );
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c.to_string()
    };
    let cases: Vec<(String, &[&str])> = vec![
        ("{".into(), &["not valid JSON"]),
        (
            with("peft_type", json!("IA3")),
            &["peft_type \"IA3\" is not LORA"],
        ),
        (with("r", json!("2")), &["missing integer `r`"]),
        (with("r", json!(0)), &["r must be at least 1"]),
        (
            with("r", json!(1u64 << 40)),
            &["larger than edgerl supports"],
        ),
        (with("target_modules", json!("q_proj")), &["target_modules"]),
        (
            with("target_modules", json!(["q_proj", 3])),
            &["target_modules must be strings"],
        ),
        (
            with("target_modules", json!(["qkv"])),
            &["target module \"qkv\""],
        ),
        (with("use_dora", json!(true)), &["`use_dora`"]),
        (
            with("rank_pattern", json!({"q_proj": 8})),
            &["`rank_pattern`"],
        ),
    ];
    for (text, phrases) in cases {
        std::fs::write(&path, &text).unwrap();
        expect_err(&text, peft::read_config(&dir), &path, phrases);
    }
    std::fs::remove_file(&path).unwrap();
    expect_err("missing", peft::read_config(&dir), &path, &[]);
}

#[test]
fn dataset_lines_with_wrong_types() {
    let dir = scratch("data");
    let good = r#"{"prompt": "hi", "answer": "4", "target_box": [1, 2, 3, 4]}"#;
    let cases: [(&str, &[&str]); 9] = [
        ("{\"prompt\": \"hi\"", &["line 2", "not valid JSON"]),
        ("[\"hi\"]", &["line 2", "expected a JSON object"]),
        (
            "{\"prompt\": 3}",
            &["line 2", "`prompt` must be a string or a list of messages"],
        ),
        ("{\"prompt\": null}", &["line 2", "`prompt` must be"]),
        ("{\"question\": \"hi\"}", &["line 2", "no `prompt` column"]),
        ("{\"prompt\": []}", &["line 2", "empty message list"]),
        (
            "{\"prompt\": [{\"role\": \"user\", \"content\": 5}]}",
            &["line 2", "message 0 has no string `content`"],
        ),
        (
            "{\"prompt\": [\"hi\"]}",
            &["line 2", "message 0 has no string `role`"],
        ),
        (
            "{\"prompt\": \"hi\"}",
            &["line 2", "no `answer` column, which a reward rule reads"],
        ),
    ];
    let required = vec!["answer".to_string()];
    for (i, (line, phrases)) in cases.iter().enumerate() {
        let p = dir.join(format!("data{i}.jsonl"));
        std::fs::write(&p, format!("{good}\n{line}\n{good}\n")).unwrap();
        expect_err(line, dataset::read(&p, &required), &p, phrases);
    }
    let p = dir.join("empty.jsonl");
    std::fs::write(&p, "\n  \n").unwrap();
    expect_err("empty", dataset::read(&p, &[]), &p, &["no prompts"]);
    let p = dir.join("latin1.jsonl");
    std::fs::write(&p, b"{\"prompt\": \"caf\xe9\"}\n").unwrap();
    expect_err("not UTF-8", dataset::read(&p, &[]), &p, &["UTF-8"]);
}

/// `[[rewards]]` tables as run.toml gives them.
fn rules(toml_text: &str) -> RewardSet {
    let c = TrainConfig::from_toml(&format!(
        "model = \"m\"\noutput_dir = \"o\"\ndataset = \"d.jsonl\"\n{toml_text}"
    ))
    .unwrap();
    RewardSet::new(&c.rewards, false).unwrap()
}

#[test]
fn target_columns_of_the_wrong_type_are_found_up_front() {
    let dir = scratch("targets");
    let set = rules(
        "[[rewards]]\ntype = \"numeric\"\ntarget = \"answer\"\n\
         [[rewards]]\ntype = \"point_in_box\"\ntarget = \"target_box\"\n\
         [[rewards]]\ntype = \"action\"\ntarget = \"action\"\n",
    );
    let good = json!({"prompt": "p", "answer": 4, "target_box": [1, 2, 3, 4], "action": {"action": "click", "box": [0, 0, 9, 9]}});
    let p = dir.join("ok.jsonl");
    std::fs::write(&p, format!("{good}\n")).unwrap();
    assert_eq!(set.read_dataset(&p).unwrap().len(), 1);
    let cases: [(&str, Value, &[&str]); 5] = [
        (
            "answer",
            json!({"n": 4}),
            &["column `answer` is not a number"],
        ),
        (
            "target_box",
            json!("abc"),
            &["column `target_box` is not a box"],
        ),
        (
            "target_box",
            json!([1, 2, 3]),
            &["column `target_box` is not a box"],
        ),
        (
            "action",
            json!({"box": [0, 0, 9, 9]}),
            &["column `action`", "`action`"],
        ),
        (
            "action",
            json!({"action": "type"}),
            &["column `action`", "needs `text`"],
        ),
    ];
    for (i, (col, v, phrases)) in cases.into_iter().enumerate() {
        let mut bad = good.clone();
        bad[col] = v;
        let p = dir.join(format!("bad{i}.jsonl"));
        std::fs::write(&p, format!("{good}\n\n{bad}\n")).unwrap();
        let e = expect_err(col, set.read_dataset(&p), &p, phrases);
        assert!(e.contains("line 3"), "{e}");
    }
}

#[test]
fn run_toml_reward_rules_that_cannot_build() {
    let dir = scratch("rules");
    let head = "model = \"m\"\noutput_dir = \"o\"\ndataset = \"d.jsonl\"\n";
    let cases: [(&str, &[&str]); 6] = [
        (
            "[[rewards]]\ntype = \"regex\"\npattern = \"(unclosed\"\n",
            &["[[rewards]] #1", "bad regex `(unclosed`"],
        ),
        (
            "[[rewards]]\ntype = \"exact\"\ntarget = \"a\"\nextract = \"regex\"\npattern = \"[z-a]\"\n",
            &["[[rewards]] #1", "bad regex"],
        ),
        (
            "[[rewards]]\ntype = \"exact\"\ntarget = \"a\"\ncolumn = \"b\"\n",
            &["unknown field `column`"],
        ),
        ("[[rewards]]\ntype = \"exact\"\n", &["needs `target`"]),
        (
            "[[rewards]]\ntype = \"exact\"\ntarget = \"\"\n",
            &["`target` is empty"],
        ),
        (
            "[[rewards]]\ntype = \"similar\"\ntarget = \"a\"\n",
            &["similar"],
        ),
    ];
    for (i, (text, phrases)) in cases.iter().enumerate() {
        let p = dir.join(format!("run{i}.toml"));
        std::fs::write(&p, format!("{head}{text}")).unwrap();
        expect_err(text, TrainConfig::from_file(&p), &p, phrases);
    }
    for (i, text) in ["model = ", "model = 3\noutput_dir = \"o\"", "\u{0}"]
        .iter()
        .enumerate()
    {
        let p = dir.join(format!("broken{i}.toml"));
        std::fs::write(&p, text).unwrap();
        expect_err(text, TrainConfig::from_file(&p), &p, &[]);
    }
}

/// trainer_state.bin lists the checkpoint files it sums. A name that leads out of the
/// checkpoint is refused before anything is read (`/dev/zero` was read until memory ran out,
/// `../x` is another folder's file); so is a listed file that is not a file of the recorded
/// length (a link to /dev/zero), without reading it.
#[test]
fn checkpoint_state_lists_only_its_own_files() {
    use edgerl::rl::checkpoint::verify;
    use edgerl::rl::state::{FileSum, State, VERSION, encode_state};
    let dir = scratch("state-names");
    let state = |name: &str, len: u64| State {
        version: VERSION,
        step: 1,
        tokens_seen: 0,
        batch: None,
        reward_metrics: "{}".into(),
        cursor: 0,
        skipped_steps: 0,
        consecutive_skips: 0,
        run: Vec::new(),
        files: vec![FileSum { name: name.into(), len, crc32: 0 }],
    };
    let state_file = dir.join("trainer_state.bin");
    for name in ["../trainer_state.bin", "adapter/../x", "", "/dev/zero"] {
        std::fs::write(&state_file, encode_state(&state(name, 8)).unwrap()).unwrap();
        expect_err(name, verify(&dir), &state_file, &["damaged", &format!("{name:?}")]);
    }
    #[cfg(unix)]
    {
        let linked = dir.join("optimizer.safetensors");
        std::os::unix::fs::symlink("/dev/zero", &linked).unwrap();
        std::fs::write(&state_file, encode_state(&state("optimizer.safetensors", 0)).unwrap()).unwrap();
        expect_err("a link to /dev/zero", verify(&dir), &linked, &["damaged"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run's fingerprint reads the model folder's `.json` / `.safetensors` files. A folder with
/// such a name failed the run, and a link to a device (`/dev/zero`) was read until memory ran
/// out: only files count, and no more of one is read than its length.
#[test]
fn fingerprint_skips_what_is_not_a_file() {
    let dir = scratch("fingerprint-model");
    let model = dir.join("model");
    std::fs::create_dir_all(model.join("notes.json")).unwrap();
    std::fs::write(model.join("config.json"), "{}").unwrap();
    let rollouts = dir.join("r.jsonl");
    std::fs::write(&rollouts, "{}\n").unwrap();
    let cfg = TrainConfig::from_toml(&format!(
        "model = {:?}\noutput_dir = \"o\"\nrollouts = {:?}\n",
        model.display().to_string(),
        rollouts.display().to_string()
    ))
    .unwrap();
    let one_file = edgerl::rl::fingerprint::of(&cfg).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/dev/zero", model.join("zero.safetensors")).unwrap();
        assert_eq!(edgerl::rl::fingerprint::of(&cfg).unwrap(), one_file);
    }
    let model_id = &one_file.iter().find(|(k, _)| k == "model").unwrap().1;
    assert!(model_id.contains("(1 files"), "{model_id}");
    let _ = std::fs::remove_dir_all(&dir);
}
