"""Model.generate / Model.score against the CLI's `generate --json` / `score --json`, bit for bit."""

import threading
import time

import numpy as np
import pytest

import edgerl
from conftest import MODEL, ROOT

TEXTS = [
    "Hello there, friend",
    "Screen: [OK (100,200,180,240)]. Instruction: press OK. Action:",
    "a",
    "ünïcödé ✓ and\nnewlines\n\n",
]


@pytest.mark.parametrize("text", TEXTS)
def test_score_equals_cli(model, cli_json, text):
    want = cli_json("score", "--model", MODEL, "--text", text)
    got = model.score(text)
    assert got.ids.dtype == np.int64 and got.token_logprobs.dtype == np.float32
    assert got.ids.tolist() == want["ids"]
    # The CLI prints each f32 as its shortest f64 form: the same bits after a round trip.
    assert got.token_logprobs.tolist() == np.asarray(want["token_logprobs"], dtype=np.float32).tolist()
    assert len(got.token_logprobs) == len(got.ids) - 1


GEN_CASES = [
    (dict(prompt="Hello there"), ["--prompt", "Hello there"], dict(max_new_tokens=8)),
    (dict(prompt="Hello there"), ["--prompt", "Hello there"], dict(max_new_tokens=12, temperature=1.0, seed=7)),
    (dict(prompt="Once"), ["--prompt", "Once"], dict(max_new_tokens=10, temperature=0.8, top_k=20, top_p=0.9, seed=3)),
    (dict(chat="Tap the Send button."), ["--chat", "Tap the Send button."], dict(max_new_tokens=10)),
    (
        dict(chat=[{"role": "user", "content": "Tap the Send button."}]),
        ["--chat", "Tap the Send button."],
        dict(max_new_tokens=10, temperature=1.0, seed=11),
    ),
]


@pytest.mark.parametrize("py_prompt,cli_prompt,opts", GEN_CASES)
def test_generate_equals_cli(model, cli_json, py_prompt, cli_prompt, opts):
    args = ["generate", "--model", MODEL, *cli_prompt]
    flags = {"max_new_tokens": "--max-new-tokens", "temperature": "--temperature", "top_k": "--top-k", "top_p": "--top-p", "seed": "--seed"}
    full = dict(temperature=0.0, **opts) if "temperature" not in opts else opts
    for k, v in full.items():
        args += [flags[k], v]
    want = cli_json(*args)
    got = model.generate(**py_prompt, **full)
    assert got.ids == want["new_ids"]
    assert got.text == want["text"]


def test_generate_defaults_are_greedy(model):
    a = model.generate("Hello", max_new_tokens=6)
    b = model.generate("Hello", max_new_tokens=6, seed=99)
    assert a.ids == b.ids and len(a.ids) <= 6


def test_chat_conversation(model):
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Tap OK."},
    ]
    g = model.generate(chat=msgs, max_new_tokens=5)
    assert isinstance(g.text, str) and len(g.ids) <= 5


def test_encode_decode(model):
    ids = model.encode("Hello there")
    assert ids == model.score("Hello there").ids.tolist()
    assert model.decode(ids) == "Hello there"


def test_errors_are_the_clis(cli):
    rc, _, err = cli("score", "--model", "/no/such/model", "--text", "x", check=False)
    assert rc != 0
    with pytest.raises(edgerl.EdgerlError) as e:
        edgerl.Model("/no/such/model")
    assert isinstance(e.value, RuntimeError)
    assert err.strip() == f"error: {e.value}"


def test_invalid_arguments(model):
    with pytest.raises(edgerl.InvalidInputError, match="give `prompt` or `chat`"):
        model.generate()
    with pytest.raises(ValueError, match="not both"):
        model.generate("a", chat="b")
    with pytest.raises(ValueError):
        model.generate("a", temperature=-1.0)
    with pytest.raises(edgerl.InvalidInputError, match="role"):
        model.generate(chat=[{"content": "x"}])
    with pytest.raises(edgerl.InvalidInputError, match="dtype"):
        edgerl.Model(MODEL, dtype="f7")
    with pytest.raises(edgerl.EdgerlError):
        edgerl.Model(MODEL, adapter=ROOT / "no-such-adapter")


def test_the_gil_is_released_while_the_gpu_works(model):
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    th = threading.Thread(target=tick)
    th.start()
    time.sleep(0.02)
    before = len(ticks)
    model.generate("Hello there", max_new_tokens=24, temperature=1.0)
    after = len(ticks)
    stop.set()
    th.join()
    # The other thread ran during the call: with the GIL held it could not have ticked at all.
    assert after - before >= 3, (before, after)
