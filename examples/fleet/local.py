"""Runs the fleet on Flower's deployment engine on this machine: one SuperLink and one
SuperNode per device on 127.0.0.1 (free ports), then `flwr run` of this Flower App; stops them
all at the end. Across machines the same processes run on different hosts (README.md).

    python examples/fleet/local.py [--devices 3] [--run-config 'num-rounds=2 local-steps=4']

Needs `flower-superlink`, `flower-supernode` and `flwr` (pip install './python[flower]') next
to the Python running this. Flower's own state goes to a temporary FLWR_HOME.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Optional

APP = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool(name: str) -> str:
    """The Flower command installed beside this Python (a venv's bin/), else on PATH."""
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else name


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(procs: List[subprocess.Popen]) -> None:
    """Each process was started in its own session: its group (with the SuperExec and app
    processes it spawned) gets SIGTERM, then SIGKILL."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    end = time.time() + 10
    for p in procs:
        try:
            p.wait(max(0.1, end - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def run(devices: int = 3, run_config: Optional[str] = None, workdir: Optional[str] = None, timeout: float = 1800) -> None:
    """The whole federation; raises if `flwr run` fails or takes longer than `timeout` s."""
    work = Path(workdir or tempfile.mkdtemp(prefix="edgerl-fleet-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "flwr-home"
    home.mkdir(exist_ok=True)
    link = free_port()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = "127.0.0.1:{link}"\ninsecure = true\n'
    )
    # The SuperLink and SuperNodes start `flower-superexec` and the app processes from PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, FLWR_HOME=str(home), FLWR_DISABLE_UPDATE_CHECK="1", PATH=path)
    procs: List[subprocess.Popen] = []

    def start(args: List[str], log: Path) -> subprocess.Popen:
        f = open(log, "w")
        # In the caller's directory: the ServerApp inherits it (a relative `output-dir`).
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=os.getcwd(), start_new_session=True)
        procs.append(p)
        return p

    try:
        log = work / "superlink.log"
        sl = start([tool("flower-superlink"), "--insecure", "--disable-runtime-dependency-installation", "--host", "127.0.0.1", "--port", str(link)], log)
        wait_for_port(link, sl, 60, log)
        for p in range(devices):
            port = free_port()
            log = work / f"supernode-{p}.log"
            sn = start([tool("flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{link}", "--host", "127.0.0.1", "--port", str(port),
                        "--node-config", f"partition-id={p} num-partitions={devices}"], log)
            wait_for_port(port, sn, 60, log)
        cmd = [tool("flwr"), "run", str(APP), "local", "--stream"]
        if run_config:
            cmd += ["--run-config", run_config]
        print("+", " ".join(shlex.quote(c) for c in cmd), flush=True)
        # Its output goes through as it comes; a watchdog stops it after `timeout` s.
        job = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        procs.append(job)
        watchdog = threading.Timer(timeout, job.kill)
        watchdog.start()
        errors = []
        try:
            for line in job.stdout:
                sys.stdout.write(line)
                if "ERROR" in line:
                    errors.append(line.rstrip())
            rc = job.wait()
        finally:
            watchdog.cancel()
        if rc != 0 or errors:
            logs = "".join(f"\n--- {l.name}\n{l.read_text()[-2000:]}" for l in sorted(work.glob("*.log")))
            why = "timed out" if rc == -signal.SIGKILL else f"exit status {rc}"
            raise RuntimeError(f"flwr run failed ({why}; {len(errors)} ERROR lines){logs}")
    finally:
        stop(procs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=3, help="SuperNodes, one per simulated device")
    ap.add_argument("--run-config", help="overrides of pyproject.toml's [tool.flwr.app.config], 'k1=v1 k2=\"v2\"'")
    ap.add_argument("--workdir", help="Flower's state and the processes' logs (default: a temp dir)")
    a = ap.parse_args()
    run(a.devices, a.run_config, a.workdir)


if __name__ == "__main__":
    main()
