"""Reading GPT-SoVITS's s1 (GPT) ``.ckpt``, s2 (SoVITS) ``.pth`` and s2 discriminator files, and checking them.

Upstream loads s2 weights with ``strict=False`` and guesses v1/v2 from the file size; here the version is
read from the header tag where there is one and otherwise from the tensors themselves (the tells below),
and :func:`check_state_dict` checks every name and shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from tts_host.errors import TTSHostError, ValidationError

from .gsv_pickle import VERSION_TAGS, load_torch_file, to_plain

S1_PREFIX = "model."
TEXT_EMBEDDING = "enc_p.text_embedding.weight"  # 322 symbols in v1, 732 in v2
REF_ENC_INPUT = "ref_enc.spectral.0.fc.weight"  # 1025 spectrogram bins in v1, the first 704 in v2
DEC_CONV_PRE = "dec.conv_pre.weight"  # 512 channels in v2/v2Pro, 768 in v2ProPlus
V2PRO_PREFIXES = ("sv_emb.", "ge_to512.", "prelu.")  # speaker-verification embedding path of v2Pro(Plus)
V3_PREFIXES = ("cfm.", "bridge.", "wns1.", "linear_mel.")  # SynthesizerTrnV3 (v3 and v4 share its names)


@dataclass(frozen=True)
class GsvS2File:
    """An s2 (SoVITS) ``.pth``: float32 weights under upstream's names, its config as a plain dict."""

    weights: dict[str, torch.Tensor]
    config: dict
    version: str  # "v1" | "v2" | "v2Pro" | "v2ProPlus" | "v3" | "v4" | "unknown"
    header: bytes  # the first two bytes as found: b"PK" or a version tag such as b"05"
    info: str = ""
    lora: bool = False  # a v3/v4 LoRA file (header b"03"/b"04"): only adapter weights


@dataclass(frozen=True)
class GsvS1File:
    """An s1 (GPT) ``.ckpt``: float32 weights without the ``model.`` prefix, its config as a plain dict."""

    weights: dict[str, torch.Tensor]
    config: dict
    info: str = ""


def _float32_weights(path: Path, weights: Any, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(weights, Mapping):
        raise TTSHostError(f"{path}: not a GPT-SoVITS {what} file ('weight' is a {type(weights).__name__}, not a dict)")
    result: dict[str, torch.Tensor] = {}
    for key, tensor in weights.items():
        if not isinstance(key, str) or not isinstance(tensor, torch.Tensor):
            kind = type(tensor).__name__
            raise TTSHostError(f"{path}: not a GPT-SoVITS {what} file (weight entry {key!r} is a {kind})")
        result[key] = tensor.float() if tensor.is_floating_point() else tensor
    return result


def _top_level(path: Path, obj: Any, what: str, hint: str) -> Mapping:
    if not isinstance(obj, Mapping):
        raise TTSHostError(f"{path}: not a GPT-SoVITS {what} file (it holds a {type(obj).__name__})")
    if "weight" not in obj:
        if "model" in obj and "optimizer" in obj:
            raise TTSHostError(f"{path}: a GPT-SoVITS training checkpoint, not an exported {what} file; {hint}")
        if "state_dict" in obj:
            raise TTSHostError(f"{path}: a Lightning training checkpoint, not an exported {what} file; {hint}")
        raise TTSHostError(f"{path}: not a GPT-SoVITS {what} file (no 'weight' entry)")
    return obj


def _config(path: Path, obj: Mapping, what: str) -> dict:
    config = to_plain(obj.get("config"))
    if not isinstance(config, dict):
        raise TTSHostError(f"{path}: not a GPT-SoVITS {what} file ('config' is a {type(config).__name__}, not a dict)")
    return config


def _rows(weights: Mapping[str, torch.Tensor], key: str, dim: int) -> int | None:
    tensor = weights.get(key)
    return int(tensor.shape[dim]) if tensor is not None and tensor.dim() > dim else None


def version_of_weights(weights: Mapping[str, torch.Tensor]) -> str:
    """The model version the tensors show: "v1", "v2", "v2Pro", "v2ProPlus", "v3" (or v4) or "unknown"."""
    if any(key.startswith(V3_PREFIXES) for key in weights):
        return "v3"
    if any(key.startswith(V2PRO_PREFIXES) for key in weights):
        return "v2ProPlus" if _rows(weights, DEC_CONV_PRE, 0) == 768 else "v2Pro"
    if _rows(weights, TEXT_EMBEDDING, 0) == 322 or _rows(weights, REF_ENC_INPUT, 1) == 1025:
        return "v1"
    if _rows(weights, TEXT_EMBEDDING, 0) == 732:
        return "v2"
    return "unknown"


def _version(header: bytes, weights: Mapping[str, torch.Tensor]) -> tuple[str, bool]:
    tagged, lora = VERSION_TAGS.get(header, (None, False))
    found = version_of_weights(weights)
    if tagged in {"v3", "v4", "v2Pro", "v2ProPlus"}:
        return tagged, lora  # the tag decides: LoRA files hold adapters only, v3/v4 share tensor names
    if found != "unknown":
        return found, False
    return tagged or found, False


def read_s2(path: Path) -> GsvS2File:
    """Read an s2 (SoVITS) ``.pth`` in any GPT-SoVITS version; :func:`check_v2` refuses the others."""
    path = Path(path)
    obj, header = load_torch_file(path)
    obj = _top_level(path, obj, "s2 (SoVITS)", "pass the file GPT-SoVITS wrote to SoVITS_weights*/")
    weights = _float32_weights(path, obj["weight"], "s2 (SoVITS)")
    if weights and all(key.startswith(S1_PREFIX) for key in weights):
        raise TTSHostError(f"{path}: an s1 (GPT) model, not an s2 (SoVITS) model")
    version, lora = _version(header, weights)
    lora = lora or "lora_rank" in obj
    return GsvS2File(weights, _config(path, obj, "s2 (SoVITS)"), version, header, str(obj.get("info", "")), lora)


def read_s1(path: Path) -> GsvS1File:
    """Read an s1 (GPT) ``.ckpt`` and strip the ``model.`` prefix from its tensor names."""
    path = Path(path)
    obj, _header = load_torch_file(path)
    obj = _top_level(path, obj, "s1 (GPT)", "pass the file GPT-SoVITS wrote to GPT_weights*/")
    weights = _float32_weights(path, obj["weight"], "s1 (GPT)")
    stripped: dict[str, torch.Tensor] = {}
    for key, tensor in weights.items():
        if not key.startswith(S1_PREFIX):
            if key.startswith(("enc_p.", "dec.", "ssl_proj.", "quantizer.")):
                raise TTSHostError(f"{path}: an s2 (SoVITS) model, not an s1 (GPT) model")
            raise TTSHostError(f"{path}: not a GPT-SoVITS s1 (GPT) file (tensor {key!r} lacks the 'model.' prefix)")
        stripped[key[len(S1_PREFIX):]] = tensor
    return GsvS1File(stripped, _config(path, obj, "s1 (GPT)"), str(obj.get("info", "")))


def read_s2_discriminator(path: Path) -> dict[str, torch.Tensor]:
    """An s2 discriminator's float32 state dict: the published ``s2D*.pth`` holds ``{"weight": state_dict}``
    (what ``s2_train.py`` loads as ``pretrained_s2D``); a training checkpoint ``D_*.pth`` holds it under
    ``"model"`` (with the optimizer state, which is ignored)."""
    path = Path(path)
    obj, _header = load_torch_file(path)
    if isinstance(obj, Mapping) and "weight" not in obj and "model" in obj:
        weights = obj["model"]
    else:
        weights = _top_level(path, obj, "s2 discriminator", "pass s2D*.pth or logs_s2*/D_*.pth")["weight"]
    result = _float32_weights(path, weights, "s2 discriminator")
    if not any(key.startswith("discriminators.") for key in result):
        raise TTSHostError(f"{path}: not a GPT-SoVITS s2 discriminator (no 'discriminators.*' tensors)")
    return result


def check_v2(s2: GsvS2File, path: Path) -> None:
    """Refuse, in one line, any s2 model but a plain v2 one."""
    if s2.version == "v2":
        return
    if s2.version == "unknown":
        raise TTSHostError(
            f"{path}: not a recognisable GPT-SoVITS s2 model (no {TEXT_EMBEDDING}); tts-host imports v2 only"
        )
    kind = f"{s2.version} LoRA" if s2.lora else s2.version
    raise TTSHostError(f"{path}: a GPT-SoVITS {kind} model; tts-host imports v2 only")


def _shape(shape: Any) -> str:
    dims = tuple(int(d) for d in shape)
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def check_state_dict(
    path: Path,
    actual: Mapping[str, torch.Tensor],
    expected: Mapping[str, tuple[int, ...]],
    optional_prefixes: tuple[str, ...] = (),
) -> None:
    """Strictly compare tensor names and shapes with ``expected`` and require finite values.

    Names under ``optional_prefixes`` may be absent (e.g. ``enc_q.``, which user saves drop); when present
    they are checked like the rest. Each failure is one :class:`ValidationError` line naming the file and
    the first offending tensor."""
    file = str(path)
    missing = [k for k in expected if k not in actual and not k.startswith(tuple(optional_prefixes))]
    unexpected = [k for k in actual if k not in expected]
    if missing:
        more = f"; {len(missing)} missing in all" if len(missing) > 1 else ""
        also = f"; {len(unexpected)} unexpected, first {unexpected[0]}" if unexpected else ""
        raise ValidationError(file, f"tensor {missing[0]} {_shape(expected[missing[0]])}", f"missing{more}{also}")
    if unexpected:
        more = f"; {len(unexpected)} unexpected in all" if len(unexpected) > 1 else ""
        key = unexpected[0]
        raise ValidationError(file, f"no tensor {key}", f"one of shape {_shape(actual[key].shape)}{more}")
    for key, tensor in actual.items():
        if tuple(tensor.shape) != tuple(expected[key]):
            raise ValidationError(file, f"{key} of shape {_shape(expected[key])}", _shape(tensor.shape))
    for key, tensor in actual.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            total = math.prod(tensor.shape)
            raise ValidationError(file, f"finite values in {key}", f"{bad} of {total} NaN or infinite")


__all__ = [
    "GsvS1File",
    "GsvS2File",
    "check_state_dict",
    "check_v2",
    "read_s1",
    "read_s2",
    "read_s2_discriminator",
    "version_of_weights",
]
