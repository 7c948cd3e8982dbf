"""The ``xtts`` backend: bases, validation, cloning, fine-tuning, synthesis and export for XTTS v2."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from tts_host.backend import Backend, FileRole
from tts_host.contract import CloneRequest, SpeakRequest, Speech
from tts_host.errors import TTSHostError
from tts_host.plugins.xtts import SAMPLE_RATE
from tts_host.plugins.xtts.files import FILE_ROLES

if TYPE_CHECKING:
    from tts_host.speakers.records import Voice
    from tts_host.composition import Components
    from tts_host.training.job import TrainingJob, TrainingRun



class XttsBackend(Backend):
    """coqui-tts XTTS v2 as a tts-host backend (GPT-only fine-tuning, frozen DVAE and HiFi-GAN)."""

    name = "xtts"
    training_sample_rate = SAMPLE_RATE
    settings_class = "tts_host.plugins.xtts.training:FinetuneSettings"
    sampling_options = frozenset({"temperature", "top_p", "top_k", "repetition_penalty"})
    streams = True
    speech_precisions = frozenset({"fp32", "bf16", "int8"})
    speech_roles = ("text_encoder", "acoustic_model", "vocoder")
    adapter_roles = ("lora_config", "lora_weights")

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

    def conditioning(self, components: Components, request: CloneRequest) -> dict[str, np.ndarray]:
        """``gpt_cond_latent``, d-vector ``speaker_embedding`` and ``cond_audio`` from the reference clips."""
        from tts_host.plugins.xtts.synthesis import clone_conditioning

        return clone_conditioning(components, [Path(p) for p in request.references])

    def export_formats(self) -> list[str]:
        """``coqui``: a published-layout folder coqui-tts and AllTalk load as is."""
        return ["coqui"]

    def export(self, voice: Voice, model_folder: Path, conditioning: Mapping[str, np.ndarray],
               fmt: str, out: Path) -> Path:
        """Write the six-file coqui folder; speakers_xtts.pth holds every speaker of the checkpoint."""
        if fmt != "coqui":
            return super().export(voice, model_folder, conditioning, fmt, out)
        from tts_host.plugins.xtts.export import export_coqui

        name = getattr(voice, "name", str(voice))
        return export_coqui(Path(model_folder), {name: dict(conditioning)} if conditioning else {}, Path(out))

    def training_run(self, job: TrainingJob) -> TrainingRun:
        """Train the GPT of ``job``'s components (frozen DVAE, no vocoder loaded)."""
        from tts_host.plugins.xtts.finetune import XttsTrainingRun

        return XttsTrainingRun(job)

    def check_speech(self, folder: Path, voice: Voice, request: SpeakRequest) -> None:
        """The language (the request's, else the voice's, else ``en``) is one the model lists, with its frontend."""
        from tts_host.plugins.xtts.model import read_config
        from tts_host.plugins.xtts.text import check_language

        check_language(request.language or voice.language or "en", list(read_config(Path(folder))["languages"]))

    def synthesize(self, components: Components, conditioning: Mapping[str, np.ndarray], voice: Voice,
                   request: SpeakRequest) -> Speech:
        """Text encoder -> GPT -> vocoder, a sentence at a time (streamed with ``request.stream``)."""
        from tts_host.plugins.xtts.synthesis import synthesize, voice_conditioning

        conditioning = voice_conditioning(conditioning, voice, components.folder)
        return synthesize(components, conditioning, request.language or voice.language or "en", request)
