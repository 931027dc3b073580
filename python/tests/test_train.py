"""GRPO from Python: a Python reward function in place of a rule trains the adapter `edgerl
train` trains with the rule (same config, seed and rows), bit for bit; TRL's reward-function
conventions; errors."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import edgerl
from conftest import EXAMPLE, MODEL, ROOT

ROWS = [json.loads(l) for l in (EXAMPLE / "prompts.jsonl").read_text().splitlines() if l.strip()]


def base_config(out: Path, **over):
    """examples/tiny-grpo-online/run.toml as a dict (absolute paths), without its rules."""
    c = dict(
        model=str(MODEL),
        output_dir=str(out),
        num_generations=4,
        temperature=1.0,
        top_k=50,
        max_completion_length=12,
        stop=["\n\n"],
        optimizer="adamw",
        learning_rate=5e-3,
        lr_scheduler_type="constant",
        loss_type="dapo",
        max_steps=2,
        prompts_per_step=2,
        seed=1,
        lora={"r": 8, "alpha": 16},
    )
    c.update(over)
    return c


FORMAT = {"type": "regex", "name": "format", "pattern": ".*click.*", "weight": 0.2}
HIT = {"type": "point_in_box", "name": "hit", "extract": "regex", "pattern": r"click\((\d+),\s*(\d+)\)", "target": "target_box", "weight": 0.8}
HAS_E = {"type": "regex", "name": "has_e", "pattern": ".*e.*", "weight": 0.1}


def has_e(prompts, completions, **kwargs):
    """The `has_e` rule in Python (rules full-match with `.` matching newlines)."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [1.0 if re.fullmatch(".*e.*", t, re.S) else 0.0 for t in texts]


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def write_toml(path: Path, cfg: dict):
    path.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in cfg.items()))
    return path


def adapter_bytes(d):
    return (Path(d) / "adapter_model.safetensors").read_bytes()


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, cli):
    """`edgerl train` on the example with all three rules: (output_dir, metrics)."""
    tmp = tmp_path_factory.mktemp("cli")
    ds = tmp / "prompts.jsonl"
    shutil.copy(EXAMPLE / "prompts.jsonl", ds)
    cfg = base_config(tmp / "out", dataset=str(ds), rewards=[FORMAT, HIT, HAS_E])
    toml = write_toml(tmp / "run.toml", cfg)
    _, out, _ = cli("train", "--config", toml, "--json")
    metrics = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    assert len(metrics) == 2
    return tmp / "out", metrics


def test_python_reward_trains_as_the_rule_does(tmp_path, cli_run):
    out, want = cli_run
    seen = []

    def has_e_logged(prompts, completions, **kwargs):
        seen.append((prompts, completions, kwargs))
        return has_e(prompts, completions)

    has_e_logged.__name__ = "has_e"
    cfg = base_config(tmp_path / "out", rewards=[FORMAT, HIT])
    t = edgerl.Trainer(cfg, reward_funcs=[has_e_logged], reward_weights=[0.1], dataset=ROWS)
    got = t.train()
    for g, w in zip(got, want):
        for k in ("step", "reward", "reward_std", "loss", "grad_norm", "rewards/format/mean", "rewards/hit/mean", "rewards/has_e/mean", "rewards/has_e/std", "completions/mean_length"):
            assert g[k] == w[k], (k, g[k], w[k])
    adapter = t.save_adapter(tmp_path / "adapter")
    assert adapter_bytes(adapter) == adapter_bytes(out / "adapter"), "the Python run's adapter differs from edgerl train's"
    # The trainer generates and scores with its adapter as trained so far.
    text = "Screen: [OK (100,200,180,240)]. Action: click(140, 220)"
    m = edgerl.Model(MODEL, adapter=adapter)
    assert t.score(text).token_logprobs.tolist() == m.score(text).token_logprobs.tolist()
    assert t.generate(chat=ROWS[0]["prompt"], max_new_tokens=8).ids == m.generate(chat=ROWS[0]["prompt"], max_new_tokens=8).ids
    # TRL's call: once per batch, every completion, prompts repeated per completion, the
    # dataset's other columns and completion_ids as lists; chat prompts get message completions.
    assert len(seen) == 2
    prompts, completions, kwargs = seen[0]
    assert len(prompts) == len(completions) == 2 * 4
    assert set(kwargs) == {"target_box", "completion_ids", "trainer_state"}
    assert [s[2]["trainer_state"].global_step for s in seen] == [0, 1]
    assert len(kwargs["target_box"]) == len(kwargs["completion_ids"]) == 8
    for p, c, box in zip(prompts, completions, kwargs["target_box"]):
        row = next(r for r in ROWS if r["prompt"] == p)
        assert box == row["target_box"]
        if isinstance(p, list):
            assert c[0]["role"] == "assistant" and isinstance(c[0]["content"], str)
        else:
            assert isinstance(c, str)


@pytest.mark.parametrize(
    "extra",
    [
        dict(dynamic_sampling=True, max_refill=2, prompts_per_step=3),
        dict(num_iterations=2, max_steps=3),
        dict(difficulty_weight=True, success_threshold=0.05, shuffle_dataset=False),
    ],
    ids=["dynamic_sampling", "num_iterations", "difficulty_weight"],
)
def test_python_reward_follows_the_cli_loop(tmp_path, cli, extra):
    """The step loop's variants (refills, batches reused, difficulty weights recomputed with
    the Python rewards) as `edgerl train` runs them."""
    ds = tmp_path / "prompts.jsonl"
    shutil.copy(EXAMPLE / "prompts.jsonl", ds)
    toml = write_toml(tmp_path / "run.toml", base_config(tmp_path / "cli", dataset=str(ds), rewards=[FORMAT, HIT, HAS_E], **extra))
    _, out, _ = cli("train", "--config", toml, "--json")
    want = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    t = edgerl.Trainer(base_config(tmp_path / "py", rewards=[FORMAT, HIT], **extra), reward_funcs=has_e, reward_weights=[0.1], dataset=ROWS)
    got = t.train()
    assert len(got) == len(want) == t.max_steps
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if k != "step_time"} == {k: v for k, v in w.items() if k != "step_time"}
    adapter = t.save_adapter(tmp_path / "adapter")
    assert adapter_bytes(adapter) == adapter_bytes(tmp_path / "cli" / "adapter")


def test_train_from_a_run_toml_equals_the_cli(tmp_path, cli_run):
    """edgerl.train(path) with the config's own dataset file and rules: the CLI's run."""
    out, want = cli_run
    ds = tmp_path / "prompts.jsonl"
    shutil.copy(EXAMPLE / "prompts.jsonl", ds)
    toml = write_toml(tmp_path / "run.toml", base_config("out", dataset="prompts.jsonl", rewards=[FORMAT, HIT]))
    steps = []
    adapter = edgerl.train(toml, reward_funcs=has_e, reward_weights=[0.1], on_step=steps.append)
    assert Path(adapter) == tmp_path / "out" / "adapter"
    assert [m["reward"] for m in steps] == [m["reward"] for m in want]
    assert adapter_bytes(adapter) == adapter_bytes(out / "adapter")
    lines = (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["step"] for l in lines] == [1, 2]
    comps = [json.loads(l) for l in (tmp_path / "out" / "completions.jsonl").read_text().splitlines()]
    assert len(comps) == 2 * 2 * 4 and {"prompt", "completion", "reward", "step"} <= set(comps[0])
    with pytest.raises(edgerl.InvalidInputError, match="already holds a run"):
        edgerl.train(toml, reward_funcs=has_e, reward_weights=[0.1])


def test_model_with_the_trained_adapter_scores_as_the_cli(cli_run, cli_json):
    """Model(path, adapter=...) applies a PEFT adapter as `score --adapter` / `generate --adapter` do."""
    out, _ = cli_run
    text = "Screen: [OK (100,200,180,240)]. Instruction: press OK. Action: click(140, 220)"
    m = edgerl.Model(MODEL, adapter=out / "adapter")
    want = cli_json("score", "--model", MODEL, "--adapter", out / "adapter", "--text", text)
    got = m.score(text)
    assert got.ids.tolist() == want["ids"]
    assert got.token_logprobs.tolist() == np.asarray(want["token_logprobs"], dtype=np.float32).tolist()
    assert got.token_logprobs.tolist() != edgerl.Model(MODEL).score(text).token_logprobs.tolist()
    want = cli_json("generate", "--model", MODEL, "--adapter", out / "adapter", "--prompt", "Action:", "--max-new-tokens", 8, "--temperature", 0)
    assert m.generate("Action:", max_new_tokens=8).ids == want["new_ids"]


def test_datasets_dataset(tmp_path):
    """A `datasets.Dataset` (rows as dicts) trains as the same rows given as a list."""
    datasets = pytest.importorskip("datasets")
    chat = [r for r in ROWS if isinstance(r["prompt"], list)]  # Arrow wants one type a column
    cfg = base_config(tmp_path / "out", rewards=[FORMAT, HIT], max_steps=1)
    want = edgerl.Trainer(cfg, reward_funcs=has_e, reward_weights=[0.1], dataset=chat).step()
    got = edgerl.Trainer(cfg, reward_funcs=has_e, reward_weights=[0.1], dataset=datasets.Dataset.from_list(chat)).step()
    assert (got["reward"], got["loss"], got["grad_norm"]) == (want["reward"], want["loss"], want["grad_norm"])


def test_python_rewards_alone(tmp_path):
    """No rules: the functions' weighted sum is the reward; None leaves a function out."""

    def length(prompts, completions, completion_ids, **kw):
        return [len(ids) / 12 for ids in completion_ids]

    def sometimes(prompts, completions, **kw):
        return [None if i % 2 else 1.0 for i in range(len(completions))]

    cfg = base_config(tmp_path / "out", max_steps=1)
    t = edgerl.Trainer(cfg, reward_funcs=[length, sometimes], reward_weights=[1.0, 0.5], dataset=ROWS)
    m = t.step()
    assert m["rewards/sometimes/mean"] == 1.0 and m["rewards/sometimes/std"] == 0.0
    comps = t.last_completions()
    assert len(comps) == 8
    assert [c["rewards"]["sometimes"] for c in comps] == [1.0, None] * 4
    for c in comps:
        want = c["rewards"]["length"] + (0.5 if c["rewards"]["sometimes"] is not None else 0.0)
        assert c["reward"] == pytest.approx(want)
    assert m["reward"] == pytest.approx(sum(c["reward"] for c in comps) / 8)
    assert "rewards/length/mean" in m and m["step"] == 1 and t.global_step == 1


def test_dict_and_toml_configs_agree(tmp_path):
    cfg = base_config(str(tmp_path / "a"), max_steps=1, rewards=[HAS_E])
    a = edgerl.Trainer(cfg, dataset=ROWS).step()
    toml = write_toml(tmp_path / "run.toml", {**cfg, "output_dir": "b"})
    b = edgerl.Trainer(toml, dataset=ROWS).step()
    assert (a["reward"], a["loss"], a["grad_norm"]) == (b["reward"], b["loss"], b["grad_norm"])


def test_bad_config_key_is_the_clis_error(tmp_path, cli):
    toml = write_toml(tmp_path / "run.toml", base_config("out", dataset=str(EXAMPLE / "prompts.jsonl"), rewards=[HAS_E], bogus_key=1))
    _, _, err = cli("train", "--config", toml, check=False)
    with pytest.raises(edgerl.InvalidInputError) as e:
        edgerl.Trainer(toml)
    assert err.strip() == f"error: {e.value}"
    assert "unknown field `bogus_key`" in str(e.value)
    with pytest.raises(ValueError, match="config: .*unknown field `bogus_key`"):
        edgerl.Trainer(base_config(tmp_path, bogus_key=1), reward_funcs=has_e, dataset=ROWS)


def test_missing_model_file(tmp_path):
    with pytest.raises(edgerl.EdgerlError, match="no such model"):
        edgerl.Trainer(base_config(tmp_path, model="/no/such/model"), reward_funcs=has_e, dataset=ROWS)
    with pytest.raises(edgerl.EdgerlError, match="no-such.toml"):
        edgerl.Trainer(tmp_path / "no-such.toml")


def test_reward_function_of_the_wrong_length(tmp_path):
    def short(prompts, completions, **kw):
        return [0.0]

    t = edgerl.Trainer(base_config(tmp_path), reward_funcs=short, dataset=ROWS)
    with pytest.raises(edgerl.InvalidInputError, match=r"reward function `short` returned 1 rewards for 8 completions"):
        t.step()
    assert t.global_step == 0


def test_exceptions_in_reward_functions_propagate(tmp_path):
    class Boom(Exception):
        pass

    def boom(prompts, completions, **kw):
        raise Boom("from the reward function")

    t = edgerl.Trainer(base_config(tmp_path), reward_funcs=boom, dataset=ROWS)
    with pytest.raises(Boom, match="from the reward function"):
        t.step()
    assert t.global_step == 0


def test_bad_rows(tmp_path):
    rows = [ROWS[0], {"question": "no prompt here", "target_box": [0, 0, 1, 1]}]
    with pytest.raises(edgerl.InvalidInputError, match=r"dataset row 1: no `prompt` column"):
        edgerl.Trainer(base_config(tmp_path), reward_funcs=has_e, dataset=rows)
    with pytest.raises(ValueError, match=r"dataset row 0: no `target_box` column, which a reward rule reads"):
        edgerl.Trainer(base_config(tmp_path, rewards=[HIT]), dataset=[{"prompt": "x"}])
    with pytest.raises(ValueError, match="dataset is empty"):
        edgerl.Trainer(base_config(tmp_path), reward_funcs=has_e, dataset=[])
    with pytest.raises(ValueError, match="no reward"):
        edgerl.Trainer(base_config(tmp_path), dataset=ROWS)
    with pytest.raises(ValueError, match="reward_weights has 2 weights for 1"):
        edgerl.Trainer(base_config(tmp_path), reward_funcs=has_e, reward_weights=[1, 2], dataset=ROWS)


def test_memory_plan_as_the_cli_plans_it(tmp_path, cli):
    """gradient_checkpointing = "auto" (the default) is settled by the plan `edgerl plan` makes;
    memory_budget fits the run as `--memory-budget` does, or refuses it."""
    ds = tmp_path / "prompts.jsonl"
    shutil.copy(EXAMPLE / "prompts.jsonl", ds)
    cfg = base_config(tmp_path / "out", dataset=str(ds), rewards=[FORMAT, HIT])
    toml = write_toml(tmp_path / "run.toml", cfg)
    _, out, _ = cli("plan", "--config", toml, "--json")
    plan = json.loads(out)
    assert plan["knobs"]["gradient_checkpointing"] is False
    t = edgerl.Trainer(toml)
    assert t.memory_plan == plan["auto"] and "off (auto" in t.memory_plan
    # Rows given from Python are planned the same way.
    rows = edgerl.Trainer(base_config(tmp_path / "out", rewards=[FORMAT, HIT]), dataset=ROWS)
    assert rows.memory_plan == plan["auto"]
    # A fixed value is the user's: nothing to settle.
    assert edgerl.Trainer(dict(cfg, gradient_checkpointing=True)).memory_plan is None

    # One byte under the activations-kept peak: sampling's activations are given up first when
    # they cost memory (each group holds its own until its pass), then checkpointing goes on,
    # as the CLI's fit picks it.
    budget = plan["peak_bytes"] - 1
    _, out, _ = cli("plan", "--config", toml, "--memory-budget", budget, "--json")
    fit = json.loads(out)
    if not fit["knobs"]["gradient_checkpointing"]:
        assert fit["knobs"]["keep_rollouts"] is False and fit["peak_bytes"] < plan["peak_bytes"], fit
        t = edgerl.Trainer(toml, memory_budget=budget)
        assert "sampling's activations not kept" in t.memory_plan, t.memory_plan
        budget = fit["peak_bytes"] - 1
        _, out, _ = cli("plan", "--config", toml, "--memory-budget", budget, "--json")
        fit = json.loads(out)
    assert fit["knobs"]["gradient_checkpointing"] is True
    t = edgerl.Trainer(toml, memory_budget=budget)
    assert "gradient checkpointing on" in t.memory_plan, t.memory_plan
    assert t.step()["step"] == 1
    with pytest.raises(edgerl.EdgerlError, match="cannot be met"):
        edgerl.Trainer(toml, memory_budget="1MiB")
    with pytest.raises(edgerl.InvalidInputError, match="budget"):
        edgerl.Trainer(toml, memory_budget="lots")
