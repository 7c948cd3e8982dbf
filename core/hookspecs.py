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


_LOADER = """
    The host calls this hook once per plugin, when the plugins load (the first time a command
    needs them), with a ``register`` callback. Call ``register`` once per component with a
    :class:`~tts_host.components.ComponentFactory` of this kind: its ``name`` (unique among the
    installed components of the kind), the ``Stream`` s it ``accepts`` by input name and the one
    it ``produces``, and a ``loader``. Register nothing heavy: the loader is an import path
    (``"package.module:Class"``) or a callable, imported and called only when a backend call
    needs the component, as ``loader(model_folder=FOLDER, device=DEVICE)`` -- ``FOLDER`` the
    materialised model folder (base or checkpoint) the call works on, ``DEVICE`` a torch
    device string (``"cpu"``, ``"cuda:0"``). The object it returns must satisfy this kind's
    protocol in :mod:`tts_host.interfaces` (checked when it is built).

    Raising, or registering a name already taken, rolls back everything the plugin
    registered; the plugin is then reported on one line and skipped.
"""


@hookspec
def register_codecs(register: Callable[[ComponentFactory], None]) -> None:
    """Register codecs: audio <-> discrete tokens (``kind="codec"``; :class:`~tts_host.interfaces.Codec`)."""


@hookspec
def register_text_encoders(register: Callable[[ComponentFactory], None]) -> None:
    """Register text encoders: text -> token ids (``kind="text_encoder"``; :class:`~tts_host.interfaces.TextEncoder`)."""


@hookspec
def register_acoustic_models(register: Callable[[ComponentFactory], None]) -> None:
    """Register acoustic models: text tokens + speaker conditioning -> acoustic tokens or latents.

    ``kind="acoustic_model"``; :class:`~tts_host.interfaces.AcousticModel`. The trainable part of
    most backends: a backend's training run may need its own class here and says so in one line.
    """


@hookspec
def register_vocoders(register: Callable[[ComponentFactory], None]) -> None:
    """Register vocoders: acoustic output (mel, tokens, latents) -> waveform (``kind="vocoder"``).

    :class:`~tts_host.interfaces.Vocoder`. A vocoder that accepts what a backend's acoustic model
    produces can replace the backend's own: ``--component vocoder=NAME``.
    """


@hookspec
def register_speaker_encoders(register: Callable[[ComponentFactory], None]) -> None:
    """Register speaker encoders: audio -> fixed-size speaker embedding (``kind="speaker_encoder"``).

    :class:`~tts_host.interfaces.SpeakerEncoder`; used when a voice is cloned from reference clips.
    """


@hookspec
def register_backends(register: Callable[[BackendFactory], None]) -> None:
    """Register backends: named recipes that compose components and fine-tune, clone and speak.

    Called once per plugin when the plugins load, with ``register`` taking a
    :class:`~tts_host.components.BackendFactory`: the components by role, how the roles connect,
    and a loader building a :class:`~tts_host.backend.Backend` subclass as ``loader(host=HOST,
    **options)``. The host checks the composition fits before it builds the backend.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands or command groups to the ``tts-host`` CLI.

    Called once per plugin when the CLI starts, with the root ``click`` group. A plugin that
    raises here is reported on one line and its commands are left out; keep imports inside the
    commands so that ``tts-host --help`` stays fast.
    """


for _hook in (register_codecs, register_text_encoders, register_acoustic_models, register_vocoders,
              register_speaker_encoders):
    _hook.__doc__ = (_hook.__doc__ or "") + _LOADER
del _hook
