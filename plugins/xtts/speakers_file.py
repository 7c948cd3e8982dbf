"""``speakers.safetensors``: the conditioning of every speaker a checkpoint serves.

Tensors are named ``<speaker>/gpt_cond_latent``, ``<speaker>/speaker_embedding`` and (for
speakers cloned or trained here) ``<speaker>/cond_audio``: the 22.05 kHz reference audio the
latent comes from, so that a later fine-tune, which changes the GPT's conditioning encoder,
recomputes every speaker's latent. The metadata lists the speakers in order. coqui's
``speakers_xtts.pth`` is written from it on export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
from tts_host.plugins.xtts.files import FILES

FILE = FILES["speakers"]
FIELDS = ("gpt_cond_latent", "speaker_embedding")
OPTIONAL = ("cond_audio",)


def read_speakers(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """``{speaker: {"gpt_cond_latent": array, "speaker_embedding": array}}`` in stored order."""
    from safetensors import safe_open

    if not Path(path).is_file():
        return {}
    with safe_open(str(path), framework="numpy") as handle:
        names = json.loads((handle.metadata() or {}).get("speakers", "[]"))
        stored = set(handle.keys())
        return {
            name: {field: handle.get_tensor(f"{name}/{field}")
                   for field in FIELDS + OPTIONAL if f"{name}/{field}" in stored}
            for name in names
        }


def write_speakers(path: Path, speakers: Mapping[str, Mapping[str, np.ndarray]]) -> Path:
    """Write every speaker's conditioning to ``path`` (safetensors, written to a temp file then renamed)."""
    from safetensors.numpy import save_file

    tensors = {f"{name}/{field}": np.ascontiguousarray(entry[field], dtype=np.float32)
               for name, entry in speakers.items() for field in FIELDS + OPTIONAL if field in entry}
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    save_file(tensors, str(tmp), metadata={"speakers": json.dumps(list(speakers))})
    tmp.replace(path)
    return Path(path)
