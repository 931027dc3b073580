//! What `tokenizers` does not check in a tokenizer.json but panics on (or over-allocates for)
//! later: checked here at load so that encoding never gets there. `catch_unwind` around every
//! call (tokenizer.rs) is the backstop for the rest.

use serde_json::Value;

/// On the raw text, before `tokenizers` parses it: a `Precompiled` normalizer's charsmap must
/// be a base64 string holding the trie its first 4 bytes announce (the crate reserves the
/// announced size before reading it: up to 8 GiB from that one field).
pub fn before_load(text: &str) -> Result<(), String> {
    if !text.contains("Precompiled") {
        return Ok(());
    }
    let v: Value = serde_json::from_str(text).map_err(|e| format!("cannot load: {e}"))?;
    walk(&v, &mut |o| {
        if o.get("type").and_then(Value::as_str) != Some("Precompiled") {
            return Ok(());
        }
        let Some(b64) = o.get("precompiled_charsmap").and_then(Value::as_str) else {
            return Err("cannot load: a Precompiled normalizer has no precompiled_charsmap string".into());
        };
        let pad = b64.bytes().rev().take_while(|&c| c == b'=').count();
        let len = (b64.len() / 4 * 3).saturating_sub(pad);
        let head = base64_head(b64).ok_or("cannot load: the Precompiled charsmap is not base64")?;
        let trie = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize / 4 * 4;
        if len < 4 || trie > len - 4 {
            return Err(format!(
                "cannot load: the Precompiled charsmap announces a {trie}-byte trie but holds {len} bytes"
            ));
        }
        Ok(())
    })
}

/// The first 6 bytes of base64 text (its first 8 characters), if they decode.
fn base64_head(s: &str) -> Option<[u8; 6]> {
    let digit = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let b = s.as_bytes().get(..8)?;
    let mut bits = 0u64;
    for &c in b {
        bits = bits << 6 | digit(c)? as u64;
    }
    let all = bits.to_be_bytes();
    Some([all[2], all[3], all[4], all[5], all[6], all[7]])
}

/// Every object in `v`, depth first.
fn walk(v: &Value, f: &mut impl FnMut(&serde_json::Map<String, Value>) -> Result<(), String>) -> Result<(), String> {
    match v {
        Value::Object(o) => {
            f(o)?;
            o.values().try_for_each(|x| walk(x, f))
        }
        Value::Array(a) => a.iter().try_for_each(|x| walk(x, f)),
        _ => Ok(()),
    }
}

/// On the loaded tokenizer. Padding and truncation are dropped, as transformers'
/// `tokenizer(text)` drops them (padding=False, truncation=None): the file's settings never
/// apply there, and a length of 0 panics in `tokenizers`. A TemplateProcessing post-processor
/// must name only special tokens it defines, within the vocabulary, and its single-sequence
/// template only sequence A (otherwise encoding panics).
pub fn after_load(t: &mut tokenizers::Tokenizer) -> Result<(), String> {
    t.with_padding(None);
    t.with_truncation(None).map_err(|e| format!("cannot load: {e}"))?;
    let vocab = t.get_vocab_size(true);
    let Some(pp) = t.get_post_processor() else {
        return Ok(());
    };
    let pp = serde_json::to_value(pp).map_err(|e| format!("cannot load: {e}"))?;
    walk(&pp, &mut |o| {
        if o.get("type").and_then(Value::as_str) == Some("TemplateProcessing") {
            template_processing(o, vocab).map_err(|e| format!("cannot load: post_processor: {e}"))?;
        }
        Ok(())
    })
}

fn template_processing(o: &serde_json::Map<String, Value>, vocab: usize) -> Result<(), String> {
    let specials = o.get("special_tokens").and_then(Value::as_object);
    for (name, sp) in specials.into_iter().flatten() {
        let ids = sp.get("ids").and_then(Value::as_array).map_or(0, Vec::len);
        let tokens = sp.get("tokens").and_then(Value::as_array).map_or(0, Vec::len);
        if ids != tokens {
            return Err(format!("special token {name:?} has {ids} ids but {tokens} tokens"));
        }
        let bad = sp.get("ids").and_then(Value::as_array).into_iter().flatten()
            .filter_map(Value::as_u64).find(|&i| i >= vocab as u64);
        if let Some(i) = bad {
            return Err(format!("special token {name:?} has id {i}, beyond the vocabulary ({vocab})"));
        }
    }
    for which in ["single", "pair"] {
        for piece in o.get(which).and_then(Value::as_array).into_iter().flatten() {
            if let Some(id) = piece.pointer("/SpecialToken/id").and_then(Value::as_str)
                && !specials.is_some_and(|m| m.contains_key(id))
            {
                return Err(format!("the {which} template names special token {id:?}, which special_tokens does not define"));
            }
            if which == "single" && piece.pointer("/Sequence/id").and_then(Value::as_str) == Some("B") {
                return Err("the single template uses sequence B".into());
            }
        }
    }
    Ok(())
}
