//! Crash-resume campaign: `edgerl train` killed with SIGKILL at two dozen pseudo-random moments
//! (a seeded schedule; `EDGERL_CRASH_SEED` replays another), aborted inside a checkpoint write
//! by `EDGERL_FAULT_ABORT_IN_CHECKPOINT`, and aborted while a damaged checkpoint is being
//! replaced (between moving the old copy aside and renaming the new one in: `N:swap`), resumed
//! after each (`--resume` when a checkpoint exists, else `--overwrite`); every resume must
//! start cleanly and the final adapter must equal an uninterrupted run's, byte for byte. The kill
//! delays are seeded fractions of the uninterrupted run's measured timing, so where exactly a
//! kill lands still depends on the machine's speed; the schedule is printed.

mod offline_case;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use offline_case::{adapter_bytes, case_dir, edgerl_with, flip_bit, metrics, run_ok, steps};

const STEPS: usize = 16;
/// SIGKILLs at random moments, aborts inside a checkpoint write, and aborts inside the
/// replacement of a damaged checkpoint, at least.
const KILLS: usize = 20;
const ABORTS: usize = 5;
const SWAPS: usize = 2;

/// splitmix64: a reproducible schedule without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The newest checkpoint step present (complete or not: only its name is read).
/// A checkpoint caught mid-replacement (its old copy moved aside) counts: the resume puts it
/// back.
fn newest_checkpoint(dir: &Path) -> usize {
    let step = |n: &str| -> Option<usize> {
        let s = n.strip_prefix("checkpoint-").or_else(|| n.strip_prefix(".checkpoint-").filter(|r| r.contains(".tmp-old-")))?;
        s.split('.').next()?.parse().ok()
    };
    std::fs::read_dir(dir.join("out"))
        .map(|rd| rd.flatten().filter_map(|e| step(e.file_name().to_str()?)).max().unwrap_or(0))
        .unwrap_or(0)
}

/// Whether every checkpoint a run skipped as damaged is one the campaign damaged.
fn only_damaged_skipped(stderr: &str, damaged: &[usize]) -> bool {
    stderr.lines().filter(|l| l.starts_with("skipping checkpoint")).all(|l| damaged.iter().any(|n| l.contains(&format!("checkpoint-{n}:"))))
}

/// Whether a checkpoint (or the old copy of one being replaced, which the resume puts back)
/// is there to resume from; otherwise the run starts over with `--overwrite`.
fn resumable(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("out"))
        .map(|rd| {
            rd.flatten().any(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("checkpoint-") || (n.starts_with(".checkpoint-") && n.contains(".tmp-old-"))
            })
        })
        .unwrap_or(false)
}

/// Checkpoints whose write was interrupted (their temporary directory is still there).
fn interrupted_writes(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("out"))
        .map(|rd| rd.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(".checkpoint-")).count())
        .unwrap_or(0)
}

/// Metrics without the wall-clock field, for comparing runs.
fn metrics_values(dir: &Path) -> Vec<serde_json::Value> {
    metrics(dir)
        .into_iter()
        .map(|mut m| {
            m.as_object_mut().unwrap().remove("step_time");
            m
        })
        .collect()
}

#[test]
fn killed_at_twenty_random_moments_and_in_checkpoint_writes_then_resumed_is_bit_identical() {
    let t_test = Instant::now();
    let full = case_dir("crash-full", STEPS, "");
    // The uninterrupted run, run once untimed: on a machine whose shader cache is cold its
    // start-up compiles every kernel, and kill delays drawn from that start-up would outlast
    // every later (cached) run, so no kill would land.
    run_ok(&mut edgerl_with(&full, &[]));
    // Then timed: start-up (to the first metrics line) and then per step, so the kills can be
    // spread over a resumed run's start-up and its first few steps.
    std::fs::remove_dir_all(full.join("out")).unwrap();
    let t0 = Instant::now();
    let mut child = edgerl_with(&full, &[]).spawn().unwrap();
    // The first complete line (a line being written may be read half-way).
    while !std::fs::read_to_string(full.join("out/metrics.jsonl")).is_ok_and(|t| t.contains('\n')) {
        assert!(child.try_wait().unwrap().is_none(), "the uninterrupted run ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    let t_start = t0.elapsed().as_secs_f64();
    assert!(child.wait().unwrap().success());
    let t_full = t0.elapsed().as_secs_f64();
    let t_step = (t_full - t_start) / (STEPS - 1) as f64;

    let seed = std::env::var("EDGERL_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261201);
    let mut rng = Rng(seed);
    let cut = case_dir("crash-cut", STEPS, "");
    let (mut kills, mut aborts, mut swaps, mut mid_write, mut runs) = (0, 0, 0, 0, 0);
    let mut schedule = Vec::new();
    let mut damaged_steps: Vec<usize> = Vec::new();
    loop {
        runs += 1;
        assert!(runs < 10 * KILLS, "seed {seed}: the campaign does not end ({kills} kills, {aborts} aborts, {swaps} swaps): {schedule:?}");
        let mut cmd = edgerl_with(&cut, if resumable(&cut) { &["--resume"] } else { &["--overwrite"] });
        if kills >= KILLS && aborts >= ABORTS && swaps >= SWAPS {
            let stderr = run_ok(&mut cmd);
            assert!(only_damaged_skipped(&stderr, &damaged_steps), "seed {seed}: {stderr}\n{schedule:?}");
            break;
        }
        // One interruption in five aborts inside the next checkpoint write; the others are a
        // SIGKILL at a random moment of start-up, restore, or the next steps and their
        // checkpoints: a window that shrinks with the steps left per kill left, so the run
        // is not over before the kills are.
        let done = newest_checkpoint(&cut);
        let mut abort_at = (runs % 5 == 3).then(|| (done + 1).min(STEPS));
        // Replacing a checkpoint happens only when it is damaged: damage the newest one (a
        // bit of its optimizer state), so the resume skips it, redoes that step and replaces
        // it; abort between the two renames of that replacement.
        let swap_at = (runs % 5 == 1 && done >= 2 && swaps < SWAPS).then_some(done);
        // A finished run's checkpoint is never rewritten: to abort inside a write there, damage
        // it as well.
        let damaged = match (swap_at, abort_at) {
            (Some(n), _) => Some(n),
            (None, Some(n)) if n == done && done >= 2 => Some(n),
            _ => None,
        };
        // Only a checkpoint in place can be damaged (not one still to be put back): otherwise
        // this run is a plain kill.
        let (swap_at, damaged) = match damaged {
            Some(n) if !cut.join(format!("out/checkpoint-{n}")).exists() => {
                abort_at = None;
                (None, None)
            }
            d => (swap_at, d),
        };
        if let Some(n) = damaged {
            // A byte of its own for each damage: the checkpoint may still be the one damaged
            // before (the runs since were killed before replacing it), and flipping the same
            // bit again would repair it.
            flip_bit(&cut.join(format!("out/checkpoint-{n}/optimizer.safetensors")), -5 - damaged_steps.len() as i64);
            damaged_steps.push(n);
        }
        if let Some(n) = swap_at {
            cmd.env("EDGERL_FAULT_ABORT_IN_CHECKPOINT", format!("{n}:swap"));
            abort_at = Some(n);
        } else if let Some(n) = abort_at {
            cmd.env("EDGERL_FAULT_ABORT_IN_CHECKPOINT", n.to_string());
        }
        let kills_left = KILLS.saturating_sub(kills) + 1;
        let window = match STEPS - done {
            0 => 0.5 * t_start, // finished: kill the resume while it restores
            left => t_start + t_step * (left as f64 / kills_left as f64).min(3.0),
        };
        let delay = Duration::from_secs_f64(rng.unit() * window);
        let mut child = cmd.spawn().unwrap();
        let started = Instant::now();
        let status = if abort_at.is_some() {
            child.wait().unwrap()
        } else {
            while started.elapsed() < delay && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(2));
            }
            let _ = child.kill(); // SIGKILL; an error only means it had already exited
            child.wait().unwrap()
        };
        let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
        // A resume reads only complete checkpoints: none is found broken but those damaged
        // here (one stays damaged until a run gets past its step and replaces it).
        assert!(only_damaged_skipped(&stderr, &damaged_steps), "seed {seed}, run {runs}: {stderr}");
        match status.signal() {
            Some(9) => kills += 1,
            Some(6) if abort_at.is_some() => {
                assert!(stderr.contains("aborting inside checkpoint"), "seed {seed}, run {runs}: {stderr}");
                if swap_at.is_some() {
                    assert!(stderr.contains("skipping checkpoint") && stderr.contains("(Swap)"), "seed {seed}, run {runs}: {stderr}");
                    swaps += 1;
                } else {
                    aborts += 1;
                }
            }
            _ => {
                assert!(abort_at.is_none(), "seed {seed}, run {runs} did not abort in checkpoint {abort_at:?} ({status}): {stderr}\n{schedule:?}");
                assert!(status.success(), "seed {seed}, run {runs} failed ({status}): {stderr}");
            }
        }
        if interrupted_writes(&cut) > 0 {
            mid_write += 1;
        }
        schedule.push(match (swap_at, abort_at) {
            (Some(n), _) => format!("{done}: damage checkpoint {n}, abort while replacing it"),
            (None, Some(n)) => format!("{done}: abort in checkpoint {n}"),
            (None, None) => format!("{done}: kill at {:.0} ms", delay.as_secs_f64() * 1e3),
        });
    }
    eprintln!(
        "seed {seed}: {kills} SIGKILLs, {aborts} aborts in a checkpoint write, {swaps} in a replacement, {mid_write} left a checkpoint half-written, {runs} runs; uninterrupted run {t_full:.1} s (start-up {t_start:.2} s, {t_step:.2} s a step), campaign {:.1} s\nfrom checkpoint: interruption\n{}",
        t_test.elapsed().as_secs_f64(),
        schedule.join("; ")
    );
    assert!(mid_write >= aborts + swaps, "seed {seed}");
    assert_eq!(adapter_bytes(&cut), adapter_bytes(&full), "seed {seed}: resumed adapter differs");
    assert_eq!(steps(&cut), (1..=STEPS as u64).collect::<Vec<_>>(), "seed {seed}: one metrics line per step");
    assert_eq!(metrics_values(&cut), metrics_values(&full), "seed {seed}: metrics differ");
    // No temporary file of an interrupted write is left behind (resumes clear them).
    for d in [cut.join("out"), cut.join("out/adapter")] {
        let tmp: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(tmp.is_empty(), "seed {seed}: left in {}: {tmp:?}", d.display());
    }
    let _ = std::fs::remove_dir_all(&full);
    let _ = std::fs::remove_dir_all(&cut);
}
