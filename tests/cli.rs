//! The `edgerl` binary end to end: output shapes, and broken inputs that must give one clear
//! line naming the file and the problem, a non-zero exit, and no panic.

mod common;

use common::edgerl;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    common::fixtures().join("models").join(name)
}

/// A scratch copy of a fixture model that a test may break.
fn copy_model(name: &str, tag: &str) -> PathBuf {
    let dst = std::env::temp_dir().join(format!("edgerl-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

/// Runs `score` on a broken model and checks the error is one line mentioning all of `needles`.
fn expect_clear_error(dir: &Path, needles: &[&str]) {
    let (code, stdout, stderr) = edgerl(&[
        "score",
        "--model",
        dir.to_str().unwrap(),
        "--text",
        "hello",
        "--json",
    ]);
    assert_ne!(code, 0, "should fail; stdout {stdout}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one line, got: {stderr}");
    for n in needles {
        assert!(
            lines[0].contains(n),
            "error {:?} should mention {n:?}",
            lines[0]
        );
    }
}

#[test]
fn score_json_matches_reference() {
    let dir = fixture("llama_f32");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let case = &r["score"][1];
    let (code, stdout, stderr) = edgerl(&[
        "score",
        "--model",
        dir.to_str().unwrap(),
        "--text",
        case["text"].as_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["ids"], case["ids"]);
    let got = v["token_logprobs"].as_array().unwrap();
    let want = case["token_logprobs"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g.as_f64().unwrap() - w.as_f64().unwrap()).abs() < 1e-4);
    }
}

#[test]
fn generate_json_greedy_and_seeded() {
    let dir = fixture("qwen3_f16");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let case = &r["greedy"][1];
    let chat = case["chat"].as_str().unwrap();
    let n = case["new_ids"].as_array().unwrap().len().to_string();
    for backend in ["vulkan", "gl"] {
        let args = [
            "generate",
            "--model",
            dir.to_str().unwrap(),
            "--chat",
            chat,
            "--max-new-tokens",
            &n,
            "--temperature",
            "0",
            "--json",
        ];
        let out = Command::new(env!("CARGO_BIN_EXE_edgerl"))
            .args(args)
            .env("EDGERL_BACKEND", backend)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap();
        if !out.status.success() && std::env::var_os("CI").is_none() {
            continue; // backend missing on a developer machine
        }
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["new_ids"], case["new_ids"], "{backend}");
        assert!(v["text"].is_string());
    }
    // Sampling: the same seed gives the same tokens; another seed (almost surely) does not.
    let sample = |seed: &str| {
        let (code, stdout, stderr) = edgerl(&[
            "generate",
            "--model",
            dir.to_str().unwrap(),
            "--prompt",
            "the cat",
            "--max-new-tokens",
            "12",
            "--temperature",
            "1.5",
            "--top-k",
            "50",
            "--top-p",
            "0.95",
            "--min-p",
            "0.01",
            "--seed",
            seed,
            "--json",
        ]);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<Value>(stdout.trim()).unwrap()["new_ids"].clone()
    };
    let a = sample("7");
    assert_eq!(a, sample("7"));
    assert_ne!(a, sample("8"));
}

/// `info --model` describes a model from its config and tokenizer: the Gemma fixture's sliding
/// layers, and a broken directory fails with one clear line.
#[test]
fn info_describes_a_model() {
    let dir = fixture("gemma3_f32");
    let (code, stdout, stderr) = edgerl(&["info", "--json", "--model", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    let m = &v["model"];
    assert_eq!(m["architecture"], "Gemma3");
    let att = m["attention"].as_str().unwrap();
    assert!(att.contains("2 of 3 layers see the last 8 positions"), "{att}");
    assert!(m["chat_template"].as_str().unwrap().ends_with("tokenizer_config.json"));
    let (code, _, stderr) = edgerl(&["info", "--model", "/no/such/model"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("/no/such/model") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn info_json() {
    let (code, stdout, stderr) = edgerl(&["info", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    for key in ["backend", "adapter", "device_type", "limits", "features"] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn missing_weights() {
    let d = copy_model("llama_f32", "missing");
    std::fs::remove_file(d.join("model.safetensors")).unwrap();
    expect_clear_error(&d, &["no model.safetensors"]);
}

#[test]
fn missing_shard() {
    let d = copy_model("qwen2_bf16", "shard");
    std::fs::remove_file(d.join("model-00002-of-00003.safetensors")).unwrap();
    expect_clear_error(&d, &["model-00002-of-00003.safetensors"]);
}

#[test]
fn truncated_safetensors() {
    let d = copy_model("llama_f32", "trunc");
    let p = d.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    expect_clear_error(&d, &["model.safetensors", "not a valid safetensors file"]);
    std::fs::write(&p, &bytes[..5]).unwrap();
    expect_clear_error(&d, &["model.safetensors", "not a valid safetensors file"]);
}

#[test]
fn absurd_header_length() {
    let d = copy_model("llama_f32", "header");
    let p = d.join("model.safetensors");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[..8].copy_from_slice(&(u64::MAX - 7).to_le_bytes());
    std::fs::write(&p, &bytes).unwrap();
    expect_clear_error(&d, &["model.safetensors", "not a valid safetensors file"]);
}

#[test]
fn unknown_architecture() {
    let d = copy_model("llama_f32", "arch");
    let p = d.join("config.json");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("LlamaForCausalLM", "GPT2LMHeadModel");
    std::fs::write(&p, text).unwrap();
    expect_clear_error(&d, &["config.json", "GPT2LMHeadModel"]);
}

#[test]
fn shape_disagrees_with_config() {
    let d = copy_model("llama_f32", "shape");
    let p = d.join("config.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["intermediate_size"] = Value::from(100);
    std::fs::write(&p, v.to_string()).unwrap();
    expect_clear_error(
        &d,
        &["model.safetensors", "gate_proj", "config.json implies"],
    );
}

#[test]
fn config_not_json() {
    let d = copy_model("llama_f32", "json");
    std::fs::write(d.join("config.json"), "{ this is not json").unwrap();
    expect_clear_error(&d, &["config.json", "not valid JSON"]);
}

#[test]
fn model_dir_missing() {
    expect_clear_error(Path::new("/nonexistent/model"), &["/nonexistent/model"]);
}

#[test]
fn score_with_f16_storage_stays_close() {
    // --dtype f16 stores an f32 checkpoint's matrices in 16 bits: close to, not equal to, f32.
    let dir = fixture("llama_f32");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let case = &r["score"][2];
    let (code, stdout, stderr) = edgerl(&[
        "score",
        "--model",
        dir.to_str().unwrap(),
        "--text",
        case["text"].as_str().unwrap(),
        "--dtype",
        "f16",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    let got = v["token_logprobs"].as_array().unwrap();
    let want = case["token_logprobs"].as_array().unwrap();
    let max_err = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g.as_f64().unwrap() - w.as_f64().unwrap()).abs())
        .fold(0.0, f64::max);
    // The reference is the f32 model, so this is rounding error of the weights themselves
    // (logits here have std ~4); a wrong conversion is off by whole units.
    assert!(max_err < 0.1, "f16 storage drifted by {max_err}");
    assert!(
        max_err > 0.0,
        "f16 storage should not be bit-identical to f32"
    );
}

#[test]
fn bad_flags_are_clear_errors() {
    let dir = fixture("llama_f32");
    let d = dir.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["score", "--model", d, "--text", "hi", "--dtype", "f8"],
            "--dtype",
        ),
        (
            vec!["generate", "--model", d, "--prompt", "hi", "--top-p", "0"],
            "--top-p",
        ),
        (
            vec![
                "generate",
                "--model",
                d,
                "--prompt",
                "hi",
                "--temperature=-1",
            ],
            "--temperature",
        ),
        (
            vec!["bench", "--matmul", "--t", "1", "--k", "32", "--n", "4", "--matvec", "fast"],
            "auto, blocked, split, general",
        ),
        (
            vec!["bench", "--shape", "smollm2-135m", "--dtype", "q4_1", "--repetitions", "0"],
            "--repetitions must be at least 1",
        ),
    ] {
        let (code, _, stderr) = edgerl(&args);
        assert_ne!(code, 0);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

/// A copy of a training fixture whose run.toml writes into the copy.
fn copy_train_case(case: &str, tag: &str) -> PathBuf {
    let src = common::fixtures().join("train").join(case);
    let dst = std::env::temp_dir().join(format!("edgerl-cli-train-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(dst.join("init_adapter")).unwrap();
    for f in ["rollouts.jsonl", "init_adapter/adapter_config.json", "init_adapter/adapter_model.safetensors"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let model = fixture("llama_f32");
    let toml = std::fs::read_to_string(src.join("run.toml"))
        .unwrap()
        .lines()
        .map(|l| if l.starts_with("model = ") { format!("model = {:?}", model.to_str().unwrap()) } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dst.join("run.toml"), toml + "\n").unwrap();
    dst
}

#[test]
fn train_writes_adapter_and_metrics() {
    let d = copy_train_case("grpo_group_llama", "ok");
    let (code, stdout, stderr) = edgerl(&["train", "--config", d.join("run.toml").to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let line: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    for key in ["loss", "reward", "reward_std", "grad_norm", "learning_rate", "entropy", "num_tokens", "step_time", "completions/mean_length"] {
        assert!(line.get(key).is_some(), "metric {key} missing: {line}");
    }
    let metrics = std::fs::read_to_string(d.join("out/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 1);
    let adapter = d.join("out/adapter");
    assert!(adapter.join("adapter_config.json").exists() && adapter.join("adapter_model.safetensors").exists());
    // The trained adapter changes the model's log-probs, and score/generate accept it.
    let text = "Question: What is 12 plus 30? Answer: 42";
    let m = fixture("llama_f32");
    let score = |extra: &[&str]| {
        let mut args = vec!["score", "--model", m.to_str().unwrap(), "--text", text, "--json"];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = edgerl(&args);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<Value>(stdout.trim()).unwrap()["token_logprobs"].clone()
    };
    assert_ne!(score(&[]), score(&["--adapter", adapter.to_str().unwrap()]));
    let (code, _, stderr) = edgerl(&["generate", "--model", m.to_str().unwrap(), "--prompt", "hi", "--max-new-tokens", "3", "--adapter", adapter.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn train_bad_inputs_are_clear_and_write_nothing() {
    let d = copy_train_case("grpo_group_llama", "bad");
    let cfg = d.join("run.toml");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let run = |needles: &[&str]| {
        let (code, _, stderr) = edgerl(&["train", "--config", cfg.to_str().unwrap()]);
        assert_ne!(code, 0);
        assert!(!stderr.contains("panicked"), "{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        for n in needles {
            assert!(lines[0].contains(n), "{:?} should mention {n:?}", lines[0]);
        }
        assert!(!d.join("out/adapter").exists(), "no adapter after a failed run");
    };
    std::fs::write(&cfg, format!("{original}lerning_rate = 2.0\n")).unwrap();
    run(&["run.toml", "lerning_rate"]);
    std::fs::write(&cfg, original.replace("loss_type = \"grpo\"", "loss_type = \"ppo\"")).unwrap();
    run(&["run.toml", "ppo"]);
    std::fs::write(&cfg, &original).unwrap();
    let rollouts = d.join("rollouts.jsonl");
    let good = std::fs::read_to_string(&rollouts).unwrap();
    let first = good.lines().next().unwrap().to_string();
    std::fs::write(&rollouts, format!("{first}\n{{\"prompt_ids\": [1, 2], \"completion_ids\": [[3]], \"rewards\": [1.0, 2.0]}}\n")).unwrap();
    run(&["rollouts.jsonl", "line 2", "2 rewards for 1 completions"]);
    std::fs::write(&rollouts, format!("{first}\nnot json\n")).unwrap();
    run(&["rollouts.jsonl", "line 2", "JSON"]);
    std::fs::write(&rollouts, format!("{{\"prompt_ids\": [1], \"completion_ids\": [[99999]], \"rewards\": [1.0]}}\n")).unwrap();
    run(&["rollouts.jsonl", "line 1", "99999"]);
}

/// A GL driver whose shading language predates compute shaders (Mesa's llvmpipe told to report
/// GLSL 3.30): the first kernel fails with one clear error that names the adapter and another
/// backend to try, no panic. NVIDIA's GL (an H200, through EGL) failed earlier still, at device
/// creation in wgpu's indirect-call validation shader, until edgerl turned that off.
#[test]
fn a_gl_driver_without_compute_shaders_is_a_clear_error() {
    let run = |old_glsl: bool, args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_edgerl"));
        c.args(args)
            .env("EDGERL_BACKEND", "gl")
            .env("RUST_LOG", "off")
            .env("XDG_RUNTIME_DIR", std::env::var_os("XDG_RUNTIME_DIR").unwrap_or_else(|| std::env::temp_dir().into()));
        if old_glsl {
            c.env("MESA_GL_VERSION_OVERRIDE", "3.3").env("MESA_GLSL_VERSION_OVERRIDE", "330");
        }
        c.output().unwrap()
    };
    let info = run(false, &["info"]);
    if !String::from_utf8_lossy(&info.stdout).contains("llvmpipe") {
        // The overrides are Mesa's: only llvmpipe's GL shows this (CI has it).
        assert!(std::env::var_os("CI").is_none(), "CI must have llvmpipe's GL: {}", String::from_utf8_lossy(&info.stderr));
        return;
    }
    let dir = fixture("qwen3_f16");
    let generate = ["generate", "--model", dir.to_str().unwrap(), "--prompt", "the cat", "--max-new-tokens", "2", "--temperature", "0"];
    let ok = run(false, &generate);
    assert!(ok.status.success(), "plain GL: {}", String::from_utf8_lossy(&ok.stderr));
    // The driver is found out when the device is made (one small kernel built there), so even
    // `info` says so, and nothing is loaded first.
    for args in [&generate[..], &["info"]] {
        let out = run(true, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        for needle in ["building kernel", "llvmpipe", "COMPUTE_SHADER", "EDGERL_BACKEND=vulkan"] {
            assert!(err.contains(needle), "{args:?}: missing {needle:?} in: {err}");
        }
    }
}

/// `edgerl bench --rollout` counts the dispatches of a batched decoding step, without and with
/// the rank-16 adapter on all seven projections (`Gpu::dispatches`): every step the same whole
/// number, at least one a layer, and with the adapter exactly one x·Aᵀ product more for each
/// group of projections that share an input (q | k | v, o, gate | up, down) of each of the 30
/// layers: the adapters' terms ride on the frozen products, q | k | v's on their stacked product
/// and gate's and up's on their paired one where it is taken (`LoraStack`; apart, the adapter
/// took 11 more a layer).
#[test]
fn bench_rollout_counts_dispatches_per_step() {
    let (code, stdout, stderr) = edgerl(&[
        "bench", "--rollout", "--shape", "smollm2-135m", "--dtype", "q4_1", "--prompt-tokens", "4", "--completions", "2",
        "--completion-tokens", "4",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let start = stdout.find('{').expect("a JSON object");
    let v: Value = serde_json::from_str(stdout[start..].trim()).unwrap();
    let plain = v["batched_dispatches_per_step"].as_f64().unwrap();
    let lora = v["batched_lora_dispatches_per_step"].as_f64().unwrap();
    assert!(plain >= 30.0 && plain.fract() == 0.0, "{v}");
    assert!(lora == plain + 30.0 * 4.0, "{v}");
    // The decoding steps alone (the run of 4 tokens against a run of 2): a rate, not 0 (what
    // it reports below 3 tokens) nor a negative or NaN difference.
    let step_tok_s = v["batched_decode_tokens_per_s"].as_f64().unwrap();
    assert!(step_tok_s.is_finite() && step_tok_s > 0.0, "{v}");
}

/// `edgerl bench` (prefill/decode) times `--repetitions` runs and reports their means, each
/// run's tokens/s beside them (what bench/anchors/edgerl_side.py compares with llama-bench -r).
#[test]
fn bench_forward_reports_each_repetition_and_their_mean() {
    let (code, stdout, stderr) = edgerl(&[
        "bench", "--shape", "smollm2-135m", "--dtype", "q4_1", "--prompt-tokens", "3", "--decode-tokens", "2",
        "--repetitions", "2",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let start = stdout.find('{').expect("a JSON object");
    let v: Value = serde_json::from_str(stdout[start..].trim()).unwrap();
    assert_eq!(v["repetitions"], 2);
    for what in ["prefill", "decode"] {
        let runs: Vec<f64> = v[format!("{what}_tokens_per_s_runs")].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(runs.len(), 2, "{what}: {v}");
        assert!(runs.iter().all(|r| r.is_finite() && *r > 0.0), "{what}: {runs:?}");
        let mean = v[format!("{what}_tokens_per_s")].as_f64().unwrap();
        assert!((mean - (runs[0] + runs[1]) / 2.0).abs() <= 1e-9 * mean, "{what}: {mean} vs {runs:?}");
    }
}
