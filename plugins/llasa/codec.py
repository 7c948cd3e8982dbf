"""The codec component: transformers' native X-Codec-2.0 (``Xcodec2Model``), audio <-> one code stream."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.plugins.llasa import CODEC_DIR, SAMPLE_RATE
from tts_host.plugins.llasa.layout import LlasaBaseError


def read_codec_config(codec_dir: Path) -> dict[str, Any]:
    """The codec's ``config.json``, checked to be an X-Codec-2.0 config stored with safetensors."""
    config_path = codec_dir / "config.json"
    if not config_path.is_file():
        raise LlasaBaseError(str(config_path), "an X-Codec-2.0 config.json", "missing")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LlasaBaseError(str(config_path), "a JSON config", f"unreadable ({exc})") from exc
    if config.get("model_type") != "xcodec2":
        raise LlasaBaseError(str(config_path), "model_type 'xcodec2'", f"model_type {config.get('model_type')!r}")
    if not list(codec_dir.glob("*.safetensors")):
        raise LlasaBaseError(str(codec_dir), ".safetensors weights (only safetensors are accepted)", "none")
    return config


def codebook_size(config: dict[str, Any]) -> int:
    """Number of codes of an X-Codec-2.0 config: the product of its FSQ levels (65,536 when published)."""
    levels = config.get("quantization_levels", [4] * 8)
    return int(math.prod(levels))


class XcodecCodec:
    """Encode 16 kHz mono audio to codes and decode codes back to audio with an ``Xcodec2Model`` folder."""

    sample_rate = SAMPLE_RATE

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        from transformers import Xcodec2FeatureExtractor, Xcodec2Model

        self.path = Path(path)
        config = read_codec_config(self.path)
        self.codebook_size = codebook_size(config)
        self.device = device
        self.model = Xcodec2Model.from_pretrained(self.path, use_safetensors=True).to(device).eval()
        self.hop_length = int(self.model.config.hop_length)
        self.features = Xcodec2FeatureExtractor(sampling_rate=SAMPLE_RATE, hop_length=self.hop_length)

    def encode(self, waveform: np.ndarray) -> np.ndarray:
        """Codes ``(frames,)`` int64 of mono float audio at 16 kHz."""
        import torch

        audio = np.asarray(waveform, dtype=np.float32).reshape(-1)
        inputs = self.features(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.encode(inputs["input_values"].to(self.device), inputs["input_features"].to(self.device))
        return out.audio_codes[0, 0].to(torch.int64).cpu().numpy()

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Mono float32 16 kHz audio for ``(frames,)`` codes."""
        import torch

        values = np.asarray(codes, dtype=np.int64).reshape(-1)
        if values.size == 0:
            return np.zeros(0, dtype=np.float32)
        if values.min() < 0 or values.max() >= self.codebook_size:
            raise TTSHostError(f"codes {values.min()}..{values.max()} are out of range for codec {self.path} "
                               f"(codebook of {self.codebook_size})")
        tensor = torch.as_tensor(values, device=self.device).view(1, 1, -1)
        with torch.inference_mode():
            audio = self.model.decode(audio_codes=tensor).audio_values
        return audio[0, 0].float().cpu().numpy()


class XcodecVocoder:
    """The vocoder component: the X-Codec-2.0 decoder turning speech codes into 16 kHz audio."""

    sample_rate = SAMPLE_RATE

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        self.codec = XcodecCodec(Path(model_folder) / CODEC_DIR, device=device)

    def vocode(self, features: Any) -> np.ndarray:
        """Decode speech codes (a sequence of ints) to mono float32 audio."""
        return self.codec.decode(np.asarray(features))


def codec_component(model_folder: Path, device: str = "cpu") -> XcodecCodec:
    """The codec component of a Llasa model folder (its ``codec/``), as the host builds it."""
    return XcodecCodec(Path(model_folder) / CODEC_DIR, device=device)
