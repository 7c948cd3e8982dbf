"""Zero-shot cloning: a voice from reference clips, conditioning computed by the backend's components.

The library only stores what this makes: the checks come first (name free, clips present,
decodable, long enough, not silent), then the model is materialised, the components are built
through the host, the backend computes the conditioning, and the library adds the voice.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tts_host.contract import CloneRequest
from tts_host.errors import TTSHostError
from tts_host.speech import check_references
from tts_host.synthesis import voice_components

if TYPE_CHECKING:
    from tts_host.speakers.library import Library
    from tts_host.speakers.records import Model, Voice
    from tts_host.backend import Backend


def clone_voice(backend: Backend, library: Library, model: Model, request: CloneRequest) -> Voice:
    """Add voice ``request.name`` speaking with ``model``, cloned from ``request.references``."""
    from tts_host.speakers.names import check_name

    name = check_name(request.name, "voice")
    if library.has_voice(name):
        raise TTSHostError(f"a voice named '{name}' already exists (rename or remove it first)")
    if model.backend != backend.name:
        raise TTSHostError(f"{model.label} belongs to backend '{model.backend}', not '{backend.name}'")
    references = [Path(r) for r in request.references]
    if not references:
        raise TTSHostError("cloning a voice needs at least one reference clip (--ref)")
    check_references(references)
    host = backend.host_or_error()
    chosen = voice_components(model, dict(request.components))
    host.choose_components(backend.name, chosen)
    with library.materialised(model) as folder:
        components = host.components_for(backend.name, folder, chosen, device=backend.speech_device())
        conditioning = backend.conditioning(components, request)
    with library.scratch_folder("consent") as tmp:
        extra = request.consent.files(tmp) if request.consent is not None else {}
        return library.add_voice(name, backend, model, conditioning, references, request.language, request.notes,
                                 extra)
