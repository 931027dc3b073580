"""`edgerl.sft` and `edgerl.evaluate` against the CLI's `edgerl sft` and `edgerl eval`: the same
config (a file or a dict) and rows give the CLI's adapter bytes, metrics and summaries."""

import json
import shutil
from pathlib import Path

import pytest

import edgerl

from conftest import EXAMPLE, ROOT

SFT_CASE = ROOT / "tests" / "fixtures" / "sft" / "prompt_completion_sgd_llama"
SFT_KEYS = {
    "model": str(ROOT / "tests" / "fixtures" / "models" / "llama_f32"),
    "init_adapter": str(SFT_CASE / "init_adapter"),
    "optimizer": "sgd",
    "learning_rate": 0.3,
    "lr_scheduler_type": "constant",
    "max_grad_norm": 0.0,
    "per_device_train_batch_size": 2,
    "max_steps": 3,
    "save_steps": 2,
    "seed": 0,
}
TIMED = ("step_time", "seconds", "elapsed")


def toml_of(keys):
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())


def untimed(path):
    return [{k: v for k, v in json.loads(l).items() if k not in TIMED} for l in Path(path).read_text().splitlines()]


def adapter_bytes(d):
    return {p.name: p.read_bytes() for p in sorted(Path(d).iterdir())}


def test_sft_from_a_file_a_dict_and_rows_trains_the_clis_adapter(cli, tmp_path):
    cfg = tmp_path / "sft.toml"
    cfg.write_text(toml_of({**SFT_KEYS, "dataset": str(SFT_CASE / "data.jsonl"), "output_dir": "cli"}))
    cli("sft", "--config", cfg)
    want = tmp_path / "cli"

    # The same file from Python: output_dir relative to the file's directory, as for the CLI.
    cfg.write_text(toml_of({**SFT_KEYS, "dataset": str(SFT_CASE / "data.jsonl"), "output_dir": "py"}))
    got = Path(edgerl.sft(cfg))
    assert got == tmp_path / "py" / "adapter"
    assert adapter_bytes(got) == adapter_bytes(want / "adapter")
    assert untimed(tmp_path / "py" / "metrics.jsonl") == untimed(want / "metrics.jsonl")

    # A dict and the rows themselves.
    rows = [json.loads(l) for l in (SFT_CASE / "data.jsonl").read_text().splitlines()]
    out = tmp_path / "rows"
    got = edgerl.sft({**SFT_KEYS, "output_dir": str(out)}, dataset=rows)
    assert adapter_bytes(got) == adapter_bytes(want / "adapter")
    assert untimed(out / "metrics.jsonl") == untimed(want / "metrics.jsonl")

    # A finished run is refused unless overwritten; resume from its checkpoint finishes the same.
    with pytest.raises(edgerl.EdgerlError):
        edgerl.sft({**SFT_KEYS, "output_dir": str(out)}, dataset=rows)
    got = edgerl.sft({**SFT_KEYS, "output_dir": str(out)}, dataset=rows, overwrite=True)
    assert adapter_bytes(got) == adapter_bytes(want / "adapter")


def test_sft_refuses_bad_input_clearly(tmp_path):
    with pytest.raises(edgerl.InvalidInputError, match="num_generations"):
        edgerl.sft({**SFT_KEYS, "output_dir": str(tmp_path), "num_generations": 4}, dataset=[{"text": "hi"}])
    with pytest.raises(edgerl.InvalidInputError, match="both"):
        edgerl.sft({**SFT_KEYS, "output_dir": str(tmp_path), "dataset": "x.jsonl"}, dataset=[{"text": "hi"}])
    with pytest.raises(edgerl.EdgerlError, match="line 2"):
        edgerl.sft({**SFT_KEYS, "output_dir": str(tmp_path)}, dataset=[{"text": "hi"}, {"nothing": 1}])
    assert not (tmp_path / "adapter").exists()


def test_evaluate_gives_the_clis_summary_and_completions(cli, tmp_path):
    cfg = EXAMPLE / "run.toml"
    _, out, _ = cli("eval", "--config", cfg, "--json", "--output", tmp_path / "cli.jsonl")
    want = json.loads(out)
    got = edgerl.evaluate(cfg, output=tmp_path / "py.jsonl")
    assert got == want
    assert (tmp_path / "py.jsonl").read_text() == (tmp_path / "cli.jsonl").read_text()

    # Rows given from Python (in place of the config's dataset, as --dataset), a batch size that
    # changes nothing, sampling as --samples.
    rows = [json.loads(l) for l in (EXAMPLE / "prompts.jsonl").read_text().splitlines()]
    got = edgerl.evaluate(cfg.as_posix(), dataset=rows, batch_size=1)
    assert got == want
    _, out, _ = cli("eval", "--config", cfg, "--json", "--samples", "2", "--temperature", "0.7")
    assert edgerl.evaluate(cfg, samples=2, temperature=0.7) == json.loads(out)


def test_evaluate_refuses_bad_input_clearly(tmp_path):
    cfg = EXAMPLE / "run.toml"
    with pytest.raises(edgerl.InvalidInputError, match="temperature"):
        edgerl.evaluate(cfg, samples=2)
    with pytest.raises(edgerl.InvalidInputError, match="batch_size"):
        edgerl.evaluate(cfg, batch_size=0)
    with pytest.raises(edgerl.EdgerlError, match="missing.toml"):
        edgerl.evaluate(tmp_path / "missing.toml")
