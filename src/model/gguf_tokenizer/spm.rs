//! SentencePiece vocabularies (`tokenizer.ggml.model = "llama"`): Gemma, Llama 2, Mistral v1 …
//! as the model's own tokenizer.json has them (see the parent module's docs for the choices).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde_json::json;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper};

use super::{GgufTokenizerInfo, TokenType, post_processor};
use crate::error::{Error, Result};
use crate::model::gguf::{Array, Gguf, Value};

/// The SentencePiece word-boundary mark that stands for a space.
pub(super) const SPACE: char = '\u{2581}';

/// `tokenizer.ggml.scores`, one per token: f32 as llama.cpp writes them (f64 and integers are
/// accepted too). `None` when the file has none.
fn scores(g: &Gguf, n: usize) -> Result<Option<Vec<f64>>> {
    let key = "tokenizer.ggml.scores";
    let Some(v) = g.get(key) else {
        return Ok(None);
    };
    let s: Vec<f64> = match v {
        Value::Array(Array::F32(a)) => a.iter().map(|&x| x.into()).collect(),
        Value::Array(Array::F64(a)) => a.clone(),
        Value::Array(a) => match a.to_i64_vec() {
            Some(a) => a.into_iter().map(|x| x as f64).collect(),
            None => {
                return Err(Error::file(
                    g.path(),
                    format!(
                        "metadata key {key} is {}, expected an array of numbers",
                        v.describe()
                    ),
                ));
            }
        },
        _ => {
            return Err(Error::file(
                g.path(),
                format!(
                    "metadata key {key} is {}, expected an array of numbers",
                    v.describe()
                ),
            ));
        }
    };
    if s.len() != n {
        return Err(Error::file(
            g.path(),
            format!(
                "{key} has {} entries but tokenizer.ggml.tokens has {n}",
                s.len()
            ),
        ));
    }
    Ok(Some(s))
}

/// The token as the Gemma tokenizer.json spells it. llama.cpp's converter writes the "▁" of
/// user-defined pieces as real spaces (Gemma's whitespace runs "▁▁" … are stored as "  " …);
/// spelled back, they are reached by merges from "▁" as in the tokenizer.json (transformers'
/// `gemma_tokenizer`). Other vocabularies keep them as spelled, added tokens matched whole in
/// the raw text, as llama.cpp and SentencePiece match user-defined pieces (and transformers).
pub(super) fn spell(token: &str, ty: TokenType, gemma: bool) -> String {
    if gemma && ty == TokenType::UserDefined && token.contains(' ') {
        token.replace(' ', &SPACE.to_string())
    } else {
        token.to_string()
    }
}

/// Tokens longer than this get no merges: looking up every split costs the square of a token's
/// length, and a file is untrusted. SentencePiece pieces are at most 16 characters by default
/// (Gemma 3's longest token is 48 bytes).
pub(super) const MAX_MERGED_BYTES: usize = 256;

/// transformers' `generate_merges(vocab, vocab_scores)`: every split of a token into two
/// tokens is a merge; a token's splits in (left id, right id) order, then all merges sorted by
/// the merged token's key (highest first), then by the lengths of the left and right pieces
/// (longest first), stably. `keyed` is the (token, key) list in token order; a token listed
/// twice keeps its first place and its last key, as a Python dict does. Tokens longer than
/// `MAX_MERGED_BYTES` are left out.
pub(super) fn merges(keyed: &[(&str, f64)], vocab: &Vocab) -> Vec<(String, String)> {
    let mut order: Vec<(&str, f64)> = Vec::with_capacity(keyed.len());
    let mut place: HashMap<&str, usize> = HashMap::with_capacity(keyed.len());
    for &(t, key) in keyed {
        match place.entry(t) {
            Entry::Occupied(e) => order[*e.get()].1 = key,
            Entry::Vacant(e) => {
                e.insert(order.len());
                order.push((t, key));
            }
        }
    }
    // (key, left chars, right chars, left, right)
    let mut all: Vec<(f64, usize, usize, &str, &str)> = Vec::new();
    let mut local: Vec<(u32, u32, usize, &str, &str)> = Vec::new();
    for &(t, key) in &order {
        if t.len() > MAX_MERGED_BYTES {
            continue;
        }
        local.clear();
        let chars = t.chars().count();
        for (k, (b, _)) in t.char_indices().enumerate().skip(1) {
            let (l, r) = t.split_at(b);
            if let (Some(&il), Some(&ir)) = (vocab.get(l), vocab.get(r)) {
                local.push((il, ir, k, l, r));
            }
        }
        local.sort_by_key(|&(il, ir, ..)| (il, ir));
        all.extend(
            local
                .iter()
                .map(|&(_, _, k, l, r)| (key, k, chars - k, l, r)),
        );
    }
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
    all.into_iter()
        .map(|(_, _, _, l, r)| (l.to_string(), r.to_string()))
        .collect()
}

/// Merges ranked by the tokens' order in the file rather than by their scores: the Gemma
/// family (transformers' `gemma_tokenizer`; see the module docs).
fn ranks_by_position(g: &Gguf) -> bool {
    g.get("general.architecture")
        .and_then(Value::as_str)
        .is_some_and(|a| a.starts_with("gemma"))
}

pub(super) fn tokenizer(
    g: &Gguf,
    info: &GgufTokenizerInfo,
    tokens: &[String],
    types: &[TokenType],
) -> Result<tokenizers::Tokenizer> {
    let bad = |msg: String| Error::file(g.path(), msg);
    let cannot = |e: &dyn std::fmt::Display| bad(format!("cannot build the tokenizer: {e}"));
    let scores = scores(g, tokens.len())?;
    let add_space_prefix = match g.get("tokenizer.ggml.add_space_prefix") {
        None => true, // llama.cpp's default for a sentencepiece vocabulary
        Some(_) => g.get_bool("tokenizer.ggml.add_space_prefix")?,
    };

    let gemma = ranks_by_position(g);
    let spelled: Vec<String> = tokens
        .iter()
        .zip(types)
        .map(|(t, &ty)| spell(t, ty, gemma))
        .collect();
    // Later duplicates win, as in transformers' dict and llama.cpp's token_to_id.
    let vocab: Vocab = spelled
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let keyed: Vec<(&str, f64)> = match (&scores, gemma) {
        (Some(s), false) => spelled
            .iter()
            .map(String::as_str)
            .zip(s.iter().copied())
            .collect(),
        _ => spelled
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), -(i as f64)))
            .collect(),
    };
    let pairs = merges(&keyed, &vocab);

    let mut bpe = BPE::builder()
        .vocab_and_merges(vocab, pairs)
        .fuse_unk(true)
        .byte_fallback(true);
    if let Some(unk) = info.unk {
        bpe = bpe.unk_token(tokens[unk as usize].clone());
    }
    let bpe = bpe.build().map_err(|e| cannot(&e))?;

    let mut normalizers = Vec::new();
    if add_space_prefix {
        normalizers.push(json!({"type": "Prepend", "prepend": SPACE.to_string()}));
    }
    normalizers
        .push(json!({"type": "Replace", "pattern": {"String": " "}, "content": SPACE.to_string()}));
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": SPACE.to_string()}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if add_space_prefix {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    let normalizer: NormalizerWrapper =
        serde_json::from_value(json!({"type": "Sequence", "normalizers": normalizers}))
            .map_err(|e| cannot(&e))?;
    let decoder: DecoderWrapper =
        serde_json::from_value(json!({"type": "Sequence", "decoders": decoders}))
            .map_err(|e| cannot(&e))?;

    let mut t = tokenizers::Tokenizer::new(bpe);
    t.with_normalizer(Some(normalizer))
        .map_err(|e| cannot(&e))?;
    t.with_decoder(Some(decoder));
    if let Some(pp) = post_processor(info, |id| tokens[id as usize].clone()) {
        let pp: PostProcessorWrapper = serde_json::from_value(pp).map_err(|e| cannot(&e))?;
        t.with_post_processor(Some(pp));
    }
    // Control and unknown tokens are special; user-defined ones are plain added tokens, both
    // matched whole in the raw text (those spelled back with "▁" are left to the merges).
    let added = |want: &[TokenType], special: bool| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(&spelled)
            .zip(types)
            .filter(|&((t, s), ty)| want.contains(ty) && !t.is_empty() && t == s)
            .map(|((t, _), _)| AddedToken::from(t.as_str(), special).normalized(false))
            .collect()
    };
    t.add_special_tokens(added(&[TokenType::Control, TokenType::Unknown], true))
        .map_err(|e| cannot(&e))?;
    t.add_tokens(added(&[TokenType::UserDefined], false))
        .map_err(|e| cannot(&e))?;
    Ok(t)
}
