"""LoRA adapters as numpy arrays, read and written as PEFT directories, and their aggregation.

An adapter is ``adapter_config.json`` (r, lora_alpha, target_modules, ...) and
``adapter_model.safetensors`` with one ``lora_A`` ([r, d_in]) and one ``lora_B`` ([d_out, r])
tensor per adapted module, named as PEFT names them. The layer's update is
``ΔW = scale · B · A`` with ``scale = alpha / r`` (``alpha / sqrt(r)`` with rsLoRA); every
client of a federation has the same config, so the scale is common and aggregation works on
``B · A``.

Two ways to aggregate the clients' adapters, weighted by their example counts ``n_k``:

- ``fedavg``: ``A = Σ w_k A_k`` and ``B = Σ w_k B_k`` (``w_k = n_k / Σ n``), as FedAvg does with
  any parameters. Cheap, but ``B · A`` is not the mean of the clients' updates (cross terms).
- ``exact``: the mean update ``M = Σ w_k B_k A_k``, re-factorised to rank r by truncated SVD,
  as FlexLoRA does: ``B = U_r sqrt(S_r)``, ``A = sqrt(S_r) V_rᵀ``. ``M`` has rank ≤ K·r, so the
  SVD runs on a (K·r)×(K·r) core from QR factorisations of the stacked factors; the d_out×d_in
  matrix is never formed. Exact when the K·r directions span ≤ r dimensions, otherwise the
  best rank-r approximation of the mean update (Eckart–Young).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from typing import Any, Dict, Mapping, Sequence, Tuple, Union

import numpy as np

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
AGGREGATIONS = ("fedavg", "exact")

_AB = re.compile(r"^(?P<module>.+)\.lora_(?P<which>[AB])\.weight$")


def _safetensors():
    try:
        import safetensors.numpy as st
    except ImportError:  # pragma: no cover - the `flower` extra installs it
        raise ImportError("edgerl.flower reads and writes adapters with `safetensors`: pip install 'edgerl[flower]'") from None
    return st


class Adapter:
    """A LoRA adapter in memory: ``tensors`` (PEFT names → float32 arrays) and ``config``
    (adapter_config.json as a dict)."""

    __slots__ = ("tensors", "config")

    def __init__(self, tensors: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> None:
        self.tensors: Dict[str, np.ndarray] = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
        self.config: Dict[str, Any] = dict(config)
        self.pairs()  # checks the names and shapes

    @classmethod
    def load(cls, dir: Union[str, os.PathLike]) -> "Adapter":
        """A PEFT adapter directory (as ``Trainer.save_adapter`` writes it)."""
        d = os.fspath(dir)
        with open(os.path.join(d, CONFIG_FILE), encoding="utf-8") as f:
            config = json.load(f)
        return cls(_safetensors().load_file(os.path.join(d, WEIGHTS_FILE)), config)

    def save(self, dir: Union[str, os.PathLike]) -> str:
        """Writes a PEFT adapter directory that edgerl (``init_adapter``, ``Model(adapter=)``)
        and ``PeftModel.from_pretrained`` load; each file goes to a temp file, then is renamed."""
        d = os.fspath(dir)
        os.makedirs(d, exist_ok=True)
        # Weights first, then the config: a directory with a config has its weights.
        weights, config = os.path.join(d, WEIGHTS_FILE), os.path.join(d, CONFIG_FILE)
        tmp = _temp_name(weights)
        try:
            data = _safetensors().save(self.tensors, metadata={"format": "pt"})
            with open(tmp, "wb") as f:  # (save_file would make it 0600)
                f.write(data)
            os.replace(tmp, weights)
            tmp = _temp_name(config)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self.config, f, indent=2)
            os.replace(tmp, config)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return d

    @property
    def r(self) -> int:
        return int(self.config["r"])

    def pairs(self) -> Dict[str, Tuple[str, str]]:
        """Module name → (name of its A tensor, name of its B tensor); every tensor is one of a
        pair with consistent shapes ([r, d_in] and [d_out, r])."""
        found: Dict[str, Dict[str, str]] = {}
        for name in self.tensors:
            m = _AB.match(name)
            if m is None:
                raise ValueError(f"adapter tensor {name}: not a LoRA tensor (…lora_A.weight / …lora_B.weight)")
            found.setdefault(m["module"], {})[m["which"]] = name
        out = {}
        r = int(self.config.get("r", 0))
        for module, ab in sorted(found.items()):
            if set(ab) != {"A", "B"}:
                raise ValueError(f"adapter module {module}: has lora_{next(iter(ab))} but not its pair")
            a, b = self.tensors[ab["A"]], self.tensors[ab["B"]]
            if a.ndim != 2 or b.ndim != 2 or a.shape[0] != r or b.shape[1] != r:
                raise ValueError(f"adapter module {module}: A {a.shape} and B {b.shape} do not have rank r = {r}")
            out[module] = (ab["A"], ab["B"])
        return out

    def delta(self, module: str) -> np.ndarray:
        """``B · A`` of one module (without the alpha/r scale), d_out × d_in."""
        a, b = self.pairs()[module]
        return self.tensors[b].astype(np.float64) @ self.tensors[a].astype(np.float64)

    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())


def _temp_name(path: str) -> str:
    """A temp file beside `path`, unique to this writer."""
    d, name = os.path.split(path)
    return os.path.join(d, f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _weights(counts: Sequence[float]) -> np.ndarray:
    w = np.asarray(counts, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"example counts {list(counts)}: need at least one, all ≥ 0, with a positive sum")
    return w / w.sum()


def _check_same(adapters: Sequence[Adapter]) -> None:
    if not adapters:
        raise ValueError("no adapters to aggregate")
    first = adapters[0]
    keys = ("r", "lora_alpha", "use_rslora", "target_modules")
    for i, a in enumerate(adapters[1:], 1):
        for k in keys:
            if a.config.get(k) != first.config.get(k):
                raise ValueError(f"adapter {i} has {k} = {a.config.get(k)!r}, adapter 0 {first.config.get(k)!r}: clients must share the LoRA config")
        if set(a.tensors) != set(first.tensors):
            raise ValueError(f"adapter {i} has other tensors than adapter 0")
        for k, t in a.tensors.items():
            if t.shape != first.tensors[k].shape:
                raise ValueError(f"adapter {i}: {k} has shape {t.shape}, adapter 0 {first.tensors[k].shape}")


def fedavg(adapters: Sequence[Adapter], counts: Sequence[float]) -> Adapter:
    """FedAvg over A and B separately, weighted by example counts."""
    _check_same(adapters)
    w = _weights(counts)
    out = {}
    for k in adapters[0].tensors:
        acc = np.zeros(adapters[0].tensors[k].shape, dtype=np.float64)
        for wk, a in zip(w, adapters):
            acc += wk * a.tensors[k]
        out[k] = acc.astype(np.float32)
    return Adapter(out, adapters[0].config)


def exact(adapters: Sequence[Adapter], counts: Sequence[float]) -> Adapter:
    """The weighted mean of the updates ``B_k · A_k``, truncated to rank r by SVD (FlexLoRA)."""
    _check_same(adapters)
    w = _weights(counts)
    r = adapters[0].r
    out = {}
    for module, (ka, kb) in adapters[0].pairs().items():
        # M = Σ w_k B_k A_k = P · Q with P = [w_1 B_1 … w_K B_K] (d_out × Kr), Q = [A_1; …; A_K].
        p = np.concatenate([wk * a.tensors[kb].astype(np.float64) for wk, a in zip(w, adapters)], axis=1)
        q = np.concatenate([a.tensors[ka].astype(np.float64) for a in adapters], axis=0)
        qp, rp = np.linalg.qr(p)  # P = Qp Rp
        qq, rq = np.linalg.qr(q.T)  # Qᵀ = Qq Rq, so M = Qp (Rp Rqᵀ) Qqᵀ
        u, s, vt = np.linalg.svd(rp @ rq.T)
        if len(s) < r:  # a layer narrower than r (or fewer directions): zero-padded
            u, vt = np.pad(u, ((0, 0), (0, r - len(s)))), np.pad(vt, ((0, r - len(s)), (0, 0)))
            s = np.pad(s, (0, r - len(s)))
        root = np.sqrt(s[:r])
        out[kb] = ((qp @ u[:, :r]) * root).astype(np.float32)
        out[ka] = (root[:, None] * (vt[:r] @ qq.T)).astype(np.float32)
    return Adapter(out, adapters[0].config)


def aggregate(adapters: Sequence[Adapter], counts: Sequence[float], how: str = "fedavg") -> Adapter:
    """``fedavg`` or ``exact`` (see the module's docstring)."""
    if how == "fedavg":
        return fedavg(adapters, counts)
    if how == "exact":
        return exact(adapters, counts)
    raise ValueError(f"aggregation {how!r}: use one of {', '.join(AGGREGATIONS)}")


def copy_adapter(src: Union[str, os.PathLike], dst: Union[str, os.PathLike]) -> str:
    """Copies a PEFT directory's two files (a client keeping what it trained)."""
    os.makedirs(dst, exist_ok=True)
    for f in (WEIGHTS_FILE, CONFIG_FILE):
        shutil.copyfile(os.path.join(src, f), os.path.join(dst, f))
    return os.fspath(dst)


__all__ = ["AGGREGATIONS", "Adapter", "aggregate", "copy_adapter", "exact", "fedavg"]
