"""The tts-host hook specifications (pluggy project ``tts_host``).

Every hook is a registration hook: the host calls it once per plugin with a ``register``
callback, and the plugin hands over cheap factories. Nothing heavy (torch, transformers,
coqui-tts) may be imported while registering; factories import it when a component is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:
    import click

    from tts_host.components import BackendFactory, ComponentFactory

hookspec = pluggy.HookspecMarker("tts_host")
hookimpl = pluggy.HookimplMarker("tts_host")


@hookspec
def register_codecs(register: Callable[[ComponentFactory], None]) -> None:
    """Register codecs: audio <-> discrete tokens (``kind="codec"``)."""


@hookspec
def register_text_encoders(register: Callable[[ComponentFactory], None]) -> None:
    """Register text encoders: text -> token ids or features (``kind="text_encoder"``)."""


@hookspec
def register_acoustic_models(register: Callable[[ComponentFactory], None]) -> None:
    """Register acoustic models: text + speaker conditioning -> acoustic tokens or latents."""


@hookspec
def register_vocoders(register: Callable[[ComponentFactory], None]) -> None:
    """Register vocoders: acoustic output (mel, tokens, latents) -> waveform."""


@hookspec
def register_speaker_encoders(register: Callable[[ComponentFactory], None]) -> None:
    """Register speaker encoders: audio -> fixed-size speaker embedding (d-vector)."""


@hookspec
def register_backends(register: Callable[[BackendFactory], None]) -> None:
    """Register backends: named recipes that compose components and fine-tune, clone and speak."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands or command groups to the ``tts-host`` CLI."""
