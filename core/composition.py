"""A backend's components, built through the host from one model folder.

:meth:`tts_host.host.PluginHost.components_for` resolves a backend's composition (its declared
component names, with any the user chose by role), runs the fit check, and returns
:class:`Components`. A component is built the first time a role is asked for, by calling its
factory's loader as ``loader(model_folder=FOLDER, device=DEVICE)``, and is checked against the
protocol of its kind (:mod:`tts_host.interfaces`). Training never loads a vocoder it does not use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, TypeVar

from tts_host.components import ComponentFactory
from tts_host.errors import CompositionError, TTSHostError

T = TypeVar("T")


def kind_protocol(kind: str) -> type:
    """The runtime protocol a component of ``kind`` satisfies."""
    from tts_host import interfaces

    return {"codec": interfaces.Codec, "text_encoder": interfaces.TextEncoder,
            "acoustic_model": interfaces.AcousticModel, "vocoder": interfaces.Vocoder,
            "speaker_encoder": interfaces.SpeakerEncoder}[kind]


@dataclass
class Components:
    """The components of one backend call, by role; built lazily from ``folder`` on ``device``."""

    backend: str
    folder: Path
    factories: Mapping[str, ComponentFactory]
    device: str = "cpu"
    _built: dict[str, Any] = field(default_factory=dict, repr=False)

    def names(self) -> dict[str, str]:
        """Role -> component name."""
        return {role: factory.name for role, factory in self.factories.items()}

    def __getitem__(self, role: str) -> Any:
        """The component in ``role``, built on first use."""
        if role not in self._built:
            factory = self.factories.get(role)
            if factory is None:
                raise TTSHostError(f"backend '{self.backend}' has no component role '{role}' "
                                   f"(roles: {', '.join(self.factories)})")
            try:
                built = factory.build(model_folder=self.folder, device=self.device)
            except TTSHostError:
                raise
            except (OSError, ValueError, KeyError, RuntimeError, TypeError, ImportError) as exc:
                raise TTSHostError(f"{factory.label()} could not be built from {self.folder}: "
                                   f"{type(exc).__name__}: {exc}") from exc
            protocol = kind_protocol(factory.kind)
            if not isinstance(built, protocol):
                raise CompositionError(f"{factory.label()} does not provide what a {factory.kind.replace('_', ' ')} "
                                       f"must ({protocol.__name__}: see tts_host.interfaces)")
            self._built[role] = built
        return self._built[role]

    def get(self, role: str, expected: type[T]) -> T:
        """The component in ``role``, which must be an instance of ``expected`` (a concrete class).

        Backends use this where they need more than the kind's protocol (e.g. the trainable
        module inside an acoustic model); a replacement of another class gets a one-line error.
        """
        component = self[role]
        if not isinstance(component, expected):
            raise CompositionError(f"backend '{self.backend}' needs its own {role.replace('_', ' ')} here "
                                   f"({expected.__name__}); {self.factories[role].label()} cannot be used for this")
        return component

    def release(self, role: str) -> None:
        """Drop a built component (its memory goes back before a long run)."""
        self._built.pop(role, None)


def components_in_config(config_file: Path | None) -> dict[str, str]:
    """The ``components:`` mapping of a fine-tune YAML file (``{}`` without one)."""
    from tts_host.contract import parse_component_choices

    if config_file is None:
        return {}
    import yaml

    try:
        loaded = yaml.safe_load(Path(config_file).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TTSHostError(f"{config_file}: cannot read the config ({exc})") from exc
    section = (loaded.get("components") or {}) if isinstance(loaded, dict) else {}
    if not isinstance(section, dict):
        raise TTSHostError(f"{config_file}: 'components' must map roles to component names, e.g. vocoder: NAME")
    return parse_component_choices({str(k): v for k, v in section.items()}, f"{config_file}: components")
