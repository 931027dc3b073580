"""The server side: a Flower strategy that aggregates LoRA adapters and writes each round's
global adapter as a PEFT directory, and the adapter a federation starts from."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp.strategy import FedAvg

import edgerl

from .client import ADAPTER_CONFIG, NUM_EXAMPLES, PARTITION
from .lora import AGGREGATIONS, Adapter, _temp_name, aggregate
from .records import adapter_from_record, adapter_to_record


def initial_adapter(config: Mapping[str, Any]) -> Adapter:
    """The adapter an ``edgerl.Trainer`` of ``config`` starts from: its ``init_adapter``
    (e.g. a warm start's), or a fresh one from its ``[lora]`` section and ``seed`` (B = 0, so
    the first global model is the base model). Loads the model once to build it."""
    cfg = {k: v for k, v in config.items() if k not in ("output_dir", "dataset", "rewards", "rollouts")}
    cfg["max_steps"] = 1

    def placeholder(prompts: Any, completions: Any, **kw: Any) -> List[float]:
        return [0.0] * len(completions)

    t = edgerl.Trainer(cfg, reward_funcs=[placeholder], dataset=[{"prompt": "."}])
    with tempfile.TemporaryDirectory(prefix="edgerl-init-") as tmp:
        return Adapter.load(t.save_adapter(tmp))


class LoraStrategy(FedAvg):
    """FedAvg's sampling and rounds, with LoRA-aware aggregation of the clients' adapters
    (``aggregation``: ``"fedavg"`` over A and B, or ``"exact"``: the mean of B·A re-factorised
    to rank r by truncated SVD; see ``edgerl.flower.lora``), weighted by the clients'
    ``num-examples``. Each round's global adapter is written to
    ``output_dir/round-<n>/adapter`` (PEFT), with ``round-<n>/train.json`` (every client's
    metrics, its weight among them) and ``round-<n>/evaluate.json``.

    ``adapter_config``: adapter_config.json of the federation's adapter (sent to the clients
    with every round, so they can write the tensors as a PEFT directory). ``train_settings``
    and ``evaluate_settings`` go into the rounds' ConfigRecords (``local-steps``,
    ``eval-samples``, ...).
    """

    def __init__(
        self,
        adapter_config: Mapping[str, Any],
        output_dir: Union[str, os.PathLike],
        aggregation: str = "fedavg",
        **fedavg_kwargs: Any,
    ) -> None:
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation {aggregation!r}: use one of {', '.join(AGGREGATIONS)}")
        fedavg_kwargs.setdefault("weighted_by_key", NUM_EXAMPLES)
        super().__init__(**fedavg_kwargs)
        self.adapter_config = dict(adapter_config)
        self.output_dir = os.fspath(output_dir)
        self.aggregation = aggregation

    def _with_adapter_config(self, config: ConfigRecord) -> ConfigRecord:
        config[ADAPTER_CONFIG] = json.dumps(self.adapter_config)
        return config

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Any) -> Iterable[Message]:
        return super().configure_train(server_round, arrays, self._with_adapter_config(config), grid)

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Any) -> Iterable[Message]:
        return super().configure_evaluate(server_round, arrays, self._with_adapter_config(config), grid)

    def round_dir(self, server_round: int) -> str:
        return os.path.join(self.output_dir, f"round-{server_round}")

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> Tuple[Optional[ArrayRecord], Optional[MetricRecord]]:
        valid, _ = self._check_and_log_replies(replies, is_train=True)
        if not valid:
            return None, None
        adapters: List[Adapter] = []
        counts: List[float] = []
        log: List[Dict[str, Any]] = []
        for msg in valid:
            metrics = next(iter(msg.content.metric_records.values()))
            records = list(msg.content.array_records.values())
            if len(records) != 1:
                raise ValueError(f"node {msg.metadata.src_node_id}: expected one ArrayRecord (the adapter), got {len(records)}")
            adapters.append(adapter_from_record(records[0], self.adapter_config))
            counts.append(float(metrics[NUM_EXAMPLES]))
            log.append({"node_id": msg.metadata.src_node_id, **{k: metrics[k] for k in metrics}})
        merged = aggregate(adapters, counts, self.aggregation)
        out = self.round_dir(server_round)
        merged.save(os.path.join(out, "adapter"))
        _write_json(os.path.join(out, "train.json"), {"aggregation": self.aggregation, "clients": log})
        return adapter_to_record(merged), _without_ids(self.train_metrics_aggr_fn([m.content for m in valid], self.weighted_by_key))

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> Optional[MetricRecord]:
        replies = list(replies)
        agg = _without_ids(super().aggregate_evaluate(server_round, replies))
        clients = []
        for msg in replies:
            if not msg.has_error():
                metrics = next(iter(msg.content.metric_records.values()))
                clients.append({"node_id": msg.metadata.src_node_id, **{k: metrics[k] for k in metrics}})
        _write_json(os.path.join(self.round_dir(server_round), "evaluate.json"), {"clients": clients, "mean": dict(agg) if agg else None})
        return agg


def _without_ids(metrics: Optional[MetricRecord]) -> Optional[MetricRecord]:
    """FedAvg's weighted means, less the clients' ids (whose mean means nothing)."""
    if metrics is not None and PARTITION in metrics:
        del metrics[PARTITION]
    return metrics


def _write_json(path: str, value: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = _temp_name(path)
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)
