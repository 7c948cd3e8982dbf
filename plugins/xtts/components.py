"""The five XTTS components on coqui-tts's classes, each built from a model folder.

codec = ``DiscreteVAE`` (audio -> codes), text encoder = ``VoiceBpeTokenizer``, acoustic
model = ``GPT``, vocoder = ``HifiDecoder``'s HiFi-GAN, speaker encoder = the decoder's ResNet
d-vector encoder. Audio is mono float32 numpy, as :mod:`tts_host.interfaces` specifies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.plugins.xtts.model import SAMPLE_RATE, read_config

CODE_HOP = 1024  # audio samples per DVAE code (DVAE mel hop 256 x 4)
SPEAKER_SAMPLE_RATE = 16000
D_VECTOR_DIM = 512


class DvaeCodec:
    """The DVAE that turns 22.05 kHz audio into the GPT's audio codes (frozen in fine-tuning)."""

    sample_rate = SAMPLE_RATE
    hop_length = CODE_HOP

    def __init__(self, model_folder: Path) -> None:
        import torch

        from tts_host.plugins.xtts.model import build_dvae, load_tensor_file, mel_extractor

        folder = Path(model_folder)
        config = read_config(folder)
        self.dvae = build_dvae(config)
        self.dvae.load_state_dict(load_tensor_file(folder / "dvae.pth"), strict=True)
        self.dvae.eval()
        self.mel = mel_extractor(load_tensor_file(folder / "mel_stats.pth").to(torch.float32), "dvae")
        self.codebook_size = int(self.dvae.num_tokens)

    def encode(self, waveform: np.ndarray) -> np.ndarray:
        """Codes (int64, one per 1024 samples) of mono audio at 22.05 kHz."""
        import torch

        with torch.no_grad():
            audio = torch.as_tensor(np.asarray(waveform, dtype=np.float32)).reshape(1, -1)
            codes = self.dvae.get_codebook_indices(self.mel(audio))
        return codes[0].numpy().astype(np.int64)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """XTTS never decodes DVAE codes to audio: speech comes from GPT latents through HiFi-GAN."""
        raise TTSHostError("the XTTS DVAE codec does not decode to audio: use the xtts backend's speak")


class BpeTextEncoder:
    """coqui's ``VoiceBpeTokenizer`` with the folder's vocab.json."""

    def __init__(self, model_folder: Path) -> None:
        from tts_host.plugins.xtts.model import keep_torch_threads

        with keep_torch_threads():
            from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

        self.tokenizer = VoiceBpeTokenizer(vocab_file=str(Path(model_folder) / "vocab.json"))
        self.vocab_size = self.tokenizer.get_number_tokens()
        self.unknown_id = self.tokenizer.tokenizer.token_to_id("[UNK]")

    def encode(self, text: str, language: str | None = None) -> list[int]:
        """Token ids of ``text``; characters the vocabulary lacks are a one-line error."""
        language = language or "en"
        ids = self.tokenizer.encode(text.strip().lower(), lang=language)
        if self.unknown_id in ids:
            raise TTSHostError(f"text {text[:40]!r} has characters the XTTS vocabulary does not know ({language})")
        return ids


class GptAcousticModel:
    """The XTTS GPT: text tokens + conditioning latent -> audio codes and their latents."""

    def __init__(self, model_folder: Path) -> None:
        from tts_host.plugins.xtts.model import load_xtts

        self.xtts = load_xtts(Path(model_folder))
        self.gpt = self.xtts.gpt

    def generate(self, text_tokens: Any, conditioning: Any, **sampling: Any) -> Any:
        """``{"codes", "latents"}`` for one utterance; ``conditioning`` holds ``gpt_cond_latent``."""
        import torch

        with torch.inference_mode():
            tokens = torch.as_tensor(np.asarray(text_tokens), dtype=torch.int32).reshape(1, -1)
            latent = torch.as_tensor(np.asarray(conditioning["gpt_cond_latent"]), dtype=torch.float32)
            codes = self.gpt.generate(cond_latents=latent, text_inputs=tokens, do_sample=True,
                                      **{"top_k": 50, "top_p": 0.85, "temperature": 0.75, **sampling})
            latents = self.gpt(tokens, torch.tensor([tokens.shape[-1]]), codes,
                               torch.tensor([codes.shape[-1] * self.gpt.code_stride_len]),
                               cond_latents=latent, return_attentions=False, return_latent=True)
        return {"codes": codes[0].numpy(), "latents": latents.numpy()}


class HifiganVocoder:
    """XTTS's HiFi-GAN decoder: GPT latents + d-vector -> 24 kHz audio."""

    def __init__(self, model_folder: Path) -> None:
        folder = Path(model_folder)
        self.decoder = _load_hifigan(folder)
        self.sample_rate = int(read_config(folder)["model_args"]["output_sample_rate"])

    def vocode(self, features: Any) -> np.ndarray:
        """``features`` = ``{"latents": (1, T, dim), "speaker_embedding": (1, 512, 1)}``."""
        import torch

        with torch.inference_mode():
            latents = torch.as_tensor(np.asarray(features["latents"]), dtype=torch.float32)
            speaker = torch.as_tensor(np.asarray(features["speaker_embedding"]), dtype=torch.float32)
            wav = self.decoder(latents, g=speaker)
        return wav.reshape(-1).numpy().astype(np.float32)


class ResnetSpeakerEncoder:
    """The HiFi-GAN decoder's ResNet speaker encoder: 16 kHz audio -> 512-d d-vector (L2-normalised)."""

    sample_rate = SPEAKER_SAMPLE_RATE
    embedding_dim = D_VECTOR_DIM

    def __init__(self, model_folder: Path) -> None:
        self.encoder = _load_hifigan(Path(model_folder)).speaker_encoder

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """The ``(512,)`` d-vector of mono 16 kHz audio."""
        import torch

        with torch.inference_mode():
            audio = torch.as_tensor(np.asarray(waveform, dtype=np.float32)).reshape(1, -1)
            return self.encoder.forward(audio, l2_norm=True)[0].numpy()


def _load_hifigan(folder: Path):
    from tts_host.plugins.xtts.model import build_hifigan, load_tensor_file, normalise_model_state

    decoder = build_hifigan(read_config(folder))
    checkpoint = load_tensor_file(folder / "model.pth")
    state = normalise_model_state(checkpoint.get("model", checkpoint))
    prefix = "hifigan_decoder."
    decoder.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    return decoder.eval()
