"""What the fine-tune workflow hands a backend, and what the backend hands back.

The workflow (:mod:`tts_host.training.workflow`) resolves and validates the start, prepares the
data and gathers the earlier speakers' clips; then it asks the backend for a
:class:`TrainingRun` on a :class:`TrainingJob` and drives it: held-out losses before, training,
held-out losses after, saving. A backend implements only that run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np

from tts_host.contract import ProgressCallback
from tts_host.training.clips import ClipRef, SpeakerClips
from tts_host.training.distributed import Distributed
from tts_host.training.report import TrainingLog

if TYPE_CHECKING:
    from tts_host.composition import Components


@dataclass
class TrainingJob:
    """One fine-tune as the backend sees it.

    ``start_dir`` is the validated, materialised starting model (base or checkpoint), from which
    ``components`` are built. ``clips`` holds every speaker's clips, the new ``speaker`` first;
    ``replay`` is the share of earlier speakers' training clips mixed in. ``state_dir`` keeps
    resumable progress (``resume``: continue from it); ``fingerprint`` identifies the run;
    ``file_hashes`` are the start's files' SHA-256 by file role (keys of cached features).
    """

    speaker: str
    start_dir: Path
    file_hashes: dict[str, str]
    components: Components
    settings: Any
    clips: dict[str, SpeakerClips]
    replay: float
    state_dir: Path
    fingerprint: str
    context: Distributed = field(default_factory=Distributed)
    resume: bool = False
    log_dir: Path | None = None
    progress: bool = True
    on_step: ProgressCallback | None = None

    @property
    def new(self) -> SpeakerClips:
        """The new speaker's clips."""
        return self.clips[self.speaker]

    def earlier(self) -> dict[str, SpeakerClips]:
        """The earlier speakers' clips, by name."""
        return {name: clips for name, clips in self.clips.items() if name != self.speaker}


@dataclass
class TrainedModel:
    """What a training run saved: files by the backend's file roles, and the new voice's conditioning."""

    files: dict[str, Path]
    conditioning: dict[str, np.ndarray] = field(default_factory=dict)
    references: list[Path] = field(default_factory=list)


class TrainingRun(Protocol):
    """A backend's training of one :class:`TrainingJob` (built by ``Backend.training_run``)."""

    def heldout_loss(self, clips: Sequence[ClipRef]) -> float:
        """Mean held-out loss of the current weights on ``clips`` (every rank gets the same value)."""
        ...

    def train(self) -> TrainingLog:
        """Train (resuming from the job's state when asked); leaves the model holding the weights to keep."""
        ...

    def save(self, out_dir: Path) -> TrainedModel:
        """Write the trained files into ``out_dir`` (rank 0 only calls this)."""
        ...
