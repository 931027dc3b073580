//! Vision rows (TRL's vision SFT datasets) tokenized as TRL 1.16's
//! `DataCollatorForVisionLanguageModeling` prepares them: the chat template renders the parts,
//! each `<image>` expands for its image as the Idefics3 processor does (`vision::ImageSide`), no
//! special tokens added and no EOS appended. `messages`: every token carries loss, image tokens
//! included (TRL masks only padding), or the assistant turns' with `assistant_only_loss`.
//! Prompt/completion: prompt and completion tokenized apart and joined, the completion's tokens
//! trained (`completion_only_loss`, on by default). `max_length` keeps the start; a cut into the
//! image tokens is an error, as TRL's is.

use std::path::{Path, PathBuf};

use crate::data::dataset::SftRow;
use crate::data::{ContentPart, PartsMessage};
use crate::error::{Error, Result};
use crate::model::Tokenizer;
use crate::vision::ImageSide;
use crate::vision::preprocess::{ImageLayout, RgbImage};

use super::{Example, SftOptions};

/// A vision row's images for the step: the files (the tower runs on them each time the row is
/// trained) and one past the last image token (the pack's prompt reaches there:
/// `Model::forward_saving_with_images` fills the image rows of the prompt).
#[derive(Clone, Debug, PartialEq)]
pub struct RowImages {
    pub files: Vec<PathBuf>,
    pub end: usize,
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn places(msgs: &[PartsMessage]) -> usize {
    msgs.iter().flat_map(|m| &m.content).filter(|p| **p == ContentPart::Image).count()
}

/// What each image's `<image>` expands to: its tile grid, from its size alone.
fn layouts(side: &ImageSide, files: &[PathBuf]) -> Result<Vec<ImageLayout>> {
    files
        .iter()
        .map(|p| {
            let img = RgbImage::open(p)?;
            Ok(side.processor.config.plan(img.height, img.width).layout)
        })
        .collect()
}

/// `text` with its image places expanded (the first `layouts` in order), tokenized without
/// special tokens, as the processor is called.
fn encode(tok: &Tokenizer, side: Option<&ImageSide>, text: &str, layouts: &[ImageLayout]) -> Result<Vec<u32>> {
    match side {
        Some(s) if !layouts.is_empty() => tok.encode(&s.expand(text, layouts)?, false),
        _ => tok.encode(text, false),
    }
}

/// The byte length of the longest common prefix of two strings, in whole characters (TRL's
/// `takewhile` over characters).
fn common_text(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i)
}

/// A vision row tokenized (see the module doc); `image_token` is the model's `<image>` id.
pub fn tokenize_vision(
    cfg: &SftOptions,
    tok: &Tokenizer,
    side: Option<&ImageSide>,
    image_token: Option<u32>,
    row: &SftRow,
) -> Result<Example> {
    let files = row.images();
    if !files.is_empty() && side.is_none() {
        return Err(crate::vision::model::no_tower());
    }
    let lay = match side {
        Some(s) => layouts(s, files)?,
        None => Vec::new(),
    };
    let (ids, trained) = match row {
        SftRow::PartsMessages { messages, .. } => {
            if cfg.completion_only_loss == Some(true) {
                return Err(Error::Invalid("`completion_only_loss` needs a prompt/completion dataset (TRL refuses it for `messages`)".into()));
            }
            let ids = encode(tok, side, &tok.render_parts(messages, false)?, &lay)?;
            let mut trained = vec![!cfg.assistant_only_loss; ids.len()];
            if cfg.assistant_only_loss {
                // Each assistant turn: from the generation prompt before it to the end of the turn.
                for (i, _) in messages.iter().enumerate().filter(|(_, m)| m.role == "assistant") {
                    let before = &messages[..i];
                    let through = &messages[..=i];
                    let start = common_prefix(&encode(tok, side, &tok.render_parts(before, true)?, &lay[..places(before)])?, &ids);
                    let end = common_prefix(&encode(tok, side, &tok.render_parts(through, false)?, &lay[..places(through)])?, &ids);
                    trained[start..end.max(start)].iter_mut().for_each(|b| *b = true);
                }
                if !trained.contains(&true) {
                    return Err(Error::Invalid("assistant_only_loss: a row has no assistant tokens".into()));
                }
            }
            (ids, trained)
        }
        SftRow::PartsPair { prompt, completion, .. } => {
            if cfg.assistant_only_loss {
                return Err(Error::Invalid("assistant_only_loss needs a `messages` dataset with images (TRL refuses it for prompt/completion rows)".into()));
            }
            let all: Vec<PartsMessage> = prompt.iter().chain(completion).cloned().collect();
            let full = tok.render_parts(&all, false)?;
            let p = tok.parts_text(prompt)?;
            let cut = common_text(&p, &full);
            let mut ids = encode(tok, side, &full[..cut], &lay)?;
            let prompt_len = ids.len();
            ids.extend(encode(tok, side, &full[cut..], &[])?);
            let only = cfg.completion_only_loss.unwrap_or(true);
            let trained = (0..ids.len()).map(|i| !only || i >= prompt_len).collect();
            (ids, trained)
        }
        _ => return Err(Error::Invalid("not a row with images".into())),
    };
    let is_image = |id: &u32| Some(*id) == image_token;
    let mut e = Example { ids, trained, images: None };
    if let Some(l) = cfg.max_length {
        let all = e.ids.iter().filter(|i| is_image(i)).count();
        e.truncate(l);
        let kept = e.ids.iter().filter(|i| is_image(i)).count();
        if kept != all {
            return Err(Error::Invalid(format!(
                "max_length = {l} cuts the row's image tokens ({kept} of {all} kept; TRL fails on such a row too): raise max_length or leave it out"
            )));
        }
    }
    if !files.is_empty() {
        let end = e.ids.iter().rposition(is_image).map_or(0, |i| i + 1);
        e.images = Some(RowImages { files: files.to_vec(), end });
    }
    Ok(e)
}

/// The row's images decoded, in order (the step's input to the tower).
pub fn open_images(files: &[PathBuf]) -> Result<Vec<RgbImage>> {
    files.iter().map(|p| RgbImage::open(Path::new(p))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_text_is_whole_characters() {
        assert_eq!(common_text("abé", "abè"), 2);
        assert_eq!(common_text("ab", "abc"), 2);
        assert_eq!(common_text("abc", "ab"), 2);
    }
}
