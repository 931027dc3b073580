#!/usr/bin/env python3
"""transformers `generate` as the anchor for `edgerl eval`.

    python3 bench/anchors/transformers_eval.py [--dataset HELDOUT_JSONL] [-n N] [--new-tokens 16]
                                               [--batch-size B] [--json]

Greedy decoding of N of the demo's held-out screens (default: target/anchors/demo-data, made
by common.py's demo-data), up to 16 new tokens each (EOS ends a row early, as in edgerl eval),
with the prompts rendered as edgerl renders them (the GGUF's chat template, continuing the final
"click(" assistant message). Twice: one row at a time (batch 1), then B rows per `generate` call
with left padding (default B = N). Same model as edgerl (SmolLM2 Q4_1 GGUF dequantized to float32
by transformers), CPU (or CUDA with EDGERL_ANCHOR_DEVICE=cuda), threads = nproc.

Prints the seconds of each pass (generation only; the model load is reported apart), rows/s and
generated tokens/s; with --json one JSON line.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", help="prompts JSONL (default: the demo's held-out screens, generated)")
    ap.add_argument("-n", "--screens", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=0, help="rows per batched generate (0: all N)")
    ap.add_argument("--edgerl", default=None, help="edgerl binary for the demo data")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--completions", help="write the batch-1 completions here (JSON lines)")
    a = ap.parse_args()

    if a.dataset is None:
        common.demo_data(os.path.join(ROOT, "target", "anchors", "demo-data"), 4, a.screens, a.edgerl)
        a.dataset = os.path.join(ROOT, "target", "anchors", "demo-data", "heldout.jsonl")
    rows = common.read_jsonl(a.dataset, a.screens)
    if len(rows) < a.screens:
        sys.exit(f"{a.dataset} has {len(rows)} rows, fewer than -n {a.screens}")

    import torch

    threads = os.cpu_count()
    t0 = time.time()
    model, tok = common.load_model(threads)
    model.eval()
    load_s = time.time() - t0
    prompts = [common.prompt_text(tok, r["prompt"]) for r in rows]
    gen = dict(max_new_tokens=a.new_tokens, do_sample=False, num_beams=1,
               eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id or tok.eos_token_id)

    if tok.pad_token is None:
        # Some transformers versions load the GGUF tokenizer without a pad token.
        tok.pad_token = tok.eos_token

    def run(batch):
        tok.padding_side = "left"
        texts, new_tokens = [], 0
        t = time.perf_counter()
        for i in range(0, len(prompts), batch):
            enc = tok(prompts[i:i + batch], return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            with torch.inference_mode():
                out = model.generate(**enc, **gen)
            for row in out[:, enc["input_ids"].shape[1]:]:
                ids = row.tolist()
                # Count up to and with the first EOS (the rest is padding).
                n = next((k + 1 for k, x in enumerate(ids) if x == tok.eos_token_id), len(ids))
                new_tokens += n
                texts.append(tok.decode(ids[:n], skip_special_tokens=True))
        return time.perf_counter() - t, new_tokens, texts

    # A one-row warm-up (first-call allocations), not timed.
    with torch.inference_mode():
        model.generate(**tok(prompts[:1], return_tensors="pt", add_special_tokens=False).to(model.device),
                       **dict(gen, max_new_tokens=2))
    b1_s, b1_tok, texts = run(1)
    bs = a.batch_size or len(prompts)
    bb_s, bb_tok, texts_b = run(bs)
    if a.completions:
        with open(a.completions, "w") as f:
            for p, c in zip(prompts, texts):
                f.write(json.dumps({"prompt": p, "completion": c}) + "\n")
    same = sum(x == y for x, y in zip(texts, texts_b))
    res = {
        "anchor": "transformers",
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "threads": threads,
        "device": common.device(),
        "screens": len(prompts),
        "new_tokens": a.new_tokens,
        "load_s": load_s,
        "batch1_s": b1_s,
        "batch1_rows_s": len(prompts) / b1_s,
        "batch1_gen_tok_s": b1_tok / b1_s,
        "batch1_gen_tokens": b1_tok,
        "batched_size": bs,
        "batched_s": bb_s,
        "batched_rows_s": len(prompts) / bb_s,
        "batched_gen_tok_s": bb_tok / bb_s,
        "batched_gen_tokens": bb_tok,
        "batched_same_as_batch1": same,
        "peak_rss_mib": common.peak_rss_mib(),
    }
    if a.json:
        print(json.dumps(res))
    else:
        print(f"transformers {res['transformers']} generate, {common.device()} float32, {threads} threads: "
              f"{len(prompts)} screens x <= {a.new_tokens} new tokens, greedy")
        print(f"  batch 1:  {b1_s:7.2f} s  {res['batch1_rows_s']:.3f} rows/s  {res['batch1_gen_tok_s']:.1f} tok/s")
        print(f"  batch {bs}: {bb_s:7.2f} s  {res['batched_rows_s']:.3f} rows/s  {res['batched_gen_tok_s']:.1f} tok/s"
              f"  ({same}/{len(prompts)} completions as batch 1)")
        print(f"  model load {load_s:.1f} s, peak RSS {res['peak_rss_mib']:.0f} MiB")
        print(f"  first completion: {texts[0]!r}")


if __name__ == "__main__":
    main()
