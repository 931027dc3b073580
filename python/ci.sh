#!/usr/bin/env bash
# The Python package's CI: builds python/ from source into a virtual environment under the
# cargo target directory and runs its tests (python/tests), which compare against the CLI
# (target/release/edgerl, built here first). Run from anywhere:
#   bash python/ci.sh [pytest args...]
# Environment: CARGO_TARGET_DIR (default <repo>/target; shared with the root build, so the
# dependencies compile once), PYTHON (default python3), EDGERL_PYTHON_ENV (the virtual
# environment, default $CARGO_TARGET_DIR/python-venv), XDG_RUNTIME_DIR (default
# /tmp/edgerl-xdg, for Mesa's drivers), EDGERL_BIN (the CLI to compare against).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/edgerl-xdg}"
mkdir -p "$XDG_RUNTIME_DIR"
python="${PYTHON:-python3}"
export PIP_ROOT_USER_ACTION=ignore
t0=$(date +%s)

# The CLI the tests compare against, from the same sources as the extension (a no-op or a
# relink when the root build is current). EDGERL_BIN points the tests at another binary.
if [ -z "${EDGERL_BIN:-}" ]; then
    cargo build --release --bin edgerl
fi

# A virtual environment under the target directory; where the venv module is missing (Debian
# without python3-venv), a user site there instead (pip's --break-system-packages is then
# needed on an externally managed Python, and touches nothing outside it).
venv="${EDGERL_PYTHON_ENV:-$CARGO_TARGET_DIR/python-venv}"
if [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" >/dev/null 2>&1; then
    py="$venv/bin/python"
    export PATH="$venv/bin:$PATH"  # the build backend runs the `maturin` it installed
    pip=("$py" -m pip --disable-pip-version-check)
else
    export PYTHONUSERBASE="$CARGO_TARGET_DIR/python-user"
    py="$python"
    export PATH="$PYTHONUSERBASE/bin:$PATH"
    pip=("$py" -m pip --disable-pip-version-check)
    extra=(--user --break-system-packages)
fi
extra=("${extra[@]+"${extra[@]}"}")

# flwr and safetensors: the `flower` extra (edgerl.flower, python/tests/test_flower.py);
# pillow: tests only (python/tests/test_vision.py hands PIL images over; the package does not
# import PIL).
"${pip[@]}" install -q "${extra[@]}" "maturin>=1.5,<2" pytest numpy "flwr>=1.42,<2" safetensors pillow
# From source, as a user's `pip install ./python` (maturin is the build backend); without
# build isolation, so the maturin just installed builds it and nothing is fetched per run.
"${pip[@]}" install -q "${extra[@]}" --no-build-isolation --force-reinstall --no-deps ./python
t1=$(date +%s)
echo "python/ci.sh: package built and installed in $((t1 - t0)) s"

"$py" -m pytest -q python/tests "$@"
echo "python/ci.sh: done in $(( $(date +%s) - t0 )) s"
