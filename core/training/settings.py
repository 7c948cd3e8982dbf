"""Fine-tune settings of any backend: defaults, then a YAML file, then the command line.

A settings class is a dataclass whose fields are the settings. The file is a mapping of
those fields, optionally under a top-level ``finetune:`` key; a top-level ``components:``
key belongs to the backend's composition and is left to whoever reads it. ``replay`` and
``forgetting_warning`` are the workflow's own settings, the same for every backend
(:func:`workflow_setting`). Unknown keys and values of the wrong type are one-line errors
that name where they came from.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

from tts_host.errors import TTSHostError

T = TypeVar("T")
SECTION = "finetune"
IGNORED = ("components",)
WORKFLOW = {"replay": 0.0, "forgetting_warning": 0.10}  # read by the workflow for every backend
_MISMATCH = object()  # what _convert returns for a value that does not fit the type


def load_settings(cls: type[T], backend_name: str, config_file: Path | None, overrides: Mapping[str, object]) -> T:
    """``cls`` built from its defaults, then ``config_file`` (YAML), then the non-``None`` ``overrides``.

    ``backend_name`` names the backend in the one-line errors (unknown keys list the known ones).
    """
    known = {f.name for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        for name, value in _read(path).items():
            if name in WORKFLOW:
                continue
            _check_known(name, known, f"{path}: the {backend_name} backend")
            values[name] = _checked(name, hints[name], value, str(path))
    for name, value in overrides.items():
        if value is None:
            continue
        _check_known(name, known, f"the {backend_name} backend")
        values[name] = _checked(name, hints[name], value, f"the {backend_name} backend")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        where = f"{config_file}: " if config_file is not None else ""
        raise TTSHostError(f"{where}{backend_name} fine-tune settings: {exc}") from exc


def workflow_setting(config_file: Path | None, name: str, given: float | None = None) -> float:
    """A workflow setting (``replay``, ``forgetting_warning``): ``given``, else the file's value, else the default."""
    if given is not None:
        return float(given)
    if config_file is not None:
        value = _read(Path(config_file)).get(name)
        if value is not None:
            return _checked(name, float, value, str(config_file))
    return WORKFLOW[name]


def _read(path: Path) -> dict[str, Any]:
    """The settings mapping of a YAML file (its ``finetune:`` section when it has one)."""
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).replace("\n", " ")
        raise TTSHostError(f"{path}: cannot read the fine-tune config ({reason})") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise TTSHostError(f"{path}: expected a mapping of fine-tune settings")
    top = {key: value for key, value in loaded.items() if key not in IGNORED}
    if SECTION not in top:
        return top
    others = sorted(str(key) for key in top if key != SECTION)
    if others:
        raise TTSHostError(f"{path}: unknown top-level key(s) {', '.join(others)} beside '{SECTION}:' "
                           f"(expected {SECTION}: and {', '.join(IGNORED)}:)")
    section = top[SECTION] or {}
    if not isinstance(section, dict):
        raise TTSHostError(f"{path}: expected a mapping of fine-tune settings under '{SECTION}:'")
    return section


def _check_known(name: Any, known: set[str], where: str) -> None:
    if name not in known:
        raise TTSHostError(f"{where} has no fine-tune setting {name} (known: {', '.join(sorted(known))})")


def _checked(name: str, hint: Any, value: Any, where: str) -> Any:
    """``value`` if it fits the field's type (numbers written as strings, like YAML's ``5e-6``, converted)."""
    converted = _convert(hint, value)
    if converted is _MISMATCH:
        raise TTSHostError(f"{where}: fine-tune setting {name} must be {_describe(hint)}, got {value!r}")
    return converted


def _convert(hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            converted = _convert(arm, value)
            if converted is not _MISMATCH:
                return converted
        return _MISMATCH
    if hint is type(None):
        return None if value is None else _MISMATCH
    if hint is bool:
        return value if isinstance(value, bool) else _MISMATCH
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISMATCH
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(value) if isinstance(value, str) else _MISMATCH
        except ValueError:
            return _MISMATCH
    if hint is str:
        return value if isinstance(value, str) else _MISMATCH
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return _MISMATCH
        arms = (args[0],) * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        items = [_convert(arm, item) for arm, item in zip(arms, value)]
        return tuple(items) if len(items) == len(value) == len(arms) and _MISMATCH not in items else _MISMATCH
    return value  # anything else is the settings class's own check


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arm) for arm in args)
    if origin is tuple:
        fixed = args and args[-1] is not Ellipsis
        return f"a list of {len(args)} numbers" if fixed and set(args) <= {int, float} else "a list"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))
