"""The fleet's ServerApp: FedAvg's rounds with LoRA-aware aggregation (edgerl.flower's
LoraStrategy), a PEFT adapter written per round to `output-dir`."""

import os

from flwr.app import ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from edgerl.flower import LoraStrategy, adapter_to_record, initial_adapter

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    rc = context.run_config
    out = os.path.abspath(os.path.expanduser(str(rc["output-dir"])))
    # The global adapter starts as a fresh one of the devices' shape (B = 0: the base model).
    start = initial_adapter({
        "model": os.path.expanduser(str(rc["model"])),
        "seed": int(rc["seed"]),
        "lora": {"r": int(rc["lora-r"]), "alpha": float(rc["lora-alpha"])},
    })
    start.save(os.path.join(out, "round-0", "adapter"))
    nodes = int(rc["devices"])  # every round waits for, and trains on, this many devices
    strategy = LoraStrategy(
        adapter_config=start.config,
        output_dir=out,
        aggregation=str(rc["aggregation"]),
        min_available_nodes=nodes,
        min_train_nodes=nodes,
        min_evaluate_nodes=nodes,
    )
    strategy.start(
        grid=grid,
        initial_arrays=adapter_to_record(start),
        num_rounds=int(rc["num-rounds"]),
        train_config=ConfigRecord({"local-steps": int(rc["local-steps"])}),
        evaluate_config=ConfigRecord({
            "eval-samples": int(rc["eval-samples"]),
            "eval-temperature": float(rc["eval-temperature"]),
        }),
    )
    print(f"fleet: {int(rc['num-rounds'])} rounds done; adapters in {out}/round-<n>/adapter")
