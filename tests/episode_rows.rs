//! Episodes with per-episode data columns and dynamic sampling (`rl::episode`, the C ABI's
//! `edgerl_episode_begin_row` / `edgerl_session_step_episodes`):
//!
//! - An episode's rule reward is what `edgerl train`'s rules (the run.toml's `[[rewards]]`
//!   through `RewardSet`) give its last act's text as a completion of its row; worked out by
//!   hand for a few texts, and end to end through the C ABI on sampled episodes (the step's
//!   reward mean equals the mean of the CLI rules' scores of the acts the app was handed).
//! - The app's rewards add to the rules for episodes from rows and replace them for episodes
//!   from prompts; groups weigh as `rl::step` weighs them.
//! - Dynamic sampling keeps the informative groups of a round and asks for more until the
//!   round's target or max_refill; a step that fails before its update leaves the round open.

mod common;

use std::ffi::{CString, c_char, c_void};
use std::path::PathBuf;
use std::ptr::{null, null_mut};
use std::sync::Mutex;

use serde_json::{Map, Value, json};

use edgerl::ffi::{EDGERL_ERR_CANCELLED, EDGERL_ERR_INVALID_ARGUMENT, EDGERL_ERR_MORE_GROUPS, EDGERL_OK, EdgerlStepMetrics};
use edgerl::reward::RewardSet;
use edgerl::rl::TrainConfig;
use edgerl::rl::episode::{Episode, EpisodeGroup, EpisodeRefill, Refilled, score_groups};
use edgerl::rl::rollout::Completion;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tiny online example's run: point_in_box on `target_box` (0.8), `.*click.*` (0.2) and
/// `.*e.*` (0.1), as `edgerl train` reads it.
fn example() -> (TrainConfig, Vec<Value>) {
    let dir = root().join("examples/tiny-grpo-online");
    let cfg = TrainConfig::from_file(&dir.join("run.toml")).unwrap();
    let rows = std::fs::read_to_string(dir.join("prompts.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (cfg, rows)
}

fn columns(row: &Value) -> Map<String, Value> {
    let mut m = row.as_object().unwrap().clone();
    m.remove("prompt");
    m
}

/// An episode whose last act wrote `text` (`n` tokens).
fn acted(prompt: &[u32], text: &str, n: usize) -> Episode {
    let mut e = Episode::new(prompt.to_vec()).unwrap();
    e.push_act(&[7, 8]);
    e.push_observation(&[9]);
    let act = Completion { ids: (0..n as u32).collect(), logprobs: vec![0.0; n], plain_logprobs: vec![0.0; n], text: text.into(), finished: true };
    e.push_completion(&act);
    e
}

#[test]
fn rules_score_the_last_act_against_the_row() {
    let (cfg, rows) = example();
    let rules = RewardSet::new(&cfg.rewards, cfg.reward_all_or_nothing).unwrap();
    // Row 0's box is [10, 20, 60, 40].
    let row = columns(&rows[0]);
    let texts = ["click(30, 30)", "click(1, 1) here", "nothing", "click(59,39)"];
    // By hand: hit 0.8 inside the box, format 0.2 for "click", has_e 0.1 for an "e".
    let by_hand = [0.8 + 0.2, 0.2 + 0.1, 0.0, 0.8 + 0.2];
    let eps: Vec<Episode> = texts.iter().map(|t| acted(&[1, 2, 3], t, 5)).collect();
    let cols = vec![Some(&row); 4];
    let (groups, metrics) = score_groups(&cfg, Some(&rules), eps.clone(), &cols, None, 4).unwrap();
    for (k, (text, want)) in texts.iter().zip(by_hand).enumerate() {
        let cli = rules.score(text, 5, &row).unwrap().total;
        assert!((cli - want).abs() < 1e-12, "{text}: the CLI's rules give {cli}, by hand {want}");
        assert_eq!(groups[0].rewards[k], cli, "{text}: the episode's reward vs edgerl train's rules");
    }
    let names: Vec<&str> = metrics.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["format", "hit", "has_e"]);
    assert!((metrics.rules[1].mean - 0.5).abs() < 1e-12, "hit: 2 of 4");
    assert_eq!(groups[0].weight, 1.0);

    // The app's reward adds to the rules on rows...
    let app = [0.5, -0.5, 1.0, 0.0];
    let (added, _) = score_groups(&cfg, Some(&rules), eps.clone(), &cols, Some(&app), 4).unwrap();
    for k in 0..4 {
        assert_eq!(added[0].rewards[k], groups[0].rewards[k] + app[k]);
    }
    // ...and replaces them on episodes from prompts (no columns), whose rules see an empty row.
    let none = vec![None; 4];
    let (replaced, m) = score_groups(&cfg, Some(&rules), eps.clone(), &none, Some(&app), 4).unwrap();
    assert_eq!(replaced[0].rewards, app);
    assert!(m.rules.is_empty(), "no episode was scored by the rules");
    let e = score_groups(&cfg, Some(&rules), eps.clone(), &none, None, 4).unwrap_err().to_string();
    assert!(e.contains("episodes[0]") && e.contains("target_box"), "{e}");

    // A group is one row; weight_column and difficulty_weight weigh groups as rl::step does.
    let other = columns(&rows[1]);
    let mixed = [Some(&row), Some(&row), Some(&other), Some(&row)];
    let e = score_groups(&cfg, Some(&rules), eps.clone(), &mixed, None, 4).unwrap_err().to_string();
    assert!(e.contains("same row"), "{e}");
    let mut weighted = cfg.clone();
    weighted.weight_column = Some("w".into());
    weighted.difficulty_weight = true;
    let mut row_w = row.clone();
    row_w.insert("w".into(), json!(3.0));
    let (g, _) = score_groups(&weighted, Some(&rules), eps.clone(), &[Some(&row_w); 4], None, 4).unwrap();
    // Rewards 1.0, 0.3, 0, 1.0 against success_threshold 1: half fail.
    assert!((g[0].weight - 3.0 * 0.5).abs() < 1e-12, "{}", g[0].weight);
    let e = score_groups(&weighted, Some(&rules), eps, &none, Some(&app), 4).unwrap_err().to_string();
    assert!(e.contains("weight_column"), "{e}");
}

fn group(rewards: &[f64]) -> EpisodeGroup {
    EpisodeGroup { episodes: rewards.iter().map(|_| acted(&[1], "x", 1)).collect(), rewards: rewards.to_vec(), weight: 1.0 }
}

fn more(r: Refilled) -> (usize, usize) {
    match r {
        Refilled::More { needed, uninformative, .. } => (needed, uninformative),
        Refilled::Train { .. } => panic!("trained, expected a request for more groups"),
    }
}

fn trained(r: Refilled) -> (Vec<Vec<f64>>, usize) {
    match r {
        Refilled::Train { groups, refills } => (groups.into_iter().map(|g| g.rewards).collect(), refills),
        Refilled::More { needed, .. } => panic!("asked for {needed} more groups, expected to train"),
    }
}

#[test]
fn refill_rounds_keep_informative_groups() {
    let (hi, lo, flat) = (&[1.0, 0.0][..], &[0.0, 0.5][..], &[0.3, 0.3][..]);
    // Every group informative: trains at once.
    let mut r = EpisodeRefill::default();
    assert_eq!(trained(r.offer(vec![group(hi), group(lo)], 2, 3).unwrap()), (vec![hi.to_vec(), lo.to_vec()], 0));
    assert_eq!(r.needed(), 0);
    // One of three flat: one more wanted; a flat refill changes nothing; another group size is
    // refused with the round kept; the next informative group completes it.
    assert_eq!(more(r.offer(vec![group(hi), group(flat), group(lo)], 2, 3).unwrap()), (1, 1));
    assert_eq!(r.needed(), 1);
    assert_eq!(more(r.offer(vec![group(flat)], 2, 3).unwrap()), (1, 1));
    assert!(r.offer(vec![group(&[1.0, 0.0, 1.0])], 3, 3).unwrap_err().to_string().contains("groups of 2"));
    assert_eq!(r.needed(), 1);
    assert_eq!(trained(r.offer(vec![group(lo), group(hi)], 2, 3).unwrap()), (vec![hi.to_vec(), lo.to_vec(), lo.to_vec(), hi.to_vec()], 2));
    assert_eq!(r.needed(), 0);
    // max_refill spent: trains on what it kept, or fails with nothing kept.
    assert_eq!(more(r.offer(vec![group(hi), group(flat)], 2, 1).unwrap()), (1, 1));
    assert_eq!(trained(r.offer(vec![group(flat)], 2, 1).unwrap()), (vec![hi.to_vec()], 1));
    assert_eq!(more(r.offer(vec![group(flat)], 2, 1).unwrap()), (1, 1));
    let e = r.offer(vec![group(flat)], 2, 1).unwrap_err().to_string();
    assert!(e.contains("identical rewards after 1 refills"), "{e}");
    assert_eq!(r.needed(), 0);
    // max_refill = 0: as `edgerl train`, no refill; an all-flat first step fails.
    assert_eq!(trained(r.offer(vec![group(flat), group(lo)], 2, 0).unwrap()), (vec![lo.to_vec()], 0));
    assert!(r.offer(vec![group(flat)], 2, 0).is_err());
}

// ---- through the C ABI ----

type Progress = unsafe extern "C" fn(*mut c_void, i32, usize, usize) -> i32;
type Log = unsafe extern "C" fn(*mut c_void, i32, *const c_char);

unsafe extern "C" {
    fn edgerl_runtime_create(backend: *const c_char, budget: u64, out: *mut u64) -> i32;
    fn edgerl_runtime_free(rt: u64) -> i32;
    fn edgerl_model_load(rt: u64, path: *const c_char, out: *mut u64) -> i32;
    fn edgerl_model_free(model: u64) -> i32;
    fn edgerl_session_create(model: u64, config: *const c_char, out: *mut u64) -> i32;
    fn edgerl_session_free(session: u64) -> i32;
    fn edgerl_session_set_progress(session: u64, cb: Option<Progress>, user: *mut c_void) -> i32;
    fn edgerl_set_log_callback(cb: Option<Log>, user: *mut c_void, max_level: i32) -> i32;
    fn edgerl_last_error(buf: *mut c_char, len: usize) -> usize;
    fn edgerl_episode_begin(session: u64, prompt: *const c_char, flags: u32, out: *mut u64) -> i32;
    fn edgerl_episode_begin_row(session: u64, row_json: *const c_char, out: *mut u64) -> i32;
    fn edgerl_episode_act(episode: u64, max_new: u32, out: *mut c_char, out_len: usize, needed: *mut usize) -> i32;
    fn edgerl_episode_observe(episode: u64, text: *const c_char) -> i32;
    fn edgerl_episode_free(episode: u64) -> i32;
    fn edgerl_session_step_episodes(
        session: u64, episodes: *const u64, rewards: *const f64, n: usize, group_size: usize, metrics: *mut EdgerlStepMetrics,
    ) -> i32;
    fn edgerl_session_episode_groups_needed(session: u64, needed: *mut usize) -> i32;
}

fn last_error() -> String {
    let mut buf = vec![0u8; 2048];
    let n = unsafe { edgerl_last_error(buf.as_mut_ptr() as *mut c_char, buf.len()) };
    String::from_utf8_lossy(&buf[..n.min(2047)]).into_owned()
}

fn ok(rc: i32, what: &str) {
    assert_eq!(rc, EDGERL_OK, "{what}: {}", last_error());
}

/// A runtime and the tiny model, freed on drop.
struct Handles {
    rt: u64,
    model: u64,
}

impl Handles {
    fn new() -> Handles {
        let path = CString::new(root().join("tests/fixtures/models/qwen3_f16").to_str().unwrap()).unwrap();
        let (mut rt, mut model) = (0, 0);
        ok(unsafe { edgerl_runtime_create(c"vulkan".as_ptr(), 0, &mut rt) }, "runtime");
        ok(unsafe { edgerl_model_load(rt, path.as_ptr(), &mut model) }, "model");
        Handles { rt, model }
    }

    fn session(&self, config: &str) -> u64 {
        let c = CString::new(config).unwrap();
        let mut s = 0;
        ok(unsafe { edgerl_session_create(self.model, c.as_ptr(), &mut s) }, "session");
        s
    }
}

impl Drop for Handles {
    fn drop(&mut self) {
        unsafe {
            edgerl_model_free(self.model);
            edgerl_runtime_free(self.rt);
        }
    }
}

/// Acts (up to `max_new` tokens; 0: the config's), returning the text the app is handed.
fn act(ep: u64, max_new: u32) -> String {
    let mut buf = vec![0u8; 4096];
    let mut needed = 0;
    ok(unsafe { edgerl_episode_act(ep, max_new, buf.as_mut_ptr() as *mut c_char, buf.len(), &mut needed) }, "act");
    String::from_utf8(buf[..needed].to_vec()).unwrap()
}

fn step(s: u64, eps: &[u64], rewards: Option<&[f64]>, group_size: usize) -> (i32, EdgerlStepMetrics) {
    let mut m = EdgerlStepMetrics::default();
    let r = rewards.map_or(null(), |r| r.as_ptr());
    let rc = unsafe { edgerl_session_step_episodes(s, eps.as_ptr(), r, eps.len(), group_size, &mut m) };
    (rc, m)
}

fn needed(s: u64) -> usize {
    let mut n = 99;
    ok(unsafe { edgerl_session_episode_groups_needed(s, &mut n) }, "groups needed");
    n
}

/// The session's config: the run's, less the keys a session owns.
fn session_config(extra: &str) -> String {
    let mut table: toml::Table =
        std::fs::read_to_string(root().join("examples/tiny-grpo-online/run.toml")).unwrap().parse().unwrap();
    for k in ["model", "output_dir", "dataset"] {
        table.remove(k);
    }
    format!("{extra}\n{}", toml::to_string(&table).unwrap())
}

/// A rule whose score depends on each row's target and varies over the tiny model's random
/// acts: the act's first lowercase vowel equals the row's `vowel`.
const VOWEL_RULE: &str = r#"
[[rewards]]
type = "exact"
name = "vowel"
extract = "regex"
pattern = '^.*?([aeiou])'
target = "vowel"
weight = 0.5
"#;

#[test]
fn episode_rule_rewards_are_what_edgerl_train_gives_the_last_act() {
    let (_, rows) = example();
    let config = format!("{}{VOWEL_RULE}", session_config(""));
    // The rules as `edgerl train` reads them from a run.toml of that config.
    let cfg = TrainConfig::from_toml(&format!("model = \"m\"\noutput_dir = \"o\"\ndataset = \"d\"\n{config}")).unwrap();
    assert_eq!(cfg.rewards.len(), 4);
    let rules = RewardSet::new(&cfg.rewards, cfg.reward_all_or_nothing).unwrap();
    let h = Handles::new();
    let s = h.session(&config);
    // Two tasks, four episodes each: act, the environment answers, act again.
    let mut eps = Vec::new();
    let mut want = Vec::new();
    for (row, vowel) in rows[..2].iter().zip(["e", "a"]) {
        let mut row = row.clone();
        row["vowel"] = json!(vowel);
        let json = CString::new(row.to_string()).unwrap();
        for _ in 0..4 {
            let mut ep = 0;
            ok(unsafe { edgerl_episode_begin_row(s, json.as_ptr(), &mut ep) }, "begin_row");
            let first = act(ep, 0);
            let obs = CString::new(format!("Screen after {first:?}: unchanged.")).unwrap();
            ok(unsafe { edgerl_episode_observe(ep, obs.as_ptr()) }, "observe");
            let last = act(ep, 0);
            // The run's rules read no token counts (no length rule).
            want.push(rules.score(&last, 0, &columns(&row)).unwrap().total);
            eps.push(ep);
        }
    }
    assert!(want.iter().any(|&r| r != want[0]), "the rules gave every act the same reward {want:?}: the check would be weak");
    let mean = want.iter().sum::<f64>() / want.len() as f64;
    let (rc, m) = step(s, &eps, None, 4);
    ok(rc, "step on rule rewards");
    eprintln!("rule rewards {want:?}: step reward {} (std {})", m.reward_mean, m.reward_std);
    assert!(m.step == 1 && (m.reward_mean - mean).abs() < 1e-12, "step reward {} vs the CLI's rules {mean}", m.reward_mean);
    // The app's rewards add to the rules on episodes from rows.
    let (rc, m) = step(s, &eps, Some(&[0.5; 8]), 4);
    ok(rc, "step on rules + the app's rewards");
    assert!((m.reward_mean - (mean + 0.5)).abs() < 1e-12, "{} vs {mean} + 0.5", m.reward_mean);

    // Episodes from a prompt: the app's rewards replace the rules; without them the rules find
    // no target_box.
    let mut plain = Vec::new();
    for _ in 0..2 {
        let mut ep = 0;
        ok(unsafe { edgerl_episode_begin(s, c"Press OK.".as_ptr(), 1, &mut ep) }, "begin");
        act(ep, 4);
        plain.push(ep);
    }
    let (rc, m) = step(s, &plain, Some(&[1.0, 0.0]), 2);
    ok(rc, "step on the app's rewards");
    assert_eq!(m.reward_mean, 0.5);
    let (rc, _) = step(s, &plain, None, 2);
    let e = last_error();
    assert!(rc == EDGERL_ERR_INVALID_ARGUMENT && e.contains("episodes[0]") && e.contains("target_box"), "{rc}: {e}");
    for ep in eps.into_iter().chain(plain) {
        ok(unsafe { edgerl_episode_free(ep) }, "free");
    }
    ok(unsafe { edgerl_session_free(s) }, "session free");
}

/// Cancels at the first update report (before any update).
unsafe extern "C" fn cancel_first_update(_: *mut c_void, phase: i32, done: usize, _: usize) -> i32 {
    i32::from(phase == 2 && done == 0)
}

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn keep_log(_: *mut c_void, _: i32, message: *const c_char) {
    let m = unsafe { std::ffi::CStr::from_ptr(message) }.to_string_lossy().into_owned();
    LOG.lock().unwrap().push(m);
}

#[test]
fn a_round_survives_a_step_that_fails_before_its_update() {
    let h = Handles::new();
    let s = h.session("max_completion_length = 4\ndynamic_sampling = true\nmax_refill = 3\nseed = 5\n[lora]\nr = 4\nalpha = 8\n");
    ok(unsafe { edgerl_set_log_callback(Some(keep_log), null_mut(), 3) }, "log callback");
    let begin = |prompt: &CString| {
        let mut ep = 0;
        ok(unsafe { edgerl_episode_begin(s, prompt.as_ptr(), 0, &mut ep) }, "begin");
        act(ep, 3);
        ep
    };
    let (a, b) = (CString::new("Open the settings.").unwrap(), CString::new("Find the clock.").unwrap());
    let first: Vec<u64> = (0..4).map(|i| begin(if i < 2 { &a } else { &b })).collect();
    let (rc, m) = step(s, &first, Some(&[1.0, 0.0, 0.5, 0.5]), 2);
    assert_eq!((rc, m.step), (EDGERL_ERR_MORE_GROUPS, 0), "{}", last_error());
    assert_eq!(needed(s), 1);
    let refill: Vec<u64> = (0..2).map(|_| begin(&b)).collect();
    ok(unsafe { edgerl_session_set_progress(s, Some(cancel_first_update), null_mut()) }, "progress");
    let (rc, _) = step(s, &refill, Some(&[0.0, 1.0]), 2);
    assert_eq!(rc, EDGERL_ERR_CANCELLED, "{}", last_error());
    assert_eq!(needed(s), 1, "a step cancelled before its update leaves the round as it was");
    ok(unsafe { edgerl_session_set_progress(s, None, null_mut()) }, "progress off");
    let (rc, m) = step(s, &refill, Some(&[0.0, 1.0]), 2);
    ok(rc, "the same refill again");
    // Trained once, on the two informative groups: rewards 1, 0, 0, 1.
    assert_eq!((m.step, m.reward_mean, needed(s)), (1, 0.5, 0));
    ok(unsafe { edgerl_set_log_callback(None, null_mut(), 3) }, "log callback off");
    let log = LOG.lock().unwrap();
    assert!(log.iter().any(|l| l.contains(&format!("session {s}: step 1: dynamic_sampling/refills: 1"))), "{log:?}");
    for ep in first.into_iter().chain(refill) {
        ok(unsafe { edgerl_episode_free(ep) }, "free");
    }
    ok(unsafe { edgerl_session_free(s) }, "session free");
}
