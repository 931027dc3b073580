"""Federated LoRA on Flower (edgerl.flower, examples/fleet): the aggregations against numpy
done by hand, a round starting from the adapter the server sends, and a 3-device, 2-round
federation on Flower's deployment engine (SuperLink + SuperNodes on 127.0.0.1) whose global
adapters are the FedAvg of the adapters the devices trained (as edgerl wrote them), and after
which every device's held-out reward is higher than the base model's."""

import json
import sys

import numpy as np
import pytest

pytest.importorskip("flwr")
pytest.importorskip("safetensors")

import edgerl  # noqa: E402
from edgerl.flower import Adapter, Device, aggregate, heldout_reward, initial_adapter, train_round  # noqa: E402
from conftest import MODEL, ROOT  # noqa: E402

FLEET = ROOT / "examples" / "fleet"
sys.path.insert(0, str(FLEET))
from fleet import task  # noqa: E402

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib


def random_adapter(rng, r=4, shapes=((8, 6), (5, 7)), config=None):
    """An adapter with modules of (d_out, d_in) `shapes` and random A, B."""
    t = {}
    for i, (d_out, d_in) in enumerate(shapes):
        p = f"base_model.model.model.layers.{i}.self_attn.q_proj"
        t[f"{p}.lora_A.weight"] = rng.standard_normal((r, d_in)).astype(np.float32)
        t[f"{p}.lora_B.weight"] = rng.standard_normal((d_out, r)).astype(np.float32)
    return Adapter(t, config or {"r": r, "lora_alpha": 2 * r, "target_modules": ["q_proj"]})


def test_fedavg_is_the_weighted_mean_of_a_and_b():
    rng = np.random.default_rng(0)
    ads = [random_adapter(rng) for _ in range(3)]
    counts = [5, 1, 2]
    got = aggregate(ads, counts, "fedavg")
    for k in ads[0].tensors:
        want = (5 * ads[0].tensors[k].astype(np.float64) + ads[1].tensors[k] + 2 * ads[2].tensors[k]) / 8
        np.testing.assert_allclose(got.tensors[k], want, rtol=1e-6, atol=1e-6)
    assert got.config == ads[0].config


def test_exact_is_the_best_rank_r_approximation_of_the_mean_update():
    rng = np.random.default_rng(1)
    ads = [random_adapter(rng) for _ in range(3)]
    counts = [3, 1, 1]
    got = aggregate(ads, counts, "exact")
    w = np.array(counts, np.float64) / sum(counts)
    for module in ads[0].pairs():
        mean = sum(wk * a.delta(module) for wk, a in zip(w, ads))  # d_out × d_in, formed here only
        u, s, vt = np.linalg.svd(mean)
        want = (u[:, :4] * s[:4]) @ vt[:4]
        np.testing.assert_allclose(got.delta(module), want, rtol=1e-4, atol=1e-4)
        a, b = got.pairs()[module]
        assert got.tensors[a].shape == ads[0].tensors[a].shape and got.tensors[b].shape == ads[0].tensors[b].shape
    # Clients sharing A (so the updates span r directions): the mean update, exactly; FedAvg's
    # product differs from it (its cross terms), which is why `exact` exists.
    shared = [Adapter({k: (ads[0].tensors[k] if ".lora_A." in k else v) for k, v in a.tensors.items()}, a.config) for a in ads]
    got = aggregate(shared, counts, "exact")
    avg = aggregate(ads, counts, "fedavg")
    for module in ads[0].pairs():
        mean = sum(wk * a.delta(module) for wk, a in zip(w, shared))
        np.testing.assert_allclose(got.delta(module), mean, rtol=1e-4, atol=1e-4)
        assert not np.allclose(avg.delta(module), sum(wk * a.delta(module) for wk, a in zip(w, ads)), atol=1e-2)


def test_aggregation_refuses_what_does_not_fit():
    rng = np.random.default_rng(2)
    a = random_adapter(rng)
    with pytest.raises(ValueError, match="share the LoRA config"):
        aggregate([a, random_adapter(rng, r=2)], [1, 1])
    with pytest.raises(ValueError, match="example counts"):
        aggregate([a, a], [0, 0])
    with pytest.raises(ValueError, match="aggregation 'median'"):
        aggregate([a], [1], "median")
    with pytest.raises(ValueError, match="not its pair"):
        Adapter({k: v for k, v in a.tensors.items() if ".lora_B." not in k}, a.config)


def test_demo_screens_are_the_demos_rows():
    rows = edgerl.demo_screens(40, seed=7)
    assert rows == edgerl.demo_screens(40, seed=7) and rows != edgerl.demo_screens(40, seed=8)
    assert {r["app"] for r in rows} == set(task.APPS)
    for r in rows:
        user, start = r["prompt"]
        assert start == {"role": "assistant", "content": "click("}
        left, top, right, bottom = r["target_box"]
        assert f"({left},{top},{right},{bottom})" in user["content"] and user["content"].count("\n") == 4  # 3 elements
    assert len(edgerl.demo_screens(3, elements=5)[0]["prompt"][0]["content"].splitlines()) == 7
    with pytest.raises(edgerl.InvalidInputError, match="2 to 6 elements"):
        edgerl.demo_screens(1, elements=7)


def tiny_device(rows, heldout, lr=2e-2, **over):
    cfg = dict(model=str(MODEL), num_generations=4, temperature=1.0, max_completion_length=8, learning_rate=lr,
               lr_scheduler_type="constant", loss_type="dapo", prompts_per_step=2, seed=3, lora={"r": 4, "alpha": 8})
    cfg.update(over)
    return Device(config=cfg, dataset=rows, heldout=heldout, reward_funcs=[task.digits], partition_id=1)


def test_a_round_starts_from_the_adapter_the_server_sends(tmp_path):
    rows = edgerl.demo_screens(6, seed=5)
    start = initial_adapter(tiny_device(rows, rows).config)
    assert all(not v.any() for k, v in start.tensors.items() if ".lora_B." in k), "a fresh adapter's B is 0"
    # A global adapter unlike any fresh one: with a vanishing learning rate (AdamW steps are
    # about lr in size) the round returns it.
    rng = np.random.default_rng(4)
    sent = Adapter({k: rng.standard_normal(v.shape).astype(np.float32) * 0.05 for k, v in start.tensors.items()}, start.config)
    back, metrics = train_round(tiny_device(rows, rows, lr=1e-12), sent, server_round=2, local_steps=1)
    assert metrics["num-examples"] == 6 and metrics["steps"] == 1
    for k, v in sent.tensors.items():
        np.testing.assert_allclose(back.tensors[k], v, rtol=0, atol=1e-9, err_msg=k)
    # The PEFT directory edgerl.Model loads gives what the adapter gives: B·A moves the logits.
    d = sent.save(tmp_path / "sent")
    text = "click(12,34)"
    assert edgerl.Model(MODEL, adapter=d).score(text).token_logprobs.tolist() != edgerl.Model(MODEL).score(text).token_logprobs.tolist()


def run_config():
    return tomllib.loads((FLEET / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]


def toml_value(v):
    return json.dumps(v) if isinstance(v, str) else repr(v)


def test_three_devices_two_rounds_on_flower(tmp_path):
    import local  # examples/fleet/local.py

    out, clients = tmp_path / "out", tmp_path / "clients"
    # A tiny random model can't learn to tap inside boxes in two rounds: the test trains on the
    # dense `digits` reward (digits after "click(", the answer's form) instead.
    over = {
        "model": str(MODEL), "rewards": "digits", "devices": 3, "num-rounds": 2, "local-steps": 4,
        "lora-r": 4, "lora-alpha": 8, "learning-rate": 2e-2, "num-generations": 4, "prompts-per-step": 2,
        "temperature": 1.0, "screens": 30, "heldout-screens": 24, "seed": 3, "eval-samples": 2,
        "eval-temperature": 1.0, "output-dir": str(out), "client-save-dir": str(clients),
    }
    local.run(devices=3, run_config=" ".join(f"{k}={toml_value(v)}" for k, v in over.items()), workdir=str(tmp_path / "flwr"), timeout=480)

    rc = dict(run_config(), **over)
    screens = edgerl.demo_screens(30, seed=3)
    # The non-IID slices, by hand: device p keeps the apps i with i % 3 == p.
    sizes = [sum(r["app"] in [a for i, a in enumerate(task.APPS) if i % 3 == p] for r in screens) for p in range(3)]
    assert len(set(sizes)) > 1 and all(sizes), sizes
    for n in (1, 2):
        log = json.loads((out / f"round-{n}" / "train.json").read_text())
        by_part = {int(c["partition-id"]): c for c in log["clients"]}
        assert sorted(by_part) == [0, 1, 2]
        assert [by_part[p]["num-examples"] for p in range(3)] == sizes
        # What each device trained, as edgerl wrote it, and the server's global adapter.
        local_ads = [Adapter.load(clients / f"partition-{p}" / f"round-{n}" / "adapter") for p in range(3)]
        glob = Adapter.load(out / f"round-{n}" / "adapter")
        assert set(glob.tensors) == set(local_ads[0].tensors)
        for k, v in glob.tensors.items():
            want = sum(s * a.tensors[k].astype(np.float64) for s, a in zip(sizes, local_ads)) / sum(sizes)
            np.testing.assert_allclose(v, want, rtol=1e-6, atol=1e-7, err_msg=k)
        # Each device started from the previous global adapter and moved away from it a little.
        prev = Adapter.load(out / f"round-{n - 1}" / "adapter")
        for a in local_ads:
            assert any(not np.array_equal(a.tensors[k], prev.tensors[k]) for k in prev.tensors)
        if n == 2:
            r0 = Adapter.load(out / "round-0" / "adapter")
            for a in local_ads:
                dist = lambda b: sum(float(np.sum((a.tensors[k] - b.tensors[k]) ** 2)) for k in b.tensors)
                assert dist(prev) < dist(r0), "round 2 did not start from round 1's global adapter"
    # Every device's held-out reward under the final global adapter beats the base model's
    # (round 0's adapter: B = 0), measured the same way (same rows, seeds and samples).
    final = {int(c["partition-id"]): c["heldout-reward"] for c in json.loads((out / "round-2" / "evaluate.json").read_text())["clients"]}
    base = Adapter.load(out / "round-0" / "adapter")
    for p in range(3):
        dev = task.device(p, 3, rc)
        before = heldout_reward(dev, base, samples=2, temperature=1.0)["heldout-reward"]
        print(f"device {p}: held-out reward {before:.3f} -> {final[p]:.3f}")
        assert final[p] > before, (p, before, final[p])
