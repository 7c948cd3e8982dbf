"""The ``xtts-hifigan-onnx`` vocoder: XTTS's HiFi-GAN decoder, exported once per model, run by ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

from tts_host.hashing import sha256_file
from tts_host.home import default_home


def cache_folder() -> Path:
    """Where exported decoders are kept: ``$TTS_HOST_HOME/cache/onnx-vocoder``."""
    return default_home() / "cache" / "onnx-vocoder"


def providers_for(device: str, available: list[str]) -> list:
    """ONNX Runtime execution providers for a torch device string (CUDA when asked for and present)."""
    kind, _, index = device.partition(":")
    if kind == "cuda" and "CUDAExecutionProvider" in available:
        return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxHifiganVocoder:
    """GPT latents + d-vector -> audio at ``sample_rate``: the contract of tts-host's ``HifiganVocoder``.

    The first build for a model.pth exports its decoder to ``cache_folder()/<sha256>.onnx``; a
    build that finds that file needs neither torch nor coqui-tts.
    """

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        import onnxruntime

        folder = Path(model_folder)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.sample_rate = int(config["model_args"]["output_sample_rate"])
        digest, _ = sha256_file(folder / "model.pth")
        self.onnx_file = cache_folder() / f"{digest}.onnx"
        if not self.onnx_file.exists():
            from tts_host_onnx_vocoder.export import export_decoder

            export_decoder(folder, self.onnx_file)
        self.session = onnxruntime.InferenceSession(
            str(self.onnx_file), providers=providers_for(device, onnxruntime.get_available_providers()))

    def vocode(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """``features`` = ``{"latents": (1, T, dim), "speaker_embedding": (1, 512, 1)}`` -> mono float32."""
        inputs = {
            "latents": np.ascontiguousarray(features["latents"], dtype=np.float32),
            "speaker": np.ascontiguousarray(features["speaker_embedding"], dtype=np.float32),
        }
        (waveform,) = self.session.run(["waveform"], inputs)
        return waveform.reshape(-1).astype(np.float32, copy=False)
