//! A `tokenizers::Tokenizer` built from a GGUF file's metadata (llama.cpp's `tokenizer.ggml.*`
//! keys): the tokenizer that transformers' GGUF loader builds
//! (transformers/integrations/gguf/gguf_tokenizer_mapping.py), which is the model's own
//! tokenizer.json rebuilt, checked against llama.cpp (src/llama-vocab.cpp) and corrected where
//! transformers strays from both.
//!
//! **Byte-level BPE** (`tokenizer.ggml.model = "gpt2"`), with the text split the way llama.cpp
//! splits it for `tokenizer.ggml.pre`, which is also how the model's own tokenizer.json splits it:
//! - BPE model: vocab = `tokenizer.ggml.tokens` (id = index; a token with characters outside the
//!   GPT-2 byte alphabet is re-spelled byte by byte, as transformers does), merges =
//!   `tokenizer.ggml.merges` ("a b"), no unk token, no byte fallback.
//! - Added tokens: `token_type` 3 (control) as special tokens, when spelled in the byte alphabet
//!   (transformers skips the others as llama.cpp mislabels); 4 (user-defined) as plain ones.
//! - Pre-tokenizer by `tokenizer.ggml.pre`; ByteLevel decoder.
//!
//! Where transformers 5.24 and llama.cpp differ, this follows llama.cpp: `smollm` splits every
//! digit off first (transformers does not know `smollm` and uses plain GPT-2 splitting, which
//! differs on whitespace before a digit: "a  3"), and the Llama-3 family sets `ignore_merges`
//! and adds BOS when the file does not say (as the Llama-3 tokenizer.json does).
//!
//! **SentencePiece** (`tokenizer.ggml.model = "llama"`: Gemma 1-3, Llama 2, Mistral v1, …;
//! spm.rs), as the model's tokenizer.json has it (Gemma 3's: BPE with merges and byte fallback,
//! normalizer " " → "▁", no pre-tokenizer, decoder "▁" → " " + ByteFallback + Fuse):
//! - BPE model: vocab = `tokenizer.ggml.tokens` (id = index), `unk_token` =
//!   `tokenizer.ggml.unknown_token_id`, byte fallback to the `<0xNN>` tokens. In the Gemma
//!   family, user-defined tokens that llama.cpp's converter wrote with spaces (the whitespace
//!   runs "  " …) are spelled back with "▁" as in the tokenizer.json, and reached by merges.
//! - Merges: the file has none, so they are rebuilt from the vocabulary as transformers does
//!   (`generate_merges`): every split of a token into two tokens, ranked by the token's
//!   `tokenizer.ggml.scores` (highest first), or, for the Gemma family (`general.architecture`
//!   gemma*), by the token's place in the file: Gemma's whitespace-run and newline tokens carry
//!   llama.cpp's score -1000 but come first in the tokenizer.json's merges. Normal tokens'
//!   scores fall with their ids, so the two orders agree on them.
//! - Normalizer: " " → "▁", after prepending "▁" when `tokenizer.ggml.add_space_prefix` (default
//!   true, as llama.cpp) — Llama 2's tokenizer.json; Gemma's says false. Being a normalizer, the
//!   prefix goes before every stretch of text between added tokens, as llama.cpp does (it
//!   prefixes each fragment after a special token) and the decoder strips one leading space.
//! - Added tokens: `token_type` 3 (control) and 2 (unknown) as special tokens, 4 (user-defined:
//!   Gemma's "\n" runs, tab runs, HTML tags) as plain ones, all matched whole in the raw text as
//!   llama.cpp's partition and SentencePiece's user-defined symbols do (but for Gemma's
//!   whitespace runs, above).
//! - BPE over the whole text (no pre-tokenizer), as SentencePiece and llama.cpp merge.
//!
//! Where transformers 5.25 and llama.cpp differ on SentencePiece vocabularies:
//! - A run of spaces longer than the longest whitespace token (Gemma: 31): llama.cpp (and
//!   SentencePiece) match the whitespace tokens whole, longest first, so 40 spaces are 31 + 9;
//!   the tokenizer.json reaches them by merges, which pair the spaces up evenly: 16 + 24. This
//!   follows transformers, whose Gemma builder rebuilds the merge order of the tokenizer.json
//!   Gemma is published with (that file itself was not at hand to check;
//!   tests/fixtures/tokenizers/gemma3_gguf_ids.json records all three).
//! - The prefix space, for vocabularies that ask for one: transformers' Llama builder puts it in
//!   a Metaspace pre-tokenizer, which skips text that already starts with a space and text after
//!   an added token; llama.cpp and Llama 2's tokenizer.json (Prepend normalizer) add it to both.
//!   This follows llama.cpp. (For Gemma, `add_space_prefix` is false and all agree.)
//! - `add_bos_token`: both default to true when the file does not say; so does this.
//!
//! Left as the file has them (as transformers does), unlike Gemma 3's tokenizer.json:
//! `<start_of_image>` / `<end_of_image>` are user-defined in the file (plain added tokens, kept
//! on decode), special in the tokenizer.json; the file has 262144 tokens, the tokenizer.json
//! also `<image_soft_token>` (262144).
//!
//! Either way, a TemplateProcessing post-processor adds BOS / EOS when
//! `tokenizer.ggml.add_bos_token` / `add_eos_token` ask for them.
//!
//! The chat template is `tokenizer.chat_template`. A Gemma file without one gets Gemma's turn
//! format (the google/gemma-3-*-it template, `data::template::builtin::GEMMA`), and
//! `GgufTokenizerInfo::chat_template_builtin` says so.

use serde_json::{Map, Value as Json, json};
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::{AddedToken, DecoderWrapper, PostProcessorWrapper, PreTokenizerWrapper};

use crate::data::template::builtin;
use crate::error::{Error, Result};
use crate::model::gguf::Gguf;

mod spm;

/// `tokenizer.ggml.token_type` (llama.cpp's `llama_token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
    Undefined,
}

impl TokenType {
    fn from_i64(t: i64) -> TokenType {
        match t {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Undefined,
        }
    }
}

/// Special tokens and the chat template a GGUF file names.
#[derive(Clone, Debug, Default)]
pub struct GgufTokenizerInfo {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub pad: Option<u32>,
    pub unk: Option<u32>,
    /// The texts of `bos` / `eos` as the vocabulary spells them.
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// `tokenizer.ggml.add_bos_token` / `add_eos_token` (llama.cpp's default when absent).
    pub add_bos: bool,
    pub add_eos: bool,
    /// `tokenizer.chat_template`, or the built-in template named by `chat_template_builtin`.
    pub chat_template: Option<String>,
    /// `Some(name)` when the file has no chat template and `chat_template` is edgerl's built-in
    /// one for its family (`"gemma"`: Gemma's turn format).
    pub chat_template_builtin: Option<&'static str>,
}

const PRE_GPT2: &[&str] = &["gpt2", "gpt-2", "default"];
const PRE_SMOLLM: &[&str] = &["smollm"];
const PRE_QWEN2: &[&str] = &["qwen2", "deepseek-r1-qwen"];
const PRE_LLAMA3: &[&str] = &["llama-bpe", "llama3", "llama-v3"];

/// `smollm`: every digit on its own, then GPT-2's split (ByteLevel's own regex).
const SPLIT_DIGITS: &str = r"\p{N}";
const SPLIT_QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const SPLIT_LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

#[derive(Clone, Copy, PartialEq)]
enum Pre {
    Gpt2,
    Smollm,
    Qwen2,
    Llama3,
}

fn pre_type(g: &Gguf) -> Result<Pre> {
    let name = match g.get("tokenizer.ggml.pre") {
        None => return Ok(Pre::Gpt2),
        Some(_) => g.get_str("tokenizer.ggml.pre")?,
    };
    for (names, pre) in [
        (PRE_GPT2, Pre::Gpt2),
        (PRE_SMOLLM, Pre::Smollm),
        (PRE_QWEN2, Pre::Qwen2),
        (PRE_LLAMA3, Pre::Llama3),
    ] {
        if names.contains(&name) {
            return Ok(pre);
        }
    }
    let all: Vec<&str> = [PRE_GPT2, PRE_SMOLLM, PRE_QWEN2, PRE_LLAMA3].concat();
    Err(Error::file(
        g.path(),
        format!(
            "tokenizer.ggml.pre '{name}' is not supported (supported: {})",
            all.join(", ")
        ),
    ))
}

fn split(pattern: &str) -> Json {
    json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false})
}

fn byte_level(use_regex: bool) -> Json {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
}

fn pre_tokenizer(pre: Pre) -> Json {
    let seq = |pattern: &str, use_regex: bool| json!({"type": "Sequence", "pretokenizers": [split(pattern), byte_level(use_regex)]});
    match pre {
        Pre::Gpt2 => byte_level(true),
        Pre::Smollm => seq(SPLIT_DIGITS, true),
        Pre::Qwen2 => seq(SPLIT_QWEN2, false),
        Pre::Llama3 => seq(SPLIT_LLAMA3, false),
    }
}

/// GPT-2's byte-to-character table (transformers' `bytes_to_unicode`): printable Latin-1 bytes
/// stand for themselves, the other 68 map to U+0100.. in byte order.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff);
    if printable(b) {
        return char::from(b);
    }
    let n = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).unwrap_or('?')
}

fn in_byte_alphabet(c: char) -> bool {
    matches!(c as u32, 0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff | 0x100..=0x143)
}

/// The token as the byte-level vocabulary spells it: unchanged when every character is in the
/// byte alphabet, else each UTF-8 byte mapped through the table.
fn respell(token: &str) -> String {
    if token.chars().all(in_byte_alphabet) {
        token.to_string()
    } else {
        token.bytes().map(byte_char).collect()
    }
}

fn model_kind(model: &str) -> &'static str {
    match model {
        "bert" => " (WordPiece)",
        "t5" => " (unigram)",
        "rwkv" => " (RWKV)",
        "gemma4" => " (sentencepiece BPE)",
        _ => "",
    }
}

impl GgufTokenizerInfo {
    pub fn read(g: &Gguf) -> Result<GgufTokenizerInfo> {
        let tokens = g.get_str_array("tokenizer.ggml.tokens")?;
        // A sentencepiece vocabulary: llama.cpp's defaults differ (ids, add_bos).
        let spm = g.get("tokenizer.ggml.model").and_then(|v| v.as_str()) == Some("llama");
        let id = |key: &str, spm_default: Option<u64>| -> Result<Option<u32>> {
            let v = match (g.get(key), spm_default) {
                (None, Some(d)) if spm => d,
                (None, _) => return Ok(None),
                (Some(_), _) => g.get_u64(key)?,
            };
            if v >= tokens.len() as u64 {
                // llama.cpp warns and ignores such an id.
                log::warn!(
                    "{}: {key} = {v} is past the vocabulary ({} tokens); ignored",
                    g.path().display(),
                    tokens.len()
                );
                return Ok(None);
            }
            Ok(Some(v as u32))
        };
        let flag = |key: &str, default: bool| -> Result<bool> {
            match g.get(key) {
                None => Ok(default),
                Some(_) => g.get_bool(key),
            }
        };
        // llama.cpp's defaults for a sentencepiece vocabulary: <unk> 0, <s> 1, </s> 2.
        let bos = id("tokenizer.ggml.bos_token_id", Some(1))?;
        let eos = id("tokenizer.ggml.eos_token_id", Some(2))?;
        let pad = id("tokenizer.ggml.padding_token_id", None)?;
        let unk = id("tokenizer.ggml.unknown_token_id", Some(0))?;
        // llama.cpp adds BOS for sentencepiece and the Llama-3 pre-tokenizers unless the file
        // says otherwise (transformers too, for sentencepiece).
        let llama3 = g
            .get("tokenizer.ggml.pre")
            .is_some_and(|_| pre_type(g).ok() == Some(Pre::Llama3));
        let add_bos = flag("tokenizer.ggml.add_bos_token", llama3 || spm)?;
        let add_eos = flag("tokenizer.ggml.add_eos_token", false)?;
        for (add, tok, what) in [(add_bos, bos, "bos"), (add_eos, eos, "eos")] {
            if add && tok.is_none() {
                return Err(Error::file(
                    g.path(),
                    format!(
                        "tokenizer.ggml.add_{what}_token is true, but tokenizer.ggml.{what}_token_id is not set"
                    ),
                ));
            }
        }
        let mut chat_template = match g.get("tokenizer.chat_template") {
            None => None,
            Some(_) => Some(g.get_str("tokenizer.chat_template")?.to_string()),
        };
        let mut chat_template_builtin = None;
        if chat_template.is_none() && is_gemma(g, tokens) {
            chat_template = Some(builtin::GEMMA.source.to_string());
            chat_template_builtin = Some(builtin::GEMMA.name);
        }
        let text = |id: Option<u32>| id.map(|i| tokens[i as usize].clone());
        Ok(GgufTokenizerInfo {
            bos,
            eos,
            pad,
            unk,
            bos_token: text(bos),
            eos_token: text(eos),
            add_bos,
            add_eos,
            chat_template,
            chat_template_builtin,
        })
    }
}

/// A Gemma file, by its architecture (gemma, gemma2, gemma3, gemma3n, …) and its turn markers.
fn is_gemma(g: &Gguf, tokens: &[String]) -> bool {
    let arch = g.get("general.architecture").and_then(|v| v.as_str());
    arch.is_some_and(|a| a.starts_with("gemma"))
        && ["<start_of_turn>", "<end_of_turn>"]
            .iter()
            .all(|m| tokens.iter().any(|t| t == m))
}

/// The file's tokenizer as a `tokenizers::Tokenizer` (byte-level BPE or sentencepiece; see the
/// module docs). `to_string(true)` on it gives the equivalent tokenizer.json.
pub fn tokenizer_from_gguf(g: &Gguf) -> Result<tokenizers::Tokenizer> {
    let bad = |msg: String| Error::file(g.path(), msg);
    let model = g.get_str("tokenizer.ggml.model")?;
    if model != "gpt2" && model != "llama" {
        return Err(bad(format!(
            "tokenizer.ggml.model '{model}'{} is not supported yet (only 'gpt2', byte-level BPE, and 'llama', sentencepiece)",
            model_kind(model)
        )));
    }
    let info = GgufTokenizerInfo::read(g)?;
    let tokens = g.get_str_array("tokenizer.ggml.tokens")?;
    if tokens.is_empty() || tokens.len() > u32::MAX as usize {
        return Err(bad(format!(
            "tokenizer.ggml.tokens has {} entries",
            tokens.len()
        )));
    }
    let types: Vec<TokenType> = match g.get("tokenizer.ggml.token_type") {
        None => vec![TokenType::Normal; tokens.len()],
        Some(_) => {
            let t = g.get_i64_array("tokenizer.ggml.token_type")?;
            if t.len() != tokens.len() {
                return Err(bad(format!(
                    "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {}",
                    t.len(),
                    tokens.len()
                )));
            }
            t.into_iter().map(TokenType::from_i64).collect()
        }
    };
    if model == "llama" {
        return spm::tokenizer(g, &info, tokens, &types);
    }
    byte_level_tokenizer(g, &info, tokens, &types)
}

/// A `gpt2` vocabulary (see the module docs).
fn byte_level_tokenizer(
    g: &Gguf,
    info: &GgufTokenizerInfo,
    tokens: &[String],
    types: &[TokenType],
) -> Result<tokenizers::Tokenizer> {
    let bad = |msg: String| Error::file(g.path(), msg);
    let pre = pre_type(g)?;
    if g.get("tokenizer.ggml.merges").is_none() {
        return Err(bad(
            "tokenizer.ggml.merges is missing (a gpt2 vocabulary needs its merges)".into(),
        ));
    }
    let merges = g.get_str_array("tokenizer.ggml.merges")?;

    // Later duplicates win, as in transformers' dict.
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (respell(t), i as u32))
        .collect();
    let mut pairs = Vec::with_capacity(merges.len());
    for (i, m) in merges.iter().enumerate() {
        let mut parts = m.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) => pairs.push((respell(a), respell(b))),
            _ => {
                return Err(bad(format!(
                    "tokenizer.ggml.merges[{i}] {m:?} is not two tokens separated by one space"
                )));
            }
        }
    }
    // Control tokens spelled in the byte alphabet become special; user-defined ones that the
    // vocabulary holds as spelled become plain added tokens.
    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(types)
        .filter(|&(t, &ty)| ty == TokenType::Control && t.chars().all(in_byte_alphabet))
        .map(|(t, _)| AddedToken::from(t.as_str(), true).normalized(false))
        .collect();
    let user: Vec<AddedToken> = tokens
        .iter()
        .zip(types)
        .filter(|&(t, &ty)| ty == TokenType::UserDefined && vocab.contains_key(t.as_str()))
        .map(|(t, _)| AddedToken::from(t.as_str(), false).normalized(false))
        .collect();

    let cannot = |e: &dyn std::fmt::Display| bad(format!("cannot build the tokenizer: {e}"));
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, pairs)
        .ignore_merges(pre == Pre::Llama3)
        .build()
        .map_err(|e| cannot(&e))?;
    let mut t = tokenizers::Tokenizer::new(bpe);
    let pre_tokenizer: PreTokenizerWrapper =
        serde_json::from_value(pre_tokenizer(pre)).map_err(|e| cannot(&e))?;
    let decoder: DecoderWrapper = serde_json::from_value(json!(
        {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}
    ))
    .map_err(|e| cannot(&e))?;
    t.with_pre_tokenizer(Some(pre_tokenizer));
    t.with_decoder(Some(decoder));
    if let Some(pp) = post_processor(info, |id| respell(&tokens[id as usize])) {
        let pp: PostProcessorWrapper = serde_json::from_value(pp).map_err(|e| cannot(&e))?;
        t.with_post_processor(Some(pp));
    }
    t.add_special_tokens(specials).map_err(|e| cannot(&e))?;
    t.add_tokens(user).map_err(|e| cannot(&e))?;
    Ok(t)
}

/// transformers' TemplateProcessing for `add_bos_token` / `add_eos_token`: `[BOS] $A [EOS]`,
/// and for pairs `[BOS] $A [EOS] [BOS] $B [EOS]`. `name` spells a token as the vocabulary does.
fn post_processor(info: &GgufTokenizerInfo, name: impl Fn(u32) -> String) -> Option<Json> {
    if !info.add_bos && !info.add_eos {
        return None;
    }
    let special = |id: Option<u32>, on: bool| -> Option<(String, u32)> {
        let id = id.filter(|_| on)?;
        Some((name(id), id))
    };
    let bos = special(info.bos, info.add_bos);
    let eos = special(info.eos, info.add_eos);
    let piece = |tok: &Option<(String, u32)>, type_id: u32| {
        tok.as_ref()
            .map(|(t, _)| json!({"SpecialToken": {"id": t, "type_id": type_id}}))
    };
    let seq = |id: &str, type_id: u32| json!({"Sequence": {"id": id, "type_id": type_id}});
    let single: Vec<Json> = [piece(&bos, 0), Some(seq("A", 0)), piece(&eos, 0)]
        .into_iter()
        .flatten()
        .collect();
    let mut pair = single.clone();
    pair.extend(
        [piece(&bos, 1), Some(seq("B", 1)), piece(&eos, 1)]
            .into_iter()
            .flatten(),
    );
    let mut specials = Map::new();
    for (t, id) in bos.iter().chain(eos.iter()) {
        specials.insert(t.clone(), json!({"id": t, "ids": [id], "tokens": [t]}));
    }
    Some(
        json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials}),
    )
}

#[cfg(test)]
mod tests;
