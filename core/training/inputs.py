"""What a fine-tune starts from and trains on: the starting record and the prepared dataset."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tts_host.errors import TTSHostError


def resolve_start(library: Any, backend: str, start: str | None, base: str | None) -> Any:
    """The record to start from: ``--from`` (voice, ``checkpoint:ID``, ``base:NAME``), ``--base``,
    or the backend's only base."""
    if start and base:
        raise TTSHostError("give either --from VOICE or --base NAME, not both")
    if start:
        return library.resolve(start)
    if base:
        return library.base(base)
    bases = library.bases(backend)
    if len(bases) != 1:
        names = ", ".join(b.name for b in bases) or f"none (run `tts-host base init {backend} --preset tiny`)"
        raise TTSHostError(f"choose a starting point with --base NAME or --from VOICE ({backend} bases: {names})")
    return bases[0]


def prepared_data(data: Path, speaker: str, home: Path, backend: str, sample_rate: int, *,
                  progress: bool = False) -> Any:
    """A prepared dataset at ``sample_rate``: ``data`` itself when it is one, else prepared from it
    under ``home/datasets/BACKEND`` (re-runs reuse every unchanged clip)."""
    from tts_host.data.dataset import MANIFEST, load_prepared
    from tts_host.data.prepare import prepare_dataset

    data = Path(data)
    if not data.exists():
        raise TTSHostError(f"--data {data}: no such file or folder")
    if (data / MANIFEST).is_file():
        dataset = load_prepared(data)
    else:
        key = hashlib.sha256(str(data.resolve()).encode()).hexdigest()[:12]
        dataset = prepare_dataset(data, Path(home) / "datasets" / backend / f"{speaker}-{key}", speaker, sample_rate,
                                  progress=progress)
    if dataset.speaker != speaker:
        raise TTSHostError(f"--data {data}: the prepared dataset is speaker '{dataset.speaker}', not '{speaker}'")
    if not dataset.train:
        raise TTSHostError(f"--data {data}: no usable training clips ({len(dataset.rejects)} rejected; "
                           "`tts-host dataset inspect` shows why)")
    return dataset


def check_transcripts(dataset: Any, data: Path, allow_empty_text: bool) -> list[str]:
    """Refuse a dataset whose clips lack transcripts unless ``allow_empty_text``; returns warnings.

    A model trained on clips with empty text learns nothing about what is said; a folder of
    recordings without same-named ``.txt`` files gives exactly that.
    """
    empty = sum(1 for clip in dataset.clips if not clip.text.strip())
    if not empty:
        return []
    what = f"{empty} of {len(dataset.clips)} clips of --data {data} ({dataset.root}) have no transcript"
    if not allow_empty_text:
        raise TTSHostError(f"{what}: add them (a same-named .txt beside each recording, or a metadata list), "
                           "or pass --allow-empty-text to train on them as they are")
    return [f"{what} (trained as given: --allow-empty-text)"]
