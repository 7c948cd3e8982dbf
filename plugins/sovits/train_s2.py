"""The s2 stage: the SoVITS synthesiser and its reference encoder trained as a GAN on real audio.

Losses as GPT-SoVITS's ``s2_train.py``: least-squares GAN, feature matching (x2), mel L1 (x ``c_mel``)
and the VITS KL (x ``c_kl``) (``s2_gan: false`` leaves out the discriminator: mel and KL only, for quick
previews and tests); the quantizer and ``ssl_proj`` are frozen (the codes are given, so its
commitment loss is 0); the text branch learns at ``text_lr_ratio`` of the rate. AdamW with betas
(0.8, 0.99), eps 1e-9, on random ``segment_frames`` slices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.nn import functional as F

from tts_host.plugins.sovits.components import ReferenceSpeakerEncoder, SemanticCodec, SovitsVocoder
from tts_host.plugins.sovits.data import Item
from tts_host.plugins.sovits.regularisers import mix_voices, set_dropout, spec_augment
from tts_host.plugins.sovits.settings import SovitsSettings
from tts_host.plugins.sovits.spectrogram import linear_spectrogram, mel_from_linear
from tts_host.training.devices import Precision


@dataclass
class S2Batch:
    """Padded tensors of a list of items (50 Hz frames)."""

    latents: torch.Tensor  # [b, ssl_dim, t]
    spec: torch.Tensor  # [b, bins, t]
    audio: torch.Tensor  # [b, t * hop]
    lengths: torch.Tensor  # [b]
    phonemes: torch.Tensor  # [b, n]
    phoneme_lengths: torch.Tensor  # [b]
    speakers: list[str]


class S2Stage:
    """One s2 model (vocoder + reference encoder components) and its discriminator (``None``: no GAN), on one device."""

    def __init__(self, vocoder: SovitsVocoder, reference: ReferenceSpeakerEncoder, codec: SemanticCodec,
                 discriminator: torch.nn.Module | None, settings: SovitsSettings, device: torch.device) -> None:
        self.synthesizer, self.reference, self.codec = vocoder.model, reference.model, codec
        if settings.dropout is not None:
            set_dropout([self.synthesizer, self.reference], settings.dropout)
        self.discriminator = discriminator.to(device) if discriminator is not None else None
        self.config, self.settings, self.device = vocoder.config, settings, device
        self.hop, self.n_fft = self.config.hop, self.config.n_fft
        self.win = int(self.config.data["win_length"])
        text = {id(p) for p in self.synthesizer.enc_p.text_branch()}
        rest = [p for p in [*self.synthesizer.parameters(), *self.reference.parameters()] if id(p) not in text]
        lr = settings.s2_learning_rate
        self.generator_optimizer = torch.optim.AdamW(
            [{"params": rest, "lr": lr},
             {"params": self.synthesizer.enc_p.text_branch(), "lr": lr * settings.text_lr_ratio}],
            betas=(0.8, 0.99), eps=1e-9)
        self.discriminator_optimizer = None if self.discriminator is None else torch.optim.AdamW(
            self.discriminator.parameters(), lr=lr, betas=(0.8, 0.99), eps=1e-9)

    def trainable(self) -> list[torch.nn.Module]:
        """The modules whose weights this stage changes (saved, averaged across ranks, EMA'd)."""
        return [self.synthesizer, self.reference]

    def batch(self, items: Sequence[Item]) -> S2Batch:
        """Pad ``items`` into one batch on the device."""
        frames = max(item.frames for item in items)
        n = max(len(item.phonemes) for item in items)
        audio = torch.zeros(len(items), frames * self.hop)
        phonemes = torch.zeros(len(items), n, dtype=torch.long)
        codes = torch.zeros(len(items), frames // 2, dtype=torch.long)
        for i, item in enumerate(items):
            audio[i, : len(item.audio)] = torch.from_numpy(item.audio)
            phonemes[i, : len(item.phonemes)] = torch.tensor(item.phonemes)
            codes[i, : len(item.codes)] = torch.from_numpy(item.codes)
        audio = audio.to(self.device)
        return S2Batch(
            latents=self.codec.vectors(codes).to(self.device), spec=linear_spectrogram(audio, self.n_fft, self.hop, self.win),
            audio=audio, lengths=torch.tensor([item.frames for item in items], device=self.device),
            phonemes=phonemes.to(self.device),
            phoneme_lengths=torch.tensor([len(item.phonemes) for item in items], device=self.device),
            speakers=[item.speaker for item in items])

    def _mel(self, audio: torch.Tensor) -> torch.Tensor:
        spec = linear_spectrogram(audio, self.n_fft, self.hop, self.win)
        return mel_from_linear(spec, self.config.sample_rate, self.n_fft, int(self.config.data["n_mel_channels"]))

    def train_step(self, batch: S2Batch, precision: Precision, sync: Callable[[list[torch.nn.Parameter]], None],
                   share: float = 1.0) -> dict[str, float]:
        """One discriminator step (unless ``s2_gan`` is off), then one generator step; ``sync`` averages gradients.

        ``share`` weights this process's losses: its part of the global batch relative to an even split.
        """
        from TTS.tts.layers.losses import VitsDiscriminatorLoss, VitsGeneratorLoss, feature_loss, generator_loss

        settings = self.settings
        spec = spec_augment(batch.spec, batch.lengths) if settings.spec_augment else batch.spec
        mask = (torch.arange(spec.size(2), device=self.device)[None] < batch.lengths[:, None]).unsqueeze(1).float()
        segment = min(settings.segment_frames, int(batch.lengths.min()))
        with precision.autocast():
            voice = mix_voices(self.reference(spec, mask), batch.speakers, settings.mixup_alpha)
            out = self.synthesizer.train_forward(batch.latents, spec, batch.lengths, batch.phonemes,
                                                 batch.phoneme_lengths, voice, segment)
        real = torch.stack([batch.audio[i, s * self.hop:(s + segment) * self.hop]
                            for i, s in enumerate(out["starts"].tolist())]).unsqueeze(1)
        fake = out["audio"][..., : real.size(-1)].float()
        adversarial = loss_d = torch.zeros((), device=self.device)
        if self.discriminator is not None and self.discriminator_optimizer is not None:
            with precision.autocast():
                scores_real, _, scores_fake, _ = self.discriminator(real, fake.detach())
                loss_d, _, _ = VitsDiscriminatorLoss.discriminator_loss(scores_real, scores_fake)
            self.discriminator_optimizer.zero_grad(set_to_none=True)
            precision.backward(loss_d * share)
            self._finish(self.discriminator_optimizer, precision, sync)
            with precision.autocast():
                _, feats_real, scores_fake, feats_fake = self.discriminator(real, fake)
                adversarial = generator_loss(scores_fake)[0] + feature_loss(feats_real, feats_fake)
        mel = F.l1_loss(self._mel(fake.squeeze(1)), self._mel(real.squeeze(1)))
        kl = VitsGeneratorLoss.kl_loss(out["z_p"], out["logs_q"], out["m_p"], out["logs_p"], out["mask"])
        total = adversarial + mel * settings.c_mel + kl * settings.c_kl
        self.generator_optimizer.zero_grad(set_to_none=True)
        precision.backward(total * share)
        self._finish(self.generator_optimizer, precision, sync)
        return {name: float(value.detach()) * share for name, value in
                (("loss", total), ("mel", mel), ("kl", kl), ("discriminator", loss_d))}

    def _finish(self, optimizer: torch.optim.Optimizer, precision: Precision,
                sync: Callable[[list[torch.nn.Parameter]], None]) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        sync(params)
        if self.settings.grad_clip > 0:
            precision.clip(optimizer, self.settings.grad_clip)
        precision.step(optimizer)

    @torch.no_grad()
    def heldout(self, items: Sequence[Item]) -> float:
        """Mean mel L1 of the synthesis path (codes + phonemes + the clip's own voice vector, no noise)."""
        if not items:
            return float("nan")
        was = [m.training for m in self.trainable()]
        for module in self.trainable():
            module.eval()
        losses = []
        for item in items:
            batch = self.batch([item])
            voice = self.reference(batch.spec)
            audio = self.synthesizer.decode(batch.latents, batch.phonemes, voice, noise_scale=0.0)
            length = min(audio.size(-1), batch.audio.size(-1))
            losses.append(float(F.l1_loss(self._mel(audio[:, 0, :length]), self._mel(batch.audio[:, :length]))))
        for module, mode in zip(self.trainable(), was):
            module.train(mode)
        return sum(losses) / len(losses)
