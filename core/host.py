"""The plugin host: loads ``tts_host`` entry points once, collects what they register.

Each plugin is registered atomically: if it fails to import, fails pluggy's validation,
raises while registering, or registers a name that is already taken, everything it
registered is rolled back and it is reported and skipped. ``TTS_HOST_PLUGINS`` (a comma
list, empty for none) chooses which entry points load; ``TTS_HOST_STRICT_PLUGINS=1`` makes
every problem an error.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import pluggy

from tts_host import hookspecs
from tts_host.components import (
    COMPONENT_KINDS,
    BackendFactory,
    ComponentFactory,
    composition_problems,
)
from tts_host.errors import CompositionError, PluginError, TTSHostError

if TYPE_CHECKING:
    import click

    from tts_host.composition import Components

ENTRY_POINT_GROUP = "tts_host"
PLUGINS_ENV = "TTS_HOST_PLUGINS"
STRICT_ENV = "TTS_HOST_STRICT_PLUGINS"
BUILTIN_DISTRIBUTION = "tts-host"

# Registration hook -> component kind it registers ("backend" for backends).
REGISTRATION_HOOKS: dict[str, str] = {
    "register_codecs": "codec",
    "register_text_encoders": "text_encoder",
    "register_acoustic_models": "acoustic_model",
    "register_vocoders": "vocoder",
    "register_speaker_encoders": "speaker_encoder",
    "register_backends": "backend",
}


@dataclass
class PluginInfo:
    """A loaded plugin and where it came from."""

    name: str
    distribution: str
    version: str
    hooks: list[str] = field(default_factory=list)
    registered: list[tuple[str, str]] = field(default_factory=list)

    def origin(self) -> str:
        """``distribution version``, or ``unknown distribution``."""
        return f"{self.distribution} {self.version}".strip() if self.distribution else "unknown distribution"


@dataclass(frozen=True)
class PluginProblem:
    """A plugin that was skipped (or partly ignored), and why."""

    plugin: str
    distribution: str
    version: str
    message: str

    def line(self) -> str:
        """The one line shown to the user."""
        origin = f"{self.distribution} {self.version}".strip() or "unknown distribution"
        return f"plugin '{self.plugin}' ({origin}): {self.message}"


@dataclass(frozen=True)
class Registration:
    """A registered component or backend, with its provenance."""

    kind: str
    factory: Any
    plugin: str
    distribution: str
    version: str

    @property
    def name(self) -> str:
        """The component or backend name."""
        return self.factory.name


def _flat(text: object) -> str:
    return " ".join(str(text).split())


def _load_order(ep: EntryPoint) -> tuple[bool, str]:
    """Built-in plugins (shipped by tts-host itself) load first, so their names win a clash."""
    dist = getattr(ep, "dist", None)
    return (dist is None or dist.metadata["Name"] != BUILTIN_DISTRIBUTION, ep.name)


def _selection_from_env() -> set[str] | None:
    raw = os.environ.get(PLUGINS_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


class PluginHost:
    """Owns one pluggy manager and the registry of components and backends."""

    def __init__(
        self,
        entry_points_source: Iterable[EntryPoint] | None = None,
        *,
        selection: set[str] | None = None,
        strict: bool | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._entry_points = entry_points_source
        self._selection = selection if selection is not None else _selection_from_env()
        self.strict = strict if strict is not None else os.environ.get(STRICT_ENV, "") not in ("", "0")
        self._warn = warn or (lambda line: print(f"warning: {line}", file=sys.stderr))
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.problems: list[PluginProblem] = []
        self._registry: dict[tuple[str, str], Registration] = {}
        self._loaded = False

    # -- loading -------------------------------------------------------------------------
    def load(self) -> "PluginHost":
        """Load the selected entry points (once); returns ``self``."""
        if self._loaded:
            return self
        self._loaded = True
        source = self._entry_points
        if source is None:
            source = entry_points(group=ENTRY_POINT_GROUP)
        for ep in sorted(source, key=_load_order):
            if self._selection is not None and ep.name not in self._selection:
                continue
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else ""
            version = dist.version if dist is not None else ""
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin never takes the host down
                self._problem(ep.name, dist_name, version, f"failed to import: {type(exc).__name__}: {exc}")
                continue
            self.add_plugin(plugin, ep.name, distribution=dist_name, version=version)
        if self.strict:
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError as exc:
                raise PluginError(_flat(exc)) from exc
        return self

    def add_plugin(self, plugin: object, name: str, *, distribution: str = "", version: str = "") -> bool:
        """Register one plugin object atomically; returns whether it was kept."""
        try:
            self.pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            self._problem(name, distribution, version, f"failed validation: {_flat(exc)}")
            return False
        info = PluginInfo(name, distribution, version)
        try:
            callers = self.pm.get_hookcallers(plugin) or []
            info.hooks = sorted(caller.name for caller in callers)
            unknown = [caller.name for caller in callers if caller.spec is None]
            if unknown:
                message = f"implements unknown hook(s) {', '.join(unknown)} (misspelled?)"
                if self.strict:
                    raise PluginError(message)
                self._warn(PluginProblem(name, distribution, version, message).line())
            staged = self._collect(plugin, info)
        except Exception as exc:
            self.pm.unregister(plugin)
            message = str(exc) if isinstance(exc, PluginError) else f"failed while registering: {type(exc).__name__}: {exc}"
            self._problem(name, distribution, version, message)
            return False
        for registration in staged:
            self._registry[(registration.kind, registration.name)] = registration
            info.registered.append((registration.kind, registration.name))
        self.plugins[name] = info
        return True

    def _collect(self, plugin: object, info: PluginInfo) -> list[Registration]:
        staged: list[Registration] = []
        for hook_name, kind in REGISTRATION_HOOKS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin is not plugin:
                    continue

                def register(factory: Any, _kind: str = kind) -> None:
                    expected = BackendFactory if _kind == "backend" else ComponentFactory
                    if not isinstance(factory, expected):
                        raise PluginError(f"registered {type(factory).__name__} where a {expected.__name__} is expected")
                    if _kind != "backend" and factory.kind != _kind:
                        raise PluginError(f"registered {factory.label()} through {hook_name}")
                    taken = self._registry.get((_kind, factory.name)) or next(
                        (r for r in staged if (r.kind, r.name) == (_kind, factory.name)), None
                    )
                    if taken is not None:
                        raise PluginError(
                            f"registers {_kind.replace('_', ' ')} '{factory.name}', a name already registered by "
                            f"plugin '{taken.plugin}' ({taken.distribution} {taken.version})".rstrip()
                        )
                    staged.append(Registration(_kind, factory, info.name, info.distribution, info.version))

                impl.function(**{arg: register for arg in impl.argnames})
        return staged

    def _problem(self, plugin: str, distribution: str, version: str, message: str) -> None:
        problem = PluginProblem(plugin, distribution, version, _flat(message))
        if self.strict:
            raise PluginError(problem.line())
        self.problems.append(problem)
        self._warn(problem.line())

    # -- queries -------------------------------------------------------------------------
    def components(self, kind: str | None = None) -> list[Registration]:
        """Registered components (of one kind), sorted by kind and name."""
        self.load()
        kinds = COMPONENT_KINDS if kind is None else (kind,)
        found = [r for (k, _), r in self._registry.items() if k in kinds]
        return sorted(found, key=lambda r: (COMPONENT_KINDS.index(r.kind), r.name))

    def component(self, kind: str, name: str) -> Registration:
        """One registered component, or an error listing what is installed."""
        self.load()
        found = self._registry.get((kind, name))
        if found is None:
            available = ", ".join(r.name for r in self.components(kind)) or "none"
            raise TTSHostError(f"no {kind.replace('_', ' ')} named '{name}' is installed (installed: {available})")
        return found

    def backends(self) -> list[Registration]:
        """Registered backends, sorted by name."""
        self.load()
        return sorted((r for (k, _), r in self._registry.items() if k == "backend"), key=lambda r: r.name)

    def backend(self, name: str) -> Registration:
        """One registered backend, or an error listing what is installed."""
        self.load()
        found = self._registry.get(("backend", name))
        if found is None:
            available = ", ".join(r.name for r in self.backends()) or "none"
            raise TTSHostError(f"no backend named '{name}' is installed (installed: {available})")
        return found

    def composition_problems(self, backend_name: str) -> list[str]:
        """What does not fit in a backend's composition (missing components included)."""
        factory: BackendFactory = self.backend(backend_name).factory
        resolved: dict[str, ComponentFactory] = {}
        problems: list[str] = []
        for role, (kind, name) in factory.components.items():
            found = self._registry.get((kind, name))
            if found is None:
                problems.append(f"backend '{factory.name}' needs {kind.replace('_', ' ')} '{name}', which is not installed")
            else:
                resolved[role] = found.factory
        if problems:
            return problems
        return composition_problems(resolved, factory.connections)

    def build_backend(self, name: str, **options: Any) -> Any:
        """Check a backend's composition, then build it."""
        problems = self.composition_problems(name)
        if problems:
            raise CompositionError(f"backend '{name}': " + "; ".join(problems))
        return self.backend(name).factory.build(host=self, **options)

    def choose_components(self, backend_name: str, chosen: Mapping[str, str] | None = None) -> dict[str, ComponentFactory]:
        """A backend's components by role, with ``chosen`` ``{role: name}`` in place of the declared ones.

        A role the backend lacks, a component that is not installed or is of another kind, and a
        composition that does not fit are each a one-line :class:`CompositionError`.
        """
        factory: BackendFactory = self.backend(backend_name).factory
        chosen = dict(chosen or {})
        unknown = sorted(set(chosen) - set(factory.components))
        if unknown:
            raise CompositionError(f"backend '{backend_name}' has no component role '{unknown[0]}' "
                                   f"(roles: {', '.join(factory.components)})")
        resolved: dict[str, ComponentFactory] = {}
        for role, (kind, declared) in factory.components.items():
            name = chosen.get(role, declared)
            found = self._registry.get((kind, name))
            if found is None:
                other = next((r for (k, n), r in self._registry.items() if n == name and k != "backend"), None)
                if other is not None:
                    raise CompositionError(f"{other.factory.label()} cannot be the {role.replace('_', ' ')} of "
                                           f"backend '{backend_name}': that role needs a {kind.replace('_', ' ')}")
                available = ", ".join(r.name for r in self.components(kind)) or "none"
                raise CompositionError(f"no {kind.replace('_', ' ')} named '{name}' is installed "
                                       f"(installed: {available})")
            resolved[role] = found.factory
        problems = composition_problems(resolved, factory.connections)
        if problems:
            raise CompositionError(f"backend '{backend_name}': " + "; ".join(problems))
        return resolved

    def components_for(self, backend_name: str, model_folder: Path, chosen: Mapping[str, str] | None = None,
                       *, device: str = "cpu") -> "Components":
        """The fitted components of a backend for one model folder (built when first used)."""
        from tts_host.composition import Components

        return Components(backend_name, Path(model_folder), self.choose_components(backend_name, chosen), device)

    def add_commands(self, cli: "click.Group") -> None:
        """Let every plugin add CLI commands; a plugin that fails is reported and skipped."""
        self.load()
        for impl in self.pm.hook.register_commands.get_hookimpls():
            name = self.pm.get_name(impl.plugin) or "?"
            info = self.plugins.get(name)
            try:
                impl.function(**{arg: cli for arg in impl.argnames})
            except Exception as exc:
                dist, version = (info.distribution, info.version) if info else ("", "")
                self._problem(name, dist, version, f"failed to add commands: {type(exc).__name__}: {exc}")


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide host, loaded on first use."""
    global _host
    if _host is None:
        _host = PluginHost()
        _host.load()
    return _host
