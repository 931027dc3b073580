//! Malformed-input corpus through the CLI: `score`, `generate`, `train` and `eval` against
//! broken models (safetensors and GGUF), tokenizers, adapters, datasets and reward rules. Each
//! run must exit non-zero with one stderr line naming the file and the reason, never panic, and
//! leave no output behind (no stdout from score/generate, no output_dir from train, no
//! --output file from eval). tests/cli.rs already covers missing/truncated weights, absurd
//! header lengths, unknown architectures, shapes against config.json and bad rollouts;
//! library-level cases are in tests/malformed_files.rs.

mod common;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    common::fixtures().join("models").join(name)
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "edgerl-malformed-run-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A copy of a directory's files (not recursive).
fn copy_dir(src: &Path, dst: &Path) -> PathBuf {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
    dst.to_path_buf()
}

/// Runs edgerl, which must fail with one clear line; returns (stdout, the line).
fn fails(args: &[&str], needles: &[&str]) -> (String, String) {
    let (code, stdout, stderr) = common::edgerl(args);
    assert_ne!(code, 0, "{args:?} should fail; stdout {stdout}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("XDG_RUNTIME_DIR"))
        .collect();
    assert_eq!(lines.len(), 1, "{args:?}: want one line, got: {stderr}");
    for n in needles {
        assert!(
            lines[0].contains(n),
            "{args:?}: {:?} should mention {n:?}",
            lines[0]
        );
    }
    (stdout, lines[0].to_string())
}

/// `score` and `generate` on a model (and adapter) must fail alike and print nothing.
fn score_and_generate_fail(model: &Path, adapter: Option<&Path>, needles: &[&str]) {
    let m = model.to_str().unwrap();
    let mut score = vec!["score", "--model", m, "--text", "hello", "--json"];
    let mut generate = vec![
        "generate",
        "--model",
        m,
        "--prompt",
        "hi",
        "--max-new-tokens",
        "2",
        "--json",
    ];
    if let Some(a) = adapter {
        for args in [&mut score, &mut generate] {
            args.extend(["--adapter", a.to_str().unwrap()]);
        }
    }
    for args in [score, generate] {
        let (stdout, _) = fails(&args, needles);
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
    }
}

/// The header of a safetensors file as JSON, and the offset where its data starts.
fn header(bytes: &[u8]) -> (Value, usize) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + n]).unwrap(), 8 + n)
}

/// The same file with a new header (the data is kept byte for byte).
fn with_header(bytes: &[u8], h: &Value) -> Vec<u8> {
    let (_, start) = header(bytes);
    let text = h.to_string();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text.as_bytes());
    out.extend(&bytes[start..]);
    out
}

#[test]
fn broken_model_files() {
    let dir = scratch("model");
    let good = fixture("qwen3_f16");
    let weights = std::fs::read(good.join("model.safetensors")).unwrap();
    let (h, _) = header(&weights);
    let fresh = |name: &str| copy_dir(&good, &dir.join(name));

    // A stored integer dtype where the model needs floats.
    let m = fresh("int-dtype");
    let mut bad = h.clone();
    bad["model.norm.weight"]["dtype"] = json!("I16");
    std::fs::write(m.join("model.safetensors"), with_header(&weights, &bad)).unwrap();
    score_and_generate_fail(&m, None, &["model.safetensors", "model.norm.weight", "I16"]);

    // One flipped bit in a tensor name: the file parses, the model misses the tensor.
    let m = fresh("flipped-name");
    let name = b"model.norm.weight";
    let at = weights.windows(name.len()).position(|w| w == name).unwrap();
    let mut flipped = weights.clone();
    flipped[at + name.len() - 1] ^= 1;
    std::fs::write(m.join("model.safetensors"), &flipped).unwrap();
    score_and_generate_fail(&m, None, &["missing tensor model.norm.weight"]);

    // More layers than the checkpoint has, and a layer count no model has (this once
    // aborted on a 10^12-element allocation).
    for (tag, layers, needle) in [
        ("three-layers", 3u64, "missing tensor model.layers.2."),
        ("huge-layers", 1 << 40, "larger than edgerl supports"),
    ] {
        let m = fresh(tag);
        let mut c: Value =
            serde_json::from_slice(&std::fs::read(good.join("config.json")).unwrap()).unwrap();
        c["num_hidden_layers"] = json!(layers);
        // transformers 5 lists each layer's attention; Hub configs often don't.
        c.as_object_mut().unwrap().remove("layer_types");
        std::fs::write(m.join("config.json"), c.to_string()).unwrap();
        score_and_generate_fail(&m, None, &[needle]);
    }
    // A layer list that disagrees with the layer count (transformers refuses it too).
    let m = fresh("layer-types");
    let mut c: Value =
        serde_json::from_slice(&std::fs::read(good.join("config.json")).unwrap()).unwrap();
    c["num_hidden_layers"] = json!(3);
    c["layer_types"] = json!(["full_attention", "full_attention"]);
    std::fs::write(m.join("config.json"), c.to_string()).unwrap();
    score_and_generate_fail(&m, None, &["`layer_types` lists 2 layers, `num_hidden_layers` is 3"]);

    for (file, text, needle) in [
        (
            "tokenizer.json",
            "{\"model\": {\"type\": \"BPE\"",
            "cannot load",
        ),
        (
            "tokenizer_config.json",
            "{\"eos_token\": ",
            "not valid JSON",
        ),
        ("generation_config.json", "[1, 2", "not valid JSON"),
    ] {
        let m = fresh(file);
        std::fs::write(m.join(file), text).unwrap();
        score_and_generate_fail(&m, None, &[file, needle]);
    }
}

/// A GGUF file, written the way llama.cpp lays it out (version 3, 32-byte alignment).
struct Gguf {
    kvs: Vec<u8>,
    n_kv: u64,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

fn gguf_str(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend(s.as_bytes());
    out
}

impl Gguf {
    fn kv(mut self, key: &str, ty: u32, payload: Vec<u8>) -> Gguf {
        self.kvs.extend(gguf_str(key));
        self.kvs.extend(ty.to_le_bytes());
        self.kvs.extend(payload);
        self.n_kv += 1;
        self
    }
    fn u32(self, key: &str, v: u32) -> Gguf {
        self.kv(key, 4, v.to_le_bytes().to_vec())
    }
    fn str(self, key: &str, v: &str) -> Gguf {
        self.kv(key, 8, gguf_str(v))
    }
    fn strs(self, key: &str, vs: &[&str]) -> Gguf {
        let mut p = 8u32.to_le_bytes().to_vec();
        p.extend((vs.len() as u64).to_le_bytes());
        for v in vs {
            p.extend(gguf_str(v));
        }
        self.kv(key, 9, p)
    }
    /// An f32 tensor of zeros, dims in GGUF order (contiguous first).
    fn tensor(mut self, name: &str, dims: &[u64], ty: u32, bytes: usize) -> Gguf {
        self.tensors
            .push((name.into(), dims.to_vec(), ty, vec![0u8; bytes]));
        self
    }
    fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kvs);
        let (mut data, mut off) = (Vec::new(), 0u64);
        for (name, dims, ty, blob) in &self.tensors {
            out.extend(gguf_str(name));
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(ty.to_le_bytes());
            out.extend(off.to_le_bytes());
            data.extend(blob);
            data.resize(data.len().next_multiple_of(32), 0);
            off = data.len() as u64;
        }
        out.resize(out.len().next_multiple_of(32), 0);
        out.extend(data);
        out
    }
}

const VOCAB: [&str; 8] = ["<s>", "</s>", "h", "i", "e", "l", "o", "hi"];

/// A one-layer llama: hidden 8, 2 heads, vocabulary 8; `embd` is token_embd's dims and type.
fn tiny_llama(skip_key: &str, embd: (&[u64], u32, usize)) -> Gguf {
    let mut g = Gguf {
        kvs: vec![],
        n_kv: 0,
        tensors: vec![],
    }
    .str("general.architecture", "llama");
    for (k, v) in [
        ("llama.block_count", 1),
        ("llama.embedding_length", 8),
        ("llama.feed_forward_length", 16),
        ("llama.attention.head_count", 2),
    ] {
        if k != skip_key {
            g = g.u32(k, v);
        }
    }
    g.kv(
        "llama.attention.layer_norm_rms_epsilon",
        6,
        1e-5f32.to_le_bytes().to_vec(),
    )
    .str("tokenizer.ggml.model", "gpt2")
    .strs("tokenizer.ggml.tokens", &VOCAB)
    .strs("tokenizer.ggml.merges", &["h i"])
    .tensor("token_embd.weight", embd.0, embd.1, embd.2)
    .tensor("output_norm.weight", &[8], 0, 32)
}

#[test]
fn broken_gguf_models() {
    let dir = scratch("gguf");
    let ok_embd: (&[u64], u32, usize) = (&[8, 8], 0, 256);
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "embd-vs-metadata.gguf",
            tiny_llama("", (&[8, 9], 0, 288)).bytes(),
            vec![
                "model.embed_tokens.weight",
                "shape [9, 8] but its metadata implies [8, 8]",
            ],
        ),
        (
            "iq2xxs.gguf",
            tiny_llama("", (&[256, 8], 16, 8 * 66)).bytes(),
            vec!["token_embd.weight", "IQ2_XXS", "cannot load"],
        ),
        (
            "no-block-count.gguf",
            tiny_llama("llama.block_count", ok_embd).bytes(),
            vec!["llama.block_count is missing"],
        ),
        (
            "sentencepiece.gguf",
            tiny_llama("", ok_embd)
                .str("tokenizer.ggml.model", "llama")
                .bytes(),
            vec!["tokenizer.ggml.model"],
        ),
        (
            "int-tokens.gguf",
            {
                let mut g = tiny_llama("", ok_embd);
                let mut p = 4u32.to_le_bytes().to_vec();
                p.extend(2u64.to_le_bytes());
                p.extend([0u8; 8]);
                g = g.kv("tokenizer.ggml.token_type", 9, p);
                g.bytes()
            },
            vec!["tokenizer.ggml.token_type has 2 entries but tokenizer.ggml.tokens has 8"],
        ),
        // Found by fuzz/ (gguf): undoing llama.cpp's Q permutation divided by zero.
        (
            "q-zero-rows.gguf",
            tiny_llama("", ok_embd)
                .tensor("blk.0.attn_norm.weight", &[8], 0, 32)
                .tensor("blk.0.attn_q.weight", &[8, 0], 0, 0)
                .bytes(),
            vec!["blk.0.attn_q.weight", "0 rows don't split into 2 heads"],
        ),
        (
            "layers-huge.gguf",
            tiny_llama("llama.block_count", ok_embd)
                .u32("llama.block_count", u32::MAX)
                .bytes(),
            vec!["llama.block_count is 4294967295, but the file has no tensors for layer 1"],
        ),
    ];
    for (name, bytes, mut needles) in cases {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        needles.push(name);
        score_and_generate_fail(&p, None, &needles);
    }
}

/// The qwen3_f16 fixture's PEFT adapter (r = 4, all seven targets), copied to break.
fn adapter_copy(dir: &Path, tag: &str) -> PathBuf {
    copy_dir(
        &common::fixtures().join("train/dapo_group_t07_qwen3/init_adapter"),
        &dir.join(tag),
    )
}

fn edit_adapter_config(a: &Path, f: impl FnOnce(&mut Value)) {
    let p = a.join("adapter_config.json");
    let mut c: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut c);
    std::fs::write(p, c.to_string()).unwrap();
}

/// The broken adapters every command is tried with: (tag, needles).
fn broken_adapters(dir: &Path) -> Vec<(PathBuf, Vec<&'static str>)> {
    let mut out = Vec::new();
    let a = adapter_copy(dir, "rank");
    edit_adapter_config(&a, |c| c["r"] = json!(8));
    out.push((
        a,
        vec!["adapter_model.safetensors", "r=8 and the model imply"],
    ));
    let a = adapter_copy(dir, "extra-target");
    edit_adapter_config(&a, |c| c["target_modules"] = json!(["q_proj", "v_proj"]));
    out.push((
        a,
        vec![
            "adapter_model.safetensors",
            "does not belong to a 2-layer model",
        ],
    ));
    // A tensor renamed (lora_B → lora_C): the one the config's targets need is missing.
    let a = adapter_copy(dir, "missing-tensor");
    let w = std::fs::read(a.join("adapter_model.safetensors")).unwrap();
    let (mut h, _) = header(&w);
    let victim = "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight";
    let entry = h.as_object_mut().unwrap().remove(victim).unwrap();
    h[victim.replace("lora_B", "lora_C")] = entry;
    std::fs::write(a.join("adapter_model.safetensors"), with_header(&w, &h)).unwrap();
    out.push((
        a,
        vec![
            "adapter_model.safetensors",
            "missing tensor base_model.model.model.layers.1.mlp.up_proj.lora_B.weight",
        ],
    ));
    let a = adapter_copy(dir, "other-model");
    std::fs::copy(
        common::fixtures().join("train/grpo_group_llama/init_adapter/adapter_model.safetensors"),
        a.join("adapter_model.safetensors"),
    )
    .unwrap();
    let llama_cfg = std::fs::read(
        common::fixtures().join("train/grpo_group_llama/init_adapter/adapter_config.json"),
    )
    .unwrap();
    std::fs::write(a.join("adapter_config.json"), llama_cfg).unwrap();
    out.push((
        a,
        vec!["adapter_model.safetensors", "has shape", "the model imply"],
    ));
    let a = adapter_copy(dir, "truncated");
    let w = std::fs::read(a.join("adapter_model.safetensors")).unwrap();
    std::fs::write(a.join("adapter_model.safetensors"), &w[..w.len() - 3]).unwrap();
    out.push((
        a,
        vec!["adapter_model.safetensors", "not a valid safetensors file"],
    ));
    let a = adapter_copy(dir, "config-not-json");
    std::fs::write(a.join("adapter_config.json"), "{\"r\": 4,").unwrap();
    out.push((a, vec!["adapter_config.json", "not valid JSON"]));
    let a = adapter_copy(dir, "no-weights");
    std::fs::remove_file(a.join("adapter_model.safetensors")).unwrap();
    out.push((a, vec!["adapter_model.safetensors", "missing"]));
    out
}

#[test]
fn broken_adapters_with_score_and_generate() {
    let dir = scratch("adapters");
    let model = fixture("qwen3_f16");
    // The unbroken adapter loads.
    let good = adapter_copy(&dir, "good");
    let (code, _, stderr) = common::edgerl(&[
        "score",
        "--model",
        model.to_str().unwrap(),
        "--text",
        "hi",
        "--adapter",
        good.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    for (a, needles) in broken_adapters(&dir) {
        score_and_generate_fail(&model, Some(&a), &needles);
    }
}

/// An online run of the tiny-grpo-online example, everything under `dir`; returns run.toml.
fn online_case(dir: &Path, rows: &str, extra_toml: &str) -> PathBuf {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiny-grpo-online");
    std::fs::create_dir_all(dir).unwrap();
    let toml = std::fs::read_to_string(ex.join("run.toml"))
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("model = ") {
                format!("model = {:?}", fixture("qwen3_f16").to_str().unwrap())
            } else if l.starts_with("output_dir = ") {
                "output_dir = \"out\"".into()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("run.toml"), format!("{extra_toml}{toml}\n")).unwrap();
    std::fs::write(dir.join("prompts.jsonl"), rows).unwrap();
    dir.join("run.toml")
}

const ROW: &str =
    r#"{"prompt": "Screen: [OK (1,2,30,40)]. Action:", "target_box": [1, 2, 30, 40]}"#;

#[test]
fn train_and_eval_with_bad_inputs_write_nothing() {
    let dir = scratch("runs");
    let model_dir = copy_dir(&fixture("qwen3_f16"), &dir.join("model-broken"));
    std::fs::write(model_dir.join("config.json"), "{").unwrap();
    let model_line = format!("model = {:?}", model_dir.to_str().unwrap());
    let two = format!("{ROW}\n{ROW}\n");
    // (tag, dataset, run.toml edit, needles)
    let cases: Vec<(&str, String, (&str, &str), Vec<&str>)> = vec![
        (
            "bad-line",
            format!("{ROW}\n{{\"prompt\": 5}}\n"),
            ("", ""),
            vec!["prompts.jsonl", "line 2", "`prompt`"],
        ),
        (
            "not-json",
            format!("{two}{{\n"),
            ("", ""),
            vec!["prompts.jsonl", "line 3", "not valid JSON"],
        ),
        (
            "box-type",
            format!("{ROW}\n{{\"prompt\": \"p\", \"target_box\": \"abc\"}}\n"),
            ("", ""),
            vec![
                "prompts.jsonl",
                "line 2",
                "column `target_box` is not a box",
            ],
        ),
        (
            "no-column",
            format!("{ROW}\n{{\"prompt\": \"p\"}}\n"),
            ("", ""),
            vec!["prompts.jsonl", "line 2", "no `target_box` column"],
        ),
        (
            "empty",
            "\n".into(),
            ("", ""),
            vec!["prompts.jsonl", "no prompts"],
        ),
        (
            "bad-regex",
            two.clone(),
            ("pattern = '.*click.*'", "pattern = '.*(click'"),
            vec!["run.toml", "[[rewards]] #1 (format)", "bad regex"],
        ),
        (
            "unknown-key",
            two.clone(),
            ("name = \"hit\"", "name = \"hit\"\ncolumn = \"target_box\""),
            vec!["run.toml", "unknown field `column`"],
        ),
        // Counts that sized allocations before any check (an abort, not an error).
        (
            "huge-rank",
            two.clone(),
            ("r = 8", "r = 1000000000"),
            vec!["run.toml", "[lora] `r` = 1000000000", "at most 65536"],
        ),
        (
            "huge-group",
            two.clone(),
            ("num_generations = 4", "num_generations = 1000000000"),
            vec!["run.toml", "`num_generations` = 1000000000", "at most 4096"],
        ),
        (
            "bad-model",
            two.clone(),
            ("model = ", &model_line),
            vec!["config.json", "not valid JSON"],
        ),
    ];
    for (tag, rows, (from, to), needles) in cases {
        let d = dir.join(tag);
        let cfg = online_case(&d, &rows, "");
        let toml = std::fs::read_to_string(&cfg).unwrap();
        let toml = match from {
            "" => toml,
            // A prefix: the whole line goes.
            "model = " => toml
                .lines()
                .map(|l| if l.starts_with(from) { to } else { l })
                .collect::<Vec<_>>()
                .join("\n"),
            _ => {
                assert!(toml.contains(from), "{tag}: {from}");
                toml.replacen(from, to, 1)
            }
        };
        std::fs::write(&cfg, toml).unwrap();
        fails(&["train", "--config", cfg.to_str().unwrap()], &needles);
        assert!(!d.join("out").exists(), "{tag}: train left an output_dir");
        let output = d.join("eval.jsonl");
        fails(
            &[
                "eval",
                "--config",
                cfg.to_str().unwrap(),
                "--output",
                output.to_str().unwrap(),
            ],
            &needles,
        );
        assert!(!output.exists(), "{tag}: eval wrote {}", output.display());
    }

    // A broken init_adapter stops train before it writes; a broken --adapter stops eval.
    for (i, (a, needles)) in broken_adapters(&dir.join("adapters"))
        .into_iter()
        .enumerate()
    {
        let d = dir.join(format!("adapter{i}"));
        let cfg = online_case(
            &d,
            &format!("{ROW}\n"),
            &format!("init_adapter = {:?}\n", a.to_str().unwrap()),
        );
        let mut toml = std::fs::read_to_string(&cfg).unwrap();
        // init_adapter brings its own rank; [lora] would conflict.
        if let Some(at) = toml.find("[lora]") {
            let end = toml[at..].find("\n\n").map_or(toml.len(), |e| at + e);
            toml.replace_range(at..end, "");
        }
        std::fs::write(&cfg, toml).unwrap();
        fails(&["train", "--config", cfg.to_str().unwrap()], &needles);
        assert!(
            !d.join("out").exists(),
            "adapter {}: train left output",
            a.display()
        );
        let output = d.join("eval.jsonl");
        let args = [
            "eval",
            "--config",
            cfg.to_str().unwrap(),
            "--adapter",
            a.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ];
        fails(&args, &needles);
        assert!(!output.exists());
    }
}

/// A vision model whose image processor disagrees with its tower (tiles smaller than
/// patch_size × scale_factor, or an image_seq_len other than the features a tile gives) is
/// refused at load, naming the folder and the keys: no image could run, and a tile of 1 pixel
/// made millions of tiles before the tower refused them.
#[test]
fn vision_processor_that_disagrees_with_the_tower() {
    let src = common::fixtures().join("vision_e2e/model");
    let dir = scratch("vision-processor");
    // The fixture's tiles: 16 pixels, patch_size 4, scale_factor 2 → (16 / 4)² / 2² = 4 tokens.
    for (i, (edge, seq, needles)) in [
        (1, 4, &["max_image_size", "patch_size 4 × scale_factor 2 = 8"][..]),
        (12, 4, &["image_seq_len 4", "2 image features"][..]),
        (16, 5, &["image_seq_len 5", "4 image features"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let model = copy_dir(&src, &dir.join(format!("m{i}")));
        let path = model.join("processor_config.json");
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v["image_processor"]["max_image_size"]["longest_edge"] = json!(edge);
        v["image_seq_len"] = json!(seq);
        std::fs::write(&path, v.to_string()).unwrap();
        let mut all = vec![model.file_name().unwrap().to_str().unwrap()];
        all.extend(needles);
        score_and_generate_fail(&model, None, &all);
        // The planner reads the processor on its own, before any model is loaded.
        let Err(e) = edgerl::plan::model_meta(&model, None, 1 << 27) else { panic!("m{i}: the planner accepted it") };
        assert!(all.iter().all(|n| e.to_string().contains(n)), "m{i}: {e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--max-new-tokens` near `usize::MAX` wrapped the KV cache's length around to a few rows and
/// failed in a kernel check ("rope_kv ... a buffer is too small"); it is refused up front.
#[test]
fn max_new_tokens_too_large_for_a_cache() {
    let m = fixture("qwen3_f16");
    for n in [u64::MAX, 1 << 62, (1 << 24) + 1] {
        let n = n.to_string();
        let (stdout, _) = fails(
            &["generate", "--model", m.to_str().unwrap(), "--prompt", "hi", "--max-new-tokens", &n, "--json"],
            &["--max-new-tokens must be at most 16777216", &n],
        );
        assert!(stdout.is_empty(), "{n}: printed {stdout}");
    }
}
