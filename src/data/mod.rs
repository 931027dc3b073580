//! Prompts and chat templates.

pub mod dataset;
pub mod template;

pub use template::{ChatTemplate, ContentPart, Message, PartsMessage};
