"""The SoVITS components, each built by the host as ``Class(model_folder=FOLDER, device=DEVICE)``.

- :class:`PhonemeTextEncoder`: text -> GPT-SoVITS v2 phoneme ids (and BERT features for Chinese);
- :class:`SemanticCodec`: 16 kHz audio -> HuBERT features -> 25 Hz semantic codes (frozen);
- :class:`TextToSemanticModel`: s1, phonemes + the reference's codes -> new codes (trainable);
- :class:`SovitsVocoder`: s2, codes + phonemes + voice vector -> 32 kHz audio (trainable);
- :class:`ReferenceSpeakerEncoder`: s2's ``ref_enc``, a reference's spectrogram -> voice vector (trainable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from tts_host.errors import TTSHostError
from tts_host.plugins.sovits import HUBERT_RATE, SAMPLE_RATE
from tts_host.plugins.sovits.files import FILES

if TYPE_CHECKING:
    from tts_host.plugins.sovits.bert import ChineseBert
    from tts_host.plugins.sovits.text.frontend import Phonemes


class PhonemeTextEncoder:
    """Text -> v2 phoneme ids; Chinese also gets BERT features when the model folder has a ``bert/``."""

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        from tts_host.plugins.sovits.text.symbols import SYMBOLS

        self.folder = Path(model_folder)
        self.device = device
        self.vocab_size = len(SYMBOLS)
        self._bert: ChineseBert | None = None

    def encode(self, text: str, language: str | None = None) -> list[int]:
        """Phoneme ids of ``text`` in ``language`` (``en`` or ``zh``; ``en`` when not given)."""
        return self.phonemes(text, language).ids

    def phonemes(self, text: str, language: str | None = None) -> Phonemes:
        """The :class:`~tts_host.plugins.sovits.text.frontend.Phonemes` of ``text``."""
        from tts_host.plugins.sovits.text.frontend import phonemes

        return phonemes(text, language or "en")

    def sentences(self, text: str, language: str | None = None) -> list[str]:
        """``text`` split into the sentences synthesis speaks one at a time."""
        from tts_host.plugins.sovits.text.frontend import sentences

        return sentences(text, language or "en")

    @property
    def has_bert(self) -> bool:
        """Whether the model folder has a Chinese BERT."""
        from tts_host.plugins.sovits.bert import BERT_DIR

        return (self.folder / BERT_DIR / "config.json").is_file()

    def bert_features(self, phonemes: Phonemes, bert_dim: int) -> torch.Tensor:
        """``[bert_dim, n_phonemes]``: the Chinese BERT's features for Chinese text (``word2ph`` set) with a
        ``bert/`` folder, else zeros (upstream's features for every other language)."""
        if phonemes.word2ph is None or not self.has_bert:
            return torch.zeros(bert_dim, len(phonemes.ids))
        if self._bert is None:
            from tts_host.plugins.sovits.bert import BERT_DIR, ChineseBert

            self._bert = ChineseBert(self.folder / BERT_DIR, self.device)
        if self._bert.dim != bert_dim:
            raise TTSHostError(f"the Chinese BERT is {self._bert.dim} wide; s1 reads {bert_dim}-wide features")
        return self._bert.features(phonemes.text, phonemes.word2ph)


class SemanticCodec:
    """HuBERT + s2's frozen ``ssl_proj`` and codebook: 16 kHz audio <-> 25 Hz semantic codes."""

    sample_rate = HUBERT_RATE
    hop_length = HUBERT_RATE // 25

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        from transformers import HubertModel, Wav2Vec2FeatureExtractor

        from tts_host.hf import quiet_transformers
        from tts_host.plugins.sovits.keys import semantic_from_upstream
        from tts_host.plugins.sovits.modelset import load_weights, s2_config
        from tts_host.plugins.sovits.s2_model import load_module
        from tts_host.plugins.sovits.semantic import SemanticQuantizer

        quiet_transformers()
        folder = Path(model_folder)
        self.device = torch.device(device)
        self.hubert = HubertModel.from_pretrained(folder / "hubert").to(self.device).eval()
        self.extractor = Wav2Vec2FeatureExtractor.from_pretrained(folder / "hubert")
        config = s2_config(folder)
        self.codebook_size = int(config.model["codebook_size"])
        self.quantizer = SemanticQuantizer(int(config.model["ssl_dim"]), self.codebook_size)
        load_module(self.quantizer, semantic_from_upstream(load_weights(folder, "s2_semantic")), FILES["s2_semantic"])
        self.quantizer.to(self.device)

    def features(self, waveform: np.ndarray) -> torch.Tensor:
        """``[1, ssl_dim, frames]`` HuBERT features (50 Hz) of mono 16 kHz audio."""
        from tts_host.plugins.sovits.semantic import hubert_features

        return hubert_features(self.hubert, self.extractor, torch.as_tensor(np.asarray(waveform, dtype=np.float32)))

    def codes_of(self, features: torch.Tensor) -> torch.Tensor:
        """``[1, t25]`` codes of ``[1, ssl_dim, t50]`` features."""
        return self.quantizer.codes(features.to(self.device))

    def encode(self, waveform: np.ndarray) -> np.ndarray:
        """Mono 16 kHz audio -> ``(frames,)`` int64 codes at 25 Hz."""
        return self.codes_of(self.features(waveform))[0].cpu().numpy().astype(np.int64)

    def vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """``[b, t25]`` codes -> ``[b, ssl_dim, t50]`` codebook vectors, each repeated to s2's 50 Hz frames."""
        return self.quantizer.vectors(codes.to(self.device)).repeat_interleave(2, dim=2)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Semantic codes carry no voice: they become audio only through s2 with a reference (the vocoder)."""
        raise TTSHostError("semantic codes carry no voice of their own: the s2 vocoder decodes them "
                           "with a reference (`tts-host speak`)")


class TextToSemanticModel:
    """s1: phonemes (+ BERT features) and the reference's codes -> the new speech's codes."""

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        from tts_host.plugins.sovits.modelset import load_weights, read_json, s1_config
        from tts_host.plugins.sovits.s2_model import load_module
        from tts_host.plugins.sovits.t2s import TextToSemantic

        folder = Path(model_folder)
        self.config = s1_config(folder)
        self.model = TextToSemantic(self.config)
        load_module(self.model, load_weights(folder, "s1_weights"), FILES["s1_weights"])
        self.model.to(torch.device(device)).eval()
        self.defaults: dict[str, float] = dict(read_json(folder, "s1_config").get("inference", {}))
        """The model's sampling defaults (upstream's: top_k 15, top_p 1, temperature 1, repetition penalty 1.35)."""

    def generate(self, text_tokens: torch.Tensor, conditioning: "SemanticPrompt", **sampling: float) -> torch.Tensor:
        """New codes ``[1, k]`` for phonemes ``text_tokens`` ``[1, n]`` after ``conditioning``'s codes."""
        device = next(self.model.parameters()).device
        return self.model.generate(text_tokens.to(device), conditioning.bert.to(device),
                                   conditioning.codes.to(device), **sampling)


@dataclass(frozen=True)
class SemanticPrompt:
    """What s1 continues: the reference's codes ``[1, p]`` and the BERT features ``[1, bert_dim, n]`` of all phonemes."""

    codes: torch.Tensor
    bert: torch.Tensor


@dataclass(frozen=True)
class SovitsFeatures:
    """What s2 decodes: latents ``[1, ssl_dim, t50]``, target phonemes ``[1, n]``, a voice vector ``[1, gin, 1]``."""

    latents: torch.Tensor
    phonemes: torch.Tensor
    voice: torch.Tensor
    noise_scale: float = 0.5
    speed: float = 1.0


class SovitsVocoder:
    """s2's synthesiser (``enc_p``, flow, HiFi-GAN ``dec``; ``enc_q`` for training)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        from tts_host.plugins.sovits.keys import generator_from_upstream
        from tts_host.plugins.sovits.modelset import load_weights, n_symbols, s2_config
        from tts_host.plugins.sovits.s2_model import Synthesizer, load_module

        folder = Path(model_folder)
        self.config = s2_config(folder)
        self.model = Synthesizer(self.config, n_symbols())
        weights = generator_from_upstream(load_weights(folder, "s2_generator"))
        load_module(self.model, {k: v for k, v in weights.items() if not k.startswith("ref_enc.")},
                    FILES["s2_generator"])
        self.model.to(torch.device(device)).eval()

    def vocode(self, features: SovitsFeatures) -> np.ndarray:
        """Mono 32 kHz float32 audio of ``features``."""
        device = next(self.model.parameters()).device
        audio = self.model.decode(features.latents.to(device), features.phonemes.to(device),
                                  features.voice.to(device), features.noise_scale, features.speed)
        return audio[0, 0].float().cpu().numpy()


class ReferenceSpeakerEncoder:
    """s2's ``ref_enc``: the linear spectrogram of 32 kHz audio -> a voice vector."""

    sample_rate = SAMPLE_RATE

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        from tts_host.plugins.sovits.keys import generator_from_upstream, with_prefix
        from tts_host.plugins.sovits.modelset import load_weights, s2_config
        from tts_host.plugins.sovits.s2_model import build_reference_encoder, load_module

        folder = Path(model_folder)
        self.config = s2_config(folder)
        self.model = build_reference_encoder(self.config)
        weights = with_prefix(generator_from_upstream(load_weights(folder, "s2_generator")), "ref_enc")
        load_module(self.model, weights, FILES["s2_generator"])
        self.model.to(torch.device(device)).eval()
        self.embedding_dim = int(self.config.model["gin_channels"])

    def spectrogram(self, waveform: np.ndarray) -> torch.Tensor:
        """``[1, bins, frames]`` linear spectrogram of mono 32 kHz audio (s2's framing)."""
        from tts_host.plugins.sovits.spectrogram import linear_spectrogram

        audio = torch.as_tensor(np.asarray(waveform, dtype=np.float32)).unsqueeze(0)
        return linear_spectrogram(audio, self.config.n_fft, self.config.hop, int(self.config.data["win_length"]))

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """The ``(gin,)`` voice vector of mono 32 kHz audio."""
        device = next(self.model.parameters()).device
        with torch.no_grad():
            vector = self.model(self.spectrogram(waveform).to(device))
        return vector[0, :, 0].float().cpu().numpy()
