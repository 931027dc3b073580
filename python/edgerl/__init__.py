"""edgerl from Python: run small language models and fine-tune them with LoRA + GRPO on the
device's GPU (WGSL compute shaders through wgpu; Vulkan, Metal, DX12, GL).

- ``Model(path)``: ``generate`` and ``score``, as ``edgerl generate`` / ``edgerl score``;
  with ``images=[...]`` (paths, PIL images, numpy arrays) on a vision-language model.
- ``Trainer(config, reward_funcs=..., dataset=...)`` and ``train(...)``: GRPO steps as
  ``edgerl train`` takes them, with TRL-style Python reward functions added to the config's
  ``[[rewards]]`` rules.
- ``sft(config, dataset=...)``: supervised fine-tuning as ``edgerl sft`` (a warm start before
  GRPO); ``evaluate(config, dataset=..., adapter=...)``: ``edgerl eval``'s rewards and accuracy.

Errors are ``EdgerlError`` (a ``RuntimeError``); bad input (config keys, dataset rows,
arguments) is ``InvalidInputError``, both an ``EdgerlError`` and a ``ValueError``. Messages are
the CLI's.
"""

from __future__ import annotations

import functools
import json
import math
import os
import struct
import tempfile
import types
import zlib
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _edgerl
from ._edgerl import EdgerlError, InvalidInputError

__version__ = _edgerl.__version__

__all__ = [
    "EdgerlError",
    "InvalidInputError",
    "Generation",
    "Model",
    "Score",
    "Trainer",
    "demo_screens",
    "device_info",
    "evaluate",
    "sft",
    "train",
]


def device_info() -> Dict[str, Any]:
    """The device edgerl uses (backend, adapter, device type, driver, features)."""
    return json.loads(_edgerl.device_info())


def demo_screens(n: int, seed: int = 0, elements: int = 3) -> List[Dict[str, Any]]:
    """``n`` of ``edgerl demo``'s GUI-grounding screens as dataset rows (seeded): ``prompt`` (a
    chat whose assistant turn starts "click(" and is continued), ``target_box`` ([left, top,
    right, bottom]) and ``app`` (Settings, Messages, Shop, Sign-up form); ``elements`` (2 to 6)
    per screen."""
    return [json.loads(line) for line in _edgerl.demo_screens(seed, n, elements).splitlines()]


class Generation:
    """What ``Model.generate`` gives: the new token ids and their text (special tokens dropped)."""

    __slots__ = ("ids", "text")

    def __init__(self, ids: List[int], text: str) -> None:
        self.ids = ids
        self.text = text

    def __repr__(self) -> str:
        return f"Generation(text={self.text!r}, ids={self.ids!r})"


class Score:
    """What ``Model.score`` gives, as ``edgerl score --json``: ``ids`` (int64) as
    ``tokenizer(text)`` returns them, and ``token_logprobs`` (float32) with
    ``token_logprobs[i] = log p(ids[i+1] | ids[:i+1])``."""

    __slots__ = ("ids", "token_logprobs")

    def __init__(self, ids: np.ndarray, token_logprobs: np.ndarray) -> None:
        self.ids = ids
        self.token_logprobs = token_logprobs

    def __repr__(self) -> str:
        return f"Score(ids={self.ids!r}, token_logprobs={self.token_logprobs!r})"


def _messages(chat: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """The extension's arguments for a message list: (role, content) pairs, or the messages as
    JSON when some content is a list of parts (``{"type": "image"}``, ``{"type": "text", ...}``)."""
    out = []
    parts = False
    for i, m in enumerate(chat):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), (str, list)):
            raise InvalidInputError(f"chat message {i} needs a string `role` and a `content` (a string or a list of parts)")
        parts = parts or isinstance(m["content"], list)
        out.append((m["role"], m["content"]))
    if parts:
        return dict(parts_json=json.dumps([{"role": r, "content": c} for r, c in out]))
    return dict(messages=out)


# An image: a file's path, a PIL image, or a uint8 numpy array (height, width, 3 or 4).
Image = Any


def _is_image(o: Any) -> bool:
    return isinstance(o, (str, os.PathLike, np.ndarray)) or (hasattr(o, "mode") and hasattr(o, "tobytes"))


def _image(img: Any, i: int) -> Any:
    """One image as the extension takes it: a path (str), or (width, height, channels, bytes)."""
    if isinstance(img, (str, os.PathLike)):
        return os.fsdecode(os.fspath(img))
    if isinstance(img, np.ndarray):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (3, 4):
            raise InvalidInputError(
                f"image {i}: a numpy image must be uint8 of shape (height, width, 3) (RGB) or (height, width, 4) (RGBA), got {img.dtype} of shape {img.shape}"
            )
        h, w, c = img.shape
        return (w, h, c, np.ascontiguousarray(img).tobytes())
    if hasattr(img, "mode") and hasattr(img, "size") and hasattr(img, "tobytes"):
        # A PIL image, converted as transformers' `convert_to_rgb` converts it: RGB as it is,
        # any other mode through RGBA, composited onto white (by edgerl).
        if img.mode != "RGB":
            img = img.convert("RGBA")
        w, h = img.size
        return (w, h, 3 if img.mode == "RGB" else 4, img.tobytes())
    raise InvalidInputError(f"image {i}: expected an image file's path, a PIL image or a uint8 numpy array (height, width, 3 or 4), got {type(img).__name__}")


def _images(images: Any) -> Optional[List[Any]]:
    if images is None:
        return None
    if _is_image(images):
        images = [images]
    return [_image(img, i) for i, img in enumerate(images)]


def _generate(ext: Any, prompt: Optional[str], chat: Any, images: Any, kw: Dict[str, Any]) -> Generation:
    imgs = _images(images)
    if isinstance(chat, str) or chat is None:
        ids, text = ext._generate(prompt=prompt, chat=chat, images=imgs, **kw)
    else:
        if prompt is not None:
            raise InvalidInputError("give either `prompt` or `chat`, not both")
        ids, text = ext._generate(**_messages(chat), images=imgs, **kw)
    return Generation(list(ids), text)


def _score(ext: Any, text: str, images: Any) -> Score:
    ids, lp = ext._score(text, _images(images))
    return Score(np.asarray(ids, dtype=np.int64), np.asarray(lp, dtype=np.float32))


class Model:
    """A model on the device: a Hugging Face directory or a ``.gguf`` file (as the CLI's
    ``--model``), optionally with a PEFT LoRA ``adapter`` directory; ``dtype="f16"`` stores an
    f32 checkpoint's matrices as f16."""

    def __init__(self, path: Union[str, os.PathLike], adapter: Optional[Union[str, os.PathLike]] = None, dtype: Optional[str] = None) -> None:
        self._m = _edgerl.Model(os.fspath(path), None if adapter is None else os.fspath(adapter), dtype)
        self.path = os.fspath(path)

    def generate(
        self,
        prompt: Optional[str] = None,
        *,
        chat: Union[str, Sequence[Mapping[str, Any]], None] = None,
        images: Union[Image, Sequence[Image], None] = None,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        seed: int = 0,
    ) -> Generation:
        """Continues ``prompt`` (tokenized with the special tokens, as ``score``) or answers
        ``chat`` (one user message as a string, or a list of ``{"role", "content"}`` messages,
        rendered with the model's chat template and generation prompt; a content may be a list
        of parts, ``{"type": "image"}`` and ``{"type": "text", "text": ...}``, as TRL's vision
        datasets write them). Stops at EOS or after ``max_new_tokens``; temperature 0 is
        greedy; the same seed on the same device gives the same tokens.

        ``images`` (a vision-language model: SmolVLM / Idefics3), in the prompt's order: each
        an image file's path (PNG or JPEG, its EXIF orientation applied), a PIL image (any mode;
        not RGB is composited onto white as transformers' ``convert_to_rgb`` does), or a uint8
        numpy array of shape (height, width, 3) (RGB) or (height, width, 4) (RGBA). They fill
        ``prompt``'s ``<image>`` places or the messages' image parts (or ``<image>`` in their
        text); with ``chat`` as a string they come before its text, as ``edgerl generate --chat
        ... --image FILE``."""
        return _generate(self._m, prompt, chat, images, dict(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, seed=seed))

    def score(self, text: str, images: Union[Image, Sequence[Image], None] = None) -> Score:
        """Per-token log-probs of ``text`` under the model (and adapter), as ``edgerl score``;
        ``images`` (as ``generate`` takes them) fill its ``<image>`` places, each expanded to
        the image's tokens, as ``edgerl score --image FILE``."""
        return _score(self._m, text, images)

    @property
    def has_vision(self) -> bool:
        """Whether the model has a vision tower (takes ``images``)."""
        return self._m.has_vision

    def encode(self, text: str, add_special_tokens: bool = True) -> List[int]:
        """The tokenizer's ids for ``text``."""
        return self._m.encode(text, add_special_tokens)

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` (special tokens dropped)."""
        return self._m.decode(list(ids))

    def __repr__(self) -> str:
        return f"edgerl.Model({self.path!r})"


RewardFunc = Callable[..., Sequence[Optional[float]]]


def _func_name(f: Any) -> str:
    """The name TRL logs a reward function under (``rewards/<name>/mean``)."""
    while isinstance(f, functools.partial):
        f = f.func
    name = getattr(f, "__name__", None)
    return name if isinstance(name, str) else type(f).__name__


def _jsonable(o: Any) -> Any:
    """Columns json can't write: numpy values as Python ones; anything else as null (only
    Python reward functions can read it, and they get the original object)."""
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, os.PathLike):
        return os.fsdecode(os.fspath(o))
    return None


def _rows(dataset: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    rows = []
    for i, r in enumerate(dataset):
        if not isinstance(r, Mapping):
            raise InvalidInputError(f"dataset row {i}: expected a dict, got {type(r).__name__}")
        rows.append(dict(r))
    return rows


def _png(path: str, w: int, h: int, c: int, px: bytes) -> None:
    """A PNG file of 8-bit RGB (c = 3) or RGBA (4) pixels: lossless, so edgerl reads back these
    pixels (RGBA composited onto white, as an RGBA image handed over directly)."""
    stride = w * c
    raw = b"".join(b"\x00" + px[y * stride : (y + 1) * stride] for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2 if c == 3 else 6, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def _row_files(row: Dict[str, Any], i: int, tmp: List[Any]) -> Dict[str, Any]:
    """The row as the extension reads it: images given as pixels (PIL images, numpy arrays, as
    ``datasets`` hands a vision dataset's images over) written to PNG files in a temporary
    directory (``tmp[0]``, made on first use) that lives as long as the trainer."""
    out = row
    for col in ("images", "image"):
        v = row.get(col)
        if v is None:
            continue
        one = _is_image(v) or not isinstance(v, (list, tuple))
        items = [v] if one else list(v)
        if all(isinstance(x, (str, os.PathLike)) or x is None for x in items):
            continue
        files = []
        for k, x in enumerate(items):
            if x is None or isinstance(x, (str, os.PathLike)):
                files.append(x)
                continue
            try:
                w, h, c, px = _image(x, k)
            except InvalidInputError as e:
                raise InvalidInputError(f"dataset row {i}: `{col}`: {e}") from None
            if not w or not h or len(px) != w * h * c:
                raise InvalidInputError(f"dataset row {i}: `{col}`: image {k}: {w}x{h} pixels in {len(px)} bytes")
            if not tmp:
                tmp.append(tempfile.TemporaryDirectory(prefix="edgerl-images-"))
            path = os.path.join(tmp[0].name, f"row{i}-{col}{k}.png")
            _png(path, w, h, c, px)
            files.append(path)
        # `images` is a list (one image given alone becomes one); `image`, one file.
        out = {**out, col: files[0] if one and col == "image" else files}
    return out


class Trainer:
    """GRPO training as ``edgerl train`` does it, one optimizer step per ``step()``.

    ``config``: a run.toml path (relative paths in it are relative to its directory) or a dict
    with the same keys (TRL's ``GRPOConfig`` names; an unknown key is an error naming it).
    ``reward_funcs``: TRL-style functions ``f(prompts, completions, **kwargs) -> list[float]``
    called once per sampling round with every completion of the round; kwargs carry the
    dataset's other columns (one entry per completion), ``completion_ids`` and
    ``trainer_state`` (``global_step``, ``max_steps``). A ``None``
    reward leaves that function out for that completion (TRL's NaN). Their weighted sum
    (``reward_weights``, TRL's: one weight per function, default 1) is added to the config's
    ``[[rewards]]`` rules. ``dataset``: a list of dicts or a ``datasets.Dataset`` (rows with
    ``prompt``: a string or a list of chat messages); without it, the config's ``dataset``
    (a JSONL file).

    A vision-language model (SmolVLM / Idefics3) trains on rows with images, as TRL's vision
    datasets have them: ``images`` (or ``image``, one) lists image files (PNG or JPEG) in the
    order of the prompt's image places, which are ``{"type": "image"}`` content parts
    (``[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": ...}]}]``)
    or ``<image>`` in the prompt's text. Relative paths in rows given as ``dataset`` (a list
    of dicts or a ``datasets.Dataset``) are relative to the current directory when the
    ``Trainer`` is made; in the config's JSONL ``dataset``, to that file's directory (as
    ``edgerl train``). Rows given from Python may also hold the images themselves, as
    ``datasets`` hands a vision dataset's over: PIL images (converted as transformers'
    ``convert_to_rgb``) or uint8 numpy arrays (height, width, 3 or 4), which are written once
    as PNG files (lossless) to a temporary directory that lives as long as the trainer. Each
    prompt's images go through the vision tower once; its features serve the group's sampling
    and training. Reward functions get the ``images`` column (as given) among their kwargs.
    Images for a text model are an ``InvalidInputError``.

    ``memory_budget`` (``"2GiB"``, ``"800MiB"`` or bytes; ``edgerl train --memory-budget``):
    the run is planned before anything loads and keeps the config when it fits, else turns
    gradient checkpointing on, then halves the completions per packed pass; when nothing fits
    it is refused with the smallest peak reachable. Without one, ``gradient_checkpointing =
    "auto"`` (the default) is settled by the plan. ``memory_plan`` says what was chosen.
    """

    def __init__(
        self,
        config: Union[str, os.PathLike, Mapping[str, Any]],
        reward_funcs: Union[RewardFunc, Sequence[RewardFunc], None] = None,
        dataset: Optional[Iterable[Mapping[str, Any]]] = None,
        reward_weights: Optional[Sequence[float]] = None,
        memory_budget: Union[str, int, None] = None,
    ) -> None:
        if reward_funcs is None:
            funcs: List[RewardFunc] = []
        elif callable(reward_funcs):
            funcs = [reward_funcs]
        else:
            funcs = list(reward_funcs)
        for f in funcs:
            if not callable(f):
                raise InvalidInputError(f"reward_funcs: {f!r} is not callable (edgerl takes Python functions; reward models are not supported yet)")
        self._funcs = funcs
        self._names = [_func_name(f) for f in funcs]
        if len(set(self._names)) != len(self._names):
            raise InvalidInputError(f"reward_funcs: two functions have the same name ({', '.join(self._names)}); metric names would clash")
        rows_json = None
        self._py_rows: Optional[List[Dict[str, Any]]] = None
        if dataset is not None:
            self._py_rows = _rows(dataset)
            self._image_dir: List[Any] = []  # a TemporaryDirectory, removed with the trainer
            rows_json = [json.dumps(_row_files(r, i, self._image_dir), default=_jsonable) for i, r in enumerate(self._py_rows)]
        kw: Dict[str, Any] = dict(rows_json=rows_json, reward_cb=self._score if funcs else None, reward_names=self._names)
        if memory_budget is not None:
            kw["memory_budget"] = str(memory_budget)
        if isinstance(config, Mapping):
            cfg = {k: v for k, v in config.items() if v is not None}
            kw["config_json"] = json.dumps(cfg, default=_jsonable)
        else:
            path = os.fspath(config)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except OSError as e:
                raise EdgerlError(f"{path}: {e.strerror or e}") from None
            kw["config_toml"] = text
            kw["config_path"] = path
        self._t = _edgerl.Trainer(**kw)
        # Taken now: while a step runs the extension object is busy, the flag is not.
        self._cancel_flag = self._t._cancel_flag()
        own = json.loads(self._t._own_keys())
        weights = reward_weights if reward_weights is not None else own.get("reward_weights")
        if weights is None:
            self._weights = [1.0] * len(funcs)
        else:
            self._weights = [float(w) for w in weights]
            if len(self._weights) != len(funcs):
                raise InvalidInputError(f"reward_weights has {len(self._weights)} weights for {len(funcs)} reward functions")
        if self._py_rows is None:
            self._py_rows = [json.loads(r) for r in self._t._rows()]

    # Called by the extension once per sampling round with every completion of the round.
    def _score(self, row_idx: List[int], completions: List[str], completion_ids: List[List[int]]):
        rows = [self._py_rows[r] for r in row_idx]
        prompts: List[Any] = []
        comps: List[Any] = []
        for r, c in zip(rows, completions):
            p = r["prompt"]
            if isinstance(p, list):
                # As TRL: a final assistant message (continued by the model) moves from the
                # prompt into the completion.
                p = list(p)
                bootstrap = p.pop()["content"] if p and p[-1].get("role") == "assistant" else ""
                if isinstance(bootstrap, list):  # content parts: their text
                    bootstrap = "".join(x.get("text", "") for x in bootstrap if isinstance(x, Mapping) and x.get("type") == "text")
                comps.append([{"role": "assistant", "content": bootstrap + c}])
            else:
                comps.append(c)
            prompts.append(p)
        keys = [k for k in rows[0] if k not in ("prompt", "completion", "completion_ids")] if rows else []
        kwargs: Dict[str, Any] = {k: [r.get(k) for r in rows] for k in keys}
        # The extension object is busy (in `_step`) while this runs: its state was read before.
        kwargs["trainer_state"] = types.SimpleNamespace(global_step=self._state[0], max_steps=self._state[1])
        n = len(completions)
        per_func: List[List[float]] = []
        for f, name in zip(self._funcs, self._names):
            out = f(prompts=prompts, completions=comps, completion_ids=completion_ids, **kwargs)
            try:
                vals = list(out)
            except TypeError:
                raise InvalidInputError(f"reward function `{name}` returned {type(out).__name__}, not a list of floats") from None
            if len(vals) != n:
                raise InvalidInputError(f"reward function `{name}` returned {len(vals)} rewards for {n} completions")
            try:
                per_func.append([math.nan if v is None else float(v) for v in vals])
            except (TypeError, ValueError):
                raise InvalidInputError(f"reward function `{name}` returned a value that is not a number or None") from None
        totals = []
        for i in range(n):
            t = 0.0
            for w, vals in zip(self._weights, per_func):
                if not math.isnan(vals[i]):
                    t += w * vals[i]
            totals.append(t)
        return totals, per_func

    def step(self) -> Dict[str, Any]:
        """One optimizer step (sampling a new batch every ``num_iterations`` steps); its
        metrics with TRL's names, as a metrics.jsonl line.

        Ctrl-C (or ``cancel()``) stops the step between its GPU pieces (before each prompt is
        sampled and each completion scored, and before the update) with ``KeyboardInterrupt``:
        nothing is applied (adapter, optimizer state, ``global_step`` and the dataset cursor
        are as before), so the next ``step()`` runs as the stopped one would have. Once the
        update has begun the step completes (a Ctrl-C then raises after it, the step applied)."""
        self._state = (self._t.global_step, self._t.max_steps)
        return json.loads(self._t._step())

    def cancel(self) -> None:
        """Stops the running ``step()`` (called from another thread) at its next check, as
        Ctrl-C does: it raises ``KeyboardInterrupt`` with nothing applied. When no step runs,
        the next one stops at its first check; a step whose update was applied drops it."""
        self._cancel_flag.set()

    def train(self, on_step: Optional[Callable[[Dict[str, Any]], None]] = None) -> List[Dict[str, Any]]:
        """Steps until ``max_steps``; returns the steps' metrics."""
        out = []
        while self.global_step < self.max_steps:
            m = self.step()
            out.append(m)
            if on_step is not None:
                on_step(m)
        return out

    def save_checkpoint(self) -> str:
        """Writes ``output_dir/checkpoint-<global_step>`` as ``edgerl train`` does (the adapter,
        optimizer state, the batch in flight and the run's fingerprint); returns its path."""
        return self._t._checkpoint()

    def resume(self) -> int:
        """Continues from the newest intact checkpoint in ``output_dir`` (``edgerl train
        --resume``); returns the step it resumes at. A checkpoint of another run (model, rows,
        config keys or reward function names differ) is refused, naming what differs."""
        return self._t._resume()

    def save_adapter(self, dir: Union[str, os.PathLike]) -> str:
        """Writes the LoRA adapter to ``dir`` in PEFT's format; returns ``dir``."""
        return self._t.save_adapter(os.fspath(dir))

    def generate(
        self,
        prompt: Optional[str] = None,
        *,
        chat: Union[str, Sequence[Mapping[str, Any]], None] = None,
        images: Union[Image, Sequence[Image], None] = None,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        seed: int = 0,
    ) -> Generation:
        """``Model.generate`` with the trainer's model and its adapter as trained so far."""
        return _generate(self._t, prompt, chat, images, dict(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, seed=seed))

    def score(self, text: str, images: Union[Image, Sequence[Image], None] = None) -> Score:
        """``Model.score`` with the trainer's model and its adapter as trained so far."""
        return _score(self._t, text, images)

    @property
    def has_vision(self) -> bool:
        """Whether the trainer's model has a vision tower (rows may carry images)."""
        return self._t.has_vision

    def last_completions(self) -> List[Dict[str, Any]]:
        """The last batch's completions (``prompt``, ``completion``, ``reward``, per-rule
        ``rewards``), as completions.jsonl has them."""
        return [json.loads(s) for s in self._t._last_completions()]

    @property
    def global_step(self) -> int:
        """Optimizer steps taken."""
        return self._t.global_step

    @property
    def max_steps(self) -> int:
        return self._t.max_steps

    @property
    def output_dir(self) -> Optional[str]:
        return self._t.output_dir

    @property
    def memory_plan(self) -> Optional[str]:
        """What the memory plan chose before the run, as ``edgerl train`` prints it:
        ``gradient_checkpointing = "auto"`` (the default) settled, or ``memory_budget``'s fit;
        ``None`` when the config fixed ``gradient_checkpointing`` and no budget was given."""
        return self._t.memory_plan

    @property
    def reward_names(self) -> List[str]:
        """The Python reward functions' metric names."""
        return list(self._names)


def _truncate_log(path: str, step: int) -> None:
    """Keeps the lines of a run's log up to ``step`` (a resumed run writes the rest again),
    through a temporary file and a rename."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        keep = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= step]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(keep)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def train(
    config: Union[str, os.PathLike, Mapping[str, Any]],
    reward_funcs: Union[RewardFunc, Sequence[RewardFunc], None] = None,
    dataset: Optional[Iterable[Mapping[str, Any]]] = None,
    reward_weights: Optional[Sequence[float]] = None,
    on_step: Optional[Callable[[Dict[str, Any]], None]] = None,
    overwrite: bool = False,
    resume: bool = False,
    memory_budget: Union[str, int, None] = None,
) -> str:
    """``edgerl train`` from Python: ``max_steps`` steps of ``Trainer(config, reward_funcs,
    dataset, reward_weights)``, each step's metrics appended to ``output_dir/metrics.jsonl``
    and its completions to ``output_dir/completions.jsonl``, a checkpoint every ``save_steps``
    steps and at the end (``output_dir/checkpoint-N``, as the CLI writes them), then the
    adapter saved to ``output_dir/adapter`` (whose path is returned). Refuses an
    ``output_dir`` that holds a run unless ``overwrite`` (which removes it first) or
    ``resume``: continue from its newest intact checkpoint (the same config, rows and reward
    function names; a checkpoint of another run is refused), ending as the uninterrupted run
    would (its adapter bit for bit with the same reward functions)."""
    t = Trainer(config, reward_funcs=reward_funcs, dataset=dataset, reward_weights=reward_weights, memory_budget=memory_budget)
    out = t.output_dir
    if out is None:
        raise InvalidInputError("config: no `output_dir` (edgerl.train writes the metrics and the adapter there)")
    metrics_path = os.path.join(out, "metrics.jsonl")
    comps_path = os.path.join(out, "completions.jsonl")
    if resume:
        start = t.resume()
        _truncate_log(metrics_path, start)
        _truncate_log(comps_path, start)
    else:
        held = t._t._previous_run()
        if held and not overwrite:
            raise InvalidInputError(f"{out} already holds a run ({held}): pass resume=True to continue it, overwrite=True to replace it, or choose another output_dir")
        if held:
            t._t._remove_previous_run()
        start = 0
    os.makedirs(out, exist_ok=True)
    mode = "a" if resume else "w"
    with open(metrics_path, mode, encoding="utf-8") as metrics, open(comps_path, mode, encoding="utf-8") as comps:
        while t.global_step < t.max_steps:
            m = t.step()
            metrics.write(json.dumps(m) + "\n")
            metrics.flush()
            new_batch = (t.global_step - 1) % t._t.num_iterations == 0
            for c in t.last_completions() if new_batch else []:
                c["step"] = m.get("step")
                comps.write(json.dumps(c) + "\n")
            comps.flush()
            if on_step is not None:
                on_step(m)
            save = t._t.save_steps
            if save > 0 and t.global_step % save == 0 and t.global_step < t.max_steps:
                t.save_checkpoint()
    # A resumed run that had already finished changed nothing: its checkpoint stays as it is.
    if not resume or t.global_step > start:
        t.save_checkpoint()
    return t.save_adapter(os.path.join(out, "adapter"))


def _config_kw(config: Union[str, os.PathLike, Mapping[str, Any]]) -> Dict[str, Any]:
    """The config as the extension takes it: a dict's JSON (paths relative to the current
    directory), or a TOML file's text and path (paths relative to its directory)."""
    if isinstance(config, Mapping):
        return {"config_json": json.dumps({k: v for k, v in config.items() if v is not None}, default=_jsonable)}
    path = os.fspath(config)
    try:
        with open(path, encoding="utf-8") as f:
            return {"config_toml": f.read(), "config_path": path}
    except OSError as e:
        raise EdgerlError(f"{path}: {e.strerror or e}") from None


def _rows_file(dataset: Iterable[Mapping[str, Any]], tmp: List[Any]) -> str:
    """Rows given from Python as a JSONL file in a temporary directory (``tmp[0]``, made here),
    which the CLI's code reads as its ``dataset``: image paths made absolute (relative ones are
    relative to the current directory, as for ``Trainer``), images given as pixels written as
    PNG files beside it."""
    lines = []
    for i, r in enumerate(_rows(dataset)):
        r = _row_files(r, i, tmp)
        for col in ("images", "image"):
            v = r.get(col)
            if isinstance(v, (str, os.PathLike)):
                r = {**r, col: os.path.abspath(v)}
            elif isinstance(v, (list, tuple)):
                r = {**r, col: [os.path.abspath(x) if isinstance(x, (str, os.PathLike)) else x for x in v]}
        lines.append(json.dumps(r, default=_jsonable))
    if not tmp:
        tmp.append(tempfile.TemporaryDirectory(prefix="edgerl-rows-"))
    path = os.path.join(tmp[0].name, "rows.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def sft(
    config: Union[str, os.PathLike, Mapping[str, Any]],
    dataset: Optional[Iterable[Mapping[str, Any]]] = None,
    overwrite: bool = False,
    resume: bool = False,
) -> str:
    """``edgerl sft --config`` from Python: supervised fine-tuning with TRL ``SFTConfig``'s keys
    (``assistant_only_loss``, ``completion_only_loss``, ``max_length``, ``packing``,
    ``per_device_train_batch_size``, ``gradient_accumulation_steps``, ``learning_rate``,
    ``max_steps``, …; ``[lora]``, ``init_adapter``, optimizer and ``output_dir`` as in GRPO
    runs) and TRL SFTTrainer's token-mean loss. ``config``: an sft.toml path or a dict of its
    keys. ``dataset``: rows (``messages`` with assistant turns, ``prompt``/``completion``, or
    ``text``) instead of the config's ``dataset`` file. Writes what the CLI writes
    (``output_dir/metrics.jsonl``, checkpoints every ``save_steps``, the PEFT adapter) and
    returns the adapter's directory, ready as a GRPO run's ``init_adapter``. ``resume``: go on
    from the last checkpoint (``--resume``); ``overwrite``: replace a finished run."""
    kw = _config_kw(config)
    tmp: List[Any] = []
    if dataset is not None:
        kw["rows_path"] = _rows_file(dataset, tmp)
    start = "resume" if resume else "overwrite" if overwrite else "fresh"
    return _edgerl._sft(start=start, **kw)


def evaluate(
    config: Union[str, os.PathLike, Mapping[str, Any]],
    dataset: Optional[Iterable[Mapping[str, Any]]] = None,
    adapter: Optional[Union[str, os.PathLike]] = None,
    samples: int = 1,
    temperature: float = 0.0,
    batch_size: Optional[int] = None,
    output: Optional[Union[str, os.PathLike]] = None,
) -> Dict[str, Any]:
    """``edgerl eval --config … --json`` from Python: the base model, or ``adapter`` (a PEFT
    directory), on rows scored by the config's ``[[rewards]]`` rules. ``dataset``: rows in place
    of the config's ``dataset`` file (``--dataset``); ``samples`` completions per row (more than one needs
    ``temperature > 0``); ``batch_size`` rows decoded side by side (TRL's
    ``per_device_eval_batch_size``; the results do not depend on it; ``None``: 16, at most
    64 // ``samples``). Returns ``{"rows",
    "completions", "samples", "temperature", "mean_reward", "accuracy", "any_success",
    "rewards": {rule: mean}, "adapter"}``; with ``output``, each completion is written there as
    a JSON line (``--output``)."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InvalidInputError(f"samples must be an int >= 1, got {samples!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise InvalidInputError(f"batch_size must be an int >= 1, got {batch_size!r}")
    kw = _config_kw(config)
    tmp: List[Any] = []
    if dataset is not None:
        kw["rows_path"] = _rows_file(dataset, tmp)
    out = _edgerl._evaluate(
        adapter=None if adapter is None else os.fspath(adapter),
        samples=samples,
        temperature=float(temperature),
        batch_size=batch_size,
        output=None if output is None else os.fspath(output),
        **kw,
    )
    return json.loads(out)
