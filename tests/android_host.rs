//! The Android wrapper (platforms/android: Edgerl.kt over the JNI shim) on this machine's JVM:
//! the shim is built for the host against libedgerl.a, Edgerl.kt is compiled with a test
//! program (platforms/android/host-test/HostSmoke.kt) that trains two steps with a Kotlin
//! reward, steps on rows with rule rewards, takes an SFT step (`Session.sftStep`: finite loss,
//! adapter changed) before a GRPO step, generates, scores, round-trips adapters and checks the
//! errors an app would meet; begins episodes from rows whose rule reads each episode's target
//! and steps on them with no Kotlin reward (host-test/HostEpisodes.kt: the step's reward is
//! the rule's on the last acts, worked out in Kotlin), and asks for more groups under dynamic
//! sampling; then (host-test/HostVision.kt) scores and generates with images
//! (RgbaImage lists, decoded from the fixture's PNGs by javax.imageio) on the tiny SmolVLM
//! fixture and matches transformers' log-probs and greedy text (tests/fixtures/vision_e2e), and
//! takes a GRPO step with an image (`Session.stepRows(rows, images)`) whose adapter equals
//! `edgerl train`'s on the same row, PNG, config and seed.
//! Needs a JDK and kotlinc (.ci/run installs both); skipped elsewhere when they are missing.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// What a HostVision.kt case should give.
enum Want {
    Logprobs(Vec<f32>),
    Text(String),
}

/// The transformers cases of tests/fixtures/vision_e2e as HostVision.kt reads them (one a line,
/// tab-separated, texts escaped), and what each should give: log-probs or a text.
fn vision_spec(out: &Path) -> (std::path::PathBuf, Vec<Want>) {
    let fixture = common::fixtures().join("vision_e2e");
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(fixture.join("reference.json")).unwrap()).unwrap();
    let image = |v: &Value| common::fixtures().join("vision/images").join(v.as_str().unwrap()).display().to_string();
    let escape = |s: &str| s.replace('\\', "\\\\").replace('\n', "\\n");
    let (mut lines, mut want) = (Vec::new(), Vec::new());
    for case in reference["score"].as_array().unwrap() {
        let mut line = vec!["score".to_string(), escape(case["text"].as_str().unwrap())];
        line.extend(case["images"].as_array().unwrap().iter().map(image));
        lines.push(line.join("\t"));
        want.push(Want::Logprobs(case["logprobs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect()));
    }
    let chat = &reference["chat"];
    let greedy: Vec<u32> = chat["greedy"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let mut line = vec!["chat".to_string(), escape(chat["user"].as_str().unwrap()), greedy.len().to_string()];
    line.extend(chat["images"].as_array().unwrap().iter().map(image));
    lines.push(line.join("\t"));
    let tokenizer = edgerl::model::Tokenizer::open(&fixture.join("model")).unwrap();
    want.push(Want::Text(tokenizer.decode(&greedy).unwrap().replace('\0', "")));
    let spec = out.join("vision-spec.tsv");
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(&spec, lines.join("\n") + "\n").unwrap();
    (spec, want)
}

/// The image step's config (HostVision.kt's session and its `edgerl train` twin): point_in_box
/// on the row's target_box, plus a rule on the letters the tiny random model writes, so that
/// the group's rewards differ and the update moves the adapter.
const STEP_CONFIG: &str = r#"max_steps = 1
num_generations = 4
max_completion_length = 6
temperature = 1.0
learning_rate = 5e-3
seed = 7

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

/// The image step's inputs for HostVision.kt (config, rows, PNG) and `edgerl train`'s adapter
/// from them (one step on the one row, the PNG named in its `images` column).
fn step_case(out: &Path, png: &Path) -> (Vec<std::path::PathBuf>, std::path::PathBuf) {
    let row = serde_json::json!({"prompt": [{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": "Where is the send button? Answer x, y."}]}],
        "target_box": [10, 10, 200, 120]});
    let mut line = row.clone();
    line["images"] = serde_json::json!([png.to_str().unwrap()]);
    let cli = out.join("step-cli");
    std::fs::create_dir_all(&cli).unwrap();
    std::fs::write(cli.join("train.jsonl"), format!("{line}\n")).unwrap();
    let model = common::fixtures().join("vision_e2e/model");
    std::fs::write(
        cli.join("run.toml"),
        format!(
            "model = {:?}\noutput_dir = {:?}\ndataset = {:?}\nprompts_per_step = 1\nshuffle_dataset = false\n{STEP_CONFIG}",
            model.to_str().unwrap(),
            cli.join("out").to_str().unwrap(),
            cli.join("train.jsonl").to_str().unwrap()
        ),
    )
    .unwrap();
    let (code, _, stderr) = common::edgerl(&["train", "--config", cli.join("run.toml").to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let (config, rows) = (out.join("step.toml"), out.join("step-rows.json"));
    std::fs::write(&config, STEP_CONFIG).unwrap();
    std::fs::write(&rows, format!("[{row}]")).unwrap();
    (vec![config, rows, png.to_path_buf()], cli.join("out/adapter"))
}

/// An adapter's tensors by name, as f32 values.
fn tensors(dir: &Path) -> Vec<(String, Vec<f32>)> {
    common::adapter_tensors(dir)
}

#[test]
fn kotlin_wrapper_trains_and_reports_errors_on_the_host_jvm() {
    if !(common::native::have("javac", "-version", "the Android wrapper test")
        && common::native::have("kotlinc", "-version", "the Android wrapper test"))
    {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("edgerl-android-host-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (spec, want) = vision_spec(&out);
    // The step's image: the first score case's first image (HostVision.kt's `first[2]`).
    let first_png = std::fs::read_to_string(&spec).unwrap().lines().find(|l| l.starts_with("score\t")).unwrap().split('\t').nth(2).unwrap().to_string();
    let (step_args, cli_adapter) = step_case(&out, Path::new(&first_png));
    let cli_tensors = tensors(&cli_adapter);
    assert!(
        cli_tensors.iter().filter(|t| t.0.ends_with("lora_B.weight")).any(|t| t.1.iter().any(|&x| x != 0.0)),
        "the CLI's step left the adapter fresh: the comparison would show nothing"
    );
    let run = Command::new("bash")
        .arg(root.join("platforms/android/host-test.sh"))
        .arg(root.join("tests/fixtures/models/qwen3_f16"))
        .arg(&out)
        .arg(root.join("tests/fixtures/vision_e2e/model"))
        .arg(root.join("tests/fixtures/models/qwen3_f16"))
        .arg(&spec)
        .args(&step_args)
        .env("EDGERL_STATIC_LIB", common::native::release_lib("libedgerl.a"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "host test failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("all Kotlin host checks passed"), "{stdout}");
    assert!(stdout.contains("all Kotlin episode checks passed"), "{stdout}");
    // -Xcheck:jni (host-test.sh): HotSpot says "WARNING in native method: JNI call made with
    // exception pending" (and the like) where Android's CheckJNI would abort the app.
    assert!(!stderr.contains("in native method"), "CheckJNI complained:\n{stderr}");
    // EdgerlLog.setLevel(INFO) routed the episode step's metrics line to stderr.
    assert!(stderr.contains("edgerl [3] edgerl::"), "no log records on stderr:\n{stderr}");
    assert!(stdout.contains("all Kotlin vision checks passed"), "{stdout}");
    for (i, w) in want.iter().enumerate() {
        match w {
            Want::Logprobs(logprobs) => {
                let got: Vec<f32> = std::fs::read(out.join(format!("case{i}.f32"))).unwrap().chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
                common::assert_close(&format!("Kotlin score with images, case {i}, vs transformers"), &got, logprobs, 1e-4, 1e-4);
            }
            Want::Text(text) => assert_eq!(&std::fs::read_to_string(out.join(format!("case{i}.txt"))).unwrap(), text, "case {i}"),
        }
    }
    assert_eq!(tensors(&out.join("step-adapter")), cli_tensors, "Session.stepRows with an image vs edgerl train on the PNG");
    let _ = std::fs::remove_dir_all(&out);
}
