//! Counts read from files that once sized allocations directly: the allocator's failure is an
//! abort, not a panic, so it killed the CLI (and, over the C ABI, the host app). Each case runs
//! `edgerl score` with its address space limited as a phone's is, on a file that claims far
//! more than it holds, and must get one error line naming the file, not SIGABRT. The big files
//! are sparse: they take no disk. Config counts are covered in src/rl/config.rs and
//! tests/c_abi.rs.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};

/// Address space for the child, in KiB: enough for the GPU runtime and a 4 GiB mapping, far
/// below what the unchecked counts below reserved (9 to 17 GiB).
const LIMIT_KIB: u64 = 10 << 20;
const SPARSE: u64 = 4 << 30;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgerl-input-bounds-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `edgerl score` on `model` under the address-space limit must fail with one line holding
/// every needle.
fn score_fails(model: &Path, needles: &[&str]) {
    let xdg = std::env::temp_dir().join("edgerl-test-xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {LIMIT_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_edgerl"))
        .args(["score", "--model", model.to_str().unwrap(), "--text", "hi"])
        .env("XDG_RUNTIME_DIR", &xdg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("XDG_RUNTIME_DIR"))
        .collect();
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", model.display());
    assert_eq!(lines.len(), 1, "want one line: {stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "{:?} should mention {n:?}", lines[0]);
    }
}

#[test]
fn config_json_layer_count_is_bounded() {
    // 2^24 layers in config.json sized the model's layer list (14 GiB) before any layer's
    // tensor was looked at.
    let dir = scratch("config");
    let m = dir.join("model");
    std::fs::create_dir_all(&m).unwrap();
    let fixture = common::fixtures().join("models/qwen3_f16");
    for e in std::fs::read_dir(&fixture).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), m.join(e.file_name())).unwrap();
    }
    let text = std::fs::read_to_string(m.join("config.json")).unwrap();
    let mut c: serde_json::Value = serde_json::from_str(&text).unwrap();
    c["num_hidden_layers"] = (1u64 << 24).into();
    std::fs::write(m.join("config.json"), c.to_string()).unwrap();
    score_fails(
        &m,
        &[
            "config.json",
            "`num_hidden_layers` = 16777216",
            "larger than edgerl supports",
        ],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend(s.as_bytes());
    out
}

/// A GGUF v3 header with the given counts, followed by `body`.
fn header(tensors: u64, kvs: u64, body: &[u8]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(tensors.to_le_bytes());
    out.extend(kvs.to_le_bytes());
    out.extend(body);
    out
}

/// `bytes`, then zeros up to `len` (a hole, not written).
fn sparse(path: &Path, bytes: &[u8], len: u64) {
    std::fs::write(path, bytes).unwrap();
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// The largest count the file's size allows for entries of at least `min` bytes: what the old
/// checks let through.
fn fill(min: u64, at: usize) -> u64 {
    (SPARSE - at as u64) / min
}

#[test]
fn gguf_counts_are_capped_before_anything_is_reserved() {
    let dir = scratch("counts");
    // Zeros parse as empty keys (u8 values) and empty 0-dim tensors: each count passed the
    // size check, then sized a list at several times the file.
    let p = dir.join("kvs.gguf");
    sparse(&p, &header(0, fill(13, 24), &[]), SPARSE);
    score_fails(
        &p,
        &["kvs.gguf", "metadata count", "larger than edgerl supports"],
    );

    let p = dir.join("tensors.gguf");
    sparse(&p, &header(fill(24, 24), 0, &[]), SPARSE);
    score_fails(
        &p,
        &[
            "tensors.gguf",
            "tensor count",
            "larger than edgerl supports",
        ],
    );

    // An array of empty strings: 8 bytes each in the file, 24 in memory.
    let mut kv = string("tokenizer.ggml.tokens");
    kv.extend(9u32.to_le_bytes());
    kv.extend(8u32.to_le_bytes());
    let at = 24 + kv.len() + 8;
    kv.extend(fill(8, at).to_le_bytes());
    let p = dir.join("strings.gguf");
    sparse(&p, &header(0, 1, &kv), SPARSE);
    score_fails(
        &p,
        &[
            "strings.gguf",
            "tokenizer.ggml.tokens",
            "longer than edgerl supports",
        ],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn kv_u32(key: &str, v: u32) -> Vec<u8> {
    let mut out = string(key);
    out.extend(4u32.to_le_bytes());
    out.extend(v.to_le_bytes());
    out
}

fn kv_str(key: &str, v: &str) -> Vec<u8> {
    let mut out = string(key);
    out.extend(8u32.to_le_bytes());
    out.extend(string(v));
    out
}

fn kv_strs(key: &str, vs: &[&str]) -> Vec<u8> {
    let mut out = string(key);
    out.extend(9u32.to_le_bytes());
    out.extend(8u32.to_le_bytes());
    out.extend((vs.len() as u64).to_le_bytes());
    for v in vs {
        out.extend(string(v));
    }
    out
}

/// A one-layer llama (hidden 8, vocabulary 8, f32) whose metadata claims `blocks` layers.
fn llama(blocks: u32) -> Vec<u8> {
    let mut eps = string("llama.attention.layer_norm_rms_epsilon");
    eps.extend(6u32.to_le_bytes());
    eps.extend(1e-5f32.to_le_bytes());
    let vocab = ["<s>", "</s>", "h", "i", "e", "l", "o", "hi"];
    let kvs = [
        kv_str("general.architecture", "llama"),
        kv_u32("llama.block_count", blocks),
        kv_u32("llama.embedding_length", 8),
        kv_u32("llama.feed_forward_length", 16),
        kv_u32("llama.attention.head_count", 2),
        eps,
        kv_str("tokenizer.ggml.model", "gpt2"),
        kv_strs("tokenizer.ggml.tokens", &vocab),
        kv_strs("tokenizer.ggml.merges", &["h i"]),
    ];
    let tensors: [(&str, &[u64]); 3] = [
        ("token_embd.weight", &[8, 8]),
        ("output_norm.weight", &[8]),
        ("blk.0.attn_norm.weight", &[8]),
    ];
    let (mut data, mut body) = (Vec::new(), kvs.concat());
    for (name, dims) in tensors {
        body.extend(string(name));
        body.extend((dims.len() as u32).to_le_bytes());
        dims.iter().for_each(|d| body.extend(d.to_le_bytes()));
        body.extend(0u32.to_le_bytes()); // f32
        body.extend((data.len() as u64).to_le_bytes());
        data.resize(data.len() + 4 * dims.iter().product::<u64>() as usize, 0);
        data.resize(data.len().next_multiple_of(32), 0);
    }
    let mut out = header(tensors.len() as u64, kvs.len() as u64, &body);
    out.resize(out.len().next_multiple_of(32), 0);
    out.extend(data);
    out
}

#[test]
fn gguf_block_count_is_checked_against_the_tensors() {
    let dir = scratch("layers");
    // 2^24 layers passed the config's own limit, then sized the layer list (14 GiB) before
    // any layer's tensor was looked at.
    let p = dir.join("layers.gguf");
    std::fs::write(&p, llama(1 << 24)).unwrap();
    score_fails(
        &p,
        &[
            "layers.gguf",
            "llama.block_count is 16777216",
            "no tensors for layer 1",
        ],
    );
    // Within the layer limit, but still more layers than the file has tensors for.
    std::fs::write(&p, llama(4096)).unwrap();
    score_fails(&p, &["layers.gguf", "llama.block_count is 4096", "layer 1"]);
    // The same file with its real count gets as far as the layer's missing tensors.
    std::fs::write(&p, llama(1)).unwrap();
    score_fails(&p, &["layers.gguf", "missing tensor", "model.layers.0."]);
    std::fs::remove_dir_all(&dir).unwrap();
}
