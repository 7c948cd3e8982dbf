"""The ``sovits`` backend: bases, GPT-SoVITS import and export, validation, fine-tuning, cloning, speech."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from tts_host.backend import Backend, FileRole
from tts_host.contract import SAMPLING_OPTIONS, CloneRequest, SpeakRequest, Speech
from tts_host.errors import TTSHostError, ValidationError
from tts_host.plugins.sovits import SAMPLE_RATE
from tts_host.plugins.sovits.files import FILE_ROLES

if TYPE_CHECKING:
    from tts_host.composition import Components
    from tts_host.speakers.records import Voice
    from tts_host.training.job import TrainingJob, TrainingRun


class SovitsBackend(Backend):
    """GPT-SoVITS v2: s2 (SoVITS synthesiser) and s1 (text-to-semantic GPT) over frozen semantic tokens."""

    name = "sovits"
    training_sample_rate = SAMPLE_RATE
    settings_class = "tts_host.plugins.sovits.settings:SovitsSettings"
    sampling_options = frozenset(SAMPLING_OPTIONS)
    sampling_zero_means_off = True
    streams = True
    speeds = True
    speech_roles = ("text_encoder", "codec", "acoustic_model", "vocoder", "speaker_encoder")
    assembles_bases = True

    def init_base(self, preset: str, out_dir: Path, *, seed: int = 0) -> Path:
        """A base folder with random weights from ``preset`` (``tiny`` or ``v2``)."""
        from tts_host.plugins.sovits.base import init_base

        return init_base(preset, Path(out_dir), seed=seed)

    def assemble_base(self, model_dir: Path, parts: Mapping[str, Path], out_dir: Path) -> Path:
        """A base from a GPT-SoVITS v2 model set (``base add sovits PATH``): s1 ``.ckpt``, s2 ``.pth``, HuBERT ..."""
        from tts_host.plugins.sovits.importing import import_model_set

        if parts:
            raise TTSHostError(f"a sovits base is imported from one GPT-SoVITS folder; it takes no {', '.join(parts)}")
        return import_model_set(Path(model_dir), Path(out_dir))

    def file_roles(self) -> list[FileRole]:
        """HuBERT, s2 (semantic part protected, generator trainable, optional discriminator), s1, optional BERT."""
        return list(FILE_ROLES)

    def architecture(self, folder: Path) -> dict[str, Any]:
        """s2, s1 and HuBERT sizes from the folder's configs."""
        from tts_host.plugins.sovits.base import architecture

        return architecture(Path(folder))

    def validate(self, folder: Path, architecture: Mapping[str, Any]) -> None:
        """Exact tensor names and shapes (GPT-SoVITS's), finite values, configs against the base's."""
        from tts_host.plugins.sovits.base import validate_base

        validate_base(Path(folder))
        if architecture:
            actual = self.architecture(Path(folder))
            for part, values in architecture.items():
                if actual.get(part) != values:
                    raise ValidationError(f"{part} config", f"{values} (as the base)", actual.get(part))

    def protected_difference(self, role: str, base_file: Path, changed_file: Path) -> str | None:
        """Which tensor of a protected safetensors file differs from the base's (``None`` when not one)."""
        from tts_host.plugins.sovits.protection import first_changed_tensor

        return first_changed_tensor(base_file, changed_file)

    def training_run(self, job: TrainingJob) -> TrainingRun:
        """s2 then s1 on the job's clips."""
        from tts_host.plugins.sovits.recipe import SovitsTrainingRun

        return SovitsTrainingRun(job)

    def check_speech(self, folder: Path, voice: Voice, request: SpeakRequest) -> None:
        """English or Chinese text (fp32 speech only: :attr:`speech_precisions`, checked by core)."""
        from tts_host.plugins.sovits.text.frontend import SUPPORTED_LANGUAGES, language_code

        if request.language is not None and language_code(request.language) not in SUPPORTED_LANGUAGES:
            raise TTSHostError(f"backend 'sovits' reads English (en) and Chinese (zh) text, not '{request.language}'")

    def synthesize(self, components: Components, conditioning: Mapping[str, np.ndarray], voice: Voice,
                   request: SpeakRequest) -> Speech:
        """s1 then s2 a sentence at a time, with the voice's reference."""
        from tts_host.plugins.sovits.synthesis import synthesize

        return synthesize(components, conditioning, request)

    def conditioning(self, components: Components, request: CloneRequest) -> dict[str, np.ndarray]:
        """Zero-shot clone: a 3-10 s reference, its transcript and its semantic codes."""
        from tts_host.conditioning import reference_transcript
        from tts_host.plugins.sovits.components import PhonemeTextEncoder, SemanticCodec
        from tts_host.plugins.sovits.reference import from_files
        from tts_host.plugins.sovits.text.frontend import language_code

        text = reference_transcript(request.references, request.ref_text, self.name)
        language = language_code(request.language or "en")  # a voice in another language could never speak
        try:  # every sentence is spoken after the transcript's phonemes: refuse one that has none now
            components.get("text_encoder", PhonemeTextEncoder).phonemes(text, language)
        except TTSHostError as exc:
            raise TTSHostError(f"the reference transcript cannot be used: {exc}") from None
        codec = components.get("codec", SemanticCodec)
        return from_files(codec, [Path(p) for p in request.references], text, language)

    def export_formats(self) -> list[str]:
        """``gpt-sovits``: s1 ``.ckpt`` + s2 ``.pth`` in GPT-SoVITS v2's own formats, with the reference."""
        return ["gpt-sovits"]

    def export(self, voice: Voice, model_folder: Path, conditioning: Mapping[str, np.ndarray],
               fmt: str, out: Path) -> Path:
        """Write the GPT-SoVITS files of ``voice`` into the folder ``out``."""
        if fmt != "gpt-sovits":
            return super().export(voice, model_folder, conditioning, fmt, out)
        from tts_host.plugins.sovits.exporting import export_voice

        return export_voice(voice.name, Path(model_folder), conditioning, Path(out))
