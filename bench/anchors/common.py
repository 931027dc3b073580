"""Shared by the anchors: the demo's screens and run.toml, the model, timing helpers.

`python3 bench/anchors/common.py demo-data OUT --steps S --eval-screens N [--edgerl BIN]`
writes OUT/train.jsonl (S x 2 screens), OUT/heldout.jsonl (N screens) and OUT/run.toml, exactly
as `edgerl demo --output-dir OUT --steps S --eval-screens N` does, without running the demo:
edgerl demo writes those three files before it loads the model, so it is given an empty file
as its model, stops at once with "truncated: the magic number ...", and run.toml's `model` line
is then pointed at the real GGUF. (There is no `edgerl demo --data-only`.)
"""

import json
import os

# Nothing here needs the Hugging Face Hub (and it is not reachable): no network waits.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
import resource
import subprocess
import sys

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path():
    return os.environ.get(
        "EDGERL_BENCH_MODEL", os.path.expanduser(f"~/.cache/edgerl/models/{GGUF}")
    )


def default_edgerl():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.environ.get("EDGERL", os.path.join(root, "target", "release", "edgerl"))


def demo_data(out, steps, eval_screens, edgerl=None, seed=0):
    """The demo's train/held-out screens and run.toml in `out`; returns run.toml's path."""
    edgerl = edgerl or default_edgerl()
    os.makedirs(out, exist_ok=True)
    r = subprocess.run(
        [edgerl, "demo", "--data-only", "--model", model_path(), "--output-dir", out,
         "--steps", str(steps), "--eval-screens", str(eval_screens), "--seed", str(seed)],
        capture_output=True, text=True,
    )
    run_toml = os.path.join(out, "run.toml")
    if r.returncode != 0 or not os.path.exists(run_toml):
        sys.exit(f"edgerl demo --data-only failed:\n{r.stdout}{r.stderr}")
    return run_toml


def read_jsonl(path, limit=None):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
            if limit is not None and len(rows) >= limit:
                break
    return rows


def device():
    """Where the anchors run: EDGERL_ANCHOR_DEVICE (cpu, the default, or cuda)."""
    return os.environ.get("EDGERL_ANCHOR_DEVICE", "cpu")


def load_model(threads=None):
    """SmolLM2's GGUF dequantized to float32 by transformers, on device() (the CPU unless
    EDGERL_ANCHOR_DEVICE says otherwise), threads = nproc."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads or os.cpu_count())
    path = model_path()
    d, f = os.path.dirname(path), os.path.basename(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model.to(device())
    # The weights are plain float32 tensors now; transformers still marks the model as
    # GGUF-quantized, which its Trainer refuses to train. Drop the mark.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tok


def prompt_text(tok, messages):
    """The prompt as edgerl renders it: the chat template, continuing a final assistant message
    (TRL's rule, which edgerl follows), else with the generation prompt."""
    cont = messages[-1]["role"] == "assistant"
    return tok.apply_chat_template(
        messages, tokenize=False, continue_final_message=cont, add_generation_prompt=not cont
    )


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo-data")
    d.add_argument("out")
    d.add_argument("--steps", type=int, default=4)
    d.add_argument("--eval-screens", type=int, default=8)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--edgerl", default=None)
    a = ap.parse_args()
    print(demo_data(os.path.abspath(a.out), a.steps, a.eval_screens, a.edgerl, a.seed))
