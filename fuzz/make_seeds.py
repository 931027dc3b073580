"""Seed inputs for the fuzz targets, built from the committed fixtures and a few small
hand-made files (no dependencies):  python3 fuzz/make_seeds.py  (fuzz/run.sh calls it).
Writes fuzz/corpus/<target>/seed-*; the fuzzer adds its own finds beside them."""

import glob
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] laid out back to back."""
    header, off, body = {}, 0, b""
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        body += data
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + body


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(kvs, tensors, version=3, align=32):
    """kvs: [(key, type id, payload bytes)]; tensors: [(name, dims, ggml type, data)]."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, ty, payload in kvs:
        out += gguf_str(k) + struct.pack("<I", ty) + payload
    off, data = 0, b""
    for name, dims, ty, blob in tensors:
        out += gguf_str(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", ty, off)
        pad = -len(blob) % align
        data += blob + b"\0" * pad
        off += len(blob) + pad
    out += b"\0" * (-len(out) % align)
    return out + data


U32, F32, BOOL, STR, ARR, U64 = 4, 6, 7, 8, 9, 10


def kv_u32(k, v):
    return (k, U32, struct.pack("<I", v))


def kv_str(k, v):
    return (k, STR, gguf_str(v))


def kv_strs(k, vs):
    return (k, ARR, struct.pack("<IQ", STR, len(vs)) + b"".join(gguf_str(v) for v in vs))


def tiny_gguf(arch, pre):
    vocab = ["<s>", "</s>", "a", "b", "c", "Ġ", "ab", "Ġa", "abc", "1", "2", "3"]
    kvs = [
        kv_str("general.architecture", arch),
        kv_u32(f"{arch}.block_count", 1),
        kv_u32(f"{arch}.embedding_length", 8),
        kv_u32(f"{arch}.feed_forward_length", 16),
        kv_u32(f"{arch}.attention.head_count", 2),
        kv_u32(f"{arch}.attention.head_count_kv", 1),
        (f"{arch}.attention.layer_norm_rms_epsilon", F32, struct.pack("<f", 1e-5)),
        (f"{arch}.rope.freq_base", F32, struct.pack("<f", 10000.0)),
        kv_u32(f"{arch}.context_length", 64),
        kv_str("tokenizer.ggml.model", "gpt2"),
        kv_str("tokenizer.ggml.pre", pre),
        kv_strs("tokenizer.ggml.tokens", vocab),
        kv_strs("tokenizer.ggml.merges", ["a b", "Ġ a", "ab c"]),
        kv_u32("tokenizer.ggml.bos_token_id", 0),
        kv_u32("tokenizer.ggml.eos_token_id", 1),
        ("tokenizer.ggml.add_bos_token", BOOL, b"\x01"),
    ]
    f32 = lambda n: struct.pack(f"<{n}f", *[0.01 * i for i in range(n)])
    q8 = lambda rows: (struct.pack("<e", 0.5) + bytes(range(32))) * rows
    tensors = [
        ("token_embd.weight", [8, len(vocab)], 0, f32(8 * len(vocab))),
        ("output_norm.weight", [8], 0, f32(8)),
        ("blk.0.attn_norm.weight", [8], 0, f32(8)),
        ("blk.0.attn_q.weight", [8, 8], 1, struct.pack("<64e", *[0.1] * 64)),
        ("blk.0.attn_k.weight", [8, 4], 0, f32(32)),
        ("blk.0.ffn_down.weight", [32, 8], 8, q8(8)),
    ]
    return gguf(kvs, tensors)


def main():
    put("safetensors_header", "f32", safetensors([("w", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4))]))
    put("safetensors_header", "mixed", safetensors([
        ("a", "F16", [3], struct.pack("<3e", 1, 2, 3)),
        ("b", "BF16", [1, 2], b"\x80\x3f\x00\x40"),
        ("empty", "F32", [0, 4], b""),
    ], {"format": "pt"}))
    put("safetensors_header", "i64", safetensors([("n", "I64", [1], struct.pack("<q", 7))]))
    for arch, pre in [("llama", "smollm"), ("qwen2", "qwen2"), ("qwen3", "default")]:
        put("gguf", arch, tiny_gguf(arch, pre))
    for i, p in enumerate(sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/models/*/config.json")))):
        put("model_config", str(i), open(p, "rb").read())
    tomls = glob.glob(os.path.join(ROOT, "tests/fixtures/train/*/run.toml"))
    tomls += glob.glob(os.path.join(ROOT, "examples/*/run.toml"))
    for i, p in enumerate(sorted(tomls)):
        put("train_toml", str(i), open(p, "rb").read())
    lines = glob.glob(os.path.join(ROOT, "examples/*/*.jsonl"))
    for i, p in enumerate(sorted(lines)):
        put("dataset_lines", str(i), open(p, "rb").read()[:4096])
    put("dataset_lines", "chat", '{"prompt": [{"role": "user", "content": "tap send"}], "target_box": [1, 2, 3, 4]}\n')
    rollouts = glob.glob(os.path.join(ROOT, "tests/fixtures/train/*/rollouts.jsonl"))
    rollouts += glob.glob(os.path.join(ROOT, "examples/*/rollouts.jsonl"))
    for i, p in enumerate(sorted(rollouts)):
        put("rollout_lines", str(i), open(p, "rb").read()[:4096])
    put("rollout_lines", "text", '{"prompt": "What is 2+2?", "completions": ["4", "five"], "rewards": [1, 0], "weight": 2}\n')
    row = b'\0{"answer": ["42", 7], "target_box": [0, 0, 100, 100], "action": {"action": "type", "text": "hi"}}'
    for i, c in enumerate([
        b"<answer>42</answer>",
        b"so \\boxed{3.5e2} done",
        b'{"box": [10, 20, 30, 40], "action": "click", "x": 15, "y": 25}',
        b"click(35, 30) <answer>(12, 13)</answer>",
        b'<answer>type("hello world")</answer>' + row,
        b"<answer>abc 123</answer> -1,234.5" + row,
    ]):
        put("reward", str(i), c)


main()
