"""The ``xtts`` backend: bases, validation, cloning, fine-tuning, synthesis and export for XTTS v2."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from tts_host.backend import Backend, FileRole
from tts_host.errors import TTSHostError

FILE_ROLES = [
    FileRole("config", "config.json", description="coqui XttsConfig (architecture and inference settings)"),
    FileRole("model", "model.pth", description="base Xtts weights: GPT, HiFi-GAN decoder, speaker encoder"),
    FileRole("dvae", "dvae.pth", protected=True, description="DiscreteVAE state dict (audio -> codes)"),
    FileRole("mel_stats", "mel_stats.pth", protected=True, description="mel normalisation (80 values)"),
    FileRole("vocab", "vocab.json", protected=True, description="VoiceBpeTokenizer vocabulary"),
    FileRole("speakers_xtts", "speakers_xtts.pth", required=False,
             description="coqui's built-in speakers (published folders)"),
    FileRole("gpt", "gpt.safetensors", required=False, description="fine-tuned GPT weights (checkpoints)"),
    FileRole("speakers", "speakers.safetensors", required=False,
             description="conditioning of every speaker a checkpoint serves"),
]


class XttsBackend(Backend):
    """coqui-tts XTTS v2 as a tts-host backend (GPT-only fine-tuning, frozen DVAE and HiFi-GAN)."""

    name = "xtts"

    def presets(self) -> list[str]:
        """Preset names in ``configs/xtts``: tiny, small, v2."""
        from tts_host.plugins.xtts.presets import preset_names

        return preset_names()

    def init_base(self, preset: str, out_dir: Path, *, seed: int = 0) -> Path:
        """A published-layout XTTS folder with random weights (it speaks noise until trained)."""
        from tts_host.plugins.xtts.base import init_base

        return init_base(preset, Path(out_dir), seed=seed)

    def file_roles(self) -> list[FileRole]:
        """config, model, dvae/mel_stats/vocab (protected), and the optional files."""
        return list(FILE_ROLES)

    def architecture(self, folder: Path) -> dict[str, Any]:
        """The shape-determining model args and DVAE dimensions of ``folder``'s config.json."""
        from tts_host.plugins.xtts.model import read_config
        from tts_host.plugins.xtts.validate import architecture_of

        try:
            return architecture_of(read_config(Path(folder)))
        except (OSError, ValueError) as exc:
            raise TTSHostError(f"{Path(folder) / 'config.json'}: not a readable XTTS config ({exc})") from exc

    def validate(self, folder: Path, architecture: Mapping[str, Any]) -> None:
        """Every file against the architecture: exact keys and shapes, weights_only loads, finite values."""
        from tts_host.plugins.xtts.validate import validate_folder

        validate_folder(Path(folder), architecture or None)

    def conditioning(self, model_folder: Path, references: Sequence[Path]) -> dict[str, np.ndarray]:
        """``gpt_cond_latent`` and d-vector ``speaker_embedding`` from reference clips (coqui's own code).

        Every clip is checked (decodes, finite, not silent, long enough) before the model loads.
        """
        from tts_host.plugins.xtts.synthesis import compute_conditioning

        return compute_conditioning(Path(model_folder), [Path(p) for p in references])

    def export_formats(self) -> list[str]:
        """``coqui``: a published-layout folder coqui-tts and AllTalk load as is."""
        return ["coqui"]

    def export(self, voice: Any, model_folder: Path, conditioning: Mapping[str, np.ndarray],
               fmt: str, out: Path) -> Path:
        """Write the six-file coqui folder; speakers_xtts.pth holds every speaker of the checkpoint."""
        if fmt != "coqui":
            return super().export(voice, model_folder, conditioning, fmt, out)
        from tts_host.plugins.xtts.export import export_coqui

        name = getattr(voice, "name", str(voice))
        return export_coqui(Path(model_folder), {name: dict(conditioning)} if conditioning else {}, Path(out))

    def finetune(self, library: Any, *, speaker: str, data: Path, start: str | None = None,
                 base: str | None = None, config: Path | None = None, epochs: int | None = None,
                 batch_size: int | None = None, lr: float | None = None, replay: float | None = None,
                 resume: bool = False, restart: bool = False, allow_empty_text: bool = False,
                 log_dir: Path | None = None, progress: bool = True, on_step: Any = None, **settings: Any):
        """Fine-tune the GPT for ``speaker`` on ``data``, from ``start`` (voice or record) or ``base``.

        Returns a :class:`~tts_host.plugins.xtts.finetune.FinetuneOutcome` (``summary_lines()``,
        ``warnings``, the stored checkpoint and voice). Extra keyword settings override the config.
        ``restart`` discards an interrupted run's saved progress (refused otherwise unless
        ``resume``); ``allow_empty_text`` trains on clips without a transcript.
        """
        from tts_host.plugins.xtts.finetune import run_finetune
        from tts_host.plugins.xtts.training import FinetuneSettings

        options = FinetuneSettings.load(config, epochs=epochs, batch_size=batch_size, lr=lr, replay=replay,
                                        **settings)
        return run_finetune(self, library, speaker=speaker, data=Path(data), start=start, base=base,
                            settings=options, resume=resume, restart=restart, allow_empty_text=allow_empty_text,
                            log_dir=log_dir, progress=progress, on_step=on_step)

    def speak(self, library: Any, *, voice: str, text: str, out: Path, language: str | None = None,
              stream: bool = False, seed: int = 0, bf16: bool = False, temperature: float | None = None,
              top_p: float | None = None, top_k: int | None = None, repetition_penalty: float | None = None):
        """Synthesise ``text`` with ``voice`` into a 24 kHz wav at ``out``; returns a ``SpeechResult``.

        Sampling options left as None use the model's config.json values (coqui's defaults).
        """
        from tts_host.plugins.xtts.synthesis import speak_voice

        sampling = {k: v for k, v in {"temperature": temperature, "top_p": top_p, "top_k": top_k,
                                      "repetition_penalty": repetition_penalty}.items() if v is not None}
        return speak_voice(library, voice, text, Path(out), language=language, stream=stream, seed=seed, bf16=bf16,
                           sampling=sampling)
