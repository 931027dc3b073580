//! Thin entry points for the cargo-fuzz targets in fuzz/ (not a stable API). Each takes
//! untrusted bytes and must return: a refused input is fine, a panic is a bug. Where a parser
//! accepts an input, the invariants its callers rely on are asserted here so the fuzzer
//! reports a violation as a crash.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::model::ModelConfig;
use crate::model::gguf::Gguf;
use crate::model::gguf_weights::{GgufWeights, config_from_gguf};
use crate::model::weights::{WeightSource, to_f32};
use crate::reward::{RewardSet, RuleConfig};
use crate::rl::config::TrainConfig;

/// A safetensors image (8-byte header length, JSON header, data).
pub fn safetensors_header(bytes: &[u8]) {
    let _ = crate::model::weights::fuzz_header(bytes);
}

/// Tensors of layer 0 and the ends of the model, under their Hugging Face names (an untied
/// lm_head only: GGUF ties when `output.weight` is absent, so a tied one reads as missing).
fn hf_names(cfg: &ModelConfig) -> Vec<String> {
    let (g, l) = (cfg.global_tensors(), cfg.layer_tensors(0));
    let layer = [l.attn_norm, l.q, l.k, l.q_bias, l.down];
    g.into_list().chain(layer).map(|t| t.name).collect()
}

/// A GGUF image: header, metadata, tensor directory, then what the loaders derive from it
/// (model config, weights by name, tokenizer).
pub fn gguf(bytes: &[u8]) {
    let Ok(g) = Gguf::from_bytes(Path::new("fuzz.gguf"), bytes.to_vec()) else {
        return;
    };
    for t in g.tensors() {
        assert_eq!(
            g.data(t).len() as u64,
            t.n_bytes(),
            "{}: data length",
            t.name
        );
    }
    for (_, v) in g.metadata() {
        let _ = v.describe();
    }
    if let Ok(cfg) = config_from_gguf(&g)
        && let Ok(w) = GgufWeights::new(&g, &cfg)
    {
        for name in hf_names(&cfg) {
            if let Ok(Some(t)) = w.get(&name) {
                let _ = to_f32(&t);
            }
        }
    }
    // Through edgerl's wrapper, which turns a panic inside `tokenizers` into an error.
    if let Ok(t) = crate::model::Tokenizer::from_gguf(&g)
        && let Ok(ids) = t.encode("Hello, world 123", true)
    {
        let _ = t.decode(&ids);
    }
}

/// A config.json: parsed, then the RoPE tables derived from it for a few positions.
pub fn model_config(bytes: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    let Ok(cfg) = ModelConfig::from_json(&v) else {
        return;
    };
    let inv = cfg.inv_freq();
    let _ = cfg.rope_table_at(&inv, &[0, 1, 7]);
}

/// A run.toml: parsed and validated, then the values the trainer derives from it.
pub fn train_toml(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(c) = TrainConfig::from_toml(text) else {
        return;
    };
    let _ = c.lora_config();
    let _ = c.sampling(c.temperature);
    let _ = c.epsilon_high();
    for step in [0, 1, c.max_steps / 2, c.max_steps] {
        assert!(c.lr_at(step, c.max_steps).is_finite(), "lr at step {step}");
    }
    if let Ok(rules) = RewardSet::new(&c.rewards, c.reward_all_or_nothing) {
        let _ = rules.columns();
    }
}

/// Dataset text: every line as `dataset::read` parses it.
pub fn dataset_lines(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for line in text.lines() {
        let _ = crate::data::dataset::parse_line(line);
    }
}

/// Offline rollouts text (token ids, or text for `tok`): every line as `rollouts::read` parses
/// it, with a weight column, a vocabulary of `vocab` and completions of at most 64 tokens.
pub fn rollout_lines(bytes: &[u8], tok: &crate::model::Tokenizer, vocab: usize) {
    let text = String::from_utf8_lossy(bytes);
    for line in text.lines() {
        if let Ok(g) = crate::rl::rollouts::parse_line(line, tok, Some("weight"), vocab, 64) {
            assert_eq!(g.rewards.len(), g.completions.len());
            assert!(g.completions.iter().all(|c| !c.is_empty() && c.len() <= 64));
        }
    }
}

/// Every extractor under every rule type, built once.
const RULES: &str = r#"
[[r]]
type = "exact"
target = "answer"
extract = "answer_tag"
[[r]]
type = "exact"
target = "answer"
extract = "boxed"
[[r]]
type = "numeric"
target = "answer"
extract = "last_number"
[[r]]
type = "numeric"
target = "answer"
extract = "boxed"
[[r]]
type = "regex"
pattern = "[a-z]+ \\d+"
extract = "answer_tag"
[[r]]
type = "point_in_box"
target = "target_box"
[[r]]
type = "point_in_box"
target = "target_box"
extract = "regex"
pattern = "\\((\\d+),\\s*(\\d+)\\)"
[[r]]
type = "iou"
target = "target_box"
extract = "json_path"
path = "box"
[[r]]
type = "box_size"
target = "target_box"
extract = "answer_tag"
[[r]]
type = "action"
target = "action"
extract = "json_path"
path = ""
text_f1_threshold = 0.5
[[r]]
type = "action"
target = "action"
extract = "answer_tag"
[[r]]
type = "length"
max_length = 64
cache = 16
"#;

fn rule_set() -> &'static RewardSet {
    #[derive(serde::Deserialize)]
    struct Rules {
        r: Vec<RuleConfig>,
    }
    static SET: OnceLock<RewardSet> = OnceLock::new();
    SET.get_or_init(|| {
        let rules: Rules = toml::from_str(RULES).expect("the fuzz rules parse");
        RewardSet::new(&rules.r, false).expect("the fuzz rules build")
    })
}

/// A completion, optionally followed by a NUL and a JSON object for the dataset row's target
/// columns (`answer`, `target_box`, `action`); every rule scores it.
pub fn reward(bytes: &[u8]) {
    let (text, row) = match bytes.iter().position(|&b| b == 0) {
        Some(i) => (&bytes[..i], Some(&bytes[i + 1..])),
        None => (bytes, None),
    };
    let completion = String::from_utf8_lossy(text);
    let mut columns: Map<String, Value> = serde_json::from_str(
        r#"{"answer": "42", "target_box": [10, 10, 50, 50],
            "action": {"action": "click", "box": [10, 10, 50, 50]}}"#,
    )
    .expect("the default row parses");
    if let Some(Ok(Value::Object(m))) = row.map(serde_json::from_slice::<Value>) {
        columns.extend(m);
    }
    let tokens = completion.len() / 4;
    if let Ok(s) = rule_set().score(&completion, tokens, &columns) {
        assert!(s.total.is_finite(), "total {}", s.total);
        for (i, x) in s.per_rule.iter().enumerate() {
            assert!(x.is_finite(), "rule {i} scored {x}");
        }
    }
}

/// A tokenizer.json, loaded through edgerl's wrapper (its checks, then `tokenizers` under
/// `catch_unwind`); a few texts encoded and decoded, and the input's last bytes decoded as ids.
pub fn tokenizer_json(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(t) = crate::model::Tokenizer::from_json(text, Path::new("fuzz/tokenizer.json")) else {
        return;
    };
    for s in ["Hello, world 123", "<|im_start|>user\n  é中文\t<|im_end|>", ""] {
        for special in [false, true] {
            if let Ok(ids) = t.encode(s, special) {
                let _ = t.decode(&ids);
            }
        }
    }
    let ids: Vec<u32> = bytes.iter().rev().take(32).map(|&b| b as u32).collect();
    let _ = t.decode(&ids);
}

/// A chat template: the input up to the first NUL is its source, what follows (split at NULs)
/// the messages' contents, alternating user and assistant. Rendering must end within its fuel
/// and stay under the output cap.
pub fn chat_template(bytes: &[u8]) {
    use crate::data::template::{ChatTemplate, MAX_RENDERED_BYTES, Message};
    let text = String::from_utf8_lossy(bytes);
    let mut parts = text.split('\0');
    let source = parts.next().unwrap_or_default();
    let Ok(t) = ChatTemplate::new(source, "<s>", "</s>") else {
        return;
    };
    let mut messages: Vec<Message> = parts
        .take(8)
        .enumerate()
        .map(|(i, c)| Message {
            role: ["user", "assistant"][i % 2].into(),
            content: c.into(),
        })
        .collect();
    if messages.is_empty() {
        messages.push(Message { role: "user".into(), content: "What is 2+2?".into() });
    }
    for gen_prompt in [true, false] {
        if let Ok(s) = t.render(&messages, gen_prompt) {
            assert!(s.len() <= MAX_RENDERED_BYTES, "rendered {} bytes", s.len());
        }
    }
}

/// A PEFT adapter_config.json: when accepted, a rank and scale LoRA can use.
pub fn adapter_config(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(c) = crate::lora::peft::parse_config(text, Path::new("fuzz/adapter_config.json")) {
        assert!(c.r > 0, "rank 0 accepted");
        assert!(!c.targets.is_empty(), "no target modules accepted");
        let _ = c.scale();
    }
}

/// trainer_state.bin: decoded as it is, and with a valid trailing CRC-32 appended (so the
/// fuzzer gets past the checksum to the fields). An accepted state encodes and decodes back
/// to the same bytes (as the current version: older ones are upgraded on load; bytes, not
/// values, as NaN != NaN).
pub fn trainer_state(bytes: &[u8]) {
    use crate::rl::state::{VERSION, crc32, decode_state, encode_state};
    let path = Path::new("fuzz/trainer_state.bin");
    let mut summed = bytes.to_vec();
    summed.extend_from_slice(&crc32(bytes).to_le_bytes());
    for b in [bytes, &summed[..]] {
        if let Ok(mut s) = decode_state(b, path) {
            s.version = VERSION;
            let again = encode_state(&s).expect("an accepted state encodes");
            let back = decode_state(&again, path).expect("an encoded state decodes");
            assert!(encode_state(&back).ok() == Some(again), "the state changed on a round trip");
        }
    }
}
