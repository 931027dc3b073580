//! Hugging Face chat templates (Jinja) rendered with minijinja, configured as transformers
//! configures Jinja: trim_blocks and lstrip_blocks on, Python string methods available.
//!
//! A template comes from a model file, so it is untrusted code: every render runs on a fuel
//! budget (bounding both its work and the data it can build), its output is capped, and it
//! stops at `edgerl_cancel` (`crate::cancel::requested`, asked at every write).

use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, ErrorKind, Value, context};

use crate::error::{Error, Result};

pub mod builtin;
mod namespaces;

/// minijinja fuel: about one per instruction and one per 64 bytes of data the template
/// creates or walks, so a budget bounds both a render's time and its allocations (64 bytes
/// per fuel). A render gets `FUEL`, plus `FUEL_PER_MESSAGE` per message and one per 2 bytes
/// of content (`budget`): a template's work may grow with the conversation, not beyond.
/// Qwen3's template spends ~72 fuel per message and ~1 per 7 bytes of content
/// (tests/real_tokenizer.rs checks it stays under a quarter of its budget).
pub const FUEL: u64 = 1_000_000;
pub const FUEL_PER_MESSAGE: u64 = 1_000;

/// The longest rendered prompt: 1 MiB, far beyond any context window edgerl trains.
pub const MAX_RENDERED_BYTES: usize = 1 << 20;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A message whose content is a list of parts, as TRL's vision datasets and vision models'
/// chat templates (SmolVLM's) write them: `[{"type": "image"}, {"type": "text", "text": …}]`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartsMessage {
    pub role: String,
    pub content: Vec<ContentPart>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ContentPart {
    Text { text: String },
    Image,
}

pub struct ChatTemplate {
    env: Environment<'static>,
    pub bos_token: String,
    pub eos_token: String,
    /// The file the template came from, named in render errors.
    origin: Option<PathBuf>,
    /// Set when the model file has no template and this is edgerl's built-in one.
    builtin: Option<&'static builtin::Builtin>,
}

fn raise_exception(msg: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
}

/// minijinja's message on one line (details such as a raised exception may hold newlines).
fn one_line(e: &minijinja::Error) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why the sink refused a write (it turns into the render's error).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    TooLong,
    Cancelled,
}

/// The render's output: refuses to grow past `MAX_RENDERED_BYTES`, and stops when the
/// calling session is cancelled.
struct Sink {
    buf: Vec<u8>,
    stop: Option<Stop>,
}

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let stop = if crate::cancel::requested() {
            Some(Stop::Cancelled)
        } else if self.buf.len() + b.len() > MAX_RENDERED_BYTES {
            Some(Stop::TooLong)
        } else {
            None
        };
        if let Some(s) = stop {
            self.stop = Some(s);
            return Err(std::io::Error::other(format!("{s:?}")));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ChatTemplate {
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| Error::Invalid(format!("chat template syntax: {e}")))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", |_fmt: String| -> String { String::new() });
        namespaces::check(source)
            .map_err(|e| Error::Invalid(format!("chat template not supported: {e}")))?;
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| Error::Invalid(format!("chat template does not parse: {}", one_line(&e))))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
            origin: None,
            builtin: None,
        })
    }

    /// Marks this template as the built-in one called `name` (`None`: the model's own).
    pub fn with_builtin(mut self, name: Option<&str>) -> ChatTemplate {
        self.builtin = name.and_then(builtin::by_name);
        self
    }

    /// The built-in template this is, when the model file had none.
    pub fn builtin(&self) -> Option<&'static builtin::Builtin> {
        self.builtin
    }

    /// Where the template came from, in words: "<file>" or "built in: Gemma's turn format …
    /// (<file> has none)".
    pub fn source_note(&self) -> String {
        let file = self
            .origin
            .as_ref()
            .map_or_else(|| "the model".to_string(), |p| p.display().to_string());
        match self.builtin {
            Some(b) => format!("built in: {} ({file} has none)", b.describe),
            None => file,
        }
    }

    /// Names `path` in this template's render errors.
    pub fn with_origin(mut self, path: &Path) -> ChatTemplate {
        self.origin = Some(path.to_path_buf());
        self
    }

    /// The prompt text for `messages`, ending with the assistant's generation prompt if asked.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        self.render_counted(messages, add_generation_prompt).map(|(s, _)| s)
    }

    /// `render`, plus the fuel it consumed (for sizing `FUEL` against real templates).
    pub fn render_counted(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<(String, u64)> {
        let msgs: Vec<Value> = messages
            .iter()
            .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        self.render_values(msgs, budget(messages), add_generation_prompt)
    }

    /// The prompt text for messages with content parts (an image's part renders as the
    /// template says, `<image>` in SmolVLM's).
    pub fn render_parts(&self, messages: &[PartsMessage], add_generation_prompt: bool) -> Result<String> {
        // As `budget`: fuel per message (and here per part), and one per 2 bytes of text.
        let parts: usize = messages.iter().map(|m| 1 + m.content.len()).sum();
        let bytes: usize = messages
            .iter()
            .flat_map(|m| &m.content)
            .map(|p| if let ContentPart::Text { text } = p { text.len() } else { 0 })
            .sum();
        let fuel = FUEL + FUEL_PER_MESSAGE * parts as u64 + bytes as u64 / 2;
        let msgs = messages.iter().map(|m| Value::from(minijinja::value::Serde(m))).collect();
        self.render_values(msgs, fuel, add_generation_prompt).map(|(s, _)| s)
    }

    fn render_values(&self, msgs: Vec<Value>, fuel: u64, add_generation_prompt: bool) -> Result<(String, u64)> {
        let fail = |why: String| match &self.origin {
            Some(p) => Error::file(p, format!("rendering the chat template: {why}")),
            None => Error::Invalid(format!("rendering the chat template: {why}")),
        };
        if crate::cancel::requested() {
            return Err(fail("cancelled".into()));
        }
        let mut env = self.env.clone();
        env.set_fuel(Some(fuel));
        let tmpl = env.get_template("chat").map_err(|e| fail(one_line(&e)))?;
        let ctx = context! {
            messages => Value::from(msgs),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        };
        let mut sink = Sink { buf: Vec::new(), stop: None };
        let used = match tmpl.render_captured_to(ctx, &mut sink) {
            Ok(c) => c.state().fuel_levels().map_or(0, |(used, _)| used),
            Err(e) => {
                return Err(fail(match sink.stop {
                    Some(Stop::Cancelled) => "cancelled".into(),
                    Some(Stop::TooLong) => {
                        format!("the output exceeds {MAX_RENDERED_BYTES} bytes")
                    }
                    None if e.kind() == ErrorKind::OutOfFuel => format!(
                        "the template ran out of its budget ({fuel} fuel: too much work or data)"
                    ),
                    None => one_line(&e),
                }));
            }
        };
        // The output is concatenated &str pieces, so it is UTF-8.
        let text = String::from_utf8(sink.buf).map_err(|e| fail(e.to_string()))?;
        Ok((text, used))
    }
}

/// The fuel a render of `messages` gets (see `FUEL`).
pub fn budget(messages: &[Message]) -> u64 {
    let content: usize = messages.iter().map(|m| m.content.len() + m.role.len()).sum();
    FUEL + FUEL_PER_MESSAGE * messages.len() as u64 + content as u64 / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    fn user(n: usize) -> Vec<Message> {
        (0..n)
            .map(|i| Message { role: "user".into(), content: format!("message {i}") })
            .collect()
    }

    fn render(src: &str) -> Result<String> {
        ChatTemplate::new(src, "<s>", "</s>")?.render(&user(2), true)
    }

    /// Templates that would spin for hours, or build gigabytes, stop with an error instead.
    #[test]
    fn runaway_templates_stop() {
        for (src, want) in [
            ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "budget"),
            ("{% for i in range(100000) %}{{ 'x' * 100000000 }}{% endfor %}", "budget"),
            ("{{ 'x' * 10**10 }}", ""),
            ("{% set s = 'x' * 1000 %}{% for i in range(100000) %}{% set s = s ~ s %}{% endfor %}", "budget"),
            ("{% for i in range(3000) %}{{ 'y' * 1000 }}{% endfor %}", "exceeds 1048576 bytes"),
            ("{% for i in range(10**9) %}a{% endfor %}", ""),
        ] {
            let t0 = std::time::Instant::now();
            let e = render(src).err().unwrap_or_else(|| panic!("{src}: rendered")).to_string();
            assert!(e.contains("rendering the chat template") && e.contains(want), "{src}: {e}");
            assert!(!e.contains('\n'), "{e}");
            assert!(t0.elapsed().as_secs() < 20, "{src}: {:?}", t0.elapsed());
        }
    }

    /// fuzz/chat_template: a namespace holding itself overflowed the stack when printed. Any
    /// way of storing a namespace as a value is refused at load; the usual uses still work.
    #[test]
    fn namespaces_are_never_values() {
        for src in [
            "{% set ns = namespace(n=0) %}{% set ns.n = ns %}{{ ns }}",
            "{% set ns = namespace() %}{% set ns.a = [ns] %}",
            "{% set ns = namespace() %}{% set y = ns %}{% set ns.a = y %}{{ y ~ 1 }}",
            "{% set ns = namespace() %}{% for x in [1] %}{% set ns.a = {'k': ns} %}{% endfor %}",
            "{% set ns = namespace(x=namespace()) %}",
            "{% set ns = namespace() %}{% set ns.a = namespace() %}",
            "{% set f = namespace %}",
            "{{ namespace() }}",
            "{%- set ns = namespace() -%}{{ ns|string }}",
        ] {
            let e = render(src).err().unwrap_or_else(|| panic!("{src}: accepted")).to_string();
            assert!(e.contains("namespace"), "{src}: {e}");
        }
        let ok = "{# ns #}{%- set ns = namespace(n=1, s='x') -%}{% set ns.n = ns.n + 1 %}\
                  {{ 'ns' ~ ns.n }}{% raw %}{{ ns }}{% endraw %}{{ ns['s'] }}{{ \"ns\\\" ns\" }}";
        assert_eq!(render(ok).unwrap(), "ns2{{ ns }}xns\" ns");
    }

    #[test]
    fn a_template_near_the_cap_still_renders() {
        let text = render("{% for i in range(1000) %}{{ 'y' * 1000 }}{% endfor %}").unwrap();
        assert_eq!(text.len(), 1_000_000);
    }

    #[test]
    fn cancel_stops_a_render() {
        let flag = Arc::new(AtomicBool::new(true));
        let _s = crate::cancel::scope(flag);
        let e = render("{% for m in messages %}{{ m.content }}{% endfor %}").unwrap_err().to_string();
        assert!(e.contains("cancelled"), "{e}");
    }

    /// Mid-render: the sink asks at every write.
    #[test]
    fn the_sink_stops_at_cancel() {
        use std::io::Write;
        let flag = Arc::new(AtomicBool::new(false));
        let _s = crate::cancel::scope(flag.clone());
        let mut sink = Sink { buf: Vec::new(), stop: None };
        sink.write_all(b"ok").unwrap();
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(sink.write_all(b"more").is_err());
        assert_eq!((sink.stop, sink.buf.as_slice()), (Some(Stop::Cancelled), &b"ok"[..]));
    }

    #[test]
    fn errors_name_the_origin_file_on_one_line() {
        let t = ChatTemplate::new("{{ raise_exception('bad\nrole') }}", "", "")
            .unwrap()
            .with_origin(Path::new("/m/tokenizer_config.json"));
        let e = t.render(&user(1), true).unwrap_err().to_string();
        assert!(e.starts_with("/m/tokenizer_config.json: rendering") && e.contains("bad role"), "{e}");
    }
}
