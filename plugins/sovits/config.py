"""The architecture of a SoVITS model set, read from (and written to) its config files.

``s2/config.json`` has GPT-SoVITS's ``s2.json`` layout (``data``, ``model``, ``train``) and
``s1/config.json`` its s1 YAML's (``model``, ``data``, ``inference`` ...). Sizes GPT-SoVITS fixes in
code (the 768-wide HuBERT features, the 1024-entry codebook, the 512-wide voice vector) are explicit
keys here so that small models can be built; a v2 set has exactly upstream's values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

V2_S2_MODEL: dict[str, Any] = {
    "inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2, "n_layers": 6,
    "kernel_size": 3, "p_dropout": 0.1, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "upsample_rates": [10, 8, 2, 2, 2],
    "upsample_initial_channel": 512, "upsample_kernel_sizes": [16, 16, 8, 2, 2], "n_layers_q": 3,
    "use_spectral_norm": False, "gin_channels": 512, "semantic_frame_rate": "25hz", "freeze_quantizer": True,
    "version": "v2", "ssl_dim": 768, "codebook_size": 1024, "ref_hidden": 128, "ref_bins": 704,
}
V2_S2_DATA: dict[str, Any] = {
    "max_wav_value": 32768.0, "sampling_rate": 32000, "filter_length": 2048, "hop_length": 640,
    "win_length": 2048, "n_mel_channels": 128, "mel_fmin": 0.0, "mel_fmax": None, "add_blank": True,
    "n_speakers": 300, "cleaned_text": True,
}
V2_S1_MODEL: dict[str, Any] = {
    "vocab_size": 1025, "phoneme_vocab_size": 732, "embedding_dim": 512, "hidden_dim": 512, "head": 16,
    "linear_units": 2048, "n_layer": 24, "dropout": 0, "EOS": 1024, "random_bert": 0, "bert_dim": 1024,
}


@dataclass(frozen=True)
class S2Config:
    """s2's sizes (``model``) and audio framing (``data``)."""

    model: Mapping[str, Any]
    data: Mapping[str, Any]

    @classmethod
    def from_json(cls, config: Mapping[str, Any]) -> "S2Config":
        """From an ``s2/config.json`` dict; missing size keys take v2's values."""
        return cls({**V2_S2_MODEL, **config.get("model", {})}, {**V2_S2_DATA, **config.get("data", {})})

    @property
    def sample_rate(self) -> int:
        return int(self.data["sampling_rate"])

    @property
    def hop(self) -> int:
        return int(self.data["hop_length"])

    @property
    def n_fft(self) -> int:
        return int(self.data["filter_length"])

    @property
    def spec_bins(self) -> int:
        return self.n_fft // 2 + 1


@dataclass(frozen=True)
class S1Config:
    """s1's sizes (``model``)."""

    model: Mapping[str, Any]

    @classmethod
    def from_json(cls, config: Mapping[str, Any]) -> "S1Config":
        """From an ``s1/config.json`` dict; missing keys take v2's values."""
        return cls({**V2_S1_MODEL, **config.get("model", {})})

    @property
    def eos(self) -> int:
        return int(self.model["EOS"])
