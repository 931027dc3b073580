//! The C ABI from C: `platforms/c/edgerl.h` agrees with what libedgerl exports, and the C
//! example, the rows, SFT, multi-turn episodes and images examples and the misuse checks, compiled with gcc against
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

use edgerl::ffi::{EdgerlSftMetrics, EdgerlStepMetrics, STATUS_CODES};

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

    // edgerl_sft_metrics likewise.
    let body = code
        .split("typedef struct edgerl_sft_metrics {")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    let fields: Vec<(String, String)> = field
        .captures_iter(body)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect();
    let rust = [
        ("uint64_t", "step", offset_of!(EdgerlSftMetrics, step)),
        ("double", "loss", offset_of!(EdgerlSftMetrics, loss)),
        ("double", "grad_norm", offset_of!(EdgerlSftMetrics, grad_norm)),
        ("double", "learning_rate", offset_of!(EdgerlSftMetrics, learning_rate)),
        ("uint64_t", "num_tokens", offset_of!(EdgerlSftMetrics, num_tokens)),
        ("uint64_t", "trained_tokens", offset_of!(EdgerlSftMetrics, trained_tokens)),
        ("double", "mean_token_accuracy", offset_of!(EdgerlSftMetrics, mean_token_accuracy)),
        ("double", "entropy", offset_of!(EdgerlSftMetrics, entropy)),
        ("double", "seconds", offset_of!(EdgerlSftMetrics, seconds)),
    ];
    assert_eq!(fields.len(), rust.len(), "{fields:?}");
    assert_eq!(std::mem::size_of::<EdgerlSftMetrics>(), 8 * rust.len());
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

/// Rule rewards on per-prompt data with no callback (rows.c): two edgerl_session_step_rows
/// calls with a point_in_box rule reading each row's target_box train the adapter; rows that
/// lack a target, carry one the rule cannot read, or are not rows are refused with the row
/// named, and train nothing.
#[test]
fn c_rows_with_rule_rewards_train_the_adapter() {
    if !have("gcc") {
        return;
    }
    let model = root().join("tests/fixtures/models/qwen3_f16");
    for asan in [false, true] {
        let dir = scratch(if asan { "rows-asan" } else { "rows" });
        let exe = compile("rows", &dir, asan);
        let (after, before) = (dir.join("adapter"), dir.join("adapter-before"));
        let out = run(&exe, &[&model, &after, &before], asan);
        eprintln!("{out}");
        assert!(out.contains("step 2:") && out.contains("all rows checks passed"), "{out}");
        assert_trained(&before, &after);
        assert_eq!(tensors(&after), tensors(&dir.join("adapter-again")), "a refused step changed the adapter");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A supervised warm start in a session (sft.c): four edgerl_session_sft_step calls on two
/// conversations (assistant_only_loss) lower the loss and train the adapter; bad rows are
/// refused naming the row and train nothing; a GRPO step follows in the same session.
#[test]
fn c_sft_steps_train_the_adapter() {
    if !have("gcc") {
        return;
    }
    let model = root().join("tests/fixtures/models/qwen3_f16");
    for asan in [false, true] {
        let dir = scratch(if asan { "sft-asan" } else { "sft" });
        let exe = compile("sft", &dir, asan);
        let (after, before) = (dir.join("adapter"), dir.join("adapter-before"));
        let out = run(&exe, &[&model, &after, &before], asan);
        eprintln!("{out}");
        assert!(out.contains("sft step 4:") && out.contains("grpo step 5:") && out.contains("all sft checks passed"), "{out}");
        assert_trained(&before, &after);
        assert_eq!(tensors(&after), tensors(&dir.join("adapter-again")), "a refused SFT step changed the adapter");
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

/// Episodes begun from dataset rows, scored by the config's rules with no reward of the app's
/// (episode_rows.c): two steps under dynamic sampling, running more groups whenever the session
/// asks (EDGERL_ERR_MORE_GROUPS), train the adapter; bad rows are refused naming the row and
/// train nothing; then dynamic sampling on the app's rewards with known counts and its errors.
#[test]
fn c_episode_rows_with_rule_rewards_train_the_adapter() {
    if !have("gcc") {
        return;
    }
    let model = root().join("tests/fixtures/models/qwen3_f16");
    for asan in [false, true] {
        let dir = scratch(if asan { "episode-rows-asan" } else { "episode-rows" });
        let exe = compile("episode_rows", &dir, asan);
        let (after, before) = (dir.join("adapter"), dir.join("adapter-before"));
        let out = run(&exe, &[&model, &after, &before], asan);
        eprintln!("{out}");
        assert!(out.contains("step 2:") && out.contains("all episode rows checks passed"), "{out}");
        assert_trained(&before, &after);
        assert_eq!(tensors(&after), tensors(&dir.join("adapter-again")), "a refused call changed the adapter");
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

/// An awkward RGBA pattern (37x23, a transparent strip, half-transparent rows) for vision.c,
/// written as raw bytes and as the same pixels in a PNG for the CLI.
fn write_test_image(dir: &Path) -> (PathBuf, PathBuf, u32, u32) {
    let (w, h) = (37u32, 23u32);
    let mut rgba = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            let a = if x < 3 { 0 } else if y % 5 == 0 { 128 } else { 255 };
            rgba.extend([(x * 7 + y * 3) as u8, (x * y) as u8, (255 - x * 5) as u8, a]);
        }
    }
    let (raw, png) = (dir.join("image.rgba"), dir.join("image.png"));
    std::fs::write(&raw, &rgba).unwrap();
    image::RgbaImage::from_raw(w, h, rgba).unwrap().save(&png).unwrap();
    (raw, png, w, h)
}

/// Images through the C ABI (vision.c) on the tiny SmolVLM-shaped model: edgerl_score_images
/// gives `edgerl score --image`'s log-probs and edgerl_generate_images `edgerl generate --chat
/// --image`'s greedy text for the same pixels (RGBA in C, a PNG for the CLI), packed or with a
/// row stride; a session's fresh adapter changes nothing and the model gets its image side
/// back; bad images (NULL, empty, oversized, short stride), placeholders that do not match and
/// a text model are refused with messages.
#[test]
fn c_images_score_and_generate_as_the_cli_does() {
    if !have("gcc") {
        return;
    }
    let model = root().join("tests/fixtures/vision_e2e/model");
    let text_model = root().join("tests/fixtures/models/qwen3_f16");
    let score_text = "User:<image>Tap the send button.<end_of_utterance>\nAssistant: click(";
    let chat = "Where is the send button?";
    let dir = scratch("vision");
    let (raw, png, w, h) = write_test_image(&dir);
    let m = model.to_str().unwrap();
    let (code, stdout, stderr) =
        common::edgerl(&["score", "--model", m, "--text", score_text, "--image", png.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let cli: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let cli_lp: Vec<f32> = cli["token_logprobs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let (code, stdout, stderr) = common::edgerl(&[
        "generate", "--model", m, "--chat", chat, "--image", png.to_str().unwrap(), "--temperature", "0",
        "--max-new-tokens", "6", "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let cli_text = serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap()["text"].as_str().unwrap().to_string();
    for asan in [false, true] {
        let out = dir.join(if asan { "out-asan" } else { "out" });
        std::fs::create_dir_all(&out).unwrap();
        let exe = compile("vision", &dir, asan);
        let (ws, hs) = (w.to_string(), h.to_string());
        let args: Vec<&Path> = vec![
            &model, &raw, Path::new(&ws), Path::new(&hs), Path::new(score_text), Path::new(chat), &text_model, &out,
        ];
        let stdout = run(&exe, &args, asan);
        eprintln!("{stdout}");
        assert!(stdout.contains("all vision checks passed") && !stdout.contains("FAIL"), "{stdout}");
        let lp: Vec<f32> = std::fs::read(out.join("score.f32")).unwrap().chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        common::assert_close("log-probs: C ABI vs edgerl score --image", &lp, &cli_lp, 1e-4, 1e-4);
        assert_eq!(std::fs::read_to_string(out.join("generate.txt")).unwrap(), cli_text.replace('\0', ""));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The config of the image step (vision_step.c and its `edgerl train` twin): a point_in_box
/// rule on the row's target_box, and a rule on the letters the tiny random model writes, so
/// that the group's rewards differ and the update moves the adapter.
const VISION_STEP_CONFIG: &str = r#"num_generations = 4
max_completion_length = 6
temperature = 1.0
learning_rate = 5e-3
seed = 5

[lora]
r = 4
alpha = 8

[[rewards]]
type = "point_in_box"
extract = "regex"
pattern = '^\s*(\d+)\s*,\s*(\d+)'
target = "target_box"
weight = 0.9

[[rewards]]
type = "regex"
pattern = '(?s).*[aeiou].*'
weight = 0.1
"#;

/// A training step with an image through the C ABI (vision_step.c) on the tiny SmolVLM-shaped
/// model: edgerl_session_step_rows_images on a content-part row whose image place takes RGBA
/// pixels trains the adapter `edgerl train` trains on the same row with the same pixels as a
/// PNG, config and seed, bit for bit; so does edgerl_session_step_rows on the row naming the
/// PNG in an `images` column. Image counts that do not match the rows' places, bad images, a
/// missing file and a text model are refused with messages, and train nothing.
#[test]
fn c_session_step_with_an_image_trains_as_edgerl_train_does() {
    if !have("gcc") {
        return;
    }
    let model = root().join("tests/fixtures/vision_e2e/model");
    let text_model = root().join("tests/fixtures/models/qwen3_f16");
    let dir = scratch("vision-step");
    let (raw, png, w, h) = write_test_image(&dir);
    let prompt = serde_json::json!([{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": "Where is the send button? Answer x, y."}]}]);
    let row = serde_json::json!({"prompt": prompt, "target_box": [4, 2, 30, 20]});
    let mut row_files = row.clone();
    row_files["images"] = serde_json::json!([png.to_str().unwrap()]);

    // `edgerl train`: one step on the one row, the image as a PNG next to the dataset.
    let cli = dir.join("cli");
    std::fs::create_dir_all(&cli).unwrap();
    let mut line = row.clone();
    line["images"] = serde_json::json!(["../image.png"]);
    std::fs::write(cli.join("train.jsonl"), format!("{line}\n")).unwrap();
    let run_toml = format!(
        "model = {:?}\noutput_dir = {:?}\ndataset = {:?}\nprompts_per_step = 1\nmax_steps = 1\nshuffle_dataset = false\n{VISION_STEP_CONFIG}",
        model.to_str().unwrap(),
        cli.join("out").to_str().unwrap(),
        cli.join("train.jsonl").to_str().unwrap()
    );
    // TOML: the run's keys go before the [lora] table.
    std::fs::write(cli.join("run.toml"), &run_toml).unwrap();
    let (code, _, stderr) = common::edgerl(&["train", "--config", cli.join("run.toml").to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let want = tensors(&cli.join("out/adapter"));
    assert!(
        want.iter().filter(|t| t.0.ends_with("lora_B.weight")).any(|t| t.1.iter().any(|&x| x != 0.0)),
        "the CLI's step left the adapter fresh: the comparison would show nothing"
    );

    // The session's config: the run's less model/output_dir/dataset; max_steps = 1 keeps the
    // CLI's learning-rate schedule.
    let config = dir.join("session.toml");
    std::fs::write(&config, format!("max_steps = 1\n{VISION_STEP_CONFIG}")).unwrap();
    for asan in [false, true] {
        let out = dir.join(if asan { "out-asan" } else { "out" });
        std::fs::create_dir_all(&out).unwrap();
        let exe = compile("vision_step", &dir, asan);
        let (ws, hs, rows, rows_files) =
            (w.to_string(), h.to_string(), format!("[{row}]"), format!("[{row_files}]"));
        let args: Vec<&Path> = vec![
            &model, &raw, Path::new(&ws), Path::new(&hs), &config, Path::new(&rows), Path::new(&rows_files),
            &text_model, &out,
        ];
        let stdout = run(&exe, &args, asan);
        eprintln!("{stdout}");
        assert!(stdout.contains("all vision step checks passed") && !stdout.contains("FAIL"), "{stdout}");
        assert_eq!(tensors(&out.join("adapter")), want, "pixels through the C ABI vs edgerl train on the PNG");
        assert_eq!(tensors(&out.join("adapter-files")), want, "an `images` column vs edgerl train");
        assert_eq!(tensors(&out.join("adapter-again")), want, "a refused step changed the adapter");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[cfg_attr(not(feature = "fault-injection"), ignore = "the NaN fault hook needs --features fault-injection")]
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

// ---------------------------------------------------------------------------------------------
// In this process: the C functions called from Rust, where a test can see inside a call.

mod inproc {
    use std::ffi::{c_char, c_void};
    use std::ptr::{null, null_mut};

    use edgerl::ffi::{
        EDGERL_ERR_BUFFER_TOO_SMALL, EDGERL_ERR_CANCELLED, EDGERL_OK, EDGERL_PHASE_SAMPLE,
        EDGERL_PROMPT_CHAT, EDGERL_PROMPT_RAW, EdgerlImage, EdgerlSftMetrics, EdgerlStepMetrics,
        computations_on_this_thread as computed,
    };

    type Reward = unsafe extern "C" fn(*mut c_void, usize, usize, *const c_char, *mut f64) -> i32;
    type Progress = unsafe extern "C" fn(*mut c_void, i32, usize, usize) -> i32;

    unsafe extern "C" {
        fn edgerl_runtime_create(backend: *const c_char, budget: u64, out: *mut u64) -> i32;
        fn edgerl_runtime_free(rt: u64) -> i32;
        fn edgerl_runtime_memory(rt: u64, live: *mut u64, peak: *mut u64, budget: *mut u64) -> i32;
        fn edgerl_model_load(rt: u64, path: *const c_char, out: *mut u64) -> i32;
        fn edgerl_model_free(model: u64) -> i32;
        fn edgerl_session_create(model: u64, config: *const c_char, out: *mut u64) -> i32;
        fn edgerl_session_free(session: u64) -> i32;
        fn edgerl_cancel(session: u64) -> i32;
        fn edgerl_session_set_progress(session: u64, cb: Option<Progress>, user: *mut c_void) -> i32;
        fn edgerl_session_step(
            session: u64, prompts: *const *const c_char, n: usize, flags: u32, cb: Option<Reward>,
            user: *mut c_void, metrics: *mut EdgerlStepMetrics,
        ) -> i32;
        fn edgerl_generate(
            model: u64, session: u64, prompt: *const c_char, flags: u32, max_new: u32, temperature: f32,
            seed: u64, out: *mut c_char, out_len: usize, needed: *mut usize,
        ) -> i32;
        fn edgerl_score(model: u64, session: u64, text: *const c_char, lp: *mut f32, cap: usize, n: *mut usize) -> i32;
        fn edgerl_score_images(
            model: u64, session: u64, text: *const c_char, images: *const EdgerlImage, n_images: usize, lp: *mut f32,
            cap: usize, n: *mut usize,
        ) -> i32;
        fn edgerl_last_error(buf: *mut c_char, len: usize) -> usize;
        fn edgerl_episode_begin(session: u64, prompt: *const c_char, flags: u32, out: *mut u64) -> i32;
        fn edgerl_episode_free(episode: u64) -> i32;
        fn edgerl_session_step_rows(
            session: u64, rows_json: *const c_char, cb: Option<Reward>, user: *mut c_void, metrics: *mut EdgerlStepMetrics,
        ) -> i32;
        fn edgerl_session_step_rows_images(
            session: u64, rows_json: *const c_char, images: *const EdgerlImage, n_images: usize, cb: Option<Reward>,
            user: *mut c_void, metrics: *mut EdgerlStepMetrics,
        ) -> i32;
        fn edgerl_session_save_adapter(session: u64, dir: *const c_char) -> i32;
        fn edgerl_session_sft_step(session: u64, rows_json: *const c_char, metrics: *mut EdgerlSftMetrics) -> i32;
    }

    fn last_error() -> String {
        let mut buf = vec![0u8; 1024];
        let n = unsafe { edgerl_last_error(buf.as_mut_ptr() as *mut c_char, buf.len()) };
        String::from_utf8_lossy(&buf[..n.min(1023)]).into_owned()
    }

    fn ok(rc: i32, what: &str) {
        assert_eq!(rc, EDGERL_OK, "{what}: {}", last_error());
    }

    struct Handles {
        rt: u64,
        model: u64,
    }

    impl Handles {
        fn new() -> Handles {
            let path = std::ffi::CString::new(super::root().join("tests/fixtures/models/qwen3_f16").to_str().unwrap()).unwrap();
            let (mut rt, mut model) = (0, 0);
            ok(unsafe { edgerl_runtime_create(null(), 0, &mut rt) }, "runtime");
            ok(unsafe { edgerl_model_load(rt, path.as_ptr(), &mut model) }, "model");
            Handles { rt, model }
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

    /// Generates into a buffer of `len` bytes (0: a size query): status, text, needed.
    fn generate(model: u64, session: u64, seed: u64, len: usize) -> (i32, String, usize) {
        let mut buf = vec![0u8; len];
        let mut needed = 0;
        let out = if len == 0 { null_mut() } else { buf.as_mut_ptr() as *mut c_char };
        let rc = unsafe {
            edgerl_generate(model, session, c"Name a fruit.".as_ptr(), EDGERL_PROMPT_RAW, 8, 1.0, seed, out, len, &mut needed)
        };
        let text = String::from_utf8_lossy(&buf[..needed.min(len.saturating_sub(1))]).into_owned();
        (rc, text, needed)
    }

    fn score(model: u64, session: u64, cap: usize) -> (i32, Vec<f32>) {
        let mut lp = vec![0f32; cap];
        let mut n = 0;
        let p = if cap == 0 { null_mut() } else { lp.as_mut_ptr() };
        let rc = unsafe { edgerl_score(model, session, c"hello world, hello".as_ptr(), p, cap, &mut n) };
        lp.truncate(n.min(cap));
        (rc, lp)
    }

    /// A text or log-probs that did not fit are kept for the very next call of the thread with
    /// the same arguments: it hands them over without computing them again. Any other call in
    /// between drops them.
    #[test]
    fn generate_and_score_hand_over_what_did_not_fit() {
        let h = Handles::new();
        let c0 = computed();
        let (rc, _, needed) = generate(h.model, 0, 3, 0);
        assert_eq!(rc, EDGERL_ERR_BUFFER_TOO_SMALL, "{}", last_error());
        assert!(needed > 0 && computed() == c0 + 1);
        let (rc, kept, n) = generate(h.model, 0, 3, needed + 1);
        ok(rc, "generate, second call");
        assert_eq!((n, kept.len(), computed()), (needed, needed, c0 + 1), "the second call generated again");
        // Nothing is kept after a call that fitted: the same request runs again, same text.
        let (rc, fresh, _) = generate(h.model, 0, 3, needed + 1);
        ok(rc, "generate, third call");
        assert_eq!((fresh.as_str(), computed()), (kept.as_str(), c0 + 2));
        // Another call in between (here, another seed; then any call) drops what was kept.
        assert_eq!(generate(h.model, 0, 3, 1).0, EDGERL_ERR_BUFFER_TOO_SMALL);
        generate(h.model, 0, 4, 0);
        assert_eq!(generate(h.model, 0, 3, needed + 1).1, kept);
        assert_eq!(computed(), c0 + 5);
        assert_eq!(generate(h.model, 0, 3, 1).0, EDGERL_ERR_BUFFER_TOO_SMALL);
        ok(unsafe { edgerl_runtime_memory(h.rt, null_mut(), null_mut(), null_mut()) }, "memory");
        generate(h.model, 0, 3, needed + 1);
        assert_eq!(computed(), c0 + 7);

        let (rc, lp) = score(h.model, 0, 0);
        assert_eq!((rc, lp.len(), computed()), (EDGERL_ERR_BUFFER_TOO_SMALL, 0, c0 + 8));
        let (rc, lp) = score(h.model, 0, 64);
        ok(rc, "score, second call");
        assert!(!lp.is_empty() && lp.iter().all(|x| x.is_finite() && *x <= 0.0), "{lp:?}");
        assert_eq!(computed(), c0 + 8, "the second score call computed again");
        assert_eq!(score(h.model, 0, 64).1, lp);
        assert_eq!(computed(), c0 + 9);

        // Through a session (its adapter) as well.
        let mut s = 0;
        ok(unsafe { edgerl_session_create(h.model, null(), &mut s) }, "session");
        let (rc, _, needed) = generate(0, s, 5, 0);
        assert_eq!(rc, EDGERL_ERR_BUFFER_TOO_SMALL, "{}", last_error());
        let c1 = computed();
        let (rc, text, _) = generate(0, s, 5, needed + 1);
        ok(rc, "session generate, second call");
        assert_eq!((text.len(), computed()), (needed, c1));
        ok(unsafe { edgerl_session_free(s) }, "session free");
    }

    /// Log-probs that did not fit are kept with the images they were computed for: the same
    /// pixels (also given with another row stride) are handed over, other pixels computed.
    #[test]
    fn score_images_hands_over_only_for_the_same_pixels() {
        let path = std::ffi::CString::new(super::root().join("tests/fixtures/vision_e2e/model").to_str().unwrap()).unwrap();
        let (mut rt, mut model) = (0, 0);
        ok(unsafe { edgerl_runtime_create(null(), 0, &mut rt) }, "runtime");
        ok(unsafe { edgerl_model_load(rt, path.as_ptr(), &mut model) }, "model");
        let (w, h) = (9u32, 7u32);
        let pixels: Vec<u8> = (0..w * h * 4).map(|i| if i % 4 == 3 { 255 } else { (i * 37 % 251) as u8 }).collect();
        let mut padded = vec![0u8; ((w * 4 + 4) * h) as usize];
        for y in 0..h as usize {
            padded[y * (w as usize * 4 + 4)..][..w as usize * 4].copy_from_slice(&pixels[y * w as usize * 4..][..w as usize * 4]);
        }
        let other: Vec<u8> = pixels.iter().enumerate().map(|(i, &p)| if i % 4 == 3 { p } else { 255 - p }).collect();
        let image = |px: &[u8], stride: u32| EdgerlImage { rgba: px.as_ptr(), width: w, height: h, stride_bytes: stride };
        let score = |im: &EdgerlImage, cap: usize| {
            let mut lp = vec![0f32; cap];
            let mut n = 0;
            let p = if cap == 0 { null_mut() } else { lp.as_mut_ptr() };
            let rc = unsafe { edgerl_score_images(model, 0, c"<image> is a picture".as_ptr(), im, 1, p, cap, &mut n) };
            lp.truncate(n.min(cap));
            (rc, lp, n)
        };
        let c0 = computed();
        let (rc, _, n) = score(&image(&pixels, 0), 0);
        assert_eq!((rc, computed()), (EDGERL_ERR_BUFFER_TOO_SMALL, c0 + 1), "{}", last_error());
        let (rc, lp, _) = score(&image(&padded, w * 4 + 4), n);
        ok(rc, "the same pixels with a stride");
        assert_eq!((lp.len(), computed()), (n, c0 + 1), "the same pixels computed again");
        assert_eq!(score(&image(&pixels, 0), 0).0, EDGERL_ERR_BUFFER_TOO_SMALL);
        let (rc, lp_other, _) = score(&image(&other, 0), n);
        ok(rc, "other pixels");
        assert_eq!(computed(), c0 + 3, "other pixels were handed the kept log-probs");
        assert_ne!(lp_other, lp);
        unsafe {
            edgerl_model_free(model);
            edgerl_runtime_free(rt);
        }
    }

    /// Counts its calls and adds 0.5 to every completion's reward.
    unsafe extern "C" fn half(user: *mut c_void, _: usize, _: usize, _: *const c_char, r: *mut f64) -> i32 {
        unsafe {
            *(user as *mut usize) += 1;
            *r = 0.5;
        }
        0
    }

    /// One step, two front ends: a session fed the dataset's rows (edgerl_session_step_rows,
    /// rule rewards reading each row's target_box, no callback) with the run's config and seed
    /// trains the same adapter as `edgerl train`, bit for bit, with the same rewards. A
    /// callback adds to the rules' reward.
    #[test]
    fn a_session_on_rows_trains_as_edgerl_train_does() {
        use std::ffi::CString;
        let root = super::root();
        let toml_path = root.join("examples/tiny-grpo-online/run.toml");
        let mut cfg = edgerl::rl::TrainConfig::from_file(&toml_path).unwrap();
        cfg.output_dir = std::env::temp_dir().join(format!("edgerl-c-abi-rows-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cfg.output_dir);
        // File order, so that batch b is rows b·per.. of the file (the CLI shuffles by default).
        cfg.shuffle_dataset = false;
        assert!(!cfg.dynamic_sampling && cfg.num_iterations == 1);
        let gpu = edgerl::gpu::Gpu::new(&edgerl::gpu::GpuOptions { backend: Some("vulkan".into()), ..Default::default() }).unwrap();
        let mut cli = Vec::new();
        edgerl::rl::trainer::train(&gpu, cfg.clone(), |m| cli.push(m["reward"].as_f64().unwrap())).unwrap();

        // The session's config: the run's, less the keys a session owns.
        let mut table: toml::Table = std::fs::read_to_string(&toml_path).unwrap().parse().unwrap();
        for k in ["model", "output_dir", "dataset"] {
            table.remove(k);
        }
        let session_cfg = CString::new(toml::to_string(&table).unwrap()).unwrap();
        let lines: Vec<String> = std::fs::read_to_string(cfg.dataset.as_ref().unwrap()).unwrap().lines().map(String::from).collect();
        let per = cfg.prompts_per_step;
        let batch = |b: usize| CString::new(format!("[{}]", (0..per).map(|j| lines[(b * per + j) % lines.len()].as_str()).collect::<Vec<_>>().join(","))).unwrap();

        let (mut rt, mut model) = (0, 0);
        let path = CString::new(root.join("tests/fixtures/models/qwen3_f16").to_str().unwrap()).unwrap();
        ok(unsafe { edgerl_runtime_create(c"vulkan".as_ptr(), 0, &mut rt) }, "runtime");
        ok(unsafe { edgerl_model_load(rt, path.as_ptr(), &mut model) }, "model");
        let mut s = 0;
        ok(unsafe { edgerl_session_create(model, session_cfg.as_ptr(), &mut s) }, "session");
        let mut m = EdgerlStepMetrics::default();
        for (b, want) in cli.iter().enumerate() {
            let rows = batch(b);
            ok(unsafe { edgerl_session_step_rows(s, rows.as_ptr(), None, null_mut(), &mut m) }, "step_rows");
            assert_eq!((m.step, m.reward_mean), ((b + 1) as u64, *want), "step {}", b + 1);
        }
        let dir = cfg.output_dir.join("session-adapter");
        let cdir = CString::new(dir.to_str().unwrap()).unwrap();
        ok(unsafe { edgerl_session_save_adapter(s, cdir.as_ptr()) }, "save");
        assert_eq!(super::tensors(&dir), super::tensors(&cfg.output_dir.join("adapter")), "the session's adapter differs from edgerl train's");
        ok(unsafe { edgerl_session_free(s) }, "session free");

        // A fresh session with a callback: the same first completions, each reward 0.5 more.
        ok(unsafe { edgerl_session_create(model, session_cfg.as_ptr(), &mut s) }, "second session");
        let mut calls = 0usize;
        let rows = batch(0);
        ok(unsafe { edgerl_session_step_rows(s, rows.as_ptr(), Some(half), &mut calls as *mut usize as *mut c_void, &mut m) }, "step_rows + callback");
        assert_eq!(calls, per * cfg.num_generations);
        assert!((m.reward_mean - (cli[0] + 0.5)).abs() < 1e-12, "{} vs {} + 0.5", m.reward_mean, cli[0]);
        ok(unsafe { edgerl_session_free(s) }, "session free");
        unsafe {
            edgerl_model_free(model);
            edgerl_runtime_free(rt);
        }
        let _ = std::fs::remove_dir_all(&cfg.output_dir);
    }

    /// `gradient_checkpointing = "auto"` in a session: without a budget the plan keeps every
    /// activation (the tiny step is far within its bound), so the step peaks as with `false`;
    /// with a runtime budget just under that peak it recomputes, peaking as with `true`.
    #[test]
    fn a_session_with_auto_checkpointing_keeps_activations_when_they_fit() {
        use std::ffi::CString;
        let root = super::root();
        let example = root.join("examples/tiny-grpo-online");
        let lines: Vec<String> =
            std::fs::read_to_string(example.join("prompts.jsonl")).unwrap().lines().filter(|l| !l.trim().is_empty()).map(String::from).collect();
        let rows = CString::new(format!("[{}]", lines[..2].join(","))).unwrap();
        let path = CString::new(root.join("tests/fixtures/models/qwen3_f16").to_str().unwrap()).unwrap();
        let peak = |gc: toml::Value, budget: u64| -> u64 {
            let mut table: toml::Table = std::fs::read_to_string(example.join("run.toml")).unwrap().parse().unwrap();
            for k in ["model", "output_dir", "dataset"] {
                table.remove(k);
            }
            table.insert("gradient_checkpointing".into(), gc.clone());
            let cfg = CString::new(toml::to_string(&table).unwrap()).unwrap();
            let (mut rt, mut model, mut s, mut peak) = (0, 0, 0, 0);
            ok(unsafe { edgerl_runtime_create(c"vulkan".as_ptr(), budget, &mut rt) }, "runtime");
            ok(unsafe { edgerl_model_load(rt, path.as_ptr(), &mut model) }, "model");
            ok(unsafe { edgerl_session_create(model, cfg.as_ptr(), &mut s) }, "session");
            let mut m = EdgerlStepMetrics::default();
            ok(unsafe { edgerl_session_step_rows(s, rows.as_ptr(), None, null_mut(), &mut m) }, &format!("step with {gc}, budget {budget}"));
            ok(unsafe { edgerl_runtime_memory(rt, null_mut(), &mut peak, null_mut()) }, "memory");
            unsafe {
                edgerl_session_free(s);
                edgerl_model_free(model);
                edgerl_runtime_free(rt);
            }
            peak
        };
        // `false` without a budget: one pass's activations (sampling's are kept only when planned).
        let (on, off) = (peak(toml::Value::Boolean(true), 0), peak(toml::Value::Boolean(false), 0));
        assert!(off > on, "keeping activations should cost memory: {off} vs {on}");
        let auto = toml::Value::String("auto".into());
        // auto without a budget keeps them, sampling's too (each group's until its pass).
        let kept = peak(auto.clone(), 0);
        assert!(kept > off, "auto without a budget should keep sampling's activations: {kept} vs {off}");
        assert_eq!(peak(auto.clone(), kept - 1), off, "auto under that peak should keep one pass's activations");
        assert_eq!(peak(auto, off - 1), on, "auto with a budget under that peak should recompute");
    }

    /// Dynamic sampling, two front ends: with dynamic_sampling = true, a session's
    /// edgerl_session_step_rows call drops the groups whose rewards are all equal and re-samples
    /// from its rows (draw d = row d mod n) as `edgerl train` does on a dataset of those rows
    /// (one batch of all of them, file order): the same refills, rewards and adapter, bit for bit.
    #[test]
    fn a_session_with_dynamic_sampling_refills_as_edgerl_train_does() {
        use std::ffi::CString;
        let root = super::root();
        let example = root.join("examples/tiny-grpo-online");
        let dir = std::env::temp_dir().join(format!("edgerl-c-abi-dynamic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let lines: Vec<String> =
            std::fs::read_to_string(example.join("prompts.jsonl")).unwrap().lines().filter(|l| !l.trim().is_empty()).map(String::from).collect();
        std::fs::write(dir.join("prompts.jsonl"), lines.join("\n") + "\n").unwrap();
        // Two short completions a prompt: groups with equal rewards are common.
        let mut table: toml::Table = std::fs::read_to_string(example.join("run.toml")).unwrap().parse().unwrap();
        for (k, v) in [
            ("num_generations", toml::Value::Integer(2)),
            ("max_completion_length", toml::Value::Integer(3)),
            ("dynamic_sampling", toml::Value::Boolean(true)),
            ("max_refill", toml::Value::Integer(8)),
            ("max_steps", toml::Value::Integer(1)),
            ("prompts_per_step", toml::Value::Integer(lines.len() as i64)),
            ("shuffle_dataset", toml::Value::Boolean(false)),
            ("seed", toml::Value::Integer(SEED)),
        ] {
            table.insert(k.into(), v);
        }
        let mut run = table.clone();
        run.insert("model".into(), toml::Value::String(root.join("tests/fixtures/models/qwen3_f16").to_str().unwrap().into()));
        run.insert("output_dir".into(), toml::Value::String(dir.join("out").to_str().unwrap().into()));
        run.insert("dataset".into(), toml::Value::String(dir.join("prompts.jsonl").to_str().unwrap().into()));
        std::fs::write(dir.join("run.toml"), toml::to_string(&run).unwrap()).unwrap();
        let cfg = edgerl::rl::TrainConfig::from_file(&dir.join("run.toml")).unwrap();
        let gpu = edgerl::gpu::Gpu::new(&edgerl::gpu::GpuOptions { backend: Some("vulkan".into()), ..Default::default() }).unwrap();
        let mut cli = Vec::new();
        edgerl::rl::trainer::train(&gpu, cfg.clone(), |m| cli.push((m["reward"].as_f64().unwrap(), m["dynamic_sampling/refills"].as_u64().unwrap()))).unwrap();
        let (reward, refills) = cli[0];
        assert!(refills >= 1, "seed {SEED}: no refill in edgerl train's step, the test shows nothing");

        for k in ["model", "output_dir", "dataset"] {
            table.remove(k);
        }
        let session_cfg = CString::new(toml::to_string(&table).unwrap()).unwrap();
        let rows = CString::new(format!("[{}]", lines.join(","))).unwrap();
        let (mut rt, mut model) = (0, 0);
        let path = CString::new(root.join("tests/fixtures/models/qwen3_f16").to_str().unwrap()).unwrap();
        ok(unsafe { edgerl_runtime_create(c"vulkan".as_ptr(), 0, &mut rt) }, "runtime");
        ok(unsafe { edgerl_model_load(rt, path.as_ptr(), &mut model) }, "model");
        let mut s = 0;
        ok(unsafe { edgerl_session_create(model, session_cfg.as_ptr(), &mut s) }, "session");
        let mut m = EdgerlStepMetrics::default();
        ok(unsafe { edgerl_session_step_rows(s, rows.as_ptr(), None, null_mut(), &mut m) }, "step_rows");
        assert_eq!((m.step, m.reward_mean), (1, reward), "{refills} refills in edgerl train");
        let adapter = dir.join("session-adapter");
        let cdir = CString::new(adapter.to_str().unwrap()).unwrap();
        ok(unsafe { edgerl_session_save_adapter(s, cdir.as_ptr()) }, "save");
        assert_eq!(super::tensors(&adapter), super::tensors(&dir.join("out/adapter")), "the session's adapter differs from edgerl train's");
        ok(unsafe { edgerl_session_free(s) }, "session free");
        unsafe {
            edgerl_model_free(model);
            edgerl_runtime_free(rt);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The seed of the dynamic sampling test: one whose first step refills.
    const SEED: i64 = 1;

    /// Dynamic sampling with an image: a session's edgerl_session_step_rows_images call whose
    /// first draws all score alike re-draws the row with the same image features, as `edgerl
    /// train` does on that row and its PNG (the seed is one whose first group has equal
    /// rewards: edgerl train's metrics say it refilled): the same reward and adapter, bit for bit.
    #[test]
    fn a_session_with_an_image_refills_as_edgerl_train_does() {
        use std::ffi::CString;
        let root = super::root();
        let dir = std::env::temp_dir().join(format!("edgerl-c-abi-vision-refill-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let png = root.join("tests/fixtures/vision/images/screen_120x90.png");
        let model = root.join("tests/fixtures/vision_e2e/model");
        let row = serde_json::json!({"prompt": [{"role": "user", "content": [
            {"type": "image"}, {"type": "text", "text": "Where is the send button? Answer x, y."}]}],
            "target_box": [10, 10, 200, 120]});
        let mut line = row.clone();
        line["images"] = serde_json::json!([png.to_str().unwrap()]);
        std::fs::write(dir.join("train.jsonl"), format!("{line}\n")).unwrap();
        let config = super::VISION_STEP_CONFIG.replace("seed = 5", "seed = 5\ndynamic_sampling = true\nmax_steps = 1");
        std::fs::write(
            dir.join("run.toml"),
            format!(
                "model = {:?}\noutput_dir = {:?}\ndataset = {:?}\nprompts_per_step = 1\nshuffle_dataset = false\n{config}",
                model.to_str().unwrap(),
                dir.join("out").to_str().unwrap(),
                dir.join("train.jsonl").to_str().unwrap()
            ),
        )
        .unwrap();
        let (code, _, stderr) = super::common::edgerl(&["train", "--config", dir.join("run.toml").to_str().unwrap()]);
        assert_eq!(code, 0, "{stderr}");
        let metrics: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(dir.join("out/metrics.jsonl")).unwrap().lines().next().unwrap()).unwrap();
        assert!(metrics["dynamic_sampling/refills"].as_u64().unwrap() >= 1, "no refill in edgerl train's step: {metrics}");

        let rgba = image::open(&png).unwrap().to_rgba8();
        let im = EdgerlImage { rgba: rgba.as_raw().as_ptr(), width: rgba.width(), height: rgba.height(), stride_bytes: 0 };
        let (mut rt, mut m, mut s) = (0, 0, 0);
        let path = CString::new(model.to_str().unwrap()).unwrap();
        ok(unsafe { edgerl_runtime_create(c"vulkan".as_ptr(), 0, &mut rt) }, "runtime");
        ok(unsafe { edgerl_model_load(rt, path.as_ptr(), &mut m) }, "model");
        let session_cfg = CString::new(config).unwrap();
        ok(unsafe { edgerl_session_create(m, session_cfg.as_ptr(), &mut s) }, "session");
        let rows = CString::new(format!("[{row}]")).unwrap();
        let mut sm = EdgerlStepMetrics::default();
        ok(unsafe { edgerl_session_step_rows_images(s, rows.as_ptr(), &im, 1, None, null_mut(), &mut sm) }, "step with an image");
        assert_eq!(sm.reward_mean, metrics["reward"].as_f64().unwrap());
        let out = dir.join("session-adapter");
        let cdir = CString::new(out.to_str().unwrap()).unwrap();
        ok(unsafe { edgerl_session_save_adapter(s, cdir.as_ptr()) }, "save");
        assert_eq!(super::tensors(&out), super::tensors(&dir.join("out/adapter")), "the session's adapter differs from edgerl train's");
        unsafe {
            edgerl_session_free(s);
            edgerl_model_free(m);
            edgerl_runtime_free(rt);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// One SFT step, two front ends: a session's edgerl_session_sft_step calls on the rows of
    /// `edgerl sft`'s batches (same config, seed and init_adapter; a batch = all rows, given in
    /// the run's shuffled order) log the same loss, grad_norm and token counts as `edgerl sft`
    /// and leave the same adapter, bit for bit.
    #[test]
    fn a_session_sft_step_trains_as_edgerl_sft_does() {
        use edgerl::rl::sft::{self, SftConfig};
        use std::ffi::CString;
        let root = super::root();
        let case = root.join("tests/fixtures/sft/messages_assistant_only_adamw_qwen3");
        let mut cfg = SftConfig::from_file(&case.join("run.toml")).unwrap();
        let lines: Vec<String> =
            std::fs::read_to_string(&cfg.dataset).unwrap().lines().filter(|l| !l.trim().is_empty()).map(String::from).collect();
        let n = lines.len();
        cfg.per_device_train_batch_size = n;
        cfg.gradient_accumulation_steps = 1;
        cfg.train.output_dir = std::env::temp_dir().join(format!("edgerl-c-abi-sft-cli-{}", std::process::id()));
        let steps = cfg.train.max_steps;
        assert!(steps >= 2 && cfg.assistant_only_loss && cfg.train.init_adapter.is_some());
        let gpu = edgerl::gpu::Gpu::new(&edgerl::gpu::GpuOptions { backend: Some("vulkan".into()), ..Default::default() }).unwrap();
        let mut cli = Vec::new();
        let cli_adapter = sft::sft(&gpu, cfg.clone(), true, |m| cli.push(m.clone())).unwrap();
        assert_eq!(cli.len(), steps);

        // The session's config: the run's, less the keys of the dataset loop; paths absolute.
        let mut table: toml::Table = std::fs::read_to_string(case.join("run.toml")).unwrap().parse().unwrap();
        for k in ["model", "output_dir", "dataset", "per_device_train_batch_size", "gradient_accumulation_steps"] {
            table.remove(k);
        }
        let init = cfg.train.init_adapter.as_ref().unwrap().to_str().unwrap().to_string();
        table.insert("init_adapter".into(), toml::Value::String(init));
        let session_cfg = CString::new(toml::to_string(&table).unwrap()).unwrap();

        let (mut rt, mut model) = (0, 0);
        let path = CString::new(root.join("tests/fixtures/models/qwen3_f16").to_str().unwrap()).unwrap();
        ok(unsafe { edgerl_runtime_create(c"vulkan".as_ptr(), 0, &mut rt) }, "runtime");
        ok(unsafe { edgerl_model_load(rt, path.as_ptr(), &mut model) }, "model");
        let mut s = 0;
        ok(unsafe { edgerl_session_create(model, session_cfg.as_ptr(), &mut s) }, "session");
        for (k, want) in cli.iter().enumerate() {
            let order = sft::micro_batch(n, n, cfg.train.seed, k);
            let rows = CString::new(format!("[{}]", order.iter().map(|&i| lines[i].as_str()).collect::<Vec<_>>().join(","))).unwrap();
            let mut m = EdgerlSftMetrics::default();
            ok(unsafe { edgerl_session_sft_step(s, rows.as_ptr(), &mut m) }, "sft_step");
            let f = |key: &str| want[key].as_f64().unwrap();
            let u = |key: &str| want[key].as_u64().unwrap();
            assert_eq!(
                (m.step, m.loss, m.grad_norm, m.learning_rate, m.num_tokens, m.trained_tokens),
                (u("step"), f("loss"), f("grad_norm"), f("learning_rate"), u("num_tokens"), u("trained_tokens")),
                "step {}",
                k + 1
            );
            assert_eq!((m.mean_token_accuracy, m.entropy), (f("mean_token_accuracy"), f("entropy")), "step {}", k + 1);
            assert!(m.loss.is_finite() && m.loss > 0.0);
        }
        let dir = cfg.train.output_dir.join("session-adapter");
        let cdir = CString::new(dir.to_str().unwrap()).unwrap();
        ok(unsafe { edgerl_session_save_adapter(s, cdir.as_ptr()) }, "save");
        assert_eq!(super::tensors(&dir), super::tensors(&cli_adapter), "the session's adapter differs from edgerl sft's");
        ok(unsafe { edgerl_session_free(s) }, "session free");
        unsafe {
            edgerl_model_free(model);
            edgerl_runtime_free(rt);
        }
        let _ = std::fs::remove_dir_all(&cfg.train.output_dir);
    }

    struct CancelProbe {
        session: u64,
        requested: Option<bool>,
    }

    /// At the first report: cancels the session and looks whether code with no session in
    /// sight (`edgerl::cancel::requested`, as a chat template's render asks) sees it.
    unsafe extern "C" fn cancel_and_look(user: *mut c_void, phase: i32, _: usize, _: usize) -> i32 {
        let p = unsafe { &mut *(user as *mut CancelProbe) };
        if phase == EDGERL_PHASE_SAMPLE && p.requested.is_none() {
            unsafe { edgerl_cancel(p.session) };
            p.requested = Some(edgerl::cancel::requested());
        }
        0
    }

    unsafe extern "C" fn one(_: *mut c_void, _: usize, _: usize, _: *const c_char, r: *mut f64) -> i32 {
        unsafe { *r = 1.0 };
        0
    }

    /// Cancels, then fails the step as a cancelled chat-template render would.
    unsafe extern "C" fn cancel_then_fail(user: *mut c_void, _: usize, _: usize, _: *const c_char, _: *mut f64) -> i32 {
        unsafe { edgerl_cancel(*(user as *const u64)) };
        3
    }

    /// A session's calls install its cancel flag for the thread (edgerl::cancel), so code
    /// without the session sees edgerl_cancel; a call that fails while the flag is up reports
    /// the cancellation, and that consumes it.
    #[test]
    fn session_calls_expose_their_cancel_flag() {
        let h = Handles::new();
        let mut s = 0;
        let cfg = c"num_generations = 2\nmax_completion_length = 2\n[lora]\nr = 2\n";
        ok(unsafe { edgerl_session_create(h.model, cfg.as_ptr(), &mut s) }, "session");
        let prompts = [c"Say hello.".as_ptr()];
        let mut m = EdgerlStepMetrics::default();
        let mut probe = CancelProbe { session: s, requested: None };
        ok(unsafe { edgerl_session_set_progress(s, Some(cancel_and_look), &mut probe as *mut _ as *mut c_void) }, "progress");
        let rc = unsafe { edgerl_session_step(s, prompts.as_ptr(), 1, EDGERL_PROMPT_CHAT, Some(one), null_mut(), &mut m) };
        assert_eq!(rc, EDGERL_ERR_CANCELLED, "{}", last_error());
        assert_eq!(probe.requested, Some(true), "inside the step, edgerl::cancel::requested() did not see the cancel");
        assert!(!edgerl::cancel::requested(), "the flag stays installed after the call");
        ok(unsafe { edgerl_session_set_progress(s, None, null_mut()) }, "progress off");

        let mut id = s;
        let rc = unsafe {
            edgerl_session_step(s, prompts.as_ptr(), 1, EDGERL_PROMPT_CHAT, Some(cancel_then_fail), &mut id as *mut u64 as *mut c_void, &mut m)
        };
        let msg = last_error();
        assert_eq!(rc, EDGERL_ERR_CANCELLED, "{msg}");
        assert!(msg.contains("returned 3"), "the message lost what stopped the call: {msg}");
        // Consumed: the next step runs.
        let rc = unsafe { edgerl_session_step(s, prompts.as_ptr(), 1, EDGERL_PROMPT_CHAT, Some(one), null_mut(), &mut m) };
        ok(rc, "the step after a reported cancel");
        assert_eq!(m.step, 1);
        ok(unsafe { edgerl_session_free(s) }, "session free");
    }

    /// edgerl_cancel stops a chat template's render (src/data/template.rs asks
    /// edgerl::cancel::requested): beginning a chat episode, which checks nothing else, fails
    /// as cancelled, and that consumes the request.
    #[test]
    fn edgerl_cancel_stops_a_chat_template_render() {
        let h = Handles::new();
        let (mut s, mut ep) = (0, 0);
        ok(unsafe { edgerl_session_create(h.model, null(), &mut s) }, "session");
        ok(unsafe { edgerl_cancel(s) }, "cancel");
        let rc = unsafe { edgerl_episode_begin(s, c"Say hello.".as_ptr(), EDGERL_PROMPT_CHAT, &mut ep) };
        let msg = last_error();
        assert_eq!(rc, EDGERL_ERR_CANCELLED, "{msg}");
        assert!(msg.contains("chat template"), "{msg}");
        ok(unsafe { edgerl_episode_begin(s, c"Say hello.".as_ptr(), EDGERL_PROMPT_CHAT, &mut ep) }, "the next begin");
        ok(unsafe { edgerl_episode_free(ep) }, "episode free");
        ok(unsafe { edgerl_session_free(s) }, "session free");
    }
}

// ---------------------------------------------------------------------------------------------
// Config counts that once sized allocations directly: the allocator's abort is no panic, so
// `guard` could not catch it and it killed the host app. Each is refused at session creation.

mod input_bounds {
    use std::ffi::{CString, c_char};
    use std::ptr::null;

    use edgerl::ffi::{EDGERL_ERR_INVALID_ARGUMENT, EDGERL_OK};

    unsafe extern "C" {
        fn edgerl_runtime_create(backend: *const c_char, budget: u64, out: *mut u64) -> i32;
        fn edgerl_runtime_free(rt: u64) -> i32;
        fn edgerl_model_load(rt: u64, path: *const c_char, out: *mut u64) -> i32;
        fn edgerl_model_free(model: u64) -> i32;
        fn edgerl_session_create(model: u64, config: *const c_char, out: *mut u64) -> i32;
        fn edgerl_session_free(session: u64) -> i32;
        fn edgerl_last_error(buf: *mut c_char, len: usize) -> usize;
    }

    fn last_error() -> String {
        let mut buf = vec![0u8; 1024];
        let n = unsafe { edgerl_last_error(buf.as_mut_ptr() as *mut c_char, buf.len()) };
        String::from_utf8_lossy(&buf[..n.min(1023)]).into_owned()
    }

    #[test]
    fn huge_counts_in_a_session_config_are_refused() {
        let path = super::root().join("tests/fixtures/models/qwen3_f16");
        let path = CString::new(path.to_str().unwrap()).unwrap();
        let (mut rt, mut model) = (0, 0);
        assert_eq!(unsafe { edgerl_runtime_create(null(), 0, &mut rt) }, EDGERL_OK, "{}", last_error());
        assert_eq!(unsafe { edgerl_model_load(rt, path.as_ptr(), &mut model) }, EDGERL_OK, "{}", last_error());
        for (toml, key) in [
            ("[lora]\nr = 1000000000\n", "r"),
            ("num_generations = 1000000000\n", "num_generations"),
            ("prompts_per_step = 1000000000000\n", "prompts_per_step"),
            ("max_completion_length = 1000000000000\n", "max_completion_length"),
            ("num_iterations = 1000000000000\n", "num_iterations"),
        ] {
            let c = CString::new(toml).unwrap();
            let mut s = 0;
            let rc = unsafe { edgerl_session_create(model, c.as_ptr(), &mut s) };
            let msg = last_error();
            assert_eq!(rc, EDGERL_ERR_INVALID_ARGUMENT, "{toml:?}: {msg}");
            assert!(msg.contains(&format!("`{key}`")) && msg.contains("at most"), "{toml:?}: {msg}");
        }
        // The bounds leave real settings alone: the model is still free for a session.
        let mut s = 0;
        let ok = c"num_generations = 16\nmax_completion_length = 4096\n[lora]\nr = 64\n";
        assert_eq!(unsafe { edgerl_session_create(model, ok.as_ptr(), &mut s) }, EDGERL_OK, "{}", last_error());
        assert_eq!(unsafe { edgerl_session_free(s) }, EDGERL_OK);
        unsafe {
            edgerl_model_free(model);
            edgerl_runtime_free(rt);
        }
    }
}
