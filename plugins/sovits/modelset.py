"""Building SoVITS's modules from a model folder's configs, and the exact tensors each file must hold.

The expected names and shapes come from the modules themselves, built on torch's ``meta`` device
(no memory, no time), translated to GPT-SoVITS's names by :mod:`tts_host.plugins.sovits.keys`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from tts_host.errors import ValidationError
from tts_host.plugins.sovits.config import S1Config, S2Config
from tts_host.plugins.sovits.files import FILES


def read_json(folder: Path, role: str) -> dict[str, Any]:
    """The JSON file of ``role`` in ``folder``; unreadable JSON is a one-line error naming it."""
    path = Path(folder) / FILES[role]
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ValidationError(FILES[role], "a JSON file", "missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(FILES[role], "valid JSON", f"unreadable ({exc})") from exc


def s2_config(folder: Path) -> S2Config:
    """The s2 architecture of a model folder."""
    return S2Config.from_json(read_json(folder, "s2_config"))


def s1_config(folder: Path) -> S1Config:
    """The s1 architecture of a model folder."""
    return S1Config.from_json(read_json(folder, "s1_config"))


def n_symbols() -> int:
    """The phoneme inventory size (GPT-SoVITS v2's 732 symbols)."""
    from tts_host.plugins.sovits.text.symbols import SYMBOLS

    return len(SYMBOLS)


def expected_shapes(s2: S2Config, s1: S1Config) -> dict[str, dict[str, tuple[int, ...]]]:
    """Upstream tensor name -> shape, for each SoVITS weight role."""
    from tts_host.plugins.sovits.keys import generator_to_upstream, semantic_to_upstream
    from tts_host.plugins.sovits.s2_model import Synthesizer, build_reference_encoder
    from tts_host.plugins.sovits.semantic import SemanticQuantizer
    from tts_host.plugins.sovits.t2s import TextToSemantic

    with torch.device("meta"):
        synthesizer = Synthesizer(s2, n_symbols())
        reference = build_reference_encoder(s2)
        semantic = SemanticQuantizer(int(s2.model["ssl_dim"]), int(s2.model["codebook_size"]))
        text_to_semantic = TextToSemantic(s1)
    generator = {**synthesizer.state_dict(), **{f"ref_enc.{k}": v for k, v in reference.state_dict().items()}}
    return {
        "s2_generator": {k: tuple(v.shape) for k, v in generator_to_upstream(generator).items()},
        "s2_semantic": {k: tuple(v.shape) for k, v in semantic_to_upstream(semantic.state_dict()).items()},
        "s1_weights": {k: tuple(v.shape) for k, v in text_to_semantic.state_dict().items()},
    }


def discriminator_shapes() -> dict[str, tuple[int, ...]]:
    """Upstream name -> shape of the s2 discriminator."""
    from tts_host.plugins.sovits.keys import discriminator_to_upstream
    from tts_host.plugins.sovits.s2_model import build_discriminator

    with torch.device("meta"):
        discriminator = build_discriminator()
    return {k: tuple(v.shape) for k, v in discriminator_to_upstream(discriminator.state_dict()).items()}


def check_weights(path: Path, label: str, expected: dict[str, tuple[int, ...]], *, values: bool = True) -> None:
    """The safetensors file at ``path`` holds exactly ``expected`` (names and shapes), all finite."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            names = set(handle.keys())
            missing = sorted(set(expected) - names)
            unexpected = sorted(names - set(expected))
            if missing:
                raise ValidationError(label, f"tensor {missing[0]} ({len(missing)} missing)", "absent")
            if unexpected:
                raise ValidationError(label, "only the architecture's tensors",
                                      f"unexpected tensor {unexpected[0]} ({len(unexpected)} unexpected)")
            for name in sorted(names):
                shape = tuple(handle.get_slice(name).get_shape())
                if shape != expected[name]:
                    raise ValidationError(label, f"{name} of shape {list(expected[name])}", f"shape {list(shape)}")
                if values:
                    tensor = handle.get_tensor(name)
                    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                        raise ValidationError(label, f"finite values in {name}", "NaN or infinity")
    except (SafetensorError, OSError) as exc:
        raise ValidationError(label, "a safetensors file", f"unreadable ({exc})") from exc


def load_weights(folder: Path, role: str) -> dict[str, torch.Tensor]:
    """All tensors of ``role``'s safetensors file (float32 where floating point)."""
    from safetensors.torch import load_file

    weights = load_file(str(Path(folder) / FILES[role]))
    return {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}
