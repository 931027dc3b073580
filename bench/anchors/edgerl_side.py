#!/usr/bin/env python3
"""The edgerl side of bench/compare.sh: each measure as one JSON line.

    edgerl_side.py forward --prompt-tokens 64 --decode-tokens 32
    edgerl_side.py rollout --prompt-tokens 128 --completions 8 --completion-tokens 16
    edgerl_side.py train --config RUN_TOML --steps S
    edgerl_side.py eval --config RUN_TOML --dataset HELDOUT -n N --new-tokens 16

`forward` and `rollout` are `edgerl bench` on random weights with SmolLM2-135M's shape in Q4_1
(`bench` takes no model path; the arithmetic is the real model's). `train` runs `edgerl train`
on the config (output_dir moved under target/anchors) and times each step from the arrival of
one step's JSON line to the next: sampling + scoring + update, like TRL's step; the first step
(model load, pipeline builds) is reported apart. `eval` runs `edgerl eval` greedy on the first
N screens and on the first one, with max_completion_length = new tokens and no stop string,
and takes rows/s from the difference, so the model load and pipeline builds drop out.
Peak RSS is the child's (wait4).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, "target", "anchors")


def env():
    return dict(os.environ, XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", "/tmp/edgerl-xdg"))


def run(cmd, on_line=None):
    """Runs cmd; returns (stdout text, seconds, peak RSS MiB)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    out = []
    for line in p.stdout:
        out.append(line)
        if on_line:
            on_line(line, time.perf_counter() - t0)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{err[-3000:]}")
    return "".join(out), secs, usage.ru_maxrss / 1024.0


def first_json(text):
    i = text.index("{")
    return json.loads(text[i:])


def variant(config, out_path, **keys):
    """A copy of an edgerl run.toml with top-level keys replaced (TOML values given as text)."""
    text = open(config).read()
    for k, v in keys.items():
        pat = re.compile(rf"(?m)^{k}\s*=.*$")
        if pat.search(text):
            text = pat.sub(lambda _: f"{k} = {v}", text, count=1)
        else:
            text = f"{k} = {v}\n" + text
    open(out_path, "w").write(text)
    return out_path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["forward", "rollout", "train", "eval"])
    ap.add_argument("--edgerl", default=common.default_edgerl())
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--completions", type=int, default=8)
    ap.add_argument("--completion-tokens", type=int, default=16)
    ap.add_argument("--config")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--dataset")
    ap.add_argument("-n", "--screens", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--repetitions", type=int, default=3,
                    help="forward: timed prefill + decode runs, averaged (llama-bench's -r)")
    a = ap.parse_args()
    E = a.edgerl
    shape = ["--shape", "smollm2-135m", "--dtype", "q4_1"]

    if a.what == "forward":
        text, secs, rss = run([E, "bench", *shape, "--prompt-tokens", str(a.prompt_tokens),
                               "--decode-tokens", str(a.decode_tokens), "--repetitions", str(a.repetitions)])
        r = first_json(text)
        res = {"prefill_tok_s": r["prefill_tokens_per_s"], "decode_tok_s": r["decode_tokens_per_s"],
               "prefill_tok_s_runs": r["prefill_tokens_per_s_runs"], "decode_tok_s_runs": r["decode_tokens_per_s_runs"],
               "adapter": r["adapter"], "backend": r["backend"], "wall_s": secs, "peak_rss_mib": rss}
    elif a.what == "rollout":
        text, secs, rss = run([E, "bench", *shape, "--rollout", "--prompt-tokens", str(a.prompt_tokens),
                               "--completions", str(a.completions),
                               "--completion-tokens", str(a.completion_tokens)])
        r = first_json(text)
        res = {"batched_s": r["batched_seconds"], "batched_g8_tok_s": r["batched_tokens_per_s"],
               "batched_decode_phase_tok_s": r["batched_decode_tokens_per_s"],
               "shared_s": r["shared_seconds"], "unshared_s": r["unshared_seconds"],
               "adapter": r["adapter"], "wall_s": secs, "peak_rss_mib": rss}
    elif a.what == "train":
        out_dir = os.path.join(CACHE, "edgerl-train")
        cfg = variant(a.config, os.path.join(os.path.dirname(os.path.abspath(a.config)), "bench-train.toml"),
                      output_dir=json.dumps(out_dir), max_steps=str(a.steps), save_steps="0")
        arrivals, metrics = [], []

        def on_line(line, t):
            line = line.strip()
            if line.startswith("{") and '"step"' in line:
                arrivals.append(t)
                metrics.append(json.loads(line))

        _, secs, rss = run([E, "train", "--config", cfg, "--json", "--overwrite"], on_line)
        steps = [arrivals[0]] + [b - a_ for a_, b in zip(arrivals, arrivals[1:])]
        later = steps[1:] or steps
        res = {"step_s": steps, "first_step_s": steps[0] if steps else None,
               "grpo_step_s": sum(later) / len(later) if later else None,
               "update_s": [m.get("step_time") for m in metrics],
               "reward": [m.get("reward") for m in metrics],
               "completion_mean_length": [m.get("completions/mean_length") for m in metrics],
               "wall_s": secs, "peak_rss_mib": rss}
    else:
        cfg = variant(a.config, os.path.join(os.path.dirname(os.path.abspath(a.config)), "bench-eval.toml"),
                      max_completion_length=str(a.new_tokens), stop="[]")
        rows = common.read_jsonl(a.dataset, a.screens)
        if len(rows) < a.screens:
            sys.exit(f"{a.dataset} has fewer than {a.screens} rows")
        d = os.path.dirname(os.path.abspath(cfg))
        one, many = os.path.join(d, "bench-eval-1.jsonl"), os.path.join(d, f"bench-eval-{a.screens}.jsonl")
        for path, rs in ((one, rows[:1]), (many, rows)):
            with open(path, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in rs)
        _, t1, _ = run([E, "eval", "--config", cfg, "--dataset", one, "--json"])
        outp = os.path.join(d, "bench-eval-completions.jsonl")
        text, tn, rss = run([E, "eval", "--config", cfg, "--dataset", many, "--json", "--output", outp])
        rep = first_json(text)
        n = a.screens
        res = {"screens": n, "new_tokens": a.new_tokens, "wall_1_s": t1, "wall_n_s": tn,
               "eval_rows_s": (n - 1) / (tn - t1) if n > 1 and tn > t1 else None,
               "eval_rows_s_with_load": n / tn,
               "accuracy": rep.get("accuracy"), "mean_reward": rep.get("mean_reward"),
               "peak_rss_mib": rss}
    res["measure"] = a.what
    print(json.dumps(res))


if __name__ == "__main__":
    main()
