"""Images on a vision-language model (the tiny SmolVLM-shaped fixture, tests/fixtures/vision_e2e):
Model.score / Model.generate with images as paths, numpy arrays and PIL images equal
`edgerl score --image` / `edgerl generate --image` bit for bit; GRPO on rows with images and
content-part prompts, with a Python reward function, trains the adapter `edgerl train` trains
with the equivalent rule; mistakes are the CLI's errors."""

import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import edgerl
from conftest import MODEL, ROOT

VLM = ROOT / "tests" / "fixtures" / "vision_e2e" / "model"
IMAGES = ROOT / "tests" / "fixtures" / "vision" / "images"
REFERENCE = json.loads((ROOT / "tests" / "fixtures" / "vision_e2e" / "reference.json").read_text())


@pytest.fixture(scope="module")
def vlm():
    return edgerl.Model(VLM)


def image_flags(paths):
    return [a for p in paths for a in ("--image", p)]


def same_score(got, want):
    assert got.ids.tolist() == want["ids"]
    # The CLI prints each f32 as its shortest f64 form: the same bits after a round trip.
    assert got.token_logprobs.tolist() == np.asarray(want["token_logprobs"], dtype=np.float32).tolist()


def write_png(path: Path, arr: np.ndarray) -> Path:
    """A PNG file of a uint8 (height, width, 3 or 4) array (lossless: the CLI reads these pixels)."""
    h, w, c = arr.shape
    raw = b"".join(b"\x00" + arr[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, {3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def pixels(shape, seed):
    a = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    if shape[2] == 4:
        a[..., 3] = np.linspace(0, 255, shape[0] * shape[1]).reshape(shape[:2]).astype(np.uint8)  # every alpha
    return a


# ---------------------------------------------------------------- Model.score / Model.generate


@pytest.mark.parametrize("case", range(len(REFERENCE["score"])))
def test_score_with_image_files_equals_cli(vlm, cli_json, case):
    c = REFERENCE["score"][case]
    paths = [IMAGES / n for n in c["images"]]
    want = cli_json("score", "--model", VLM, "--text", c["text"], *image_flags(paths))
    got = vlm.score(c["text"], images=paths)  # os.PathLike
    same_score(got, want)
    assert got.ids.tolist() == c["ids"], "transformers' processor ids"
    assert vlm.score(c["text"], images=[str(p) for p in paths]).token_logprobs.tolist() == got.token_logprobs.tolist()
    # The image tokens carry the images: other pictures, other log-probs.
    other = vlm.score(c["text"], images=[IMAGES / "photo_40x30.jpg"] * len(paths))
    assert other.token_logprobs.tolist() != got.token_logprobs.tolist()


@pytest.mark.parametrize("channels", [3, 4], ids=["rgb", "rgba"])
def test_score_with_numpy_arrays_equals_cli_on_the_same_pixels(vlm, cli_json, tmp_path, channels):
    a = pixels((23, 37, channels), seed=channels)
    b = pixels((50, 21, channels), seed=10 + channels)
    text = "<image>left <image> right"
    want = cli_json("score", "--model", VLM, "--text", text, *image_flags([write_png(tmp_path / "a.png", a), write_png(tmp_path / "b.png", b)]))
    got = vlm.score(text, images=[a, b])
    same_score(got, want)
    # A strided view is taken as its pixels.
    wide = np.zeros((23, 74, channels), dtype=np.uint8)
    wide[:, ::2] = a
    assert vlm.score(text, images=[wide[:, ::2], b]).token_logprobs.tolist() == got.token_logprobs.tolist()


class FakePil:
    """Duck-typed as a PIL image (mode, size, tobytes): edgerl does not import PIL."""

    def __init__(self, arr):
        self.arr = arr
        self.mode = "RGB"
        self.size = (arr.shape[1], arr.shape[0])

    def tobytes(self):
        return self.arr.tobytes()


def test_score_with_a_pil_like_image(vlm, cli_json, tmp_path):
    a = pixels((31, 17, 3), seed=5)
    text = "User:<image>Tap the send button.<end_of_utterance>\nAssistant: click("
    want = cli_json("score", "--model", VLM, "--text", text, "--image", write_png(tmp_path / "a.png", a))
    same_score(vlm.score(text, images=[FakePil(a)]), want)
    same_score(vlm.score(text, images=FakePil(a)), want)  # one image, not in a list


PIL_FILES = ["screen_120x90.png", "alpha_29x17.png", "palette_21x9.png", "gray_13x11.png", "gradient_37x23.png"]


@pytest.mark.parametrize("name", PIL_FILES)
def test_score_with_pil_images_equals_cli_on_the_file(vlm, cli_json, name):
    """PIL images of the fixture's PNGs (RGB, RGBA, palette, grey) as transformers converts them."""
    Image = pytest.importorskip("PIL.Image")
    text = "<image>Where is the send button?"
    want = cli_json("score", "--model", VLM, "--text", text, "--image", IMAGES / name)
    with Image.open(IMAGES / name) as im:
        im.load()
        same_score(vlm.score(text, images=[im]), want)


GEN_CASES = [
    (dict(chat=REFERENCE["chat"]["user"]), ["--chat", REFERENCE["chat"]["user"]], dict(max_new_tokens=6)),
    (dict(chat=REFERENCE["chat"]["user"]), ["--chat", REFERENCE["chat"]["user"]], dict(max_new_tokens=8, temperature=1.0, top_k=40, seed=5)),
    (dict(prompt="User:<image>Tap send.<end_of_utterance>\nAssistant:"), ["--prompt", "User:<image>Tap send.<end_of_utterance>\nAssistant:"], dict(max_new_tokens=6)),
]


@pytest.mark.parametrize("py_prompt,cli_prompt,opts", GEN_CASES, ids=["chat-greedy", "chat-sampled", "prompt"])
def test_generate_with_an_image_equals_cli(vlm, cli_json, py_prompt, cli_prompt, opts):
    img = IMAGES / REFERENCE["chat"]["images"][0]
    flags = {"max_new_tokens": "--max-new-tokens", "temperature": "--temperature", "top_k": "--top-k", "seed": "--seed"}
    full = {"temperature": 0.0, **opts}
    args = ["generate", "--model", VLM, *cli_prompt, "--image", img]
    for k, v in full.items():
        args += [flags[k], v]
    want = cli_json(*args)
    got = vlm.generate(**py_prompt, images=[img], **full)
    assert got.ids == want["new_ids"] and got.text == want["text"]
    if "chat" in py_prompt and full["temperature"] == 0.0:
        assert got.ids == REFERENCE["chat"]["greedy"], "transformers' greedy ids"


def test_generate_with_content_parts_equals_the_cli_chat(vlm, cli_json):
    """TRL's content-part messages render as `--chat` with the image before the text."""
    user = REFERENCE["chat"]["user"]
    img = IMAGES / REFERENCE["chat"]["images"][0]
    want = cli_json("generate", "--model", VLM, "--chat", user, "--image", img, "--max-new-tokens", 6, "--temperature", 0)
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user}]}]
    assert vlm.generate(chat=msgs, images=[img], max_new_tokens=6).ids == want["new_ids"]
    assert vlm.has_vision and not edgerl.Model(MODEL).has_vision


def test_image_mistakes_are_the_clis_errors(vlm, cli, tmp_path):
    png = IMAGES / "gray_13x11.png"
    cases = [
        (["--model", VLM, "--text", "<image> and <image>", "--image", png], dict(path=VLM, text="<image> and <image>", images=[png]), "placeholder"),
        (["--model", VLM, "--text", "<image>", "--image", "/no/such.png"], dict(path=VLM, text="<image>", images=["/no/such.png"]), "/no/such.png"),
        (["--model", MODEL, "--text", "hi", "--image", png], dict(path=MODEL, text="hi", images=[png]), "no vision tower"),
    ]
    for args, kw, needle in cases:
        rc, _, err = cli("score", *args, check=False)
        assert rc != 0
        m = vlm if kw["path"] == VLM else edgerl.Model(kw["path"])
        with pytest.raises(edgerl.EdgerlError) as e:
            m.score(kw["text"], images=kw["images"])
        assert err.strip() == f"error: {e.value}", needle
        assert needle in str(e.value)
    with pytest.raises(edgerl.InvalidInputError, match="no vision tower"):
        edgerl.Model(MODEL).generate("hi", images=[png])
    with pytest.raises(edgerl.InvalidInputError, match=r"image 0: a numpy image must be uint8 of shape \(height, width, 3\)"):
        vlm.score("<image>", images=[np.zeros((4, 4, 3), dtype=np.float32)])
    with pytest.raises(edgerl.InvalidInputError, match="image 1: a numpy image must be uint8"):
        vlm.score("<image><image>", images=[png, np.zeros((4, 4), dtype=np.uint8)])
    with pytest.raises(edgerl.InvalidInputError, match="image 0: expected an image file's path"):
        vlm.score("<image>", images=[42])
    with pytest.raises(edgerl.InvalidInputError, match=r"image 0: an image of 0x4 pixels is empty"):
        vlm.score("<image>", images=[np.zeros((4, 0, 3), dtype=np.uint8)])
    with pytest.raises(edgerl.InvalidInputError, match=r"image 0: a 4x4 RGB image needs 48 bytes, got 3"):
        vlm._m._score("<image>", [(4, 4, 3, b"abc")])
    with pytest.raises(edgerl.InvalidInputError, match="chat message 0 needs a string `role`"):
        vlm.generate(chat=[{"role": "user", "content": 3}], images=[png])
    with pytest.raises(edgerl.InvalidInputError, match="content parts|`chat`"):
        vlm.generate(chat=[{"role": "user", "content": [{"type": "video"}]}], images=[png])


# ---------------------------------------------------------------- GRPO on rows with images

HIT = {"type": "point_in_box", "name": "hit", "extract": "regex", "pattern": r"^\s*(\d+)\s*,\s*(\d+)", "target": "target_box", "weight": 0.9}
DIGIT = {"type": "regex", "name": "digit", "pattern": r".*\d.*", "weight": 0.1}


def digit(prompts, completions, **kwargs):
    """The `digit` rule in Python (rules full-match with `.` matching newlines)."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [1.0 if re.fullmatch(r".*\d.*", t, re.S) else 0.0 for t in texts]


def vision_config(out, **over):
    c = dict(
        model=str(VLM),
        output_dir=str(out),
        num_generations=4,
        prompts_per_step=2,
        temperature=1.0,
        max_completion_length=4,
        learning_rate=5e-3,
        max_steps=1,
        seed=3,
        lora={"r": 4, "alpha": 8},
    )
    c.update(over)
    return c


@pytest.fixture(scope="module")
def screens(tmp_path_factory, cli):
    """`edgerl demo --data-only --vision`: two screenshots and their rows (images relative to
    the dataset file), and `edgerl train` on them with both rules: (dir, metrics)."""
    d = tmp_path_factory.mktemp("screens")
    cli("demo", "--data-only", "--vision", "--steps", 1, "--eval-screens", 1, "--output-dir", d)
    from test_train import write_toml

    toml = write_toml(d / "run.toml", vision_config("cli", dataset="train.jsonl", rewards=[HIT, DIGIT]))
    _, out, _ = cli("train", "--config", toml, "--json")
    metrics = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    assert len(metrics) == 1
    return d, metrics


def test_python_reward_on_screenshots_trains_as_the_rule_does(screens, monkeypatch, tmp_path):
    d, want = screens
    rows = [json.loads(l) for l in (d / "train.jsonl").read_text().splitlines() if l.strip()]
    assert rows[0]["images"] == ["images/train-00000.png"] and rows[0]["prompt"][0]["content"][0] == {"type": "image"}
    seen = []

    def digit_logged(prompts, completions, **kwargs):
        seen.append((prompts, completions, kwargs))
        return digit(prompts, completions)

    digit_logged.__name__ = "digit"
    monkeypatch.chdir(d)  # rows given from Python: image paths relative to the current directory
    t = edgerl.Trainer(vision_config(tmp_path / "out", rewards=[HIT]), reward_funcs=digit_logged, reward_weights=[0.1], dataset=rows)
    monkeypatch.chdir(tmp_path)  # resolved when the Trainer was made
    assert t.has_vision
    got = t.train()
    assert len(got) == 1
    for k in ("reward", "reward_std", "loss", "grad_norm", "rewards/hit/mean", "rewards/digit/mean", "rewards/digit/std", "completions/mean_length"):
        assert got[0][k] == want[0][k], (k, got[0][k], want[0][k])
    adapter = t.save_adapter(tmp_path / "adapter")
    assert (adapter and (Path(adapter) / "adapter_model.safetensors").read_bytes()) == (d / "cli" / "adapter" / "adapter_model.safetensors").read_bytes()
    # The completions the CLI logged, with the expanded image prompt.
    cli_log = [json.loads(l) for l in (d / "cli" / "completions.jsonl").read_text().splitlines()]
    assert [c["completion"] for c in t.last_completions()] == [c["completion"] for c in cli_log]
    assert [c["prompt"] for c in t.last_completions()] == [c["prompt"] for c in cli_log]
    # TRL's call: content-part prompts (the continued assistant turn moved into the
    # completion), the images column among the kwargs.
    prompts, completions, kwargs = seen[0]
    assert len(prompts) == 8 and kwargs["images"][0] in (["images/train-00000.png"], ["images/train-00001.png"])
    assert prompts[0][0]["content"][0] == {"type": "image"}
    assert completions[0][0]["role"] == "assistant" and completions[0][0]["content"].startswith("click(")
    # The trainer scores with its images and adapter as a Model with that adapter does.
    text = "User:<image>Tap the send button.<end_of_utterance>\nAssistant: click("
    img = d / "images" / "train-00000.png"
    m = edgerl.Model(VLM, adapter=adapter)
    assert t.score(text, images=[img]).token_logprobs.tolist() == m.score(text, images=[img]).token_logprobs.tolist()


def test_train_from_a_run_toml_with_screenshots(screens, tmp_path):
    """The config's own JSONL dataset: image paths relative to that file, as `edgerl train`."""
    d, want = screens
    from test_train import write_toml

    toml = write_toml(d / "py.toml", vision_config(tmp_path / "out", dataset="train.jsonl", rewards=[HIT]))
    adapter = edgerl.train(toml, reward_funcs=digit, reward_weights=[0.1])
    metrics = [json.loads(l) for l in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["loss"] == want[0]["loss"]
    assert (Path(adapter) / "adapter_model.safetensors").read_bytes() == (d / "cli" / "adapter" / "adapter_model.safetensors").read_bytes()


def test_image_rows_need_a_vision_model(screens, tmp_path):
    d, _ = screens
    rows = [json.loads(l) for l in (d / "train.jsonl").read_text().splitlines() if l.strip()]
    for r in rows:
        r["images"] = [str(d / p) for p in r["images"]]
    with pytest.raises(edgerl.InvalidInputError, match=r"dataset row 0: this model has no vision tower"):
        edgerl.Trainer(vision_config(tmp_path, model=str(MODEL), rewards=[HIT]), reward_funcs=digit, dataset=rows)
    with pytest.raises(edgerl.InvalidInputError, match=r"dataset row 1: `images`: image 0: a numpy image must be uint8"):
        edgerl.Trainer(vision_config(tmp_path, rewards=[HIT]), dataset=[rows[0], {**rows[1], "images": [np.zeros((4, 4, 3), np.float64)]}])
    with pytest.raises(edgerl.InvalidInputError, match=r"dataset row 0: `image`: image 0: expected an image file's path"):
        edgerl.Trainer(vision_config(tmp_path, rewards=[HIT]), dataset=[{**{k: v for k, v in rows[0].items() if k != "images"}, "image": 7.5}])
    with pytest.raises(edgerl.InvalidInputError, match=r"dataset row 0: 2 images for 1 image places"):
        edgerl.Trainer(vision_config(tmp_path, rewards=[HIT]), dataset=[{**rows[0], "images": rows[0]["images"] * 2}])
    t = edgerl.Trainer(vision_config(tmp_path, rewards=[HIT]), dataset=[{**rows[0], "images": ["/no/such.png"]}])
    with pytest.raises(edgerl.EdgerlError, match="/no/such.png"):
        t.step()
    assert t.global_step == 0


def test_rows_with_pil_images_and_arrays_train_as_the_files(screens, tmp_path):
    """A vision dataset's images handed over as objects (a PIL image, a numpy array; as
    `datasets` yields them) train the adapter `edgerl train` trains on the files."""
    Image = pytest.importorskip("PIL.Image")
    d, want = screens
    rows = [json.loads(l) for l in (d / "train.jsonl").read_text().splitlines() if l.strip()]
    with Image.open(d / rows[0]["images"][0]) as im:
        pil = im.copy()
    with Image.open(d / rows[1]["images"][0]) as im:
        arr = np.asarray(im.convert("RGBA"))  # RGBA, opaque: composited onto white, the same pixels
    given = [{**rows[0], "images": [pil]}, {**rows[1], "images": arr}]
    seen = []

    def digit_logged(prompts, completions, **kwargs):
        seen.append(kwargs["images"])
        return digit(prompts, completions)

    digit_logged.__name__ = "digit"
    t = edgerl.Trainer(vision_config(tmp_path / "out", rewards=[HIT]), reward_funcs=digit_logged, reward_weights=[0.1], dataset=given)
    got = t.step()
    assert (got["reward"], got["loss"], got["grad_norm"]) == (want[0]["reward"], want[0]["loss"], want[0]["grad_norm"])
    adapter = t.save_adapter(tmp_path / "adapter")
    assert (Path(adapter) / "adapter_model.safetensors").read_bytes() == (d / "cli" / "adapter" / "adapter_model.safetensors").read_bytes()
    assert any(x is arr or (isinstance(x, list) and x[0] is pil) for x in seen[0]), "reward functions see the images as given"
