"""Federated LoRA with Flower (``pip install 'edgerl[flower]'``): devices fine-tune one adapter
together with GRPO on their own data, which never leaves them; only LoRA tensors travel.

- ``client_app(device_fn)``: a Flower ``ClientApp``; each round it starts from the global
  adapter, takes local GRPO steps with edgerl on the device's rows and returns the trained
  LoRA tensors with its example count; ``evaluate`` reports the held-out reward.
  ``train_round`` / ``heldout_reward`` are the same steps without Flower.
- ``LoraStrategy``: a Flower strategy aggregating the adapters (``"fedavg"`` over A and B, or
  ``"exact"``: the mean of B·A re-factorised to rank r by truncated SVD, as FlexLoRA) and
  writing each round's global adapter as a PEFT directory.
- ``initial_adapter(config)``: the adapter a federation starts from.
- ``Adapter``, ``aggregate``: adapters as numpy arrays, read and written as PEFT directories.

examples/fleet/ is a federation of simulated phones on Flower's deployment engine.
"""

from .lora import AGGREGATIONS, Adapter, aggregate, exact, fedavg

try:
    import flwr  # noqa: F401
except ImportError:  # pragma: no cover
    raise ImportError("edgerl.flower needs Flower: pip install 'edgerl[flower]' (flwr and safetensors)") from None

from .client import Device, client_app, heldout_reward, train_round
from .records import adapter_from_record, adapter_to_record
from .server import LoraStrategy, initial_adapter

__all__ = [
    "AGGREGATIONS",
    "Adapter",
    "Device",
    "LoraStrategy",
    "adapter_from_record",
    "adapter_to_record",
    "aggregate",
    "client_app",
    "exact",
    "fedavg",
    "heldout_reward",
    "initial_adapter",
    "train_round",
]
