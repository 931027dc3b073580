//! Prompt datasets as TRL reads them: JSONL, each line with `prompt` (a string, or a list of
//! chat messages rendered with the model's chat template and generation prompt); every other
//! column is kept for the reward rules.

use std::path::Path;

use serde_json::{Map, Value};

use super::template::Message;
use crate::error::{Error, Result};
use crate::reward::RewardSet;

#[derive(Clone, Debug)]
pub enum Prompt {
    Text(String),
    Chat(Vec<Message>),
}

#[derive(Clone, Debug)]
pub struct Row {
    pub prompt: Prompt,
    /// Every column but `prompt`.
    pub columns: Map<String, Value>,
}

pub(crate) fn parse_line(line: &str) -> std::result::Result<Row, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(mut columns) = v else { return Err("expected a JSON object".into()) };
    let prompt = match columns.remove("prompt") {
        Some(Value::String(s)) => Prompt::Text(s),
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
    Ok(Row { prompt, columns })
}

/// Reads every line; `required` columns must be present on each (the reward rules' targets).
pub fn read(path: &Path, required: &[String]) -> Result<Vec<Row>> {
    read_checked(path, |row| match required.iter().find(|c| !row.columns.contains_key(c.as_str())) {
        Some(c) => Err(format!("no `{c}` column, which a reward rule reads")),
        None => Ok(()),
    })
}

/// Reads every line and checks each row's target columns against the rules (present and of
/// the right type) before anything runs, so a bad row stops a run before it writes anything.
pub fn read_for(path: &Path, rewards: &RewardSet) -> Result<Vec<Row>> {
    let required = rewards.columns();
    read_checked(path, |row| {
        if let Some(c) = required.iter().find(|c| !row.columns.contains_key(c.as_str())) {
            return Err(format!("no `{c}` column, which a reward rule reads"));
        }
        // Rules parse their targets before the completion, so an empty one finds bad targets.
        rewards.score("", 0, &row.columns).map(|_| ()).map_err(|e| e.to_string())
    })
}

fn read_checked(path: &Path, check: impl Fn(&Row) -> std::result::Result<(), String>) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row = parse_line(line).and_then(|r| check(&r).map(|_| r));
        rows.push(row.map_err(|e| Error::file(path, format!("line {}: {e}", i + 1)))?);
    }
    if rows.is_empty() {
        return Err(Error::file(path, "no prompts"));
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
}
