//! Prompt datasets as TRL reads them: JSONL, each line with `prompt` (a string, or a list of
//! chat messages rendered with the model's chat template and generation prompt; a message's
//! content may be a list of parts, `{"type": "image"}` among them, as TRL's vision datasets
//! write it) and, for vision-language models, `images` (files, in the order of the prompt's
//! image places); every other column is kept for the reward rules.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::template::{ContentPart, Message, PartsMessage};
use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub enum Prompt {
    Text(String),
    Chat(Vec<Message>),
    /// Chat messages of which at least one has a list of content parts.
    Parts(Vec<PartsMessage>),
}

#[derive(Clone, Debug)]
pub struct Row {
    pub prompt: Prompt,
    /// The `images` column (or a single `image`): image files, relative to the dataset file
    /// when read with `read_checked`.
    pub images: Vec<PathBuf>,
    /// Every column but `prompt` and the images.
    pub columns: Map<String, Value>,
}

/// A message list where some content is a list of parts: every message as parts.
fn parse_parts(list: &[Value]) -> std::result::Result<Vec<PartsMessage>, String> {
    let mut msgs = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(|r| r.as_str()).ok_or_else(|| format!("prompt message {i} has no string `role`"))?;
        let content = match m.get("content") {
            Some(Value::String(t)) => vec![ContentPart::Text { text: t.clone() }],
            Some(parts @ Value::Array(_)) => serde_json::from_value(parts.clone()).map_err(|e| {
                format!("prompt message {i}: content parts must be {{\"type\": \"text\", \"text\": …}} or {{\"type\": \"image\"}}: {e}")
            })?,
            _ => return Err(format!("prompt message {i} has no `content` (a string or a list of parts)")),
        };
        msgs.push(PartsMessage { role: role.into(), content });
    }
    Ok(msgs)
}

/// The `images` column (a list of file names) or `image` (one).
fn take_images(columns: &mut Map<String, Value>) -> std::result::Result<Vec<PathBuf>, String> {
    let list = match (columns.remove("images"), columns.remove("image")) {
        (Some(_), Some(_)) => return Err("both `images` and `image` columns".into()),
        (Some(Value::Array(l)), None) => l,
        (None, Some(one @ Value::String(_))) => vec![one],
        (None, None) | (Some(Value::Null), None) => return Ok(Vec::new()),
        (Some(other), None) | (None, Some(other)) => {
            return Err(format!("`images` must be a list of image file names, got {other}"));
        }
    };
    list.into_iter()
        .map(|v| match v {
            Value::String(s) if !s.is_empty() => Ok(PathBuf::from(s)),
            other => Err(format!("`images` must hold image file names, got {other}")),
        })
        .collect()
}

/// One dataset row from its JSON text (a JSONL line): `prompt` (a string or a message list) and
/// the other columns.
pub fn parse_line(line: &str) -> std::result::Result<Row, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(mut columns) = v else { return Err("expected a JSON object".into()) };
    let images = take_images(&mut columns)?;
    let prompt = match columns.remove("prompt") {
        Some(Value::String(s)) => Prompt::Text(s),
        Some(Value::Array(list)) if list.iter().any(|m| m.get("content").is_some_and(Value::is_array)) => {
            Prompt::Parts(parse_parts(&list)?)
        }
        Some(Value::Array(list)) => {
            let mut msgs = Vec::with_capacity(list.len());
            for (i, m) in list.iter().enumerate() {
                let role = m.get("role").and_then(|r| r.as_str()).ok_or_else(|| format!("prompt message {i} has no string `role`"))?;
                let content = m.get("content").and_then(|c| c.as_str()).ok_or_else(|| format!("prompt message {i} has no string `content`"))?;
                msgs.push(Message { role: role.into(), content: content.into() });
            }
            if msgs.is_empty() {
                return Err("`prompt` is an empty message list".into());
            }
            Prompt::Chat(msgs)
        }
        Some(other) => return Err(format!("`prompt` must be a string or a list of messages, got {other}")),
        None => return Err("no `prompt` column".into()),
    };
    let places = match &prompt {
        Prompt::Text(t) => t.matches("<image>").count(),
        Prompt::Chat(m) => m.iter().map(|m| m.content.matches("<image>").count()).sum(),
        Prompt::Parts(m) => m.iter().flat_map(|m| &m.content).filter(|p| **p == ContentPart::Image).count(),
    };
    if !images.is_empty() && places != images.len() {
        return Err(format!("{} images for {places} image places in the prompt", images.len()));
    }
    Ok(Row { prompt, images, columns })
}

/// Reads every line; `required` columns must be present on each (the reward rules' targets).
pub fn read(path: &Path, required: &[String]) -> Result<Vec<Row>> {
    read_checked(path, |row| match required.iter().find(|c| !row.columns.contains_key(c.as_str())) {
        Some(c) => Err(format!("no `{c}` column, which a reward rule reads")),
        None => Ok(()),
    })
}

/// Reads every line, each row checked by `check` (its error names the line), so a bad row
/// stops a run before it writes anything (`RewardSet::read_dataset` checks the rules' columns).
pub fn read_checked(path: &Path, check: impl Fn(&Row) -> std::result::Result<(), String>) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row = parse_line(line).map(|mut r| {
            // Image files are named relative to the dataset, as `datasets` resolves them.
            let dir = path.parent().unwrap_or(Path::new(""));
            r.images = r.images.iter().map(|p| dir.join(p)).collect();
            r
        });
        let row = row.and_then(|r| check(&r).map(|_| r));
        rows.push(row.map_err(|e| Error::file(path, format!("line {}: {e}", i + 1)))?);
    }
    if rows.is_empty() {
        return Err(Error::file(path, "no prompts"));
    }
    Ok(rows)
}

/// One supervised (SFT) row, in TRL's dataset formats: `messages` (a conversation),
/// `prompt`/`completion` (strings, or message lists: TRL's conversational prompt-completion), or
/// `text` (plain language modelling). A conversational row with an `images` (or `image`) column,
/// or with content parts, is a vision row (TRL's vision SFT datasets): its messages as parts,
/// `{"type": "image"}` where each image goes, files relative to the dataset file.
#[derive(Clone, Debug)]
pub enum SftRow {
    Messages(Vec<Message>),
    TextPair { prompt: String, completion: String },
    ChatPair { prompt: Vec<Message>, completion: Vec<Message> },
    Text(String),
    PartsMessages { messages: Vec<PartsMessage>, images: Vec<PathBuf> },
    PartsPair { prompt: Vec<PartsMessage>, completion: Vec<PartsMessage>, images: Vec<PathBuf> },
}

impl SftRow {
    /// The row's image files (vision rows).
    pub fn images(&self) -> &[PathBuf] {
        match self {
            SftRow::PartsMessages { images, .. } | SftRow::PartsPair { images, .. } => images,
            _ => &[],
        }
    }

    fn images_mut(&mut self) -> Option<&mut Vec<PathBuf>> {
        match self {
            SftRow::PartsMessages { images, .. } | SftRow::PartsPair { images, .. } => Some(images),
            _ => None,
        }
    }
}

/// Messages as parts with `images` in place, as TRL's `prepare_multimodal_messages`: string
/// contents become text parts, and when no message has image parts the images go before the
/// first user message's text. The image places must match the images.
fn vision_messages(v: &Value, what: &str, images: usize, first: bool) -> std::result::Result<Vec<PartsMessage>, String> {
    let Value::Array(list) = v else { return Err(format!("`{what}` must be a list of messages")) };
    if list.is_empty() {
        return Err(format!("`{what}` is an empty message list"));
    }
    let mut msgs = parse_parts(list).map_err(|e| e.replacen("prompt message", &format!("{what} message"), 1))?;
    let places = |m: &[PartsMessage]| m.iter().flat_map(|m| &m.content).filter(|p| **p == ContentPart::Image).count();
    let all_strings = list.iter().all(|m| m.get("content").is_some_and(Value::is_string));
    if first && all_strings && images > 0 {
        let user = msgs.iter_mut().find(|m| m.role == "user").ok_or_else(|| format!("`{what}` has no user message for the images"))?;
        user.content.splice(0..0, std::iter::repeat_n(ContentPart::Image, images));
    }
    let n = places(&msgs);
    let want = if first { images } else { 0 };
    if n != want {
        return Err(format!("{want} images for {n} image places in `{what}`"));
    }
    Ok(msgs)
}

/// A vision row (see `SftRow`): `messages`, or conversational `prompt`/`completion` (the images
/// go with the prompt, as in TRL).
fn parse_vision_row(c: &Map<String, Value>, images: Vec<PathBuf>) -> std::result::Result<SftRow, String> {
    let n = images.len();
    if let Some(m) = c.get("messages") {
        return Ok(SftRow::PartsMessages { messages: vision_messages(m, "messages", n, true)?, images });
    }
    match (c.get("prompt"), c.get("completion")) {
        (Some(p @ Value::Array(_)), Some(q @ Value::Array(_))) => Ok(SftRow::PartsPair {
            prompt: vision_messages(p, "prompt", n, true)?,
            completion: vision_messages(q, "completion", n, false)?,
            images,
        }),
        _ => Err("rows with images must be conversational: `messages`, or message lists in `prompt` and `completion`".into()),
    }
}

/// A list of `{role, content}` messages (`what` names the column in errors).
pub fn parse_messages(v: &Value, what: &str) -> std::result::Result<Vec<Message>, String> {
    let Value::Array(list) = v else { return Err(format!("`{what}` must be a list of messages")) };
    let mut msgs = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(|r| r.as_str()).ok_or_else(|| format!("{what} message {i} has no string `role`"))?;
        let content = m.get("content").and_then(|c| c.as_str()).ok_or_else(|| format!("{what} message {i} has no string `content`"))?;
        msgs.push(Message { role: role.into(), content: content.into() });
    }
    if msgs.is_empty() {
        return Err(format!("`{what}` is an empty message list"));
    }
    Ok(msgs)
}

pub(crate) fn parse_sft_line(line: &str) -> std::result::Result<SftRow, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(mut c) = v else { return Err("expected a JSON object".into()) };
    let has_parts = |v: Option<&Value>| {
        v.and_then(Value::as_array).is_some_and(|l| l.iter().any(|m| m.get("content").is_some_and(Value::is_array)))
    };
    // An image column (even empty: TRL decides per dataset) or content parts: a vision row.
    if c.contains_key("images") || c.contains_key("image") || ["messages", "prompt", "completion"].iter().any(|k| has_parts(c.get(*k))) {
        let images = take_images(&mut c)?;
        return parse_vision_row(&c, images);
    }
    if let Some(m) = c.get("messages") {
        return Ok(SftRow::Messages(parse_messages(m, "messages")?));
    }
    match (c.get("prompt"), c.get("completion")) {
        (Some(Value::String(p)), Some(Value::String(q))) => Ok(SftRow::TextPair { prompt: p.clone(), completion: q.clone() }),
        (Some(p @ Value::Array(_)), Some(q @ Value::Array(_))) => {
            Ok(SftRow::ChatPair { prompt: parse_messages(p, "prompt")?, completion: parse_messages(q, "completion")? })
        }
        (Some(_), Some(_)) => Err("`prompt` and `completion` must both be strings or both be message lists".into()),
        (Some(_), None) => Err("a `prompt` without a `completion` (SFT trains on completions)".into()),
        _ => match c.get("text") {
            Some(Value::String(t)) => Ok(SftRow::Text(t.clone())),
            _ => Err("expected `messages`, `prompt` and `completion`, or `text`".into()),
        },
    }
}

/// An SFT dataset (JSONL, one row a line); every row must have the first row's format, as in TRL.
pub fn read_sft(path: &Path) -> Result<Vec<SftRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    let kind = |r: &SftRow| std::mem::discriminant(r);
    let mut rows: Vec<SftRow> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut row = parse_sft_line(line).map_err(|e| Error::file(path, format!("line {}: {e}", i + 1)))?;
        if let Some(images) = row.images_mut() {
            // Image files are named relative to the dataset, as `datasets` resolves them.
            let dir = path.parent().unwrap_or(Path::new(""));
            images.iter_mut().for_each(|p| *p = dir.join(&*p));
        }
        if let Some(first) = rows.first()
            && kind(first) != kind(&row)
        {
            return Err(Error::file(path, format!("line {}: a different format from the first row's", i + 1)));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(Error::file(path, "no rows"));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_errors() {
        let r = parse_line(r#"{"prompt": "hi", "answer": 42}"#).unwrap();
        assert!(matches!(r.prompt, Prompt::Text(ref s) if s == "hi"));
        assert_eq!(r.columns["answer"], 42);
        let r = parse_line(r#"{"prompt": [{"role": "user", "content": "tap send"}], "target_box": [1, 2, 3, 4]}"#).unwrap();
        assert!(matches!(r.prompt, Prompt::Chat(ref m) if m[0].content == "tap send"));
        for bad in ["[1]", "{}", r#"{"prompt": 3}"#, r#"{"prompt": []}"#, r#"{"prompt": [{"role": "user"}]}"#, "{"] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sft_rows() {
        assert!(matches!(parse_sft_line(r#"{"messages": [{"role": "user", "content": "a"}]}"#), Ok(SftRow::Messages(m)) if m.len() == 1));
        assert!(matches!(parse_sft_line(r#"{"prompt": "a", "completion": "b"}"#), Ok(SftRow::TextPair { .. })));
        let r = parse_sft_line(r#"{"prompt": [{"role": "user", "content": "a"}], "completion": [{"role": "assistant", "content": "b"}]}"#);
        assert!(matches!(r, Ok(SftRow::ChatPair { .. })));
        assert!(matches!(parse_sft_line(r#"{"text": "abc"}"#), Ok(SftRow::Text(_))));
        for bad in [r#"{"prompt": "a"}"#, r#"{"prompt": "a", "completion": []}"#, r#"{"messages": []}"#, "{}", "[]"] {
            assert!(parse_sft_line(bad).is_err(), "{bad}");
        }
        // Vision rows: parts, or string contents with the images before the first user text.
        let r = parse_sft_line(r#"{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "images": ["x.png", "y.png"]}"#);
        let Ok(SftRow::PartsMessages { messages, images }) = r else { panic!("{r:?}") };
        assert_eq!(images.len(), 2);
        assert_eq!(messages[1].content[..2], [ContentPart::Image, ContentPart::Image]);
        assert_eq!(messages[0].content, [ContentPart::Text { text: "s".into() }]);
        let r = parse_sft_line(r#"{"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "a"}]}], "completion": [{"role": "assistant", "content": "b"}], "image": "x.png"}"#);
        assert!(matches!(r, Ok(SftRow::PartsPair { ref images, .. }) if images.len() == 1), "{r:?}");
        for bad in [
            r#"{"messages": [{"role": "user", "content": [{"type": "image"}]}], "images": []}"#,
            r#"{"messages": [{"role": "user", "content": [{"type": "image"}]}], "images": ["a", "b"]}"#,
            r#"{"text": "<image>", "images": ["a"]}"#,
            r#"{"prompt": [{"role": "user", "content": "a"}], "completion": [{"role": "assistant", "content": [{"type": "image"}]}], "images": ["a"]}"#,
        ] {
            assert!(parse_sft_line(bad).is_err(), "{bad}");
        }
    }
}
