"""Adapters in Flower messages: the LoRA tensors as an ``ArrayRecord`` under their PEFT names
(adapter_config.json travels as a string in the round's ``ConfigRecord``)."""

from __future__ import annotations

from typing import Any, Mapping

from flwr.app import Array, ArrayRecord

from .lora import Adapter


def adapter_to_record(adapter: Adapter) -> ArrayRecord:
    return ArrayRecord({k: Array(v) for k, v in adapter.tensors.items()})


def adapter_from_record(record: ArrayRecord, config: Mapping[str, Any]) -> Adapter:
    return Adapter({k: a.numpy() for k, a in record.items()}, config)
