"""The llasa backend's library-facing work: ``finetune`` and ``speak`` on library records.

Fine-tune order: resolve and validate the start through the library (hashes, protected files,
schema) -> prepare the data -> codes through the feature cache -> earlier speakers' held-out
loss -> train (resumable) -> store the LM weights or the LoRA adapter as a checkpoint whose
other files are the base's blobs -> add the voice. Work files live under
``$TTS_HOST_HOME/work/llasa`` and are removed once the checkpoint is stored.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.speech import SpeechResult, check_sampling, check_text, write_wav
from tts_host.training.inputs import check_transcripts, prepared_data, resolve_start
from tts_host.training.state import check_resume
from tts_host.plugins.llasa.codec import SAMPLE_RATE
from tts_host.plugins.llasa.train import FinetuneSettings

FORGETTING_WARNING = 0.10  # warn when an earlier speaker's held-out loss rises by more than 10 %


@dataclass(frozen=True)
class ClipRef:
    """An earlier speaker's clip as recorded with a checkpoint: enough to rebuild its training row."""

    id: str
    text: str
    sha256: str
    split: str
    audio_path: str

    def read(self, sample_rate: int | None = None) -> np.ndarray:
        """The clip's audio (only needed when its codes are not cached yet)."""
        from tts_host.data import read_audio

        path = Path(self.audio_path)
        if not path.is_file():
            raise TTSHostError(f"earlier clip {self.id}: {path} is gone and its codes are not cached")
        return read_audio(path, sample_rate)


@dataclass
class FinetuneOutcome:
    """What a fine-tune stored and measured."""

    checkpoint: Any
    voice: Any
    speakers: list[str]
    metrics: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        """Lines the CLI prints."""
        m = self.metrics
        kind = f"LoRA rank {m['lora_rank']}" if m.get("lora_rank") else "full"
        lines = [f"stored {self.checkpoint.label} ({kind}; speakers: {', '.join(self.speakers)}) "
                 f"and voice '{self.voice.name}'",
                 f"training loss {m['first_loss']:.4f} -> {m['final_loss']:.4f} over {m['steps']} steps "
                 f"({m['tokens_per_second']:.0f} tokens/s)"]
        for name in m["heldout_before"]:
            if name in m["heldout_after"]:
                lines.append(f"held-out loss of {name}: {m['heldout_before'][name]:.4f} -> "
                             f"{m['heldout_after'][name]:.4f}")
        lines += [f"skipped {s['clip']}: {s['reason']}" for s in m["skipped"]]
        return lines


@dataclass
class WorkerOutcome:
    """What a ``torchrun`` rank other than 0 reports: rank 0 stores and prints."""

    rank: int
    warnings: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        """Nothing: rank 0 prints the summary."""
        return []


def _clip_records(dataset: Any) -> list[dict[str, str]]:
    return [{"id": c.id, "text": c.text, "sha256": c.sha256, "split": c.split, "audio_path": str(c.audio_path)}
            for c in dataset.clips]


def _earlier(model: Any, speaker: str) -> dict[str, Any]:
    """Earlier speakers' clips recorded with the starting checkpoint (none for a base)."""
    from tts_host.plugins.llasa.recipe import SpeakerData

    recorded = (getattr(model, "training_config", None) or {}).get("clips", {})
    earlier = {}
    for name, records in recorded.items():
        if name == speaker:
            continue
        refs = [ClipRef(**r) for r in records]
        earlier[name] = SpeakerData([r for r in refs if r.split == "train"], [r for r in refs if r.split == "heldout"])
    return earlier


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def run_finetune(backend: Any, library: Any, *, speaker: str, data: Path, start: str | None, base: str | None,
                 settings: FinetuneSettings, replay: float = 0.0, resume: bool = False, restart: bool = False,
                 allow_empty_text: bool = False, progress: bool = True, log_dir: Path | None = None,
                 on_step: Callable[[int, int, float], None] | None = None) -> FinetuneOutcome | WorkerOutcome:
    """Fine-tune ``speaker``; the outcome on rank 0, a :class:`WorkerOutcome` on other ``torchrun`` ranks.

    Every check that needs no model (names, data, transcripts, saved progress) comes first.
    """
    from tts_host.plugins.llasa.clone import text_array
    from tts_host.plugins.llasa.recipe import SpeakerData, finetune_voice
    from tts_host.plugins.llasa.train import STATE_DIR, distributed_context
    from tts_host.speakers.names import check_name
    from tts_host.speakers.records import Checkpoint, Voice

    context = distributed_context()
    speaker = check_name(speaker, "speaker")
    if any(v.name == speaker for v in library.voices()):
        raise TTSHostError(f"a voice named '{speaker}' already exists: remove or rename it, or fine-tune another name")
    record = resolve_start(library, "llasa", start, base)
    model = library.model_of(record) if isinstance(record, Voice) else record
    if settings.lora_rank is None and any(f.role == "adapter_weights" for f in model.files):
        raise TTSHostError(f"{record.label} is a LoRA checkpoint: continue it with --lora, or fine-tune its "
                           f"base (or a full checkpoint) for a full fine-tune")
    if context.rank == 0:
        dataset = prepared_data(data, speaker, Path(library.home), "llasa", SAMPLE_RATE, progress=progress)
    _barrier(context.world)
    if context.rank != 0:
        dataset = prepared_data(data, speaker, Path(library.home), "llasa", SAMPLE_RATE)
    text_warnings = check_transcripts(dataset, data, allow_empty_text)
    work = Path(library.home) / "work" / "llasa"
    document = {"model": sorted(f.sha256 for f in model.files), "speaker": speaker, "replay": replay,
                "clips": sorted(c.sha256 for c in dataset.clips), "settings": settings.fingerprint()}
    run_dir = work / f"run-{hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]}"
    check_resume(run_dir / STATE_DIR, resume=resume, restart=restart)
    if not resume and context.rank == 0:
        shutil.rmtree(run_dir, ignore_errors=True)
    _barrier(context.world)
    start_dir = work / f"start-{speaker}-rank{context.rank}"
    shutil.rmtree(start_dir, ignore_errors=True)
    model = library.validate_for_finetune(record, dest=start_dir, backend=backend)
    try:
        base_record = library.base_by_id(model.base_id) if isinstance(model, Checkpoint) else model
        earlier = _earlier(model, speaker)
        outcome = finetune_voice(start_dir, run_dir, speaker, SpeakerData(dataset.train, dataset.heldout), settings,
                                 earlier=earlier, replay=replay, progress=progress, on_step=on_step,
                                 log_dir=log_dir)
        if not context.main:
            return WorkerOutcome(context.rank)
        speakers = [*(model.speakers if isinstance(model, Checkpoint) else ()), speaker]
        speakers = list(dict.fromkeys(speakers))
        metrics = {**outcome.metrics(), "lora_rank": settings.lora_rank}
        clips = {**(getattr(model, "training_config", None) or {}).get("clips", {}), speaker: _clip_records(dataset)}
        training_config = {"settings": json.loads(settings.fingerprint()), "start": record.label, "replay": replay,
                           "data": str(dataset.root), "clips": clips, "resumed_from": outcome.result.resumed_from}
        checkpoint = library.add_checkpoint(backend, base_record, model if isinstance(model, Checkpoint) else None,
                                            speakers, outcome.files, training_config, metrics)
        voice = library.add_voice(speaker, backend, checkpoint, {"speaker_tag": text_array(speaker)},
                                  language=dataset.clips[0].language if dataset.clips else None,
                                  notes=f"fine-tuned from {record.label}")
        warnings = text_warnings + [
            f"earlier speaker '{name}': held-out loss rose {100 * (after / before - 1):.1f}% "
            f"({before:.4f} -> {after:.4f}): consider --replay"
            for name, after in outcome.heldout_after.items() if name != speaker
            and (before := outcome.heldout_before[name]) and after > before * (1 + FORGETTING_WARNING)]
        shutil.rmtree(run_dir, ignore_errors=True)
        return FinetuneOutcome(checkpoint, voice, speakers, metrics, warnings)
    finally:
        shutil.rmtree(start_dir, ignore_errors=True)


def speak_voice(library: Any, voice: str, text: str, out: Path, *, stream: bool = False, seed: int = 0,
                **sampling: Any) -> SpeechResult:
    """Synthesise ``text`` with a library voice into a 16 kHz wav (written whole or not at all).

    The text and the sampling options are checked before the model loads; the text is spoken a
    sentence at a time (:func:`tts_host.speech.split_text`), joined with short pauses.
    """

    from tts_host.plugins.llasa.clone import array_text
    from tts_host.plugins.llasa.generate import Sampling
    from tts_host.plugins.llasa.synthesis import load_model, synthesize

    if stream:
        raise TTSHostError("the llasa backend does not stream: leave out --stream")
    check_text(text)
    check_sampling(sampling, zero_means_off=True)
    record = library.voice(voice)
    model = library.ready_to_speak(record)
    conditioning = library.voice_conditioning(record)
    started = time.perf_counter()
    with library.materialised(model) as folder:
        loaded = load_model(folder)
        options = Sampling.from_generation_config(loaded.model.generation_config, seed=seed, **sampling)
        audio = synthesize(
            loaded, text,
            speaker=array_text(conditioning["speaker_tag"]) if "speaker_tag" in conditioning else None,
            ref_codes=conditioning.get("ref_codes", np.zeros(0, dtype=np.int64)).tolist(),
            ref_text=array_text(conditioning["ref_text"]) if "ref_text" in conditioning else None,
            sampling=options,
        )
    wall = time.perf_counter() - started
    return SpeechResult(write_wav(Path(out), audio, SAMPLE_RATE), SAMPLE_RATE, len(audio) / SAMPLE_RATE, wall)
