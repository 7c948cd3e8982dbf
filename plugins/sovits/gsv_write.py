"""Writing s1 ``.ckpt`` and s2 ``.pth`` files that GPT-SoVITS's webui, api.py and TTS.py load as v2.

Both are ``torch.save`` of ``{"weight": fp16 state dict, "config": plain dict, "info": str}``, as
upstream's ``process_ckpt.savee`` and ``s1_train.py`` write them; the config is a plain dict, never a
pickled class, so the files load with ``weights_only=True``. s2 files start with ``PK`` (untagged), so
GPT-SoVITS tells v1 from v2 by size: under 82,978 KiB is v1. That size depends on the zip's internal folder
name, which ``torch.save`` takes from the file's stem; the temporary file here has a fixed 40-character
stem, which keeps a full v2 export about 45 KiB above the threshold, and the size is checked before the
file is moved into place.
"""

from __future__ import annotations

import collections
import os
import secrets
from pathlib import Path
from typing import Any, Mapping

import torch

from tts_host.errors import TTSHostError

from .gsv_pickle import ZIP_HEADER, to_plain
from .gsv_read import S1_PREFIX, version_of_weights

V1_SIZE_THRESHOLD = 82978 * 1024  # process_ckpt.get_sovits_version_from_path_fast: smaller untagged s2 = v1
FP16_MAX = float(torch.finfo(torch.float16).max)
_PLAIN = (str, int, float, bool, type(None))
# What upstream's loaders read from the config before building the model.
_S2_NEEDS = {
    "data": ("filter_length", "hop_length", "win_length", "sampling_rate", "n_speakers"),
    "train": ("segment_size",),
}
_S1_NEEDS = {
    "data": ("max_sec",),
    "model": ("hidden_dim", "embedding_dim", "head", "n_layer", "vocab_size", "phoneme_vocab_size", "dropout", "EOS"),
}


def _plain_config(path: Path, config: Any, needs: Mapping[str, tuple[str, ...]], extra: tuple[str, ...] = ()) -> dict:
    config = to_plain(dict(config) if isinstance(config, Mapping) else config)
    if not isinstance(config, dict):
        raise TTSHostError(f"{path}: cannot export: the config is a {type(config).__name__}, not a dict")

    def check(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TTSHostError(f"{path}: cannot export: config key {where}{key!r} is not a string")
                check(item, f"{where}{key}.")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                check(item, f"{where}{index}.")
        elif not isinstance(value, _PLAIN):
            raise TTSHostError(
                f"{path}: cannot export: config value {where.rstrip('.')} is a {type(value).__name__}; "
                "only plain values (str, numbers, bool, None, lists, dicts) can be written"
            )

    check(config, "")
    for section, keys in needs.items():
        for key in keys:
            if not isinstance(config.get(section), dict) or key not in config[section]:
                raise TTSHostError(f"{path}: cannot export: the config lacks {section}.{key}, which GPT-SoVITS reads")
    for section in extra:
        if not isinstance(config.get(section), dict):
            raise TTSHostError(f"{path}: cannot export: the config lacks the '{section}' section GPT-SoVITS reads")
    return config


def _fp16(path: Path, key: str, tensor: Any) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        kind = f"a {tensor.dtype} tensor" if isinstance(tensor, torch.Tensor) else f"a {type(tensor).__name__}"
        raise TTSHostError(f"{path}: cannot export: {key} is {kind}, not a floating-point tensor")
    source = tensor.detach()
    if not bool(torch.isfinite(source).all()):
        raise TTSHostError(f"{path}: cannot export: {key} holds NaN or infinite values")
    peak = float(source.abs().max()) if source.numel() else 0.0
    if peak > FP16_MAX:
        raise TTSHostError(
            f"{path}: cannot export: {key} overflows float16 (|value| up to {peak:.3g} > {FP16_MAX:.0f})"
        )
    return source.to(device="cpu", dtype=torch.float16, copy=True).contiguous()


def _save_atomic(path: Path, obj: Any, *, min_size: int = 0, size_reason: str = "") -> None:
    """``torch.save`` beside ``path`` under a fixed-length ASCII stem, check the size, fsync, then replace."""
    path = Path(path)
    if not path.parent.is_dir():
        raise TTSHostError(f"{path}: cannot export: folder {path.parent} does not exist")
    temp = path.parent / f"tts-host-export-{secrets.token_hex(12)}.partial"  # stem: 40 ASCII characters
    try:
        torch.save(obj, str(temp))
        with open(temp, "rb+") as handle:
            if handle.read(2) != ZIP_HEADER:
                raise TTSHostError(f"{path}: cannot export: torch.save wrote no zip archive")
            os.fsync(handle.fileno())
        size = temp.stat().st_size
        if size < min_size:
            raise TTSHostError(f"{path}: cannot export: the file would be {size:,} bytes, {size_reason}")
        os.replace(temp, path)
    except TTSHostError:
        raise
    except (OSError, RuntimeError) as error:
        reason = getattr(error, "strerror", None) or (str(error).splitlines() or [type(error).__name__])[0]
        raise TTSHostError(f"{path}: cannot write: {reason}") from None
    finally:
        temp.unlink(missing_ok=True)


def write_s2(path: Path, weights: Mapping[str, torch.Tensor], config: dict, info: str) -> None:
    """Export v2 s2 weights as GPT-SoVITS saves them: fp16, without ``enc_q.*``, plain-dict config, ``PK``."""
    path = Path(path)
    kept = {key: _fp16(path, key, tensor) for key, tensor in weights.items() if not key.startswith("enc_q.")}
    version = version_of_weights(kept)
    if version != "v2":
        found = "no enc_p.text_embedding.weight" if version == "unknown" else f"the weights are {version}-shaped"
        raise TTSHostError(f"{path}: cannot export: tts-host exports GPT-SoVITS v2 s2 models only ({found})")
    config = _plain_config(path, config, _S2_NEEDS, extra=("model",))
    obj = {"weight": kept, "config": config, "info": str(info)}
    reason = (
        f"under GPT-SoVITS's {V1_SIZE_THRESHOLD:,}-byte v1 threshold, so GPT-SoVITS would load it as v1 "
        "(are the weights complete?)"
    )
    _save_atomic(path, obj, min_size=V1_SIZE_THRESHOLD, size_reason=reason)


def write_s1(path: Path, weights: Mapping[str, torch.Tensor], config: dict, info: str) -> None:
    """Export s1 weights as ``s1_train.py`` saves them: ``model.``-prefixed names, fp16, plain-dict config."""
    path = Path(path)
    prefixed: collections.OrderedDict[str, torch.Tensor] = collections.OrderedDict()
    for key, tensor in weights.items():
        if key.startswith(S1_PREFIX):
            raise TTSHostError(f"{path}: cannot export: {key} already carries the '{S1_PREFIX}' prefix")
        prefixed[S1_PREFIX + key] = _fp16(path, key, tensor)
    config = _plain_config(path, config, _S1_NEEDS, extra=("train",))
    _save_atomic(path, {"weight": prefixed, "config": config, "info": str(info)})


__all__ = ["V1_SIZE_THRESHOLD", "write_s1", "write_s2"]
