//! Prompts and chat templates.

pub mod template;

pub use template::{ChatTemplate, Message};
