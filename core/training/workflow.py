"""One fine-tune workflow for every backend: from a request to a stored checkpoint and voice.

Order of work (every check that needs no model comes first):

1. the speaker name is valid and not a voice yet; the start resolves (``--from`` / ``--base``);
2. the backend parses its settings (defaults < ``--config`` YAML < options) and checks the start;
3. the data is prepared at the backend's rate (rank 0 first under ``torchrun``), transcripts checked;
4. the earlier speakers' clips come from the starting checkpoint's record; the run's fingerprint
   names its folder under ``$TTS_HOST_HOME/work/BACKEND``; ``--resume``/``--restart`` are checked;
5. the library validates the start (hashes, protected files, the backend's schema check) into a
   folder from which the host builds the backend's components;
6. the backend's :class:`~tts_host.training.job.TrainingRun` measures every speaker's held-out
   loss, trains, measures again, and (rank 0 alone) saves;
7. rank 0 stores the checkpoint (every other file is the start's blob) and the voice, with the
   one metrics schema of :mod:`tts_host.training.report`, then removes the work files.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from tts_host.contract import FinetuneRequest, FinetuneResult
from tts_host.errors import TTSHostError
from tts_host.training.clips import dataset_clips, recorded_clips
from tts_host.training.inputs import check_transcripts, prepared_data, resolve_start
from tts_host.training.report import finetune_metrics, forgetting_warnings
from tts_host.training.settings import workflow_setting
from tts_host.training.sound_check import earlier_voices, judge_earlier_voices, similarity_warnings
from tts_host.training.state import check_resume

if TYPE_CHECKING:
    from tts_host.backend import Backend
    from tts_host.speakers.library import Library
    from tts_host.speakers.records import Model, Record
    from tts_host.data.dataset import PreparedDataset
    from tts_host.training.clips import SpeakerClips
    from tts_host.training.distributed import Distributed

STATE_DIR = "state"


@dataclass
class Run:
    """One fine-tune as the workflow plans it, before the model loads."""

    request: FinetuneRequest
    record: Record
    model: Model
    settings: Any
    chosen: dict[str, str]
    clips: dict[str, SpeakerClips]
    replay: float
    forgetting_warning: float
    fingerprint: str
    run_dir: Path
    start_dir: Path
    context: Distributed
    text_warnings: list[str]
    dataset: PreparedDataset


def fingerprint(model: Model, speaker: str, clips: dict[str, SpeakerClips], replay: float, settings: Any,
                chosen: dict[str, str]) -> str:
    """Identifies a run: resuming is allowed only into the same start, clips, replay, settings and components."""
    document = {
        "model": sorted([f.role, f.sha256] for f in model.files),
        "speaker": speaker,
        "clips": {name: sorted([c.sha256, c.text, c.split] for c in group.all()) for name, group in clips.items()},
        "replay": replay,
        "settings": {k: v for k, v in asdict(settings).items() if k != "save_every"},
        "components": chosen,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def run_finetune(backend: Backend, library: Library, request: FinetuneRequest) -> FinetuneResult:
    """Fine-tune ``request.speaker`` with ``backend``; see the module docstring for the order of work."""
    from tts_host.speakers.names import check_name
    from tts_host.speakers.records import Checkpoint, Voice
    from tts_host.training.distributed import barrier, distributed_context

    speaker = check_name(request.speaker, "speaker")
    if library.has_voice(speaker):
        raise TTSHostError(f"a voice named '{speaker}' already exists: remove or rename it, or fine-tune another name")
    replay = workflow_setting(request.config, "replay", request.replay)
    if not 0.0 <= replay < 1.0:
        raise TTSHostError(f"--replay is the share of earlier speakers' clips in training, in [0, 1); got {replay}")
    threshold = workflow_setting(request.config, "forgetting_warning")
    if not 0.0 <= threshold < math.inf:
        raise TTSHostError(f"{request.config}: forgetting_warning is a share of held-out loss, at least 0; "
                           f"got {threshold}")
    if request.max_forgetting is not None and not 0.0 <= request.max_forgetting <= 2.0:
        raise TTSHostError(f"--max-forgetting is a drop in speaker similarity (-1..1), in [0, 2]; "
                           f"got {request.max_forgetting}")
    record = resolve_start(library, backend.name, request.start, request.base)
    model = library.model_of(record) if isinstance(record, Voice) else record
    if model.backend != backend.name:
        raise TTSHostError(f"{record.label} belongs to backend '{model.backend}', not '{backend.name}'")
    settings = backend.training_settings(request.config, request.setting_overrides())
    backend.check_start(model, settings)
    inherited = (model.training_config or {}).get("components", {}) if isinstance(model, Checkpoint) else {}
    chosen = {**inherited, **backend.chosen_components(request.config, request.components)}
    backend.host_or_error().choose_components(backend.name, chosen)  # the fit check, before any data work
    context = distributed_context()
    home = Path(library.home)
    for turn in ("first", "then"):  # rank 0 prepares the data; the others then read what it wrote
        if (turn == "first") == context.main:
            dataset = prepared_data(request.data, speaker, home, backend.name, backend.training_sample_rate,
                                    progress=request.progress and context.main)
        barrier(context)
    text_warnings = check_transcripts(dataset, request.data, request.allow_empty_text)
    clips = {speaker: dataset_clips(dataset), **recorded_clips(model, speaker)}
    run_id = fingerprint(model, speaker, clips, replay, settings, chosen)
    work = home / "work" / backend.name
    run_dir = work / f"run-{run_id[:16]}"
    check_resume(run_dir / STATE_DIR, resume=request.resume, restart=request.restart)
    if request.restart and context.main:
        shutil.rmtree(run_dir, ignore_errors=True)
    barrier(context)
    start_dir = work / f"start-{run_id[:16]}-rank{context.rank}"
    shutil.rmtree(start_dir, ignore_errors=True)
    try:
        model = library.validate_for_finetune(record, dest=start_dir, backend=backend)
        run = Run(request, record, model, settings, chosen, clips, replay, threshold, run_id, run_dir, start_dir,
                  context, text_warnings, dataset)
        return _train_and_store(backend, library, run)
    finally:
        shutil.rmtree(start_dir, ignore_errors=True)
        if context.main:
            _remove_if_empty(run_dir)  # a run that saved no progress leaves nothing to resume


def _remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` and its empty sub-folders when no file is left in it."""
    try:
        if folder.is_dir() and not any(path.is_file() for path in folder.rglob("*")):
            shutil.rmtree(folder, ignore_errors=True)
    except OSError:
        pass  # already gone, or unreadable: a later gc reports it


def _train_and_store(backend: Backend, library: Library, run: Run) -> FinetuneResult:
    """Steps 6 and 7 of the module docstring, on the validated ``run.start_dir``."""
    from tts_host.speakers.records import Checkpoint
    from tts_host.training.distributed import barrier
    from tts_host.training.job import TrainingJob

    request, model, context = run.request, run.model, run.context
    speaker = request.speaker
    components = backend.host_or_error().components_for(backend.name, run.start_dir, run.chosen,
                                                        device=backend.device_name(context))
    job = TrainingJob(speaker, run.start_dir, {f.role: f.sha256 for f in model.files}, components, run.settings,
                      run.clips, run.replay, run.run_dir / STATE_DIR, run.fingerprint, context, request.resume,
                      request.log_dir, request.progress, request.on_step)
    training = backend.training_run(job)
    measured = {name: group.heldout for name, group in run.clips.items() if group.heldout}
    before = _finite({name: training.heldout_loss(heldout) for name, heldout in measured.items()})
    log = training.train()
    after = _finite({name: training.heldout_loss(heldout) for name, heldout in measured.items()})
    metrics = finetune_metrics(log, speaker, before, after, run.replay)
    speakers = list(dict.fromkeys([*(model.speakers if isinstance(model, Checkpoint) else ()), speaker]))
    if not context.main:
        barrier(context)
        return FinetuneResult(speakers, metrics, rank=context.rank)
    out = run.run_dir.with_name(run.run_dir.name + "-out")
    try:
        trained = training.save(out)
        judged = _judge_earlier_voices(backend, library, run, trained.files)
        if judged:
            metrics["similarity"] = judged
        base_record = library.base_by_id(model.base_id) if isinstance(model, Checkpoint) else model
        training_config = {
            "settings": asdict(run.settings), "start": run.record.label, "replay": run.replay,
            "data": str(run.dataset.root), "components": run.chosen, "resumed_from": log.resumed_from,
            "clips": {name: [c.to_json() for c in group.all()] for name, group in run.clips.items()},
        }
        checkpoint = library.add_checkpoint(backend, base_record, model if isinstance(model, Checkpoint) else None,
                                            speakers, trained.files, training_config, metrics)
        consent = request.consent.files(out) if request.consent is not None else {}
        voice = library.add_voice(speaker, backend, checkpoint, trained.conditioning, trained.references,
                                  language=run.dataset.clips[0].language if run.dataset.clips else None,
                                  notes=f"fine-tuned from {run.record.label}", extra=consent)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        barrier(context)
    shutil.rmtree(run.run_dir, ignore_errors=True)
    warnings = [*run.text_warnings, *forgetting_warnings(metrics, run.forgetting_warning),
                *similarity_warnings(metrics.get("similarity", {}))]
    return FinetuneResult(speakers, metrics, checkpoint, voice, warnings, log.log_png)


def _judge_earlier_voices(backend: Backend, library: Library, run: Run, trained: Mapping[str, Path]) -> dict:
    """The earlier voices' speaker similarity on their own model and on the new one, when the request asks
    (:mod:`tts_host.training.sound_check`); nothing for a LoRA fine-tune (earlier voices keep their adapters)."""
    request = run.request
    if not (request.eval_earlier or request.max_forgetting is not None) or set(trained) & set(backend.adapter_roles):
        return {}
    names = earlier_voices(library, backend, run.model, request.speaker)
    return judge_earlier_voices(library, backend, names, run.start_dir, trained, run.run_dir.parent,
                                request.max_forgetting, f"the new {backend.name} checkpoint") if names else {}


def _finite(losses: dict[str, float]) -> dict[str, float]:
    """The held-out losses that are numbers (a speaker whose every held-out clip was left out has none)."""
    return {name: value for name, value in losses.items() if math.isfinite(value)}
