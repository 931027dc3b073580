//! The real SmolLM2-135M-Instruct (Q4_1 GGUF, base kept quantized on the GPU) against
//! transformers' GGUF loader (dequantized, f32): tests/fixtures/gguf/smollm2_model.json, made by
//! make_gguf_model_fixture.py beside it. Plus broken GGUF files through the CLI.

mod common;


use edgerl::gpu::{DType, Gpu};
use edgerl::model::LoadedModel;
use serde_json::Value;

fn fixture() -> Value {
    let p = common::fixtures().join("gguf/smollm2_model.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Each case's text tokenizes to the reference ids, and scores within 5e-2 of the reference's
/// per-token log-probs; returns the largest difference.
fn check_scores(gpu: &Gpu, m: &LoadedModel, cases: &[Value]) -> f32 {
    let mut worst = 0f32;
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want_ids = ids(&case["ids"]);
        let got_ids = m.tokenizer.encode(text, true).unwrap();
        assert_eq!(got_ids, want_ids, "token ids of {text:?}");
        let mut cache = m.model.new_cache(gpu, got_ids.len()).unwrap();
        let hidden = m.model.forward(gpu, &got_ids, &mut cache, None).unwrap();
        let targets: Vec<Option<u32>> = got_ids[1..].iter().map(|&i| Some(i)).collect();
        let lp = m.model.target_logprobs(gpu, &hidden, &targets, 1.0).unwrap();
        let want_lp: Vec<f32> = case["token_logprobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(lp.len(), want_lp.len());
        for (i, (g, w)) in lp.iter().zip(&want_lp).enumerate() {
            let d = (g - w).abs();
            worst = worst.max(d);
            assert!(d <= 5e-2, "{text:?} token {i}: log-prob {g} vs transformers {w}");
        }
    }
    worst
}

/// One backend is enough here (the kernels are covered on both elsewhere); lavapipe is slow.
fn gpu() -> &'static Gpu {
    &common::backends().normal[0]
}

#[test]
fn smollm2_q4_1_matches_transformers() {
    let Some(path) = common::smollm2_gguf() else {
        return;
    };
    let want = fixture();
    let sha = edgerl::fetch::sha256_file(&path).unwrap();
    assert_eq!(
        sha,
        want["model_sha256"].as_str().unwrap(),
        "the fixture was made from another file"
    );
    let gpu = gpu();
    let m = LoadedModel::open(gpu, &path, None).unwrap();
    assert_eq!(
        m.model.embed.dtype,
        DType::Q8_0,
        "the embedding stays quantized"
    );
    assert_eq!(
        m.model.layers[0].q.dtype,
        DType::Q4_1,
        "projections stay quantized"
    );
    assert!(
        m.model.lm_head.is_none(),
        "SmolLM2 ties the output to the embedding"
    );

    let worst = check_scores(gpu, &m, want["cases"].as_array().unwrap());
    eprintln!("largest log-prob difference from transformers: {worst:.2e}");

    // Greedy chat answer, through the model's own chat template from the GGUF metadata.
    let chat = &want["chat"];
    let prompt = m
        .tokenizer
        .chat_ids(chat["question"].as_str().unwrap())
        .unwrap();
    assert_eq!(prompt, ids(&chat["prompt_ids"]), "chat template rendering");
    let want_new = ids(&chat["greedy_new_ids"]);
    let opts = edgerl::model::SamplingOptions {
        max_new_tokens: want_new.len(),
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed: 0,
    };
    let new = edgerl::model::generate(gpu, &m.model, None, &prompt, &m.eos, &opts).unwrap();
    let text = m.tokenizer.decode(&new).unwrap();
    assert!(text.contains("Paris"), "answer: {text:?}");
    assert_eq!(
        new, want_new,
        "greedy ids (transformers said {:?})",
        chat["text"]
    );
}

/// The real Gemma-3-270M Q4_K_M (Q8_0 embedding larger than one 128 MiB binding, Q5_0, Q4_K,
/// Q6_K, F32 norms) against transformers' GGUF loader in f32: per-token log-probs on prose,
/// code, Unicode and emoji within 5e-2, and the greedy continuation of a base-model prompt.
/// tests/fixtures/gguf/gemma3_270m_reference.json, made by make_gemma3_reference.py beside it.
#[test]
fn gemma3_270m_q4_k_m_matches_transformers() {
    let Some(path) = common::gemma3_gguf() else {
        return;
    };
    let p = common::fixtures().join("gguf/gemma3_270m_reference.json");
    let want: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let sha = edgerl::fetch::sha256_file(&path).unwrap();
    assert_eq!(sha, want["gguf_sha256"].as_str().unwrap(), "the fixture was made from another file");
    let gpu = gpu();
    let m = LoadedModel::open(gpu, &path, None).unwrap();
    let cfg = &m.model.cfg;
    assert_eq!(cfg.arch, edgerl::model::Arch::Gemma3);
    assert_eq!((cfg.sliding_window, cfg.window(0), cfg.window(5)), (Some(512), 512, 0));
    assert_eq!(m.model.embed.dtype, DType::Q8_0, "the embedding stays quantized");
    assert!(m.model.embed.pieces.len() > 1 || gpu.max_binding >= m.model.embed.bytes());
    let types: std::collections::BTreeSet<String> = m
        .model
        .layers
        .iter()
        .flat_map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down])
        .map(|t| format!("{:?}", t.dtype))
        .collect();
    assert!(types.contains("Q4_K") && types.contains("Q6_K"), "{types:?}");
    let worst = check_scores(gpu, &m, want["score"].as_array().unwrap());
    eprintln!("gemma3-270m: largest log-prob difference from transformers {worst:.2e}");

    for case in want["greedy"].as_array().unwrap() {
        let prompt = m.tokenizer.encode(case["prompt"].as_str().unwrap(), true).unwrap();
        assert_eq!(prompt, ids(&case["prompt_ids"]), "prompt ids");
        let want_new = ids(&case["new_ids"]);
        let opts = edgerl::model::SamplingOptions {
            max_new_tokens: want_new.len(),
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: 0,
        };
        let new = edgerl::model::generate(gpu, &m.model, None, &prompt, &m.eos, &opts).unwrap();
        assert_eq!(new, want_new, "greedy ids (transformers said {:?})", case["new_text"]);
        let text = m.tokenizer.decode(&new).unwrap();
        assert_eq!(text, case["new_text"].as_str().unwrap());
    }
}

/// A corrupt GGUF given to `score` fails with one line naming the file and the problem.
fn expect_error(name: &str, bytes: &[u8], needle: &str) {
    let dir = std::env::temp_dir().join(format!("edgerl-gguf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let (code, _, stderr) = common::edgerl(&["score", "--model", path.to_str().unwrap(), "--text", "hi"]);
    assert_ne!(code, 0);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("XDG_RUNTIME_DIR"))
        .collect();
    assert_eq!(lines.len(), 1, "want one line: {stderr}");
    assert!(lines[0].contains(name), "names the file: {}", lines[0]);
    assert!(
        lines[0].to_lowercase().contains(needle),
        "{name}: {:?} should say {needle:?}",
        lines[0]
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn corrupt_gguf_files_give_clear_errors() {
    expect_error("bad-magic.gguf", b"GGUX\x03\x00\x00\x00rest", "magic");
    expect_error("empty.gguf", b"", "magic");
    let mut v1 = b"GGUF".to_vec();
    v1.extend(1u32.to_le_bytes());
    v1.extend([0u8; 16]);
    expect_error("version1.gguf", &v1, "version");
    // A header that promises 2^60 metadata entries in a 24-byte file.
    let mut huge = b"GGUF".to_vec();
    huge.extend(3u32.to_le_bytes());
    huge.extend(0u64.to_le_bytes());
    huge.extend((1u64 << 60).to_le_bytes());
    expect_error("huge-count.gguf", &huge, "");
    // The real model cut short: the tensor directory or data runs past the end.
    if let Some(path) = common::smollm2_gguf() {
        let bytes = std::fs::read(&path).unwrap();
        expect_error("cut-in-metadata.gguf", &bytes[..4096], "");
        expect_error(
            "cut-in-data.gguf",
            &bytes[..bytes.len() / 2],
            "past the end",
        );
        // An unknown tensor type id: the first tensor's type field, found by its name.
        let name = b"token_embd.weight";
        let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len();
        let n_dims = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let ty = at + 4 + 8 * n_dims;
        let mut bad = bytes.clone();
        bad[ty..ty + 4].copy_from_slice(&99u32.to_le_bytes());
        expect_error("unknown-type.gguf", &bad, "99");
    }
}

/// The CLI on the real Gemma file: a base model's greedy continuation, as transformers gives it.
#[test]
fn gemma3_270m_generates_through_the_cli() {
    let Some(path) = common::gemma3_gguf() else {
        return;
    };
    let model = path.to_str().unwrap();
    let args = ["generate", "--model", model, "--prompt", "The capital of France is"];
    let (code, out, err) =
        common::edgerl(&[&args[..], &["--temperature", "0", "--max-new-tokens", "8"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(" the capital of the country of France."), "{out:?}");
}

/// A batched decode step of the real SmolLM2 (Q4_1, head_dim 64, stacked q | k | v; rows in
/// their own cache segments, 8-row runs on CPU devices): each row's hidden state equals the
/// single-sequence forward of its prompt and next token. Then a greedy group decoded together
/// (every row's logits over the 49,152-token vocabulary, chunk by chunk) gives transformers'
/// answer.
#[test]
fn smollm2_batched_decoding_matches_single_sequences() {
    use edgerl::model::decode::DecodeRow;
    let Some(path) = common::smollm2_gguf() else {
        return;
    };
    let gpu = gpu();
    let m = LoadedModel::open(gpu, &path, None).unwrap();
    let model = &m.model;
    let hsize = model.cfg.hidden_size;
    let rows = 5;
    let texts = ["Tap the blue Send button.", "Hi", "Screen: [OK (100,200,180,240)]. Press OK.", "Open settings.", "x"];
    let ps: Vec<Vec<u32>> = texts.iter().map(|t| m.tokenizer.encode(t, false).unwrap()).collect();
    let next: Vec<u32> = (0..rows as u32).map(|i| 100 + 37 * i).collect();
    // Segment of prompt i: its prompt, its decode slot, 2 unused slots.
    let starts: Vec<usize> = ps.iter().scan(0, |total, p| { let s = *total; *total += p.len() + 3; Some(s) }).collect();
    let cache = model.new_cache(gpu, starts[rows - 1] + ps[rows - 1].len() + 3).unwrap();
    let prefill: Vec<DecodeRow> = ps
        .iter()
        .zip(&starts)
        .flat_map(|(p, &s)| p.iter().enumerate().map(move |(k, &id)| DecodeRow { id, position: k, slot: s + k, segment: s }))
        .collect();
    model.forward_rows(gpu, &prefill, 0, &cache, None).unwrap();
    let step: Vec<DecodeRow> = (0..rows)
        .map(|i| DecodeRow { id: next[i], position: ps[i].len(), slot: starts[i] + ps[i].len(), segment: starts[i] })
        .collect();
    let h = model.forward_rows(gpu, &step, 0, &cache, None).unwrap();
    let got: Vec<f32> = bytemuck::cast_slice(&gpu.read(&h.buffer, 0, h.bytes).unwrap()).to_vec();
    for (i, p) in ps.iter().enumerate() {
        let mut seq = p.clone();
        seq.push(next[i]);
        let mut one = model.new_cache(gpu, seq.len()).unwrap();
        let w = model.forward(gpu, &seq, &mut one, None).unwrap();
        let want: Vec<f32> = bytemuck::cast_slice(&gpu.read(&w.buffer, 0, w.bytes).unwrap()).to_vec();
        let last = &want[p.len() * hsize..][..hsize];
        common::assert_close(&format!("decode step of {:?}", texts[i]), &got[i * hsize..][..hsize], last, 1e-4, 1e-4);
    }

    // Greedy batched sampling of a group gives transformers' greedy answer in every sample.
    let chat = &fixture()["chat"];
    let want_new = ids(&chat["greedy_new_ids"]);
    let opts = edgerl::model::SamplingOptions { max_new_tokens: want_new.len(), temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 0 };
    let sampler = edgerl::rl::rollout::GroupSampler {
        decoding: edgerl::rl::rollout::Decoding::Batched,
        gpu,
        model,
        lora: None,
        tokenizer: Some(&m.tokenizer),
        eos: &m.eos,
        stop: &[],
        max_new_tokens: want_new.len(),
        opts,
    };
    let group = sampler.sample(&ids(&chat["prompt_ids"]), 3, 0).unwrap();
    for c in &group {
        assert_eq!(c.ids, want_new, "batched greedy ids (transformers said {:?})", chat["text"]);
    }
}
