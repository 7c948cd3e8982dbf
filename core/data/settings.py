"""Dataset thresholds: defaults from ``configs/data.yaml``, overridden by a backend's YAML ``data:`` section."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from tts_host.data.errors import DatasetError

DEFAULTS_RESOURCE = "data.yaml"


@dataclass(frozen=True)
class DataSettings:
    """Every threshold of ingest, cleaning, slicing, filtering and splitting (see docs/datasets.md)."""

    sample_rate: int = 22050
    language: str = "en"
    min_seconds: float = 2.0
    max_seconds: float = 12.0
    max_whole_seconds: float = 30.0
    silence_db: float = -40.0
    min_silence_seconds: float = 0.3
    split_silence_seconds: float = 1.0
    margin_seconds: float = 0.15
    peak: float = 0.95
    max_clipped_fraction: float = 0.001
    min_speech_ratio: float = 0.45
    min_snr_db: float = 15.0
    max_spectral_entropy: float = 0.85
    heldout_fraction: float = 0.1

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate < 4000 or self.sample_rate > 192000:
            problems.append(f"sample_rate {self.sample_rate} is outside 4000-192000 Hz")
        if not 0 < self.min_seconds < self.max_seconds:
            problems.append(f"min_seconds {self.min_seconds} must be positive and below max_seconds {self.max_seconds}")
        if self.max_whole_seconds < self.max_seconds:
            problems.append("max_whole_seconds must be at least max_seconds")
        if self.silence_db >= 0:
            problems.append(f"silence_db {self.silence_db} must be negative (dB below the loudest frame)")
        if not 0 < self.min_silence_seconds <= self.split_silence_seconds:
            problems.append("min_silence_seconds must be positive and at most split_silence_seconds")
        if not 0 <= self.margin_seconds:
            problems.append("margin_seconds must not be negative")
        if not 0 < self.peak <= 1:
            problems.append(f"peak {self.peak} must be in (0, 1]")
        if not 0 <= self.heldout_fraction < 1:
            problems.append(f"heldout_fraction {self.heldout_fraction} must be in [0, 1)")
        if problems:
            raise DatasetError("invalid dataset settings: " + "; ".join(problems))

    def with_overrides(self, overrides: Mapping[str, Any] | None, origin: str = "overrides") -> "DataSettings":
        """A copy with ``overrides`` applied; an unknown key or a badly typed value raises DatasetError."""
        if not overrides:
            return self
        known = {field.name: field for field in fields(self)}
        values: dict[str, Any] = {}
        for key, value in overrides.items():
            if value is None:
                continue
            if key not in known:
                raise DatasetError(f"{origin}: unknown dataset setting {key!r} (known: {', '.join(sorted(known))})")
            kind = type(getattr(self, key))
            try:
                values[key] = _coerce(kind, value)
            except ValueError:
                raise DatasetError(f"{origin}: dataset setting {key!r} must be {kind.__name__}, got {value!r}") from None
        return replace(self, **values)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict of every setting (stored in the manifest)."""
        return asdict(self)

    def digest(self) -> str:
        """SHA-256 of the settings: a prepared clip is reused only when this is unchanged."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()


def _coerce(kind: type, value: Any) -> Any:
    """``value`` as ``kind`` (str, int or float); ValueError when it is not one."""
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(value)
    if kind is int and float(value) != int(value):
        raise ValueError(value)
    return kind(value)


def _data_section(path: Path | str, text: str) -> Mapping[str, Any]:
    import yaml

    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise DatasetError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(document, dict):
        raise DatasetError(f"{path}: expected a YAML mapping at the top level")
    section = document.get("data", {}) or {}
    if not isinstance(section, dict):
        raise DatasetError(f"{path}: the 'data:' section must be a mapping")
    return section


def default_settings() -> DataSettings:
    """The shipped defaults (``tts_host.configs/data.yaml``)."""
    text = resources.files("tts_host.configs").joinpath(DEFAULTS_RESOURCE).read_text(encoding="utf-8")
    return DataSettings().with_overrides(_data_section(DEFAULTS_RESOURCE, text), DEFAULTS_RESOURCE)


def backend_config_path(backend: str, preset: str) -> Path:
    """The shipped YAML of a backend preset, ``configs/<backend>/<preset>.yaml``."""
    folder = resources.files("tts_host.configs").joinpath(backend)
    candidate = folder.joinpath(f"{preset}.yaml")
    if not candidate.is_file():
        raise DatasetError(f"no preset config {backend}/{preset}.yaml in tts_host.configs")
    return Path(str(candidate))


def load_settings(
    config: Path | str | None = None,
    *,
    backend: str | None = None,
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> DataSettings:
    """Defaults, then a backend preset's ``data:`` section, then a YAML file's, then explicit overrides."""
    settings = default_settings()
    if backend and preset:
        path = backend_config_path(backend, preset)
        settings = settings.with_overrides(_data_section(path, path.read_text(encoding="utf-8")), str(path))
    if config is not None:
        path = Path(config)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}: cannot read config ({exc})") from None
        settings = settings.with_overrides(_data_section(path, text), str(path))
    return settings.with_overrides(overrides)
