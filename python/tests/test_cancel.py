"""Stopping a step from Python: Ctrl-C (KeyboardInterrupt) or `Trainer.cancel()` from another
thread stops `step()` between its GPU pieces with nothing applied, so the next step gives what
an uninterrupted trainer's first step gives (metrics, completions and adapter)."""

import _thread
import threading
import time

import pytest

import edgerl
from test_train import FORMAT, HIT, ROWS, adapter_bytes, base_config


def config(out):
    # Sampling (one GPU piece a prompt, sequential decoding) is most of a step here: no stop
    # string, longer completions, four prompts.
    return base_config(out, rewards=[FORMAT, HIT], stop=[], max_completion_length=24, prompts_per_step=4, max_steps=3)


def timeless(m):
    return {k: v for k, v in m.items() if k != "step_time"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A fresh trainer's first step, uninterrupted: (seconds it took, metrics, completions,
    adapter bytes before and after)."""
    tmp = tmp_path_factory.mktemp("ref")
    t = edgerl.Trainer(config(tmp / "out"), dataset=ROWS)
    t.save_adapter(tmp / "a0")
    start = time.monotonic()
    m = t.step()
    seconds = time.monotonic() - start
    t.save_adapter(tmp / "a1")
    return seconds, m, t.last_completions(), adapter_bytes(tmp / "a0"), adapter_bytes(tmp / "a1")


def interrupted_step(t, delay, stop):
    """Runs `t.step()` with `stop()` called from a timer thread after `delay` seconds; returns
    the seconds until KeyboardInterrupt (None when the step returned)."""
    timer = threading.Timer(delay, stop)
    start = time.monotonic()
    timer.start()
    try:
        try:
            t.step()
        finally:
            timer.join()
            # A Ctrl-C that arrived after the step ended raises here, still inside the try.
            for _ in range(1000):
                pass
    except KeyboardInterrupt:
        return time.monotonic() - start
    return None


def assert_unchanged_then_as_fresh(t, tmp_path, reference):
    _, m_ref, comps_ref, a0, a1 = reference
    assert t.global_step == 0
    assert t._t._cursor == 0
    t.save_adapter(tmp_path / "after_cancel")
    assert adapter_bytes(tmp_path / "after_cancel") == a0
    m = t.step()
    assert timeless(m) == timeless(m_ref)
    assert t.last_completions() == comps_ref
    assert t.global_step == 1
    t.save_adapter(tmp_path / "after_step")
    assert adapter_bytes(tmp_path / "after_step") == a1


@pytest.mark.parametrize("how", ["ctrl_c", "cancel"])
def test_a_stopped_step_applies_nothing(tmp_path, reference, how):
    seconds, *_ = reference
    t = edgerl.Trainer(config(tmp_path / "out"), dataset=ROWS)
    stop = _thread.interrupt_main if how == "ctrl_c" else t.cancel
    # Early in the sampling: the step is stopped at its next check, well before its end.
    waited = interrupted_step(t, 0.1 * seconds, stop)
    assert waited is not None, "the step ran to its end"
    assert waited < 0.7 * seconds, f"KeyboardInterrupt after {waited:.2f} s; the whole step takes {seconds:.2f} s"
    assert_unchanged_then_as_fresh(t, tmp_path, reference)


def test_cancel_before_a_step_stops_the_next_one(tmp_path, reference):
    t = edgerl.Trainer(config(tmp_path / "out"), dataset=ROWS)
    t.cancel()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt, match="Trainer.cancel"):
        t.step()
    # At the first check: before anything was sampled.
    assert time.monotonic() - start < 0.5 * reference[0]
    # The cancel is consumed: the next step runs, as a fresh trainer's first.
    assert_unchanged_then_as_fresh(t, tmp_path, reference)
