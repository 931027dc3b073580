//! The C ABI from C: `platforms/c/edgerl.h` agrees with what libedgerl exports, and the C
//! example, the multi-turn episodes example and the misuse checks, compiled with gcc against
//! `target/release/libedgerl.a`, run and pass, also under AddressSanitizer.
//!
//! The library comes from `cargo test --release` itself: cargo builds every crate type of the
//! lib (rlib, cdylib, staticlib) before running tests, but leaves the C libraries in
//! target/release/deps/; `cargo build --release` copies them up to target/release/. The tests
//! take the newer of the two.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use edgerl::ffi::{EdgerlStepMetrics, STATUS_CODES};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header() -> String {
    std::fs::read_to_string(root().join("platforms/c/edgerl.h")).unwrap()
}

/// The header without its comments.
fn header_code() -> String {
    regex::Regex::new(r"(?s)/\*.*?\*/")
        .unwrap()
        .replace_all(&header(), " ")
        .into_owned()
}

/// Functions the header declares.
fn declared() -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b(edgerl_[a-z0-9_]+)\s*\(").unwrap();
    re.captures_iter(&header_code())
        .map(|c| c[1].to_string())
        .collect()
}

/// Functions the Rust side exports: `#[unsafe(no_mangle)]` followed by an `extern "C" fn`.
fn exported_in_source() -> BTreeSet<String> {
    let re = regex::Regex::new(
        r#"#\[unsafe\(no_mangle\)\]\s*pub (?:unsafe )?extern "C" fn (edgerl_[a-z0-9_]+)"#,
    )
    .unwrap();
    let mut out = BTreeSet::new();
    for f in std::fs::read_dir(root().join("src/ffi")).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        out.extend(re.captures_iter(&text).map(|c| c[1].to_string()));
    }
    out
}

use common::native::release_lib as lib;

/// Whether `tool` runs; outside CI a missing one skips the test, in CI it fails it.
fn have(tool: &str) -> bool {
    common::native::have(tool, "--version", "the C ABI tests")
}

#[test]
fn header_declares_exactly_the_exported_functions() {
    let declared = declared();
    let source = exported_in_source();
    assert!(declared.len() >= 15, "{declared:?}");
    assert_eq!(declared, source, "edgerl.h vs src/ffi/*.rs");
    // And the shared library really exports them (the staticlib holds the same objects).
    if !have("nm") {
        return;
    }
    let so = lib("libedgerl.so");
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&so)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nm {}: {}",
        so.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let symbols: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|s| s.starts_with("edgerl_"))
        .map(String::from)
        .collect();
    assert_eq!(
        declared,
        symbols,
        "edgerl.h vs the symbols of {}",
        so.display()
    );
}

#[test]
fn header_constants_and_struct_match_rust() {
    let code = header_code();
    let re = regex::Regex::new(r"#define (EDGERL_[A-Z_]+) (-?\d+)").unwrap();
    let defines: Vec<(String, i64)> = re
        .captures_iter(&code)
        .map(|c| (c[1].to_string(), c[2].parse().unwrap()))
        .collect();
    let mut want: Vec<(String, i64)> = STATUS_CODES
        .iter()
        .map(|(n, v)| (n.to_string(), *v as i64))
        .collect();
    want.push((
        "EDGERL_PROMPT_RAW".into(),
        edgerl::ffi::EDGERL_PROMPT_RAW as i64,
    ));
    want.push((
        "EDGERL_PROMPT_CHAT".into(),
        edgerl::ffi::EDGERL_PROMPT_CHAT as i64,
    ));
    use edgerl::ffi as f;
    for (n, v) in [
        ("EDGERL_LOG_ERROR", f::EDGERL_LOG_ERROR),
        ("EDGERL_LOG_WARN", f::EDGERL_LOG_WARN),
        ("EDGERL_LOG_INFO", f::EDGERL_LOG_INFO),
        ("EDGERL_LOG_DEBUG", f::EDGERL_LOG_DEBUG),
        ("EDGERL_LOG_TRACE", f::EDGERL_LOG_TRACE),
        ("EDGERL_PHASE_SAMPLE", f::EDGERL_PHASE_SAMPLE),
        ("EDGERL_PHASE_UPDATE", f::EDGERL_PHASE_UPDATE),
    ] {
        want.push((n.into(), v as i64));
    }
    assert_eq!(defines, want);
    let names: BTreeSet<i64> = STATUS_CODES.iter().map(|c| c.1 as i64).collect();
    assert_eq!(names.len(), STATUS_CODES.len(), "status codes are distinct");

    // edgerl_step_metrics: the same fields at the same offsets (every field is 8 bytes).
    let body = code
        .split("typedef struct edgerl_step_metrics {")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    let field = regex::Regex::new(r"(uint64_t|double)\s+([a-z_]+);").unwrap();
    let fields: Vec<(String, String)> = field
        .captures_iter(body)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect();
    use std::mem::offset_of;
    let rust = [
        ("uint64_t", "step", offset_of!(EdgerlStepMetrics, step)),
        ("double", "loss", offset_of!(EdgerlStepMetrics, loss)),
        (
            "double",
            "reward_mean",
            offset_of!(EdgerlStepMetrics, reward_mean),
        ),
        (
            "double",
            "reward_std",
            offset_of!(EdgerlStepMetrics, reward_std),
        ),
        (
            "double",
            "grad_norm",
            offset_of!(EdgerlStepMetrics, grad_norm),
        ),
        (
            "double",
            "learning_rate",
            offset_of!(EdgerlStepMetrics, learning_rate),
        ),
        (
            "double",
            "completion_mean_length",
            offset_of!(EdgerlStepMetrics, completion_mean_length),
        ),
        (
            "double",
            "clipped_ratio",
            offset_of!(EdgerlStepMetrics, clipped_ratio),
        ),
        ("double", "seconds", offset_of!(EdgerlStepMetrics, seconds)),
    ];
    assert_eq!(fields.len(), rust.len(), "{fields:?}");
    assert_eq!(std::mem::size_of::<EdgerlStepMetrics>(), 8 * rust.len());
    for (i, ((ty, name), (rty, rname, off))) in fields.iter().zip(rust).enumerate() {
        assert_eq!((ty.as_str(), name.as_str(), 8 * i), (rty, rname, off));
    }
}

/// gcc's link line for the staticlib, from
/// `cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs`
/// (Linux x86_64, glibc): `-ldl -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc`.
const NATIVE_LIBS: &[&str] = &[
    "-ldl",
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-lc",
];

/// Compiles `platforms/c/<name>.c` against libedgerl.a into `dir`; `asan` adds AddressSanitizer.
fn compile(name: &str, dir: &Path, asan: bool) -> PathBuf {
    let lib = lib("libedgerl.a");
    let exe = dir.join(if asan {
        format!("{name}-asan")
    } else {
        name.to_string()
    });
    let mut cmd = Command::new("gcc");
    cmd.args([
        "-std=c11",
        "-D_POSIX_C_SOURCE=200809L",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-g",
    ]);
    if asan {
        cmd.args(["-fsanitize=address", "-fno-omit-frame-pointer"]);
    }
    cmd.arg(root().join(format!("platforms/c/{name}.c")))
        .arg("-I")
        .arg(root().join("platforms/c"))
        .arg(&lib)
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe);
    let t = Instant::now();
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "compiled {} against {} in {:.1} s",
        exe.display(),
        lib.display(),
        t.elapsed().as_secs_f64()
    );
    exe
}

/// Runs a compiled program; returns its stdout. Under ASan, leak checking is off: Mesa's
/// drivers keep allocations alive until exit by design (nothing reported today with lavapipe,
/// but that is the driver's business, not ours).
fn run(exe: &Path, args: &[&Path], asan: bool) -> String {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    if asan {
        cmd.env("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0");
    }
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        cmd.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let t = Instant::now();
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!(
        "ran {} in {:.1} s",
        exe.display(),
        t.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        exe.display(),
        out.status
    );
    assert!(!stderr.contains("AddressSanitizer"), "{stderr}");
    stdout.into_owned()
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgerl-c-abi-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tensors(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(dir.join("adapter_model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            (
                n,
                v.data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The adapter in `before` is a fresh one (B = 0) and the one in `after` differs from it in at
/// least half its tensors, all finite.
fn assert_trained(before: &Path, after: &Path) {
    let (t0, t1) = (tensors(before), tensors(after));
    assert_eq!(
        t0.iter().map(|t| &t.0).collect::<Vec<_>>(),
        t1.iter().map(|t| &t.0).collect::<Vec<_>>()
    );
    assert!(
        t0.iter()
            .filter(|t| t.0.ends_with("lora_B.weight"))
            .all(|t| t.1.iter().all(|&x| x == 0.0))
    );
    let changed = t0
        .iter()
        .zip(&t1)
        .filter(|(a, b)| a.1.iter().zip(&b.1).any(|(x, y)| (x - y).abs() > 1e-4))
        .count();
    assert!(
        changed >= t0.len() / 2,
        "only {changed} of {} tensors changed",
        t0.len()
    );
    assert!(t1.iter().all(|t| t.1.iter().all(|x| x.is_finite())));
}

#[test]
fn c_example_trains_the_adapter() {
    if !have("gcc") {
        return;
    }
    let model = root().join("tests/fixtures/models/qwen3_f16");
    for asan in [false, true] {
        let dir = scratch(if asan { "example-asan" } else { "example" });
        let exe = compile("example", &dir, asan);
        let (after, before) = (dir.join("adapter"), dir.join("adapter-before"));
        let out = run(&exe, &[&model, &after, &before], asan);
        eprintln!("{out}");
        assert!(
            out.contains("step 2:") && out.contains("reward callback calls: 16"),
            "{out}"
        );
        assert_trained(&before, &after);
        let config: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(after.join("adapter_config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(config["r"], 4);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Two steps of multi-turn episodes (4 per task, 2 tasks, 2 acts and an observation each)
/// change the adapter; the progress and log callbacks were called (episodes.c checks counts).
#[test]
fn c_episodes_train_the_adapter() {
    if !have("gcc") {
        return;
    }
    let model = root().join("tests/fixtures/models/qwen3_f16");
    for asan in [false, true] {
        let dir = scratch(if asan { "episodes-asan" } else { "episodes" });
        let exe = compile("episodes", &dir, asan);
        let (after, before) = (dir.join("adapter"), dir.join("adapter-before"));
        let out = run(&exe, &[&model, &after, &before], asan);
        eprintln!("{out}");
        assert!(
            out.contains("step 2:") && out.contains("progress update reports: 4, log step lines: 2"),
            "{out}"
        );
        assert_trained(&before, &after);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn c_misuse_gives_codes_and_messages() {
    if !have("gcc") {
        return;
    }
    let model = root().join("tests/fixtures/models/qwen3_f16");
    for asan in [false, true] {
        let dir = scratch(if asan { "misuse-asan" } else { "misuse" });
        let exe = compile("misuse", &dir, asan);
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let out = run(&exe, &[&model, &work], asan);
        assert!(
            out.contains("all misuse checks passed") && !out.contains("FAIL"),
            "{out}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn c_session_reports_a_skipped_step() {
    if !have("gcc") {
        return;
    }
    // The example's second step gets a NaN gradient (the fault hook the session's trainer
    // reads): the call returns EDGERL_ERR_NONFINITE, not success, and the example stops there.
    let dir = scratch("nonfinite");
    let exe = compile("example", &dir, false);
    let out = Command::new(&exe)
        .args([root().join("tests/fixtures/models/qwen3_f16"), dir.join("adapter")])
        .env("EDGERL_FAULT_NONFINITE_STEPS", "2")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("step 1:") && !stdout.contains("step 2:"), "{stdout}");
    assert!(
        stderr.contains("edgerl_session_step") && stderr.contains("EDGERL_ERR_NONFINITE") && stderr.contains("skipped"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The memory budget and adapter choice (budget.c): a load above the budget fails with
/// EDGERL_ERR_GPU leaving nothing allocated; a step whose whole group does not fit runs with
/// the pack the plan shrank, its measured peak within the budget and below the unbudgeted
/// run's; a step no plan fits fails before sampling, adapter unchanged; "BACKEND:ADAPTER"
/// picks an adapter by a case-insensitive part of its name, and a name that matches nothing
/// lists the adapters found.
#[test]
fn c_memory_budget_and_adapter_choice() {
    if !have("gcc") {
        return;
    }
    // The adapter the default choice finds, named the other way round: its backend, and the
    // first word of its name in upper case.
    let gpu = edgerl::gpu::Gpu::new(&Default::default()).unwrap();
    let word = gpu.adapter.name.split_whitespace().next().unwrap().to_uppercase();
    let spec = format!("{}:{word}", gpu.adapter.backend);
    drop(gpu);
    let models = root().join("tests/fixtures/models");
    for asan in [false, true] {
        let dir = scratch(if asan { "budget-asan" } else { "budget" });
        let exe = compile("budget", &dir, asan);
        let out = run(&exe, &[&models, &dir, Path::new(&spec)], asan);
        eprintln!("{out}");
        assert!(out.contains("all budget checks passed") && !out.contains("FAIL"), "{out}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
