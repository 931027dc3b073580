"""Shared fixtures: the repo, the CLI binary (target/release/edgerl, built by `cargo build
--release`; EDGERL_BIN overrides) and the tiny models that ship in tests/fixtures."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "tests" / "fixtures" / "models" / "qwen3_f16"
EXAMPLE = ROOT / "examples" / "tiny-grpo-online"

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp/edgerl-xdg")
os.makedirs(os.environ["XDG_RUNTIME_DIR"], exist_ok=True)


def _cli_path() -> Path:
    env = os.environ.get("EDGERL_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release" / "edgerl"


@pytest.fixture(scope="session")
def cli():
    """Runs the edgerl CLI; returns (returncode, stdout, stderr)."""
    exe = _cli_path()
    if not exe.exists():
        pytest.fail(f"{exe} is missing: run `cargo build --release` first (or set EDGERL_BIN)")

    def run(*args, check=True):
        p = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=ROOT)
        if check and p.returncode != 0:
            raise AssertionError(f"edgerl {' '.join(map(str, args))} failed: {p.stderr}")
        return p.returncode, p.stdout, p.stderr

    return run


@pytest.fixture(scope="session")
def cli_json(cli):
    def run(*args):
        return json.loads(cli(*args, "--json")[1])

    return run


@pytest.fixture(scope="session")
def model():
    import edgerl

    return edgerl.Model(MODEL)
