"""The five XTTS components on coqui-tts's classes, each built from a model folder.

codec = ``DiscreteVAE`` (audio -> codes), text encoder = ``VoiceBpeTokenizer``, vocoder =
``HifiDecoder``'s HiFi-GAN, speaker encoder = the decoder's ResNet d-vector encoder (the acoustic
model, coqui's ``GPT``, is in :mod:`tts_host.plugins.xtts.acoustic`). The host builds each as
``Class(model_folder=FOLDER, device=DEVICE)``. Audio is mono float32 numpy, as
:mod:`tts_host.interfaces` specifies.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.plugins.xtts import CODE_HOP, D_VECTOR_DIM, SAMPLE_RATE, SPEAKER_SAMPLE_RATE
from tts_host.plugins.xtts.model import read_config
from tts_host.plugins.xtts.text import DEFAULT_CHAR_LIMIT
from tts_host.speech import split_text
from tts_host.plugins.xtts.files import FILES

if TYPE_CHECKING:
    import torch


class DvaeCodec:
    """The DVAE that turns 22.05 kHz audio into the GPT's audio codes (frozen in fine-tuning)."""

    sample_rate = SAMPLE_RATE
    hop_length = CODE_HOP

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        import torch

        from tts_host.plugins.xtts.model import build_dvae, load_tensor_file, mel_extractor

        folder = Path(model_folder)
        config = read_config(folder)
        self.device = torch.device(device)
        self.dvae = build_dvae(config)
        self.dvae.load_state_dict(load_tensor_file(folder / FILES["dvae"]), strict=True)
        self.dvae.eval().to(self.device)
        self.mel = mel_extractor(load_tensor_file(folder / FILES["mel_stats"]).to(torch.float32), "dvae").to(self.device)
        self.codebook_size = int(self.dvae.num_tokens)

    def encode(self, waveform: np.ndarray) -> np.ndarray:
        """Codes (int64, one per 1024 samples) of mono audio at 22.05 kHz."""
        import torch

        with torch.no_grad():
            audio = torch.as_tensor(np.asarray(waveform, dtype=np.float32)).reshape(1, -1).to(self.device)
            codes = self.dvae.get_codebook_indices(self.mel(audio))
        return codes[0].cpu().numpy().astype(np.int64)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """XTTS never decodes DVAE codes to audio: speech comes from GPT latents through HiFi-GAN."""
        raise TTSHostError("the XTTS DVAE codec does not decode to audio: use the xtts backend's speak")


class BpeTextEncoder:
    """coqui's ``VoiceBpeTokenizer`` with the folder's vocab.json."""

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        from tts_host.plugins.xtts.model import keep_torch_threads

        with keep_torch_threads():
            from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

        self.tokenizer = VoiceBpeTokenizer(vocab_file=str(Path(model_folder) / FILES["vocab"]))
        self.vocab_size = self.tokenizer.get_number_tokens()
        self.unknown_id = self.tokenizer.tokenizer.token_to_id("[UNK]")
        self.max_tokens = int(read_config(Path(model_folder))["model_args"]["gpt_max_text_tokens"])

    def sentences(self, text: str, language: str) -> list[str]:
        """``text`` in sentences within coqui's char limit and the GPT's text-token limit."""
        lang = language.split("-")[0]
        limit = self.tokenizer.char_limits.get(lang, DEFAULT_CHAR_LIMIT)
        while True:
            chunks = split_text(text, limit)
            if limit == 1 or all(len(self.tokenizer.encode(c.strip().lower(), lang=language)) < self.max_tokens
                                 for c in chunks):
                return chunks
            limit = max(1, limit // 2)

    def encode(self, text: str, language: str | None = None) -> list[int]:
        """Token ids of ``text``; characters the vocabulary lacks are a one-line error."""
        language = language or "en"
        ids = self.tokenizer.encode(text.strip().lower(), lang=language)
        if self.unknown_id in ids:
            raise TTSHostError(f"text {text[:40]!r} has characters the XTTS vocabulary does not know ({language})")
        return ids


class HifiganVocoder:
    """XTTS's HiFi-GAN decoder: GPT latents + d-vector -> 24 kHz audio.

    The decoder only ever runs forward here, so its weight-norm parametrisations are folded into plain
    weights once, at load (:func:`fold_weight_norm`), instead of being recomputed at every call.
    """

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        import torch

        folder = Path(model_folder)
        self.device = torch.device(device)
        self.decoder = fold_weight_norm(load_hifigan(folder)).to(self.device)
        self.sample_rate = int(read_config(folder)["model_args"]["output_sample_rate"])

    def vocode(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """``features`` = ``{"latents": (1, T, dim), "speaker_embedding": (1, 512, 1)}``."""
        import torch

        with torch.inference_mode():
            latents = torch.as_tensor(np.asarray(features["latents"]), dtype=torch.float32).to(self.device)
            speaker = torch.as_tensor(np.asarray(features["speaker_embedding"]), dtype=torch.float32).to(self.device)
            wav = self.decoder(latents, g=speaker)
        return wav.reshape(-1).float().cpu().numpy().astype(np.float32)


class ResnetSpeakerEncoder:
    """The HiFi-GAN decoder's ResNet speaker encoder: 16 kHz audio -> 512-d d-vector (L2-normalised)."""

    sample_rate = SPEAKER_SAMPLE_RATE
    embedding_dim = D_VECTOR_DIM

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        import torch

        self.device = torch.device(device)
        self.encoder = load_hifigan(Path(model_folder)).speaker_encoder.to(self.device)

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """The ``(512,)`` d-vector of mono 16 kHz audio."""
        import torch

        with torch.inference_mode():
            audio = torch.as_tensor(np.asarray(waveform, dtype=np.float32)).reshape(1, -1).to(self.device)
            return self.encoder.forward(audio, l2_norm=True)[0].float().cpu().numpy()


def fold_weight_norm(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with every parametrised weight (weight norm) replaced by the weight it computes, same values."""
    from torch.nn.utils import parametrize

    for layer in list(module.modules()):
        if parametrize.is_parametrized(layer):
            for name in list(layer.parametrizations):
                parametrize.remove_parametrizations(layer, name, leave_parametrized=True)
    return module


def load_hifigan(folder: Path):
    """The HiFi-GAN decoder (with its ResNet speaker encoder) of a model folder's model.pth, in eval mode."""
    from tts_host.plugins.xtts.model import build_hifigan, load_tensor_file, model_part

    decoder = build_hifigan(read_config(folder))
    decoder.load_state_dict(model_part(load_tensor_file(folder / FILES["model"]), "hifigan_decoder."), strict=True)
    return decoder.eval()
