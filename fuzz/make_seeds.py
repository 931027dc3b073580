"""Seed inputs for the fuzz targets, built from the committed fixtures and a few small
hand-made files (no dependencies):  python3 fuzz/make_seeds.py  (fuzz/run.sh calls it).
Writes fuzz/corpus/<target>/seed-*; the fuzzer adds its own finds beside them."""

import base64
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

    tokenizers = sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/models/*/tokenizer.json")))
    tokenizers.append(os.path.join(ROOT, "tests/fixtures/gguf/smollm2_tokenizer.json"))
    seen = set()
    for p in tokenizers:
        data = open(p, "rb").read()
        if data not in seen:
            seen.add(data)
            put("tokenizer", str(len(seen)), data)
    for name, t in tokenizer_variants(json.load(open(tokenizers[0]))):
        put("tokenizer", name, json.dumps(t))

    templates = []
    for p in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/models/*/tokenizer_config.json"))):
        t = json.load(open(p)).get("chat_template")
        if isinstance(t, str) and t not in templates:
            templates.append(t)
    # Qwen3's real template, when .ci/run has fetched it (not committed).
    qwen3 = os.path.join(ROOT, "target/qwen3-tokenizer/package/models/tokenizer_config.json")
    if os.path.exists(qwen3):
        templates.append(json.load(open(qwen3))["chat_template"])
    templates.append(RICH_TEMPLATE)
    for i, t in enumerate(templates):
        put("chat_template", str(i), t + "\0Hello?\0<think>hm</think>\n4\0and 3+3?")

    configs = sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/train/*/*/adapter_config.json")))
    seen = set()
    for p in configs:
        data = open(p, "rb").read()
        if data not in seen:
            seen.add(data)
            put("adapter_config", str(len(seen)), data)
    put("adapter_config", "small", json.dumps({
        "peft_type": "LORA", "r": 4, "lora_alpha": 16, "use_rslora": True,
        "target_modules": ["q_proj", "v_proj", "down_proj"], "bias": "none"}))

    # trainer_state.bin bodies (the target appends the CRC-32 itself), versions 1 to 3.
    for name, body in trainer_states():
        put("trainer_state", name, body)


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def pc_str(s):
    b = s.encode()
    return varint(len(b)) + b


def pc_vec(items, enc):
    return varint(len(items)) + b"".join(enc(x) for x in items)


def trainer_states():
    """postcard images of src/rl/state.rs's State (and its version 1 and 2 layouts)."""
    group = (pc_vec([5, 6, 7], varint) + pc_vec([[8, 9], [10]], lambda c: pc_vec(c, varint))
             + pc_vec([1.0, 0.0], lambda r: struct.pack("<d", r)) + struct.pack("<d", 1.0))
    lps = pc_vec([[-0.5, -1.0], None], lambda lp: b"\0" if lp is None else b"\1" + pc_vec(lp, lambda x: struct.pack("<f", x)))
    batch = b"\1" + pc_vec([group], lambda g: g) + lps + lps + b"\1"
    def state(version, with_batch, extra):
        return (varint(version) + varint(7) + varint(1234) + (batch if with_batch else b"\0")
                + pc_str('{"reward": 0.5}') + varint(3) + varint(1) + varint(0) + extra)
    v3 = pc_vec([("model", "m"), ("seed", "1")], lambda kv: pc_str(kv[0]) + pc_str(kv[1]))
    v3 += pc_vec([("adapter_model.safetensors", 4096, 0xDEADBEEF)],
                 lambda f: pc_str(f[0]) + varint(f[1]) + varint(f[2]))
    yield "v3", state(3, True, v3)
    yield "v3-empty", state(3, False, b"\0\0")
    yield "v2", state(2, True, b"")
    v1 = state(1, False, b"")
    yield "v1", v1[:-2]  # version 1 has no skip counters


def tokenizer_variants(base):
    """The parts of a tokenizer.json that `tokenizers` panics on when crafted (see
    src/model/tokenizer/check.rs), in valid forms the fuzzer can mutate."""
    def with_(**kw):
        t = json.loads(json.dumps(base))
        t.update(kw)
        return t
    vocab = base["model"]["vocab"]
    first = min(vocab, key=vocab.get)
    yield "template", with_(post_processor={
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": first, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {first: {"id": first, "ids": [vocab[first]], "tokens": [first]}},
    })
    yield "padding", with_(
        padding={"strategy": {"Fixed": 8}, "direction": "Right", "pad_to_multiple_of": None,
                 "pad_id": 0, "pad_type_id": 0, "pad_token": first},
        truncation={"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 1},
    )
    # A charsmap whose trie is one unit (root offset 0) and whose normalized text is empty.
    charsmap = base64.b64encode(struct.pack("<II", 4, 0)).decode()
    yield "precompiled", with_(normalizer={"type": "Sequence", "normalizers": [
        {"type": "Precompiled", "precompiled_charsmap": charsmap}, {"type": "NFC"}]})


RICH_TEMPLATE = """{%- macro fmt(m) -%}{{ m.role | upper }}: {{ m.content | trim }}{%- endmacro -%}
{%- set ns = namespace(n=0, last='') -%}
{{ bos_token }}{% for message in messages[::-1] %}{% set ns.n = ns.n + 1 %}{% endfor %}
{%- for message in messages %}
{%- if message.role not in ['user', 'assistant', 'system'] %}{{ raise_exception('bad role ' ~ message.role) }}{% endif %}
{%- if '</think>' in message.content %}{% set c = message.content.split('</think>')[-1].lstrip('\n') %}{% else %}{% set c = message.content %}{% endif %}
{{ fmt(message) }}|{{ c | length }}|{{ loop.index0 }}/{{ ns.n }}|{{ {'k': c[:8]} | tojson }}{{ eos_token if loop.last else '\n' }}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' ~ strftime_now('%Y') }}{% endif %}"""


main()
