"""s2, the SoVITS synthesiser: semantic codes + phonemes + a voice vector -> 32 kHz waveform.

``enc_p`` (own code, :mod:`tts_host.plugins.sovits.s2_parts`) gives the prior; the flow, posterior
encoder and HiFi-GAN decoder are coqui-tts's VITS parts, the discriminator coqui-tts's
``VitsDiscriminator``; :mod:`tts_host.plugins.sovits.keys` maps their names to GPT-SoVITS's.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from tts_host.plugins.sovits.config import S2Config
from tts_host.plugins.sovits.s2_parts import PriorEncoder, ReferenceEncoder


class Synthesizer(nn.Module):
    """s2 without its reference encoder and quantizer: ``enc_p``, ``flow``, ``dec`` and (training) ``enc_q``."""

    def __init__(self, config: S2Config, n_symbols: int) -> None:
        super().__init__()
        from TTS.tts.layers.vits.networks import PosteriorEncoder, ResidualCouplingBlocks
        from TTS.vocoder.models.hifigan_generator import HifiganGenerator

        m = config.model
        inter, hidden, gin = int(m["inter_channels"]), int(m["hidden_channels"]), int(m["gin_channels"])
        self.config = config
        self.enc_p = PriorEncoder(inter, hidden, int(m["filter_channels"]), int(m["n_heads"]), int(m["n_layers"]),
                                  int(m["kernel_size"]), float(m["p_dropout"]), n_symbols, int(m["ssl_dim"]), gin)
        self.dec = HifiganGenerator(
            inter, 1, str(m["resblock"]), m["resblock_dilation_sizes"], m["resblock_kernel_sizes"],
            m["upsample_kernel_sizes"], int(m["upsample_initial_channel"]), m["upsample_rates"], inference_padding=0,
            cond_channels=gin, conv_pre_weight_norm=False, conv_post_weight_norm=False, conv_post_bias=False)
        self.enc_q = PosteriorEncoder(config.spec_bins, inter, hidden, 5, 1, 16, cond_channels=gin)
        self.flow = ResidualCouplingBlocks(inter, hidden, 5, 1, 4, cond_channels=gin)

    def train_forward(self, latents: torch.Tensor, spec: torch.Tensor, lengths: torch.Tensor, phonemes: torch.Tensor,
                      phoneme_lengths: torch.Tensor, voice: torch.Tensor, segment_frames: int
                      ) -> dict[str, torch.Tensor]:
        """One training pass: latents ``[b, ssl_dim, t]`` and spectrogram ``[b, bins, t]`` at 50 Hz.

        Returns the generated audio of a random ``segment_frames`` slice per item (``audio``), the
        slices' start frames (``starts``) and what the KL term needs (``z_p``, ``logs_q``, ``m_p``,
        ``logs_p``, ``mask``).
        """
        m_p, logs_p, mask = self.enc_p(latents, lengths, phonemes, phoneme_lengths, voice)
        z, _, logs_q, _ = self.enc_q(spec, lengths, g=voice)
        z_p = self.flow(z, mask, g=voice)
        starts = random_starts(lengths, segment_frames)
        z_slice = torch.stack([z[i, :, s:s + segment_frames] for i, s in enumerate(starts.tolist())])
        return {"audio": self.dec(z_slice, g=voice), "starts": starts, "z_p": z_p, "logs_q": logs_q, "m_p": m_p,
                "logs_p": logs_p, "mask": mask}

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, phonemes: torch.Tensor, voice: torch.Tensor, noise_scale: float = 0.5,
               speed: float = 1.0) -> torch.Tensor:
        """Latents ``[1, ssl_dim, t]`` (50 Hz) + phonemes ``[1, n]`` + voice ``[1, gin, 1]`` -> ``[1, 1, samples]``."""
        lengths = torch.tensor([latents.size(2)], device=latents.device)
        phoneme_lengths = torch.tensor([phonemes.size(1)], device=phonemes.device)
        m_p, logs_p, mask = self.enc_p(latents, lengths, phonemes, phoneme_lengths, voice, speed)
        z_p = m_p + torch.randn_like(m_p) * torch.exp(logs_p) * noise_scale
        z = self.flow(z_p, mask, g=voice, reverse=True)
        return self.dec(z * mask, g=voice)


def random_starts(lengths: torch.Tensor, segment_frames: int) -> torch.Tensor:
    """A random start frame per item such that ``segment_frames`` frames fit (0 for shorter items)."""
    room = (lengths - segment_frames).clamp(min=0) + 1
    return (torch.rand(lengths.shape, device=lengths.device) * room).long()


def build_reference_encoder(config: S2Config) -> ReferenceEncoder:
    """``ref_enc`` for ``config``: the first ``ref_bins`` spectrogram bins -> a ``gin_channels`` vector."""
    m = config.model
    return ReferenceEncoder(int(m["ref_bins"]), int(m.get("ref_hidden", 128)), int(m["gin_channels"]))


def build_discriminator() -> nn.Module:
    """The published discriminator's architecture: one scale and periods 2, 3, 5, 7, 11 (coqui-tts)."""
    from TTS.tts.layers.vits.discriminator import VitsDiscriminator

    return VitsDiscriminator(periods=(2, 3, 5, 7, 11), use_spectral_norm=False)



def load_module(module: nn.Module, weights: Mapping[str, torch.Tensor], what: str) -> None:
    """Load ``weights`` strictly into ``module``; a mismatch is a one-line error naming ``what``."""
    from tts_host.errors import TTSHostError

    try:
        missing, unexpected = module.load_state_dict(dict(weights), strict=False)
    except RuntimeError as exc:  # a shape that does not fit
        first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise TTSHostError(f"{what}: the weights do not fit the model ({first})") from None
    if missing or unexpected:
        detail = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise TTSHostError(f"{what}: the weights do not fit the model ({detail}; "
                           f"{len(missing)} missing, {len(unexpected)} unexpected)")
