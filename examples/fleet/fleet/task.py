"""The fleet's task: `edgerl demo`'s GUI-grounding screens (a phone screen as text, "where do
you tap?", answered `click(x,y)`), split non-IID across devices by app, and the rewards."""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Mapping

import edgerl
from edgerl.flower import Device

# The demo's four apps; device p of N gets the apps whose index i has i % N == p, so with three
# devices one has Settings and Sign-up form, one Messages, one Shop (different tasks and sizes).
APPS = ["Settings", "Messages", "Shop", "Sign-up form"]
# Held-out screens come from another seed than the training screens.
HELDOUT_SEED = 0x5EED_0F4E_1D00


def apps_of(partition: int, num_partitions: int) -> List[str]:
    return [a for i, a in enumerate(APPS) if i % num_partitions == partition]


def slice_of(rows: List[Dict[str, Any]], partition: int, num_partitions: int) -> List[Dict[str, Any]]:
    apps = set(apps_of(partition, num_partitions))
    return [r for r in rows if r["app"] in apps]


def _text(completion: Any) -> str:
    return completion[0]["content"] if isinstance(completion, list) else completion


CLICK = re.compile(r"^\s*click\(\s*(\d+)\s*,\s*(\d+)")


def hit(prompts: Any, completions: List[Any], target_box: List[List[int]], **kwargs: Any) -> List[float]:
    """1 when the tap `click(x,y` lands in the target's box (the demo's `point_in_box` rule)."""
    out = []
    for c, (left, top, right, bottom) in zip(completions, target_box):
        m = CLICK.match(_text(c))
        out.append(float(bool(m) and left <= int(m[1]) <= right and top <= int(m[2]) <= bottom))
    return out


def format(prompts: Any, completions: List[Any], **kwargs: Any) -> List[float]:  # noqa: A001
    """1 when the call is well formed, `click(x,y)` (the demo's `format` rule)."""
    return [float(bool(re.match(r"(?s)^\s*click\(\s*\d+,\s*\d+\)", _text(c)))) for c in completions]


def digits(prompts: Any, completions: List[Any], **kwargs: Any) -> List[float]:
    """The share of digits among the first 8 characters after "click(": a dense reward that
    even a tiny random model learns within a few steps (smoke tests)."""
    out = []
    for c in completions:
        t = _text(c)
        t = t[len("click("):] if t.startswith("click(") else t
        out.append(sum(ch.isdigit() for ch in t[:8]) / 8)
    return out


REWARDS = {"hit": (hit, 0.9), "format": (format, 0.1), "digits": (digits, 1.0)}


def device(partition: int, num_partitions: int, rc: Mapping[str, Any]) -> Device:
    """Device `partition` of `num_partitions` under the run config `rc` (pyproject.toml's
    [tool.flwr.app.config], with `flwr run --run-config` overrides)."""
    if not 0 <= partition < num_partitions:
        raise ValueError(f"partition-id {partition} is not in 0..{num_partitions}")
    seed, elements = int(rc["seed"]), int(rc["elements"])
    train = slice_of(edgerl.demo_screens(int(rc["screens"]), seed=seed, elements=elements), partition, num_partitions)
    heldout = slice_of(edgerl.demo_screens(int(rc["heldout-screens"]), seed=seed ^ HELDOUT_SEED, elements=elements), partition, num_partitions)
    names = [n.strip() for n in str(rc["rewards"]).split(",") if n.strip()]
    unknown = [n for n in names if n not in REWARDS]
    if unknown or not names:
        raise ValueError(f"rewards = {rc['rewards']!r}: use names from {', '.join(REWARDS)}")
    config = {
        "model": os.path.expanduser(str(rc["model"])),
        "num_generations": int(rc["num-generations"]),
        "prompts_per_step": int(rc["prompts-per-step"]),
        "temperature": float(rc["temperature"]),
        "max_completion_length": int(rc["max-completion-length"]),
        "stop": [")"],
        "optimizer": "adamw",
        "learning_rate": float(rc["learning-rate"]),
        "lr_scheduler_type": "constant",
        "loss_type": "dapo",
        "seed": seed,
        "lora": {"r": int(rc["lora-r"]), "alpha": float(rc["lora-alpha"])},
    }
    save = str(rc.get("client-save-dir", ""))
    return Device(
        config=config,
        dataset=train,
        heldout=heldout,
        reward_funcs=[REWARDS[n][0] for n in names],
        reward_weights=[REWARDS[n][1] for n in names],
        partition_id=partition,
        save_dir=os.path.join(save, f"partition-{partition}") if save else None,
    )
