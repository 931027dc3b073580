"""The fleet's ClientApp: each SuperNode is one device; its `--node-config` names its slice
(`partition-id`, `num-partitions`)."""

from flwr.app import Context

from edgerl.flower import Device, client_app

from .task import device


def device_of(context: Context) -> Device:
    nc = context.node_config
    return device(int(nc["partition-id"]), int(nc["num-partitions"]), context.run_config)


app = client_app(device_of)
