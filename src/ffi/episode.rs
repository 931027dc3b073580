//! Multi-turn episodes over the C ABI: the app starts an episode from a prompt, alternately
//! asks the session's model to act and appends what the environment answered, and trains on
//! groups of finished episodes with one reward each (`rl::episode`; the step is in
//! `episode_step`). An episode begun from a dataset row keeps the row's columns, which the
//! config's reward rules read when the step gets no rewards.

use std::ffi::c_char;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use serde_json::{Map, Value};

use super::model::prompt_ids;
use super::session::Session;
use super::{
    EDGERL_ERR_BUFFER_TOO_SMALL, EDGERL_ERR_BUSY, EDGERL_ERR_UNKNOWN_HANDLE, EDGERL_PROMPT_CHAT,
    EDGERL_PROMPT_RAW, Entry, Fail, Res, copy_out, get_episode, get_session, guard, invalid,
    put, release, text,
};
use crate::data::dataset::Prompt;
use crate::data::template::ContentPart;
use crate::rl::episode::{Episode, chat_observation_ids, sample_act};
use crate::rl::rollout::Completion;

pub(super) struct State {
    pub(super) episode: Episode,
    /// An act sampled but not yet handed over (its text did not fit the app's buffer).
    pending: Option<Completion>,
}

pub(crate) struct EpisodeEntry {
    id: u64,
    /// The session whose model acts (by id: an episode does not keep its session alive).
    pub(super) session: u64,
    chat: bool,
    /// The data columns of the row it began from (`edgerl_episode_begin_row`), which the
    /// config's reward rules read; `None` for an episode begun from a prompt.
    pub(super) row: Option<Map<String, Value>>,
    state: Mutex<State>,
}

impl EpisodeEntry {
    pub(super) fn lock(&self) -> Res<MutexGuard<'_, State>> {
        match self.state.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::Poisoned(e)) => Ok(e.into_inner()),
            Err(TryLockError::WouldBlock) => Err(Fail(
                EDGERL_ERR_BUSY,
                format!("episode {} is running another call", self.id),
            )),
        }
    }

    fn session(&self) -> Res<Arc<Session>> {
        get_session(self.session).map_err(|_| {
            Fail(
                EDGERL_ERR_UNKNOWN_HANDLE,
                format!("episode {}: its session {} is freed", self.id, self.session),
            )
        })
    }
}

/// # Safety
/// `prompt` is a NUL-terminated string; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_episode_begin(
    session: u64,
    prompt: *const c_char,
    flags: u32,
    out: *mut u64,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(invalid("`out` is NULL"));
        }
        let s = get_session(session)?;
        let prompt = unsafe { text(prompt, "prompt") }?;
        if flags != EDGERL_PROMPT_RAW && flags != EDGERL_PROMPT_CHAT {
            return Err(invalid(format!(
                "unknown prompt flags {flags}: expected EDGERL_PROMPT_RAW or EDGERL_PROMPT_CHAT"
            )));
        }
        let ids = s.with_trainer(|t| {
            s.cancellable(|| {
                let tok = t
                    .tokenizer
                    .as_ref()
                    .ok_or_else(|| invalid("the session's model has no tokenizer"))?;
                prompt_ids(tok, prompt, flags)
            })
        })?;
        unsafe { begin(session, ids, flags == EDGERL_PROMPT_CHAT, None, out) }
    })
}

/// Registers a new episode of `session` from its prompt's ids.
///
/// # Safety
/// `out` is valid for a write.
unsafe fn begin(session: u64, ids: Vec<u32>, chat: bool, row: Option<Map<String, Value>>, out: *mut u64) -> Res<()> {
    let episode = Episode::new(ids)?;
    let id = super::new_id();
    super::insert(
        id,
        Entry::Episode(Arc::new(EpisodeEntry { id, session, chat, row, state: Mutex::new(State { episode, pending: None }) })),
    );
    unsafe { put(out, "out", id) }
}

/// The image places of a row's prompt (`{"type": "image"}` parts, or `<image>` in text).
fn image_places(prompt: &Prompt) -> usize {
    match prompt {
        Prompt::Text(t) => t.matches("<image>").count(),
        Prompt::Chat(m) => m.iter().map(|m| m.content.matches("<image>").count()).sum(),
        Prompt::Parts(m) => m.iter().flat_map(|m| &m.content).filter(|p| **p == ContentPart::Image).count(),
    }
}

/// Starts an episode from a dataset row (its prompt and data columns); see edgerl.h.
///
/// # Safety
/// `row_json` is a NUL-terminated string; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_episode_begin_row(session: u64, row_json: *const c_char, out: *mut u64) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(invalid("`out` is NULL"));
        }
        let s = get_session(session)?;
        let json = unsafe { text(row_json, "row_json") }?;
        let v: Value = serde_json::from_str(json).map_err(|e| invalid(format!("`row_json` is not valid JSON: {e}")))?;
        let g = s.lock()?;
        let (ids, row) = s.cancellable(|| {
            let inner = g.as_ref().ok_or_else(|| invalid("the session is gone"))?;
            let t = &inner.trainer;
            // As edgerl_session_step_rows checks each of its rows.
            let row = super::session::parse_row(&v, inner.rules.as_ref(), &t.cfg).map_err(|e| invalid(format!("row_json: {e}")))?;
            if !row.images.is_empty() || (s.vision.is_some() && image_places(&row.prompt) > 0) {
                return Err(invalid("row_json: an episode takes no images (its prompt is text; use a text prompt without image places)"));
            }
            let tok = t.tokenizer.as_ref().ok_or_else(|| invalid("the session's model has no tokenizer"))?;
            let ids = crate::rl::rollout::prompt_ids(tok, &row.prompt).map_err(|e| {
                let Fail(c, m) = Fail::from(e);
                Fail(c, format!("row_json: {m}"))
            })?;
            if ids.is_empty() {
                return Err(invalid("row_json: the prompt tokenizes to nothing"));
            }
            Ok((ids, row))
        })?;
        drop(g);
        // A message list is a chat: its observations become user turns, as with EDGERL_PROMPT_CHAT.
        let chat = !matches!(row.prompt, Prompt::Text(_));
        unsafe { begin(session, ids, chat, Some(row.columns), out) }
    })
}

/// Samples the model's next act and appends it to the episode; see edgerl.h.
///
/// # Safety
/// `out` is NULL or valid for `out_len` bytes; `needed` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_episode_act(
    episode: u64,
    max_new_tokens: u32,
    out: *mut c_char,
    out_len: usize,
    needed: *mut usize,
) -> i32 {
    guard(|| {
        if out.is_null() && out_len > 0 {
            return Err(invalid("`out` is NULL but `out_len` is not 0"));
        }
        let e = get_episode(episode)?;
        let mut st = e.lock()?;
        if st.pending.is_none() {
            let s = e.session()?;
            let act = s.with_trainer(|t| {
                s.cancellable(|| {
                    s.check_cancel()?;
                    let max_new = match max_new_tokens {
                        0 => t.cfg.max_completion_length,
                        n => n as usize,
                    };
                    let stream = e.id.wrapping_mul(1 << 20) + st.episode.acts as u64;
                    let _g = s.model.rt.lock();
                    Ok(sample_act(t, &st.episode, max_new, stream)?)
                })
            })?;
            st.pending = Some(act);
        }
        let Some(act) = st.pending.take() else {
            unreachable!()
        };
        let text = act.text.replace('\0', "");
        if !needed.is_null() {
            unsafe { needed.write(text.len()) };
        }
        if unsafe { copy_out(&text, out, out_len) } {
            st.episode.push_completion(&act);
            Ok(())
        } else {
            st.pending = Some(act);
            Err(Fail(
                EDGERL_ERR_BUFFER_TOO_SMALL,
                format!(
                    "the act's text needs {} bytes and a NUL; `out_len` is {out_len}: the act is kept for the next edgerl_episode_act",
                    text.len()
                ),
            ))
        }
    })
}

/// Appends what the environment wrote; see edgerl.h.
///
/// # Safety
/// `text` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_episode_observe(episode: u64, text: *const c_char) -> i32 {
    guard(|| {
        let obs = unsafe { self::text(text, "text") }?;
        let e = get_episode(episode)?;
        let mut st = e.lock()?;
        if st.pending.is_some() {
            return Err(invalid(format!(
                "episode {episode}: the last act's text was not handed over yet (EDGERL_ERR_BUFFER_TOO_SMALL): call edgerl_episode_act again with a larger buffer first"
            )));
        }
        if e.chat && !st.episode.last_is_act() {
            return Err(invalid(format!(
                "episode {episode}: in chat mode an observation answers an act: call edgerl_episode_act first"
            )));
        }
        let s = e.session()?;
        let ids = s.with_trainer(|t| {
            s.cancellable(|| {
                let tok = t
                    .tokenizer
                    .as_ref()
                    .ok_or_else(|| invalid("the session's model has no tokenizer"))?;
                Ok(if e.chat {
                    chat_observation_ids(tok, obs, st.episode.tokens.last().copied())?
                } else {
                    tok.encode(obs, false)?
                })
            })
        })?;
        st.episode.push_observation(&ids);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn edgerl_episode_free(episode: u64) -> i32 {
    guard(|| release(episode, "an episode", |e| matches!(e, Entry::Episode(_))))
}
