"""A small real backend for the voice library's tests: safetensors weights, a protected codec.

Model folder (``toy`` backend)::

    config.json               architecture: dim, vocab, codes, n_mels (required)
    model.safetensors         embed.weight (vocab, dim), proj.weight (dim, n_mels), proj.bias (dim,)
    codec.safetensors         codebook (codes, dim)           -- protected
    stats.safetensors         mean (n_mels,), std (n_mels,)   -- protected
    speakers.json             optional

Conditioning is computed from the reference audio: a mean log band spectrum, normalised by
the stats and projected through ``proj``; so it depends on both the clip and the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from tts_host import hookimpl
from tts_host.backend import Backend, FileRole
from tts_host.components import BackendFactory
from tts_host.errors import ValidationError

PRESETS = {"tiny": {"dim": 8, "vocab": 12, "codes": 16, "n_mels": 10}, "small": {"dim": 32, "vocab": 40, "codes": 64, "n_mels": 20}}
ARCH_KEYS = ("dim", "vocab", "codes", "n_mels")


def expected_tensors(arch: Mapping[str, int]) -> dict[str, dict[str, tuple[int, ...]]]:
    """File -> tensor name -> shape, for an architecture."""
    d, v, c, m = (arch[k] for k in ARCH_KEYS)
    return {
        "model.safetensors": {"embed.weight": (v, d), "proj.weight": (d, m), "proj.bias": (d,)},
        "codec.safetensors": {"codebook": (c, d)},
        "stats.safetensors": {"mean": (m,), "std": (m,)},
    }


def write_model(folder: Path, arch: Mapping[str, int], seed: int) -> Path:
    """Write a complete toy model folder with random weights."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(dict(arch), sort_keys=True), encoding="utf-8")
    for file, tensors in expected_tensors(arch).items():
        arrays = {k: rng.standard_normal(shape).astype(np.float32) for k, shape in tensors.items()}
        if file == "stats.safetensors":
            arrays["std"] = np.abs(arrays["std"]) + 1.0
        save_file(arrays, str(folder / file))
    return folder


def finetune_weights(folder: Path, out: Path, seed: int) -> Path:
    """A new model.safetensors: the folder's weights moved a little (what a fine-tune writes)."""
    from safetensors.numpy import load_file, save_file

    weights = load_file(str(folder / "model.safetensors"))
    rng = np.random.default_rng(seed)
    save_file({k: (v + 0.01 * rng.standard_normal(v.shape)).astype(np.float32) for k, v in weights.items()}, str(out))
    return out


def band_spectrum(path: Path, bands: int) -> np.ndarray:
    """Mean log energy of a clip in ``bands`` equal frequency bands."""
    import soundfile as sf

    audio, _ = sf.read(str(path), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    frames = np.lib.stride_tricks.sliding_window_view(mono, 512)[::256]
    power = np.abs(np.fft.rfft(frames * np.hanning(512), axis=1)) ** 2
    pooled = np.stack([b.sum(axis=1) for b in np.array_split(power, bands, axis=1)], axis=1)
    return np.log(pooled + 1e-6).mean(axis=0)


class ToyBackend(Backend):
    """The tests' backend: real files, real checks, real conditioning from audio."""

    name = "toy"

    def presets(self) -> list[str]:
        return list(PRESETS)

    def init_base(self, preset: str, out_dir: Path, *, seed: int = 0) -> Path:
        return write_model(out_dir, PRESETS[preset], seed)

    def file_roles(self) -> list[FileRole]:
        return [
            FileRole("config", "config.json"),
            FileRole("model", "model.safetensors"),
            FileRole("codec", "codec.safetensors", protected=True),
            FileRole("stats", "stats.safetensors", protected=True),
            FileRole("speakers", "speakers.json", required=False),
        ]

    def architecture(self, folder: Path) -> dict[str, Any]:
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValidationError("config.json", "a JSON object", f"unreadable ({exc})") from exc
        return {k: config.get(k) for k in ARCH_KEYS}

    def validate(self, folder: Path, architecture: Mapping[str, Any]) -> None:
        from safetensors.numpy import load_file

        config = self.architecture(folder)
        for key in ARCH_KEYS:
            if config[key] != architecture[key]:
                raise ValidationError("config.json", f"{key} = {architecture[key]}", f"{key} = {config[key]}")
        for file, tensors in expected_tensors(architecture).items():
            try:
                found = load_file(str(folder / file))
            except Exception as exc:
                raise ValidationError(file, "a safetensors file", f"unreadable ({exc})") from exc
            if set(found) != set(tensors):
                raise ValidationError(file, f"keys {sorted(tensors)}", f"keys {sorted(found)}")
            for key, shape in tensors.items():
                array = found[key]
                if array.shape != shape:
                    raise ValidationError(file, f"{key} of shape {shape}", f"shape {array.shape}")
                if array.dtype != np.float32:
                    raise ValidationError(file, f"{key} of dtype float32", f"dtype {array.dtype}")
                if not np.isfinite(array).all():
                    raise ValidationError(file, f"{key} with finite values", "NaN or infinite values")

    def conditioning(self, components: Any, request: Any) -> dict[str, np.ndarray]:
        from safetensors.numpy import load_file

        model_folder, references = components.folder, request.references
        weights = load_file(str(model_folder / "model.safetensors"))
        stats = load_file(str(model_folder / "stats.safetensors"))
        bands = stats["mean"].shape[0]
        spectra = np.stack([band_spectrum(p, bands) for p in references])
        normalised = (spectra - stats["mean"]) / stats["std"]
        latents = np.tanh(normalised @ weights["proj.weight"].T / np.sqrt(bands) + weights["proj.bias"])
        return {"speaker_embedding": latents.mean(axis=0).astype(np.float32), "latents": latents.astype(np.float32)}

    def export_formats(self) -> list[str]:
        return ["npz"]

    def export(self, voice: Any, model_folder: Path, conditioning: Mapping[str, np.ndarray], fmt: str,
               out: Path) -> Path:
        if fmt != "npz":
            return super().export(voice, model_folder, conditioning, fmt, out)
        from safetensors.numpy import load_file

        arrays = {f"model.{k}": v for k, v in load_file(str(model_folder / "model.safetensors")).items()}
        arrays.update({f"voice.{k}": v for k, v in conditioning.items()})
        with open(out, "wb") as handle:
            np.savez(handle, **arrays)
        return out


FACTORY = BackendFactory(name="toy", components={}, connections=[], loader=ToyBackend,
                         description="a small backend for the library's tests")


class ToyPlugin:
    """Registers the toy backend on a host."""

    @hookimpl
    def register_backends(self, register):
        register(FACTORY)


