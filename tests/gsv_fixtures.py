"""Random-weight GPT-SoVITS model files, written the way GPT-SoVITS itself writes them.

Names and shapes come from the v2 manifest (``shared/reference/gpt_sovits_v2_params.json``, taken from
upstream's modules); values are ``randn * 0.02`` stored in fp16. s2 files are written like
``process_ckpt.savee`` (``my_save`` for ``PK`` files, ``my_save2``'s byte tag otherwise), optionally with
the config pickled as GPT-SoVITS's ``utils.HParams`` class; s1 files like ``s1_train.py``; discriminators
as the published ``s2D*.pth`` (``{"weight": state dict}``).
"""

from __future__ import annotations

import collections
import copy
import io
import json
import sys
import types
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import torch

S1_PREFIX = "model."
MANIFEST = Path(__file__).resolve().parent / "reference" / "gpt_sovits_v2_params.json"
"""Every s1 and s2 tensor name and shape of the published v2 files (read off upstream's modules)."""


def manifest_path() -> Path:
    """The v2 manifest committed beside the tests."""
    return MANIFEST


@lru_cache(maxsize=1)
def _manifest() -> dict:
    return json.loads(manifest_path().read_text(encoding="utf-8"))


def manifest_shapes(which: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape. ``"s2"``: every SynthesizerTrn tensor, ``enc_q.*`` included. ``"s1"``: the
    Text2SemanticDecoder tensors WITHOUT the ``model.`` prefix (as :func:`read_s1` returns them);
    ``"s1_file"``: the same with the prefix, as stored in a ``.ckpt``."""
    key = "s1" if which == "s1_file" else which
    if key not in ("s1", "s2"):
        raise ValueError(f"manifest_shapes: {which!r} is not 's1', 's1_file' or 's2'")
    shapes = {name: tuple(spec[0]) for name, spec in _manifest()[key]["params"].items()}
    if which == "s1":
        shapes = {name[len(S1_PREFIX):]: shape for name, shape in shapes.items()}
    return shapes


def manifest_config(which: str) -> dict:
    """A fresh copy of upstream's config for ``"s1"`` (s1longer-v2.yaml) or ``"s2"`` (s2.json)."""
    return copy.deepcopy(_manifest()[which]["config"])


def random_weights(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """fp16 tensors of ``randn * 0.02`` in the given shapes."""
    generator = torch.Generator().manual_seed(seed)
    return {name: (torch.randn(shape, generator=generator) * 0.02).half() for name, shape in shapes.items()}


def s2_shapes(version: str = "v2", include_enc_q: bool = False) -> dict[str, tuple[int, ...]]:
    """s2 shapes for ``version``: v2 from the manifest; v1 with its two tells (322 symbols, 1025-bin
    reference encoder); v2Pro/v2ProPlus with v2's shapes plus their own tensors (``sv_emb``, ``ge_to512``,
    ``prelu`` at gin 1024; v2ProPlus's 768-channel ``dec.conv_pre``). Other gin-dependent v2Pro shapes
    stay at v2's: these files are for version detection, not for running v2Pro."""
    shapes = {k: v for k, v in manifest_shapes("s2").items() if include_enc_q or not k.startswith("enc_q.")}
    if version == "v1":
        shapes["enc_p.text_embedding.weight"] = (322, 192)
        shapes["ref_enc.spectral.0.fc.weight"] = (128, 1025)
    elif version in ("v2Pro", "v2ProPlus"):
        shapes.update({"sv_emb.weight": (1024, 20480), "sv_emb.bias": (1024,), "ge_to512.weight": (512, 1024)})
        shapes.update({"ge_to512.bias": (512,), "prelu.weight": (1024,)})
        if version == "v2ProPlus":
            shapes.update({"dec.conv_pre.weight": (768, 192, 7), "dec.conv_pre.bias": (768,)})
    elif version != "v2":
        raise ValueError(f"s2_shapes: no shapes for {version!r} (tag a v2 file with its header instead)")
    return shapes


def _hparams_tree(config: dict, cls: type) -> object:
    node = cls()
    for key, value in config.items():
        setattr(node, key, _hparams_tree(value, cls) if isinstance(value, dict) else value)
    return node


def _save(obj: object, path: Path, header: bytes, hparams_class: bool) -> None:
    """torch.save ``obj`` as upstream does, with ``obj["config"]`` turned into a ``utils.HParams`` tree
    when asked (a stand-in class registered as module ``utils`` only while saving)."""
    saved_utils = sys.modules.get("utils")
    if hparams_class:
        cls = type("HParams", (), {})
        cls.__module__ = "utils"
        cls.__qualname__ = "HParams"
        fake = types.ModuleType("utils")
        fake.HParams = cls
        sys.modules["utils"] = fake
        obj = dict(obj, config=_hparams_tree(obj["config"], cls))
        obj = collections.OrderedDict(obj)
    try:
        if header == b"PK":
            torch.save(obj, str(path))  # my_save: a plain zip named after the file's stem
        else:
            buffer = io.BytesIO()  # my_save2: the zip's "PK" overwritten by the version tag
            torch.save(obj, buffer)
            Path(path).write_bytes(header + buffer.getvalue()[2:])
    finally:
        if hparams_class:
            if saved_utils is None:
                sys.modules.pop("utils", None)
            else:
                sys.modules["utils"] = saved_utils


def _subset(shapes: dict[str, tuple[int, ...]], keys: Iterable[str] | None) -> dict[str, tuple[int, ...]]:
    if keys is None:
        return shapes
    unknown = [k for k in keys if k not in shapes]
    if unknown:
        raise KeyError(f"not an s2/s1 tensor of this version: {unknown[0]}")
    return {k: shapes[k] for k in keys}


def write_random_s2(
    path: Path,
    version: str = "v2",
    header: bytes = b"PK",
    hparams_class: bool = False,
    include_enc_q: bool = False,
    keys: Iterable[str] | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Write an s2 ``.pth`` (all tensors of ``version``, or just ``keys``); returns the fp16 weights."""
    weights = random_weights(_subset(s2_shapes(version, include_enc_q), keys), seed)
    obj = collections.OrderedDict(weight=dict(weights), config=manifest_config("s2"), info="8epoch_96iteration")
    _save(obj, Path(path), header, hparams_class)
    return weights


def write_v1_s2(path: Path, keys: Iterable[str] | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """A v1-shaped s2 (text embedding of 322 symbols, reference encoder over 1025 bins), untagged."""
    return write_random_s2(path, version="v1", keys=keys, seed=seed)


def write_random_s1(path: Path, keys: Iterable[str] | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """Write an s1 ``.ckpt`` as ``s1_train.py`` does; ``keys`` are unprefixed names. Returns the fp16
    weights under their unprefixed names."""
    weights = random_weights(_subset(manifest_shapes("s1"), keys), seed)
    stored = collections.OrderedDict((S1_PREFIX + k, v) for k, v in weights.items())
    obj = collections.OrderedDict(weight=stored, config=manifest_config("s1"), info="GPT-e15")
    _save(obj, Path(path), b"PK", hparams_class=False)
    return weights


def discriminator_shapes(periods: Iterable[int] = (2, 3, 5, 7, 11)) -> dict[str, tuple[int, ...]]:
    """``MultiPeriodDiscriminator`` tensors (models.py, old-style weight norm ``weight_g``/``weight_v``):
    ``discriminators.0`` is the scale discriminator, then one period discriminator per period."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(prefix: str, weight: tuple[int, ...]) -> None:
        shapes[f"{prefix}.bias"] = (weight[0],)
        shapes[f"{prefix}.weight_g"] = (weight[0],) + (1,) * (len(weight) - 1)
        shapes[f"{prefix}.weight_v"] = weight

    scale = [(16, 1, 15), (64, 4, 41), (256, 4, 41), (1024, 4, 41), (1024, 4, 41), (1024, 1024, 5)]
    for index, weight in enumerate(scale):
        conv(f"discriminators.0.convs.{index}", weight)
    conv("discriminators.0.conv_post", (1, 1024, 3))
    period = [(32, 1, 5, 1), (128, 32, 5, 1), (512, 128, 5, 1), (1024, 512, 5, 1), (1024, 1024, 5, 1)]
    for number, _ in enumerate(periods, start=1):
        for index, weight in enumerate(period):
            conv(f"discriminators.{number}.convs.{index}", weight)
        conv(f"discriminators.{number}.conv_post", (1, 1024, 3, 1))
    return shapes


def write_random_d(path: Path, periods: Iterable[int] = (2, 3, 5, 7, 11), seed: int = 0) -> dict[str, torch.Tensor]:
    """Write an ``s2D*.pth`` (``{"weight": state dict}``); returns the fp16 weights."""
    weights = random_weights(discriminator_shapes(periods), seed)
    _save({"weight": dict(weights)}, Path(path), b"PK", hparams_class=False)
    return weights
