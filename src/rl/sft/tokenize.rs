//! Rows tokenized as SFTTrainer prepares them: ids, and which of them carry loss (TRL's
//! labels ≠ −100).

use crate::data::Message;
use crate::data::dataset::SftRow;
use crate::error::{Error, Result};
use crate::model::Tokenizer;
use crate::model::pack::Pack;
use crate::rl::trainer::Supervised;

use super::vision::RowImages;
use super::{SftConfig, SftOptions};

/// One tokenized row: its ids and which of them are trained (TRL's labels ≠ −100).
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub ids: Vec<u32>,
    pub trained: Vec<bool>,
    /// A vision row's images (`tokenize_vision`); `None` for text.
    pub images: Option<RowImages>,
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn render(tok: &Tokenizer, messages: &[Message], add_generation_prompt: bool) -> Result<Vec<u32>> {
    tok.encode(&tok.render_chat(messages, add_generation_prompt)?, false)
}

/// Each assistant turn's tokens in the rendering of `messages` (`full`): what the template writes
/// after the generation prompt for that turn, through the end of the turn — as a chat template
/// with `{% generation %}` around the assistant's content and end of turn marks them.
fn assistant_mask(tok: &Tokenizer, messages: &[Message], full: &[u32]) -> Result<Vec<bool>> {
    let mut mask = vec![false; full.len()];
    for (i, m) in messages.iter().enumerate() {
        if m.role != "assistant" {
            continue;
        }
        let start = common_prefix(&render(tok, &messages[..i], true)?, full);
        let end = common_prefix(&render(tok, &messages[..=i], false)?, full);
        mask[start..end.max(start)]
            .iter_mut()
            .for_each(|b| *b = true);
    }
    Ok(mask)
}

/// A row tokenized as SFTTrainer prepares it (chat renders without added special tokens;
/// EOS appended to non-conversational text; labels from the completion and assistant masks;
/// truncation to `max_length`). `None`: a row truncation left without trained tokens (TRL drops it).
pub fn tokenize(cfg: &SftConfig, tok: &Tokenizer, row: &SftRow) -> Result<Option<Example>> {
    tokenize_with(&cfg.options(), tok, row)
}

/// `tokenize` with the tokenizing keys alone (a session's SFT step has no `SftConfig`).
pub fn tokenize_with(cfg: &SftOptions, tok: &Tokenizer, row: &SftRow) -> Result<Option<Example>> {
    let mut e = tokenize_whole(cfg, tok, row)?;
    if let Some(l) = cfg.max_length {
        e.truncate(l);
    }
    Ok(e.trained.contains(&true).then_some(e))
}

/// A row tokenized, untruncated and kept whatever it trains: packing truncates (or splits)
/// to `max_length` itself and keeps rows without trained tokens, as TRL's packing does.
pub fn tokenize_whole(cfg: &SftOptions, tok: &Tokenizer, row: &SftRow) -> Result<Example> {
    let with_eos = |mut ids: Vec<u32>| {
        if let Some(e) = tok.eos_token_id
            && ids.last() != Some(&e)
        {
            ids.push(e);
        }
        ids
    };
    let pair = matches!(row, SftRow::TextPair { .. } | SftRow::ChatPair { .. });
    let completion_only = cfg.completion_only_loss.unwrap_or(pair);
    let chat = matches!(row, SftRow::Messages(_) | SftRow::ChatPair { .. });
    if cfg.assistant_only_loss && !chat {
        return Err(Error::Invalid("assistant_only_loss needs a conversational dataset (`messages`, or message lists in `prompt`/`completion`)".into()));
    }
    if !row.images().is_empty() || matches!(row, SftRow::PartsMessages { .. } | SftRow::PartsPair { .. }) {
        return Err(Error::Invalid("rows with images or content parts need a vision-language model's processor: `edgerl sft` trains them".into()));
    }
    let (ids, prompt_len, assistant) = match row {
        // Plain text is tokenized as `tokenizer(text)`, special tokens added (a BOS); chat
        // renders carry the template's own.
        SftRow::Text(t) => (with_eos(tok.encode(t, true)?), 0, None),
        SftRow::TextPair { prompt, completion } => {
            let p = tok.encode(prompt, true)?;
            let full = with_eos(tok.encode(&format!("{prompt}{completion}"), true)?);
            let n = common_prefix(&p, &full);
            (full, n, None)
        }
        SftRow::Messages(m) => {
            let full = render(tok, m, false)?;
            let mask = if cfg.assistant_only_loss {
                Some(assistant_mask(tok, m, &full)?)
            } else {
                None
            };
            (full, 0, mask)
        }
        SftRow::ChatPair { prompt, completion } => {
            let p = render(tok, prompt, true)?;
            let all: Vec<Message> = prompt.iter().chain(completion).cloned().collect();
            let full = render(tok, &all, false)?;
            let n = common_prefix(&p, &full);
            let mask = if cfg.assistant_only_loss {
                Some(assistant_mask(tok, &all, &full)?)
            } else {
                None
            };
            (full, n, mask)
        }
        SftRow::PartsMessages { .. } | SftRow::PartsPair { .. } => unreachable!("refused above"),
    };
    if let Some(m) = &assistant
        && !m.contains(&true)
    {
        return Err(Error::Invalid(
            "assistant_only_loss: a row has no assistant tokens".into(),
        ));
    }
    let trained: Vec<bool> = (0..ids.len())
        .map(|i| {
            (!completion_only || !pair || i >= prompt_len)
                && assistant.as_ref().is_none_or(|m| m[i])
        })
        .collect();
    Ok(Example { ids, trained, images: None })
}

impl Example {
    /// Keeps the first `len` tokens (TRL's `truncation_mode = "keep_start"`).
    pub fn truncate(&mut self, len: usize) {
        self.ids.truncate(len);
        self.trained.truncate(len);
    }

    /// Trained targets: positions 1.. whose label is kept (position 0 is never predicted).
    pub fn targets(&self) -> usize {
        self.trained.iter().skip(1).filter(|&&b| b).count()
    }

    /// Its pack (the untrained prefix as the prompt, the rest as one completion) with the
    /// coefficient `a` on every trained target; `None` when nothing is predicted. With images
    /// the pack's prompt reaches past the last image token (image rows are filled in the
    /// prompt), and its predicted rows still start at the first trained target: one sequence
    /// attends causally wherever the prompt ends.
    pub(super) fn supervised(&self, a: f32) -> Result<Option<Supervised>> {
        let Some(first) = self.trained.iter().skip(1).position(|&b| b).map(|i| i + 1) else {
            return Ok(None);
        };
        let split = first.max(self.images.as_ref().map_or(0, |i| i.end));
        let mut pack = Pack::new(&self.ids[..split], &[&self.ids[split..]])?;
        let n = self.ids.len();
        pack.rows = (first as u32 - 1..n as u32 - 1).collect();
        pack.targets = self.ids[first..].to_vec();
        pack.completions[0] = 0..n - first;
        let coefs = self.trained[first..]
            .iter()
            .map(|&b| (if b { a } else { 0.0 }, 0.0))
            .collect();
        Ok(Some(Supervised { pack, coefs, images: None }))
    }
}
