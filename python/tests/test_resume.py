"""Checkpoints and resume from Python (`edgerl.train(..., resume=True)`, `Trainer.resume`): a
run stopped after a checkpoint taken between the two updates of a batch continues to the
uninterrupted run's adapter, metrics and completions; another run's checkpoint is refused."""

import json
from pathlib import Path

import pytest

import edgerl
from test_train import FORMAT, HIT, ROWS, adapter_bytes, base_config, has_e


class Stop(Exception):
    pass


def stop_at(step):
    def on_step(m):
        if m["step"] == step:
            raise Stop()

    return on_step


def untimed(path):
    return [{k: v for k, v in json.loads(l).items() if k != "step_time"} for l in Path(path).read_text().splitlines()]


def run(cfg, **kw):
    return edgerl.train(cfg, reward_funcs=has_e, dataset=ROWS, reward_weights=[0.1], **kw)


def test_resume_mid_batch_ends_as_the_uninterrupted_run(tmp_path):
    cfg = base_config(tmp_path / "full", rewards=[FORMAT, HIT], max_steps=4, num_iterations=2, save_steps=1)
    full = run(cfg)
    assert [p.name for p in sorted((tmp_path / "full").glob("checkpoint-*"))] == [f"checkpoint-{i}" for i in range(1, 5)]

    cut = tmp_path / "cut"
    cfg_cut = {**cfg, "output_dir": str(cut)}
    with pytest.raises(Stop):
        run(cfg_cut, on_step=stop_at(4))  # checkpoint-3 (mid-batch) is the newest
    assert (cut / "checkpoint-3").exists() and not (cut / "checkpoint-4").exists()
    assert not (cut / "adapter").exists()
    with pytest.raises(edgerl.InvalidInputError, match="resume=True"):
        run(cfg_cut)

    # Another run's checkpoint: other keys or other reward functions are refused by name.
    with pytest.raises(edgerl.InvalidInputError, match="learning_rate"):
        run({**cfg_cut, "learning_rate": 1e-3}, resume=True)

    def other(prompts, completions, **kw):
        return has_e(prompts, completions, **kw)

    with pytest.raises(edgerl.InvalidInputError, match="reward_funcs"):
        edgerl.train(cfg_cut, reward_funcs=other, dataset=ROWS, reward_weights=[0.1], resume=True)

    got = run(cfg_cut, resume=True)
    assert adapter_bytes(got) == adapter_bytes(full)
    assert untimed(cut / "metrics.jsonl") == untimed(tmp_path / "full" / "metrics.jsonl")
    assert (cut / "completions.jsonl").read_text() == (tmp_path / "full" / "completions.jsonl").read_text()

    # Resuming the finished run changes nothing; overwrite starts again and ends the same.
    assert adapter_bytes(run(cfg_cut, resume=True)) == adapter_bytes(full)
    assert adapter_bytes(run(cfg_cut, overwrite=True)) == adapter_bytes(full)


def test_trainer_resume_needs_a_checkpoint(tmp_path):
    t = edgerl.Trainer(base_config(tmp_path / "none", rewards=[FORMAT]), dataset=ROWS)
    with pytest.raises(edgerl.InvalidInputError, match="no checkpoint"):
        t.resume()
    t.step()
    path = Path(t.save_checkpoint())
    assert path == tmp_path / "none" / "checkpoint-1"
    t2 = edgerl.Trainer(base_config(tmp_path / "none", rewards=[FORMAT]), dataset=ROWS)
    assert t2.resume() == 1 and t2.global_step == 1
