"""``finetune``: an XTTS fine-tune from a library base or voice to a new checkpoint and voice.

Order of work: resolve the starting point -> prepare the data, check its transcripts and any
saved progress of the same run (all before a model loads) -> validate the starting point
through the library (hashes, protected files, schema) -> cache DVAE codes -> measure earlier speakers'
held-out loss -> train the GPT (resumable) -> recompute every speaker's conditioning with the
new GPT -> store the GPT weights and conditioning as a checkpoint whose other files are the
base's blobs -> add the voice. Work files live under ``$TTS_HOST_HOME/work`` and are removed
when the checkpoint is stored.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from tts_host.errors import TTSHostError
from tts_host.training.inputs import check_transcripts, prepared_data, resolve_start
from tts_host.training.state import check_resume
from tts_host.oserrors import disk_full_errors
from tts_host.plugins.xtts.features import ClipRecord, ItemBuilder, records_from_dataset
from tts_host.plugins.xtts.model import SAMPLE_RATE
from tts_host.plugins.xtts.speakers_file import FILE as SPEAKERS_FILE
from tts_host.plugins.xtts.speakers_file import read_speakers, write_speakers
from tts_host.plugins.xtts.training import FinetuneSettings, evaluate_items, summary, train_gpt

REFERENCE_SECONDS = 6.0  # conditioning audio gathered from a speaker's longest training clips


@dataclass
class FinetuneOutcome:
    """What a fine-tune stored and measured."""

    checkpoint: Any
    voice: Any
    speakers: list[str]
    metrics: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    log_png: Path | None = None

    def summary_lines(self) -> list[str]:
        """Lines the CLI prints."""
        m = self.metrics
        speakers = ", ".join(self.speakers)
        lines = [f"stored {self.checkpoint.label} (speakers: {speakers}) and voice '{self.voice.name}'",
                 f"training loss {m['train_loss_first']:.4f} -> {m['train_loss_last']:.4f} over {m['steps']} steps"]
        if m.get("heldout_loss") is not None:
            lines.append(f"held-out loss {m['heldout_before']:.4f} -> {m['heldout_loss']:.4f} "
                         f"(best at step {m['best_step']})")
        for name, f in m.get("forgetting", {}).items():
            lines.append(f"earlier speaker {name}: held-out loss {f['before']:.4f} -> {f['after']:.4f} "
                         f"({f['rise'] * 100:+.1f}%)")
        if self.log_png:
            lines.append(f"logs: {self.log_png.parent} (TensorBoard scalars, {self.log_png.name})")
        return lines


def run_finetune(
    backend: Any,
    library: Any,
    *,
    speaker: str,
    data: Path,
    start: str | None = None,
    base: str | None = None,
    settings: FinetuneSettings,
    resume: bool = False,
    restart: bool = False,
    allow_empty_text: bool = False,
    log_dir: Path | None = None,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> FinetuneOutcome | None:
    """Fine-tune ``speaker`` on ``data``; see the module docstring for the order of work.

    Returns ``None`` on ranks other than 0 of a distributed run (only rank 0 stores results).
    Every check that needs no model (names, data, transcripts, saved progress) comes first.
    """
    from tts_host.data.cache import FeatureCache
    from tts_host.plugins.xtts.features import Collator
    from tts_host.plugins.xtts.model import load_xtts
    from tts_host.plugins.xtts.synthesis import conditioning_from_model, latent_from_audio
    from tts_host.speakers.names import check_name
    from tts_host.speakers.records import Checkpoint, Voice
    from tts_host.training.distributed import is_main_process

    speaker = check_name(speaker, "speaker")
    if any(v.name == speaker for v in library.voices()):
        raise TTSHostError(f"a voice named '{speaker}' already exists: remove or rename it, or fine-tune another name")
    record = resolve_start(library, "xtts", start, base)
    model = library.model_of(record) if isinstance(record, Voice) else record
    dataset = prepared_data(data, speaker, Path(library.home), "xtts", SAMPLE_RATE, progress=progress)
    text_warnings = check_transcripts(dataset, data, allow_empty_text)
    earlier_clips = _earlier_clips(model, speaker)
    new_records = records_from_dataset(dataset)
    fingerprint = _fingerprint(model, speaker, new_records, earlier_clips, settings)
    work = Path(library.home) / "work" / "xtts"
    run_dir = work / f"run-{fingerprint[:16]}"
    check_resume(run_dir, resume=resume, restart=restart)
    if restart:
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(work / f"run-{fingerprint[:16]}-best", ignore_errors=True)
    start_dir = work / f"start-{speaker}"
    shutil.rmtree(start_dir, ignore_errors=True)
    model = library.validate_for_finetune(record, dest=start_dir, backend=backend)
    try:
        base_record = model if not isinstance(model, Checkpoint) else library.base_by_id(model.base_id)
        dvae_sha = next(f.sha256 for f in model.files if f.role == "dvae")
        builder = ItemBuilder(start_dir, dvae_sha, FeatureCache())
        new_train = builder.build([r for r in new_records if r.split == "train"])
        new_heldout = builder.build([r for r in new_records if r.split == "heldout"])
        earlier_train = builder.build([r for recs in earlier_clips.values() for r in recs if r.split == "train"]) \
            if settings.replay > 0 else []
        earlier_heldout = {name: builder.build([r for r in recs if r.split == "heldout"])
                           for name, recs in earlier_clips.items()}
        del builder  # frees the DVAE: training needs only its cached codes

        xtts = load_xtts(start_dir, for_inference=False)
        references = _reference_clips(dataset)
        conditioning = conditioning_from_model(xtts, references)  # its d-vector needs the frozen HiFi-GAN
        xtts.hifigan_decoder = None  # only the GPT trains: free the decoder's memory for the run
        gpt = xtts.gpt
        collator = Collator(xtts.mel_stats)
        before = {name: evaluate_items(gpt, collator, items, settings)
                  for name, items in earlier_heldout.items() if items}
        heldout_before = evaluate_items(gpt, collator, new_heldout, settings) if new_heldout else None
        result = train_gpt(gpt, collator, new_train, earlier_train, new_heldout, settings,
                           run_dir, fingerprint=fingerprint, resume=resume,
                           log_dir=log_dir, progress=progress, label=f"xtts {speaker}", on_step=on_step)
        if not is_main_process():  # under torchrun, rank 0 alone writes the library
            return None
        gpt.eval()  # holds the chosen (best held-out) weights
        after = {name: evaluate_items(gpt, collator, earlier_heldout[name], settings) for name in before}

        speakers = read_speakers(start_dir / SPEAKERS_FILE)
        speakers[speaker] = conditioning
        for entry in speakers.values():
            if "cond_audio" in entry:  # the GPT's conditioning encoder changed: recompute the latent
                entry["gpt_cond_latent"] = latent_from_audio(xtts, entry["cond_audio"])
        out = work / f"out-{fingerprint[:16]}"
        _write_outputs(out, result.gpt_state, speakers)

        metrics = dict(summary(result))
        metrics["heldout_before"] = heldout_before
        metrics["forgetting"] = {name: {"before": before[name], "after": after[name],
                                        "rise": (after[name] - before[name]) / before[name]} for name in before}
        warnings = text_warnings + [
            f"earlier speaker '{name}': held-out loss rose {f['rise'] * 100:.1f}% ({f['before']:.4f} -> "
            f"{f['after']:.4f}), above the {settings.forgetting_warning * 100:.0f}% warning level: consider --replay"
            for name, f in metrics["forgetting"].items() if f["rise"] > settings.forgetting_warning]
        clips = {name: [r.to_json() for r in recs] for name, recs in earlier_clips.items()}
        clips[speaker] = [r.to_json() for r in new_records]
        training_config = {"settings": settings.as_dict(), "start": record.label, "data": str(dataset.root),
                           "clips": clips, "resumed_from": result.resumed_from}
        checkpoint = library.add_checkpoint(
            backend, base_record, model if isinstance(model, Checkpoint) else None, list(speakers),
            {"gpt": out / "gpt.safetensors", "speakers": out / SPEAKERS_FILE}, training_config, metrics)
        voice = library.add_voice(speaker, backend, checkpoint, conditioning, references,
                                  language=new_records[0].language, notes=f"fine-tuned from {record.label}")
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(work / f"run-{fingerprint[:16]}-best", ignore_errors=True)
        return FinetuneOutcome(checkpoint, voice, list(speakers), metrics, warnings, result.log_png)
    finally:
        shutil.rmtree(start_dir, ignore_errors=True)


def _write_outputs(out: Path, gpt_state: dict[str, Any], speakers: dict[str, Any]) -> None:
    """``gpt.safetensors`` and the speakers file in ``out``; on a full disk, an error and no ``out``."""
    from safetensors.torch import save_file

    shutil.rmtree(out, ignore_errors=True)
    try:
        with disk_full_errors(out):
            out.mkdir(parents=True)
            save_file({k: v.contiguous() for k, v in gpt_state.items()}, str(out / "gpt.safetensors"))
            write_speakers(out / SPEAKERS_FILE, speakers)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def _earlier_clips(model: Any, speaker: str) -> dict[str, list[ClipRecord]]:
    """Clip records of the starting checkpoint's speakers (none for a base), without ``speaker``."""
    recorded = getattr(model, "training_config", {}).get("clips", {}) if hasattr(model, "training_config") else {}
    return {name: [ClipRecord(**r) for r in recs] for name, recs in recorded.items() if name != speaker}


def _reference_clips(dataset: Any) -> list[Path]:
    """The longest training clips, up to about 6 s together: the speaker's conditioning references."""
    chosen, total = [], 0.0
    for clip in sorted(dataset.train, key=lambda c: (-c.duration, c.id)):
        chosen.append(Path(clip.audio_path))
        total += clip.duration
        if total >= REFERENCE_SECONDS:
            break
    return chosen


def _fingerprint(model: Any, speaker: str, records: Sequence[ClipRecord], earlier: dict[str, list[ClipRecord]],
                 settings: FinetuneSettings) -> str:
    """Identifies a run: resuming is allowed only into the same start, data and settings."""
    document = {
        "model": [[f.role, f.sha256] for f in sorted(model.files, key=lambda f: f.role)],
        "speaker": speaker,
        "clips": sorted(r.sha256 for r in records),
        "earlier": {name: sorted(r.sha256 for r in recs) for name, recs in earlier.items()},
        "settings": settings.as_dict(),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
