//! The GRPO step on finished episodes (`edgerl_session_step_episodes`): rewards from the app,
//! from the config's rules on the rows the episodes began from, or both (`rl::episode`), and
//! dynamic sampling over groups the app runs again (`rl::episode::EpisodeRefill`).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::budget::{StepLoad, plan_step, with_knobs};
use super::session::{EdgerlStepMetrics, Session, Trained, finish, train_scored};
use super::{EDGERL_ERR_MORE_GROUPS, Fail, Res, get_episode, get_session, guard, invalid, put};
use crate::rl::episode::{EpisodeGroup, Refilled, check_groups, groups_batch, score_groups};
use crate::rl::trainer::Trainer;

/// One GRPO step on finished episodes; see edgerl.h.
///
/// # Safety
/// `episodes` is valid for `n` values; `rewards` is NULL or valid for `n` values; `metrics` is
/// NULL or valid for a write.
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
        let ids = unsafe { std::slice::from_raw_parts(episodes, n) };
        let app = (!rewards.is_null()).then(|| unsafe { std::slice::from_raw_parts(rewards, n) }.to_vec());
        // Each episode as it is now, with the row it began from.
        let mut seen = HashSet::new();
        let mut taken = Vec::with_capacity(n);
        let mut rows = Vec::with_capacity(n);
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
            taken.push(e.lock()?.episode.clone());
            rows.push(e);
        }
        let columns: Vec<Option<&Map<String, Value>>> = rows.iter().map(|e| e.row.as_ref()).collect();
        let mut g = s.lock()?;
        // Too few informative groups: the message (returned after the session's call is over).
        let mut more = None;
        let out = s.cancellable(|| {
            let inner = g.as_mut().ok_or_else(|| invalid("the session is gone"))?;
            let t = &mut inner.trainer;
            check_groups(&taken.iter().collect::<Vec<_>>(), group_size)?;
            let (groups, mut rewards) = score_groups(&t.cfg, inner.rules.as_ref(), taken, &columns, app.as_deref(), group_size)?;
            if !t.cfg.dynamic_sampling {
                return Ok(Some(train_groups(&s, t, &groups, group_size, rewards, t0)?));
            }
            s.check_cancel()?;
            let before = inner.episode_refill.clone();
            match inner.episode_refill.offer(groups, group_size, t.cfg.max_refill)? {
                Refilled::Train { groups, refills } => {
                    rewards.refills = Some(refills);
                    let steps = t.optimizer_steps;
                    let trained = train_groups(&s, t, &groups, group_size, rewards, t0);
                    // A step that failed before its first update leaves the round as it was, so
                    // the same call can be made again.
                    if trained.is_err() && t.optimizer_steps == steps {
                        inner.episode_refill = before;
                    }
                    Ok(Some(trained?))
                }
                Refilled::More { needed, uninformative, offered, kept, target, refills } => {
                    more = Some(format!(
                        "dynamic sampling: {uninformative} of this call's {offered} groups had identical rewards; {kept} informative groups are kept of the {target} this step needs (refill {refills} of max_refill {}): run {needed} more groups and pass them to edgerl_session_step_episodes (nothing trained)",
                        t.cfg.max_refill
                    ));
                    Ok(None)
                }
            }
        });
        drop(g);
        match out? {
            // SAFETY: as the function's contract says, `metrics` is NULL or valid for a write.
            Some(trained) => unsafe { finish(trained, metrics) },
            None => Err(Fail(EDGERL_ERR_MORE_GROUPS, more.unwrap_or_default())),
        }
    })
}

/// Plans and trains one step on `groups` (each of `group_size` episodes).
fn train_groups(
    s: &Session,
    t: &mut Trainer<'static>,
    groups: &[EpisodeGroup],
    group_size: usize,
    rewards: crate::rl::trainer::RewardMetrics,
    t0: std::time::Instant,
) -> Res<Trained> {
    let episodes = groups.iter().flat_map(|g| &g.episodes);
    // Planned before training: each episode is one sequence, its prompt then its tokens.
    let load = StepLoad {
        prompt_tokens: episodes.clone().map(|e| e.prompt_ids.len()).max().unwrap_or(0),
        completion_tokens: episodes.map(|e| e.tokens.len()).max().unwrap_or(0),
        num_generations: group_size,
        rollouts: false,
        groups: groups.len(),
    };
    let knobs = plan_step(s, t, &load)?;
    let mut batch = groups_batch(t, groups);
    with_knobs(t, knobs, |t| train_scored(s, t, &mut batch, rewards, t0))
}

/// How many more informative groups the open dynamic-sampling round waits for; see edgerl.h.
///
/// # Safety
/// `needed` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_session_episode_groups_needed(session: u64, needed: *mut usize) -> i32 {
    guard(|| {
        if needed.is_null() {
            return Err(invalid("`needed` is NULL"));
        }
        let s = get_session(session)?;
        let g = s.lock()?;
        let n = g.as_ref().ok_or_else(|| invalid("the session is gone"))?.episode_refill.needed();
        unsafe { put(needed, "needed", n) }
    })
}
