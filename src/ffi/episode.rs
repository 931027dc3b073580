//! Multi-turn episodes over the C ABI: the app starts an episode from a prompt, alternately
//! asks the session's model to act and appends what the environment answered, and trains on
//! groups of finished episodes with one reward each (`rl::episode`).

use std::collections::HashSet;
use std::ffi::c_char;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use super::model::prompt_ids;
use super::budget::{StepLoad, plan_step, with_knobs};
use super::session::{EdgerlStepMetrics, Session, finish, train};
use super::{
    EDGERL_ERR_BUFFER_TOO_SMALL, EDGERL_ERR_BUSY, EDGERL_ERR_UNKNOWN_HANDLE, EDGERL_PROMPT_CHAT,
    EDGERL_PROMPT_RAW, Entry, Fail, Res, copy_out, get_episode, get_session, guard, invalid,
    put, release, text,
};
use crate::rl::episode::{Episode, chat_observation_ids, episode_batch, sample_act};
use crate::rl::rollout::Completion;

struct State {
    episode: Episode,
    /// An act sampled but not yet handed over (its text did not fit the app's buffer).
    pending: Option<Completion>,
}

pub(crate) struct EpisodeEntry {
    id: u64,
    /// The session whose model acts (by id: an episode does not keep its session alive).
    session: u64,
    chat: bool,
    state: Mutex<State>,
}

impl EpisodeEntry {
    fn lock(&self) -> Res<MutexGuard<'_, State>> {
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
        let episode = Episode::new(ids)?;
        let id = super::new_id();
        super::insert(
            id,
            Entry::Episode(Arc::new(EpisodeEntry {
                id,
                session,
                chat: flags == EDGERL_PROMPT_CHAT,
                state: Mutex::new(State { episode, pending: None }),
            })),
        );
        unsafe { put(out, "out", id) }
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
            st.episode.push_act(&act.ids);
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

/// One GRPO step on finished episodes; see edgerl.h.
///
/// # Safety
/// `episodes` and `rewards` are valid for `n` values; `metrics` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_session_step_episodes(
    session: u64,
    episodes: *const u64,
    rewards: *const f64,
    n: usize,
    group_size: usize,
    metrics: *mut EdgerlStepMetrics,
) -> i32 {
    guard(|| {
        let t0 = std::time::Instant::now();
        let s = get_session(session)?;
        if n == 0 {
            return Err(invalid("`n` is 0"));
        }
        if episodes.is_null() {
            return Err(invalid("`episodes` is NULL"));
        }
        if rewards.is_null() {
            return Err(invalid("`rewards` is NULL"));
        }
        let ids = unsafe { std::slice::from_raw_parts(episodes, n) };
        let rewards = unsafe { std::slice::from_raw_parts(rewards, n) }.to_vec();
        let mut seen = HashSet::new();
        let mut snapshot = Vec::with_capacity(n);
        for (i, &id) in ids.iter().enumerate() {
            let e = get_episode(id).map_err(|Fail(c, m)| Fail(c, format!("episodes[{i}]: {m}")))?;
            if e.session != session {
                return Err(invalid(format!(
                    "episodes[{i}] (episode {id}) belongs to session {}, not session {session}",
                    e.session
                )));
            }
            if !seen.insert(id) {
                return Err(invalid(format!("episodes[{i}] (episode {id}) is listed twice")));
            }
            snapshot.push(e.lock()?.episode.clone());
        }
        let mut g = s.lock()?;
        s.cancellable(|| {
            let t = &mut g
                .as_mut()
                .ok_or_else(|| invalid("the session is gone"))?
                .trainer;
            let refs: Vec<&Episode> = snapshot.iter().collect();
            let mut batch = episode_batch(t, &refs, &rewards, group_size)?;
            // Planned before training: each episode is one sequence, its prompt then its tokens.
            let load = StepLoad {
                prompt_tokens: refs.iter().map(|e| e.prompt_ids.len()).max().unwrap_or(0),
                completion_tokens: refs.iter().map(|e| e.tokens.len()).max().unwrap_or(0),
                num_generations: group_size,
                rollouts: false,
            };
            let knobs = plan_step(&s, t, &load)?;
            let out = with_knobs(t, knobs, |t| train(&s, t, &mut batch, t0))?;
            // SAFETY: as the function's contract says, `metrics` is NULL or valid for a write.
            unsafe { finish(out, metrics) }
        })
    })
}
