"""The client side of a federated LoRA round, and a Flower ``ClientApp`` that runs it.

A round on a device, whatever carries the messages (Flower here; a phone app's own transport
through the C ABI or Kotlin, see examples/fleet/README.md):

1. receive the global adapter (LoRA tensors + adapter_config.json) and the round's settings;
2. write it as a PEFT directory and start a trainer from it (the config's ``init_adapter``);
3. take ``local_steps`` GRPO steps on the device's own rows;
4. send back the trained LoRA tensors and the example count (the weight of this client).

Evaluation: the global adapter's mean reward on the device's held-out rows (the same reward
functions, greedy or sampled completions).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

import edgerl

from .lora import Adapter, copy_adapter

# Keys of the round's ConfigRecord (the server's ``LoraStrategy`` sets them).
ADAPTER_CONFIG = "adapter-config"
LOCAL_STEPS = "local-steps"
SERVER_ROUND = "server-round"
EVAL_SAMPLES = "eval-samples"
EVAL_TEMPERATURE = "eval-temperature"
EVAL_MAX_NEW_TOKENS = "eval-max-new-tokens"
NUM_EXAMPLES = "num-examples"
PARTITION = "partition-id"


@dataclass
class Device:
    """What one device brings to a federation.

    ``config``: the GRPO config for ``edgerl.Trainer`` (model, sampling, optimizer, ...; the
    adapter comes from the server each round, so ``init_adapter``, ``lora`` and ``max_steps`` are
    set per round). ``dataset``: the device's own training rows; ``heldout``: rows it evaluates
    on. ``reward_funcs``/``reward_weights``: TRL-style reward functions (training and
    evaluation). ``num_examples``: the weight of its adapter in the aggregation (default: the
    number of training rows). ``save_dir``: when set, every round's trained adapter is kept in
    ``save_dir/round-<n>/adapter`` (PEFT).
    """

    config: Mapping[str, Any]
    dataset: Sequence[Mapping[str, Any]]
    heldout: Sequence[Mapping[str, Any]] = ()
    reward_funcs: Sequence[Callable[..., Sequence[Optional[float]]]] = ()
    reward_weights: Optional[Sequence[float]] = None
    num_examples: Optional[int] = None
    partition_id: int = 0
    save_dir: Optional[str] = None

    @property
    def weight(self) -> int:
        return len(self.dataset) if self.num_examples is None else int(self.num_examples)


def _round_seed(seed: int, server_round: int, partition: int) -> int:
    """A different sampling stream (and row order) per round and device, reproducibly."""
    return zlib.crc32(f"{seed}/{server_round}/{partition}".encode()) & 0x7FFF_FFFF


def train_round(device: Device, global_adapter: Adapter, server_round: int, local_steps: int, workdir: Optional[str] = None) -> "tuple[Adapter, Dict[str, float]]":
    """One round on the device: GRPO steps from ``global_adapter``; returns the trained adapter
    and the round's metrics (``num-examples``, the mean ``train-reward`` of its steps, the
    round's wall time in ``seconds``, ...)."""
    if local_steps < 1:
        raise edgerl.InvalidInputError(f"{LOCAL_STEPS} = {local_steps}: a round takes at least one step")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgerl-round-", dir=workdir) as tmp:
        start = global_adapter.save(os.path.join(tmp, "global"))
        cfg = dict(device.config)
        cfg.pop("lora", None)  # the global adapter's config fixes r, alpha and targets
        cfg.pop("output_dir", None)
        cfg.update(init_adapter=start, max_steps=local_steps, seed=_round_seed(int(cfg.get("seed", 0)), server_round, device.partition_id))
        trainer = edgerl.Trainer(cfg, reward_funcs=list(device.reward_funcs), dataset=list(device.dataset), reward_weights=device.reward_weights)
        steps = trainer.train()
        out = trainer.save_adapter(os.path.join(tmp, "trained"))
        if device.save_dir:
            copy_adapter(out, os.path.join(device.save_dir, f"round-{server_round}", "adapter"))
        trained = Adapter.load(out)
    rewards = [float(m["reward"]) for m in steps if m.get("reward") is not None]
    metrics = {
        NUM_EXAMPLES: device.weight,
        PARTITION: device.partition_id,
        "train-reward": float(np.mean(rewards)) if rewards else math.nan,
        "train-reward-last": rewards[-1] if rewards else math.nan,
        "steps": len(steps),
        "seconds": time.perf_counter() - t0,
    }
    return trained, metrics


def _as_trl(prompt: Any, text: str) -> "tuple[Any, Any]":
    """A prompt and its completion as TRL hands them to reward functions (as ``edgerl.Trainer``
    does): a chat prompt's final assistant message (continued by the model) moves into the
    completion."""
    if not isinstance(prompt, list):
        return prompt, text
    if prompt and prompt[-1].get("role") == "assistant":
        return prompt[:-1], [{"role": "assistant", "content": prompt[-1]["content"] + text}]
    return prompt, [{"role": "assistant", "content": text}]


def heldout_reward(device: Device, adapter: Adapter, samples: int = 1, temperature: float = 0.0, max_new_tokens: Optional[int] = None, workdir: Optional[str] = None) -> Dict[str, float]:
    """The adapter's mean reward on the device's held-out rows: ``samples`` completions per row
    (greedy for temperature 0; seeded, so the same adapter scores the same), scored by the
    device's reward functions, weighted and summed as in training."""
    if not device.heldout:
        raise edgerl.InvalidInputError("the device has no held-out rows to evaluate on")
    n_new = int(max_new_tokens or device.config.get("max_completion_length", 64))
    weights = list(device.reward_weights) if device.reward_weights is not None else [1.0] * len(device.reward_funcs)
    prompts: List[Any] = []
    comps: List[Any] = []
    rows: List[Mapping[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgerl-eval-", dir=workdir) as tmp:
        model = edgerl.Model(device.config["model"], adapter=adapter.save(tmp))
        for i, row in enumerate(device.heldout):
            p = row["prompt"]
            for s in range(samples):
                kw = dict(max_new_tokens=n_new, temperature=temperature, seed=i * 1009 + s)
                g = model.generate(chat=p, **kw) if isinstance(p, list) else model.generate(p, **kw)
                tp, tc = _as_trl(p, g.text)
                prompts.append(tp)
                comps.append(tc)
                rows.append(row)
    keys = [k for k in rows[0] if k not in ("prompt", "completion")]
    columns = {k: [r.get(k) for r in rows] for k in keys}
    total = np.zeros(len(comps))
    for w, f in zip(weights, device.reward_funcs):
        vals = [0.0 if v is None else float(v) for v in f(prompts=prompts, completions=comps, **columns)]
        total += w * np.asarray(vals)
    return {"heldout-reward": float(total.mean()), NUM_EXAMPLES: len(device.heldout), PARTITION: device.partition_id}


def client_app(device_fn: Callable[[Any], Device], round_fn: Callable[..., "tuple[Adapter, Dict[str, float]]"] = train_round):
    """A Flower ``ClientApp`` whose ``train`` runs ``round_fn`` (``train_round``) and whose
    ``evaluate`` runs ``heldout_reward`` on the device ``device_fn(context)`` describes
    (``context.node_config`` names the SuperNode's partition, ``context.run_config`` the run's
    settings). A SuperNode relaying rounds to a phone passes a ``round_fn(device, adapter,
    server_round, local_steps)`` that sends the adapter to the phone and returns what it
    uploads (its adapter and metrics with ``num-examples``)."""
    from flwr.app import Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    from .records import adapter_from_record, adapter_to_record

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Any) -> Message:
        device = device_fn(context)
        cfg = msg.content["config"]
        adapter = adapter_from_record(msg.content["arrays"], json.loads(cfg[ADAPTER_CONFIG]))
        trained, metrics = round_fn(device, adapter, int(cfg[SERVER_ROUND]), int(cfg[LOCAL_STEPS]))
        return Message(RecordDict({"arrays": adapter_to_record(trained), "metrics": MetricRecord(metrics)}), reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Any) -> Message:
        device = device_fn(context)
        cfg = msg.content["config"]
        adapter = adapter_from_record(msg.content["arrays"], json.loads(cfg[ADAPTER_CONFIG]))
        metrics = heldout_reward(
            device,
            adapter,
            samples=int(cfg.get(EVAL_SAMPLES, 1)),
            temperature=float(cfg.get(EVAL_TEMPERATURE, 0.0)),
            max_new_tokens=int(cfg.get(EVAL_MAX_NEW_TOKENS, 0)) or None,
        )
        return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)

    return app
