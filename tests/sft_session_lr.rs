//! A session's own SFT learning rate (the config's `[sft]` table), through the C ABI in this
//! process: an SFT step uses `[sft] learning_rate` (its metrics say so, and its update is the
//! one a session whose only learning rate is that one takes, bit for bit), and the GRPO step
//! after it uses the session's `learning_rate` (with SGD the update scales with it). An `[sft]`
//! schedule runs on the session's optimizer-step clock. Keys a session refuses: `packing`.

use std::ffi::{CString, c_char, c_void};
use std::path::{Path, PathBuf};
use std::ptr::null_mut;

use edgerl::ffi::{EDGERL_OK, EdgerlSftMetrics, EdgerlStepMetrics};

type Reward = unsafe extern "C" fn(*mut c_void, usize, usize, *const c_char, *mut f64) -> i32;

unsafe extern "C" {
    fn edgerl_runtime_create(backend: *const c_char, budget: u64, out: *mut u64) -> i32;
    fn edgerl_runtime_free(rt: u64) -> i32;
    fn edgerl_model_load(rt: u64, path: *const c_char, out: *mut u64) -> i32;
    fn edgerl_model_free(model: u64) -> i32;
    fn edgerl_session_create(model: u64, config: *const c_char, out: *mut u64) -> i32;
    fn edgerl_session_free(session: u64) -> i32;
    fn edgerl_last_error(buf: *mut c_char, len: usize) -> usize;
    fn edgerl_session_step_rows(
        session: u64, rows_json: *const c_char, cb: Option<Reward>, user: *mut c_void, metrics: *mut EdgerlStepMetrics,
    ) -> i32;
    fn edgerl_session_save_adapter(session: u64, dir: *const c_char) -> i32;
    fn edgerl_session_sft_step(session: u64, rows_json: *const c_char, metrics: *mut EdgerlSftMetrics) -> i32;
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn last_error() -> String {
    let mut buf = vec![0u8; 1024];
    let n = unsafe { edgerl_last_error(buf.as_mut_ptr() as *mut c_char, buf.len()) };
    String::from_utf8_lossy(&buf[..n.min(1023)]).into_owned()
}

fn ok(rc: i32, what: &str) {
    assert_eq!(rc, EDGERL_OK, "{what}: {}", last_error());
}

/// The adapter's tensors, by name.
fn tensors(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(dir.join("adapter_model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// after − before, every tensor flattened in name order.
fn update(before: &[(String, Vec<f32>)], after: &[(String, Vec<f32>)]) -> Vec<f64> {
    before.iter().zip(after).flat_map(|(b, a)| b.1.iter().zip(&a.1).map(|(x, y)| *y as f64 - *x as f64)).collect()
}

/// The online GRPO example's session (its prompts' rule rewards), with SGD and no clipping so
/// that an update is −lr·gradient, from the qwen3 SFT fixture's adapter; and `extra`.
fn config(lr: f64, extra: &str) -> CString {
    let grpo = root().join("examples/tiny-grpo-online/run.toml");
    let mut t: toml::Table = std::fs::read_to_string(grpo).unwrap().parse().unwrap();
    for k in ["model", "output_dir", "dataset", "lora"] {
        t.remove(k);
    }
    let init = root().join("tests/fixtures/sft/messages_assistant_only_adamw_qwen3/init_adapter");
    t.insert("init_adapter".into(), toml::Value::String(init.display().to_string()));
    t.insert("optimizer".into(), toml::Value::String("sgd".into()));
    t.insert("learning_rate".into(), toml::Value::Float(lr));
    t.insert("max_grad_norm".into(), toml::Value::Float(0.0));
    let extra: toml::Table = extra.parse().unwrap();
    t.extend(extra);
    CString::new(toml::to_string(&t).unwrap()).unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().filter(|l| !l.trim().is_empty()).map(String::from).collect()
}

struct Run {
    rt: u64,
    model: u64,
    dir: PathBuf,
    sft_rows: CString,
    grpo_rows: CString,
}

impl Run {
    fn new(tag: &str) -> Run {
        let (mut rt, mut model) = (0, 0);
        let path = CString::new(root().join("tests/fixtures/models/qwen3_f16").to_str().unwrap()).unwrap();
        ok(unsafe { edgerl_runtime_create(c"vulkan".as_ptr(), 0, &mut rt) }, "runtime");
        ok(unsafe { edgerl_model_load(rt, path.as_ptr(), &mut model) }, "model");
        let dir = std::env::temp_dir().join(format!("edgerl-sft-session-lr-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sft = lines(&root().join("tests/fixtures/sft/messages_assistant_only_adamw_qwen3/data.jsonl"));
        let grpo = lines(&root().join("examples/tiny-grpo-online/prompts.jsonl"));
        Run {
            rt,
            model,
            dir,
            sft_rows: CString::new(format!("[{}]", sft.join(","))).unwrap(),
            grpo_rows: CString::new(format!("[{}]", grpo[..2].join(","))).unwrap(),
        }
    }

    fn session(&self, cfg: &CString) -> u64 {
        let mut s = 0;
        ok(unsafe { edgerl_session_create(self.model, cfg.as_ptr(), &mut s) }, "session");
        s
    }

    fn sft(&self, s: u64) -> EdgerlSftMetrics {
        let mut m = EdgerlSftMetrics::default();
        ok(unsafe { edgerl_session_sft_step(s, self.sft_rows.as_ptr(), &mut m) }, "sft step");
        m
    }

    fn grpo(&self, s: u64) -> EdgerlStepMetrics {
        let mut m = EdgerlStepMetrics::default();
        ok(unsafe { edgerl_session_step_rows(s, self.grpo_rows.as_ptr(), None, null_mut(), &mut m) }, "grpo step");
        m
    }

    fn adapter(&self, s: u64, tag: &str) -> Vec<(String, Vec<f32>)> {
        let d = self.dir.join(tag);
        let c = CString::new(d.to_str().unwrap()).unwrap();
        ok(unsafe { edgerl_session_save_adapter(s, c.as_ptr()) }, "save");
        tensors(&d)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        unsafe {
            edgerl_model_free(self.model);
            edgerl_runtime_free(self.rt);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn sft_steps_use_the_sft_learning_rate_and_grpo_steps_theirs() {
    let (lr_grpo, lr_sft) = (0.05, 0.3);
    let run = Run::new("rates");
    // One session at a time per model: each is freed before the next.
    let two_rates = |grpo_lr: f64| {
        let s = run.session(&config(grpo_lr, &format!("[sft]\nlearning_rate = {lr_sft}\n")));
        let init = run.adapter(s, &format!("init-{grpo_lr}"));
        let m = run.sft(s);
        let after_sft = run.adapter(s, &format!("sft-{grpo_lr}"));
        let g = run.grpo(s);
        let after_grpo = run.adapter(s, &format!("grpo-{grpo_lr}"));
        ok(unsafe { edgerl_session_free(s) }, "free");
        (m, g, init, after_sft, after_grpo)
    };
    let (m, g, init, after_sft, after_grpo) = two_rates(lr_grpo);
    assert_eq!((m.step, m.learning_rate), (1, lr_sft), "the SFT step's learning rate");
    assert_eq!((g.step, g.learning_rate), (2, lr_grpo), "the GRPO step's learning rate");
    assert!(m.loss.is_finite() && m.trained_tokens > 0);

    // A session whose one learning rate is lr_sft takes the same SFT update, bit for bit.
    let s = run.session(&config(lr_sft, ""));
    let m1 = run.sft(s);
    assert_eq!((m1.learning_rate, m1.loss, m1.grad_norm), (lr_sft, m.loss, m.grad_norm));
    assert_eq!(run.adapter(s, "single-rate"), after_sft, "the SFT update is not a step at [sft] learning_rate");
    ok(unsafe { edgerl_session_free(s) }, "free");
    assert_ne!(after_sft, init);

    // Twice the session's learning rate: the same SFT step, then the same GRPO gradient (same
    // adapter, seed and samples) taken twice as far. SGD: the update is −lr·g, up to rounding.
    let (m2, g2, _, after_sft2, after_grpo2) = two_rates(2.0 * lr_grpo);
    assert_eq!((m2.learning_rate, g2.learning_rate, g2.reward_mean), (lr_sft, 2.0 * lr_grpo, g.reward_mean));
    assert_eq!(after_sft2, after_sft);
    let (d1, d2) = (update(&after_sft, &after_grpo), update(&after_sft2, &after_grpo2));
    let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
    let n1 = norm(&mut d1.iter().copied());
    let off = norm(&mut d1.iter().zip(&d2).map(|(a, b)| b - 2.0 * a));
    assert!(n1 > 0.0, "the GRPO step changed nothing: the test shows nothing");
    eprintln!("GRPO update at 2·lr vs 2 × the one at lr: off by {:.2e} relative", off / (2.0 * n1));
    assert!(off / (2.0 * n1) < 1e-3, "the GRPO update at 2·lr is not twice the one at lr: off by {:.2e}", off / (2.0 * n1));
}

/// `[sft]` with a schedule: linear decay over 4 optimizer steps of the session (GRPO steps
/// count), so SFT, GRPO, SFT take lr_at(0) = 0.4, the GRPO rate, then lr_at(2) = 0.2.
#[test]
fn an_sft_schedule_runs_on_the_session_step_clock() {
    let run = Run::new("schedule");
    let s = run.session(&config(0.05, "[sft]\nlearning_rate = 0.4\nlr_scheduler_type = \"linear\"\nmax_steps = 4\n"));
    assert_eq!(run.sft(s).learning_rate, 0.4);
    assert_eq!(run.grpo(s).learning_rate, 0.05);
    assert_eq!(run.sft(s).learning_rate, 0.2);
    ok(unsafe { edgerl_session_free(s) }, "free");

    // Keys a session refuses, with the reason.
    for (extra, want) in [
        ("packing = true\n", "packing"),
        ("packing_strategy = \"bfd\"\n", "packing_strategy"),
        ("[sft]\nlearning_rate = 0.1\nbeta = 0.1\n", "beta"),
        ("[sft]\nlr_scheduler_type = \"cosine\"\n", "max_steps"),
    ] {
        let mut out = 0;
        let rc = unsafe { edgerl_session_create(run.model, config(0.05, extra).as_ptr(), &mut out) };
        let e = last_error();
        assert!(rc != EDGERL_OK && e.contains(want), "{extra}: {e}");
    }
}
