//! Chat templates edgerl supplies when a model file names none (GGUF files may leave out
//! `tokenizer.chat_template`; base models usually do).

/// A built-in chat template: a short name for messages (`edgerl info`, logs) and its Jinja text.
#[derive(Clone, Copy, Debug)]
pub struct Builtin {
    pub name: &'static str,
    /// What it is, in words.
    pub describe: &'static str,
    pub source: &'static str,
}

/// Gemma's turn format: `<bos><start_of_turn>user\n…<end_of_turn>\n<start_of_turn>model\n…`,
/// a system message folded into the first user turn, contents trimmed. The text is the chat
/// template of google/gemma-3-*-it (tokenizer_config.json), which Gemma 1 and 2 share apart
/// from the system message (they refuse one).
pub const GEMMA: Builtin = Builtin {
    name: "gemma",
    describe: "Gemma's turn format (google/gemma-3-*-it's chat template)",
    source: include_str!("gemma.jinja"),
};

/// The built-in template called `name`.
pub fn by_name(name: &str) -> Option<&'static Builtin> {
    [&GEMMA].into_iter().find(|b| b.name == name)
}
