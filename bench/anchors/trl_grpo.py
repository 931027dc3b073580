#!/usr/bin/env python3
"""TRL's GRPOTrainer + PEFT LoRA as the anchor for an `edgerl train` step.

    python3 bench/anchors/trl_grpo.py [--config RUN_TOML] [--steps N] [--json]

The run is the one an edgerl config describes (default: the demo's own run.toml and generated
screens, made by common.py's demo-data in target/anchors/demo-data): same model (the SmolLM2
Q4_1 GGUF, dequantized to float32 by transformers), same prompts and chat template, G
(num_generations), prompts per step, max_completion_length, stop string, sampling, LoRA
(r, alpha, target modules, no dropout), optimizer and loss keys (edgerl's keys are TRL's
names). The reward rules (point_in_box with a regex extractor, regex) are reimplemented below
as one TRL reward function each, with the config's weights. float32, threads = nproc, on the CPU
(or on CUDA with EDGERL_ANCHOR_DEVICE=cuda).

Prints the seconds of each optimizer step (sampling + scoring + update, as TRL does them in
one `training_step`), the mean without the first (warm-up) step, and the peak RSS; with --json
one JSON line.
"""

import argparse
import json
import os
import re
import sys
import time
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def reward_funcs(rules):
    """The edgerl [[rewards]] rules the demo uses, as TRL reward functions (and weights)."""
    funcs, weights = [], []

    def text_of(c):
        # Conversational prompts give [{"role": "assistant", "content": ...}].
        return c[-1]["content"] if isinstance(c, list) else c

    for rule in rules:
        kind = rule["type"]
        if kind == "point_in_box":
            if rule.get("extract") != "regex":
                sys.exit("point_in_box: only `extract = \"regex\"` is reimplemented here")
            pat = re.compile(rule["pattern"])
            col = rule.get("target", "target_box")

            def hit(completions, _pat=pat, _col=col, **kw):
                out = []
                for c, box in zip(completions, kw[_col]):
                    # edgerl takes the last match; its two groups are the point.
                    ms = list(_pat.finditer(text_of(c)))
                    if not ms or len([g for g in ms[-1].groups() if g is not None]) != 2:
                        out.append(0.0)
                        continue
                    x, y = (float(g) for g in ms[-1].groups() if g is not None)
                    out.append(1.0 if box[0] <= x <= box[2] and box[1] <= y <= box[3] else 0.0)
                return out

            hit.__name__ = rule.get("name", "point_in_box")
            funcs.append(hit)
        elif kind == "regex":
            pat = re.compile(rule["pattern"])

            def fmt(completions, _pat=pat, **kw):
                # edgerl's regex rule: 1 when the pattern matches anywhere (Rust is_match).
                return [1.0 if _pat.search(text_of(c)) else 0.0 for c in completions]

            fmt.__name__ = rule.get("name", "regex")
            funcs.append(fmt)
        else:
            sys.exit(f"reward type {kind!r} is not reimplemented in trl_grpo.py")
        weights.append(float(rule.get("weight", 1.0)))
    return funcs, weights


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="an edgerl run.toml (default: the demo's, generated)")
    ap.add_argument("--steps", type=int, default=3, help="optimizer steps (the first is warm-up)")
    ap.add_argument("--edgerl", default=None, help="edgerl binary for the demo data")
    ap.add_argument("--output-dir", default=os.path.join(ROOT, "target", "anchors", "trl-out"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    if a.config is None:
        a.config = common.demo_data(os.path.join(ROOT, "target", "anchors", "demo-data"),
                                    max(a.steps, 1), 8, a.edgerl)
    with open(a.config, "rb") as f:
        cfg = tomllib.load(f)
    base = os.path.dirname(os.path.abspath(a.config))
    dataset_path = os.path.join(base, cfg["dataset"])

    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    threads = os.cpu_count()
    torch.set_num_threads(threads)
    t_load = time.time()
    model, tok = common.load_model(threads)
    load_s = time.time() - t_load

    G = int(cfg.get("num_generations", 8))
    P = int(cfg.get("prompts_per_step", 1))
    eos = [tok.eos_token_id]
    stop = cfg.get("stop", [])
    if stop:
        # edgerl ends a completion once its text holds a stop string; TRL's generate has no
        # tokenizer for `stop_strings`, so every token whose text holds one ends it instead.
        eos += [i for i in range(len(tok)) if any(s in tok.decode([i]) for s in stop)]
    lora = cfg.get("lora", {})
    targets = lora.get("target_modules",
                       ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    scheduler = cfg.get("lr_scheduler_type", "linear")
    optim = {"adamw": "adamw_torch", "adam": "adamw_torch", "sgd": "sgd"}[cfg.get("optimizer", "adamw")]
    weight_decay = float(cfg.get("weight_decay", 0.0))
    if cfg.get("optimizer") == "adam" and weight_decay:
        sys.exit("optimizer = adam with weight_decay has no TRL twin")

    funcs, weights = reward_funcs(cfg.get("rewards", []))
    args = GRPOConfig(
        output_dir=a.output_dir,
        use_cpu=common.device() == "cpu",
        bf16=False,
        fp16=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        max_steps=a.steps,
        per_device_train_batch_size=G * P,
        gradient_accumulation_steps=1,
        num_generations=G,
        max_completion_length=int(cfg.get("max_completion_length", 256)),
        temperature=float(cfg.get("temperature", 1.0)),
        top_k=int(cfg.get("top_k", 0)),
        top_p=float(cfg.get("top_p", 1.0)),
        min_p=float(cfg.get("min_p", 0.0)) or None,
        generation_kwargs={"eos_token_id": eos},
        learning_rate=float(cfg.get("learning_rate", 1e-6)),
        lr_scheduler_type=scheduler,
        warmup_steps=int(cfg.get("warmup_steps", 0)),
        optim=optim,
        weight_decay=weight_decay,
        adam_beta1=float(cfg.get("adam_beta1", 0.9)),
        adam_beta2=float(cfg.get("adam_beta2", 0.999)),
        adam_epsilon=float(cfg.get("adam_epsilon", 1e-8)),
        max_grad_norm=float(cfg.get("max_grad_norm", 1.0)),
        loss_type=cfg.get("loss_type", "dapo"),
        scale_rewards=cfg.get("scale_rewards", "group"),
        beta=float(cfg.get("beta", 0.0)),
        epsilon=float(cfg.get("epsilon", 0.2)),
        epsilon_high=cfg.get("epsilon_high"),
        num_iterations=int(cfg.get("num_iterations", 1)),
        mask_truncated_completions=bool(cfg.get("mask_truncated_completions", False)),
        shuffle_dataset=bool(cfg.get("shuffle_dataset", True)),
        gradient_checkpointing=bool(cfg.get("gradient_checkpointing", True)),
        reward_weights=weights,
        seed=int(cfg.get("seed", 0)),
        dataloader_num_workers=0,
    )
    peft_config = LoraConfig(
        r=int(lora.get("r", 16)),
        lora_alpha=float(lora.get("alpha", 32)),
        lora_dropout=0.0,
        target_modules=targets,
        use_rslora=bool(lora.get("use_rslora", False)),
        task_type="CAUSAL_LM",
    )
    train = load_dataset("json", data_files=dataset_path, split="train")
    # TRL 1.16's GRPOTrainer renders a conversational prompt with add_generation_prompt=True: a
    # final assistant message ("click(") is closed and a new assistant turn opened, where edgerl
    # continues it (data_utils' rule). Hand TRL the prompt text edgerl renders, so both sample
    # after the same tokens (and the rewards see the same completions).
    if train and isinstance(train[0]["prompt"], list):
        train = train.map(lambda r: {"prompt": common.prompt_text(tok, r["prompt"])})

    class Timer(TrainerCallback):
        def __init__(self):
            self.steps, self.logs, self.t0 = [], [], None

        def on_step_begin(self, *_, **__):
            self.t0 = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.steps.append(time.perf_counter() - self.t0)

        def on_log(self, _args, _state, _control, logs=None, **__):
            if logs:
                self.logs.append(logs)

    timer = Timer()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=train,
        processing_class=tok,
        peft_config=peft_config,
        callbacks=[timer],
    )
    # The result is the last stdout line; TRL's per-step log dicts go to stderr instead.
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class StderrPrinter(TrainerCallback):
        def on_log(self, _args, state, _control, logs=None, **__):
            if logs and state.is_local_process_zero:
                print(logs, file=sys.stderr)

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(StderrPrinter())
    t_train = time.time()
    trainer.train()
    train_s = time.time() - t_train

    steps = timer.steps
    later = steps[1:] or steps
    rewards = [l["reward"] for l in timer.logs if "reward" in l]
    lengths = [l.get("completions/mean_length") for l in timer.logs if "reward" in l]
    res = {
        "anchor": "trl",
        "trl": __import__("trl").__version__,
        "torch": torch.__version__,
        "threads": threads,
        "device": common.device(),
        "config": os.path.abspath(a.config),
        "G": G,
        "prompts_per_step": P,
        "max_completion_length": args.max_completion_length,
        "steps": len(steps),
        "step_s": steps,
        "first_step_s": steps[0] if steps else None,
        "grpo_step_s": sum(later) / len(later) if later else None,
        "load_s": load_s,
        "train_s": train_s,
        "reward": rewards,
        "completion_mean_length": lengths,
        "peak_rss_mib": common.peak_rss_mib(),
    }
    if a.json:
        print(json.dumps(res))
    else:
        print(f"TRL {res['trl']} GRPO, {common.device()} float32, {threads} threads: G={G} x {P} prompts, "
              f"<= {args.max_completion_length} tokens")
        for i, s in enumerate(steps):
            print(f"  step {i + 1}: {s:8.2f} s  reward {rewards[i] if i < len(rewards) else float('nan'):.3f}")
        print(f"  s/step (without the first): {res['grpo_step_s']:.2f}   first: {res['first_step_s']:.2f}")
        print(f"  model load {load_s:.1f} s, peak RSS {res['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
