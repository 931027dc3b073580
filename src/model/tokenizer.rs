//! tokenizer.json via the `tokenizers` crate, plus the chat template and special tokens from
//! tokenizer_config.json / chat_template.jinja, as transformers reads them.
//!
//! The `tokenizers` crate panics on some crafted files (at load, or only at encode), so every
//! call into it runs under `catch_unwind` and a panic becomes an error naming the file; what
//! can be checked up front is checked at load (tokenizer/check.rs).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Once;

use serde_json::Value;

mod check;

use crate::data::ChatTemplate;
use crate::error::{Error, Result};

pub struct Tokenizer {
    pub inner: tokenizers::Tokenizer,
    pub template: Option<ChatTemplate>,
    /// Token id of `eos_token` in tokenizer_config.json, if any.
    pub eos_token_id: Option<u32>,
    /// The file it came from (tokenizer.json, or the GGUF file), named in errors.
    source: PathBuf,
}

thread_local! {
    /// Set while this thread runs `guarded`: its panics become errors, so they are not reported.
    static SILENT: Cell<bool> = const { Cell::new(false) };
}

/// `f()`, with a panic inside the `tokenizers` crate turned into an error naming `path`. The
/// panic message goes into the error only: a panic hook, installed once and passing every
/// other panic on to the hook it replaces, keeps quiet about these.
pub(crate) fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> T) -> Result<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !SILENT.try_with(Cell::get).unwrap_or(false) {
                prev(info)
            }
        }));
    });
    let was = SILENT.with(|s| s.replace(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    SILENT.with(|s| s.set(was));
    r.map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
        Error::file(path, format!("{what}: the tokenizer failed (tokenizers panicked: {msg})"))
    })
}

/// A special token written as a string or as an AddedToken object `{"content": ...}`.
fn token_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("content")
            .and_then(|c| c.as_str())
            .map(str::to_string),
        _ => None,
    }
}

impl Tokenizer {
    pub fn open(dir: &Path) -> Result<Tokenizer> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(Error::file(
                &path,
                "missing (edgerl needs the fast tokenizer file)",
            ));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::file(&path, format!("cannot load: {e}")))?;
        let Tokenizer { inner, .. } = Tokenizer::from_json(&text, &path)?;

        let cfg_path = dir.join("tokenizer_config.json");
        let cfg: Value = if cfg_path.exists() {
            let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::file(&cfg_path, e))?;
            serde_json::from_str(&text)
                .map_err(|e| Error::file(&cfg_path, format!("not valid JSON: {e}")))?
        } else {
            Value::Null
        };
        let bos = token_text(cfg.get("bos_token")).unwrap_or_default();
        let eos = token_text(cfg.get("eos_token")).unwrap_or_default();
        let eos_token_id = if eos.is_empty() {
            None
        } else {
            inner.token_to_id(&eos)
        };

        // transformers 5 writes chat_template.jinja; older checkpoints keep it in the config,
        // as a string or a list of named templates.
        let jinja = dir.join("chat_template.jinja");
        // Errors in the template name the file it came from.
        let template_path = if jinja.exists() { &jinja } else { &cfg_path };
        let source = if jinja.exists() {
            Some(std::fs::read_to_string(&jinja).map_err(|e| Error::file(&jinja, e))?)
        } else {
            match cfg.get("chat_template") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Array(list)) => list
                    .iter()
                    .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                    .or_else(|| list.first())
                    .and_then(|t| t.get("template"))
                    .and_then(|t| t.as_str())
                    .map(str::to_string),
                _ => None,
            }
        };
        let template = match source {
            Some(s) => Some(
                ChatTemplate::new(&s, &bos, &eos)
                    .map_err(|e| Error::file(template_path, e))?
                    .with_origin(template_path),
            ),
            None => None,
        };
        Ok(Tokenizer {
            inner,
            template,
            eos_token_id,
            source: path,
        })
    }

    /// The tokenizer of a tokenizer.json's text (`path` names it in errors), checked as
    /// `open` checks it, without a chat template or EOS token.
    pub fn from_json(text: &str, path: &Path) -> Result<Tokenizer> {
        check::before_load(text).map_err(|e| Error::file(path, e))?;
        let mut inner = guarded(path, "cannot load", || text.parse::<tokenizers::Tokenizer>())?
            .map_err(|e| Error::file(path, format!("cannot load: {e}")))?;
        check::after_load(&mut inner).map_err(|e| Error::file(path, e))?;
        Ok(Tokenizer {
            inner,
            template: None,
            eos_token_id: None,
            source: path.to_path_buf(),
        })
    }

    /// The tokenizer a GGUF file describes in its metadata (see `model::gguf_tokenizer`), with
    /// its `tokenizer.chat_template` (or the built-in one for its family, marked as such) and
    /// EOS token.
    pub fn from_gguf(g: &crate::model::gguf::Gguf) -> Result<Tokenizer> {
        let inner = crate::model::gguf_tokenizer::tokenizer_from_gguf(g)?;
        let info = crate::model::gguf_tokenizer::GgufTokenizerInfo::read(g)?;
        let bos = info.bos_token.unwrap_or_default();
        let eos = info.eos_token.unwrap_or_default();
        let template = match info.chat_template {
            Some(s) => Some(
                ChatTemplate::new(&s, &bos, &eos)
                    .map_err(|e| Error::file(g.path(), e))?
                    .with_origin(g.path())
                    .with_builtin(info.chat_template_builtin),
            ),
            None => None,
        };
        Ok(Tokenizer {
            inner,
            template,
            eos_token_id: info.eos,
            source: g.path().to_path_buf(),
        })
    }

    /// Ids as Hugging Face `tokenizer(text)` returns them (special tokens added per the
    /// tokenizer's post-processor).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = guarded(&self.source, "tokenizing", || {
            self.inner.encode(text, add_special_tokens)
        })?
        .map_err(|e| Error::Invalid(format!("tokenizing: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        guarded(&self.source, "decoding", || self.inner.decode(ids, true))?
            .map_err(|e| Error::Invalid(format!("decoding: {e}")))
    }

    /// One user message rendered with the chat template and the generation prompt, tokenized as
    /// `apply_chat_template(..., tokenize=True)` does (no extra special tokens).
    pub fn chat_ids(&self, user: &str) -> Result<Vec<u32>> {
        self.messages_ids(&[crate::data::Message {
            role: "user".into(),
            content: user.into(),
        }])
    }

    /// A conversation's text as the chat template renders it (multi-turn episodes cut pieces
    /// out of it).
    pub fn render_chat(&self, messages: &[crate::data::Message], add_generation_prompt: bool) -> Result<String> {
        let t = self.template.as_ref().ok_or_else(|| Error::Invalid("this model has no chat template".into()))?;
        t.render(messages, add_generation_prompt)
    }

    /// Messages with content parts (text and images) as the chat template renders them.
    pub fn render_parts(&self, messages: &[crate::data::PartsMessage], add_generation_prompt: bool) -> Result<String> {
        let t = self.template.as_ref().ok_or_else(|| Error::Invalid("this model has no chat template".into()))?;
        t.render_parts(messages, add_generation_prompt)
    }

    /// A conversation rendered with the chat template and the generation prompt, tokenized as
    /// `apply_chat_template(..., add_generation_prompt=True, tokenize=True)` does. When the last
    /// message is the assistant's, it is continued instead, as TRL does for such prompts
    /// (`continue_final_message=True`): the text stops right after that message's content, so a
    /// prompt can start the answer ("click(") for the model.
    pub fn messages_ids(&self, messages: &[crate::data::Message]) -> Result<Vec<u32>> {
        self.encode(&self.messages_text(messages)?, false)
    }

    /// The text `messages_ids` tokenizes.
    pub fn messages_text(&self, messages: &[crate::data::Message]) -> Result<String> {
        let t = self.template()?;
        match messages.last() {
            Some(last) if last.role == "assistant" => continued(&t.render(messages, false)?, &last.content),
            _ => t.render(messages, true),
        }
    }

    /// `messages_text` for messages with content parts (a continued final assistant message
    /// ends after its last text part).
    pub fn parts_text(&self, messages: &[crate::data::PartsMessage]) -> Result<String> {
        use crate::data::ContentPart;
        let t = self.template()?;
        match messages.last() {
            Some(last) if last.role == "assistant" => {
                let text = last.content.iter().rev().find_map(|p| match p {
                    ContentPart::Text { text } => Some(text.as_str()),
                    ContentPart::Image => None,
                });
                continued(&t.render_parts(messages, false)?, text.unwrap_or(""))
            }
            _ => t.render_parts(messages, true),
        }
    }

    fn template(&self) -> Result<&ChatTemplate> {
        self.template.as_ref().ok_or_else(|| {
            Error::Invalid("this model has no chat template; use --prompt".into())
        })
    }
}

/// A rendering cut right after the final assistant message's `content`, as transformers'
/// `continue_final_message` cuts after the last occurrence of the stripped content.
fn continued(full: &str, content: &str) -> Result<String> {
    let content = content.trim();
    let end = full.rfind(content).map(|i| i + content.len()).ok_or_else(|| {
        Error::Invalid("the chat template dropped the final assistant message, so it cannot be continued".into())
    })?;
    Ok(full[..end].to_string())
}
