"""requirements.lock: the only source of versions, hashed, public-index only, and what is installed."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from tts_host.lockfile import canonical, differences, installed, read_lock

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"


def test_this_environment_is_exactly_the_lock():
    lines = differences(read_lock(LOCK), installed())
    assert not lines, "installed packages differ from requirements.lock (`make install` rebuilds .venv):\n" + \
        "\n".join(lines)


def test_every_pin_is_hashed_and_comes_from_the_public_index():
    text = LOCK.read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    pins = [block for block in blocks if "==" in block.split("\n")[0]]
    assert len(pins) == len(read_lock(LOCK)) > 50
    for block in pins:
        assert "--hash=sha256:" in block, f"unhashed pin: {block.splitlines()[0]}"
    for forbidden in ("--find-links", "--extra-index-url", "file://", "/opt/", "--constraint"):
        assert forbidden not in text, f"requirements.lock depends on this machine: {forbidden}"


def test_the_lock_honours_pyprojects_exact_pins_and_ranges():
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lock = read_lock(LOCK)
    declared = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    for requirement in map(Requirement, declared):
        name = canonical(requirement.name)
        if name == "tts-host":
            continue
        assert name in lock, f"{name} is a dependency but not in requirements.lock"
        assert requirement.specifier.contains(lock[name], prereleases=True), \
            f"the lock has {name} {lock[name]}, outside pyproject's {requirement.specifier}"
    assert lock["torch"] == lock["torchaudio"] == "2.11.0"


def test_differences_name_missing_extra_and_changed_packages():
    lines = differences({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "2.1", "d": "4"})
    assert lines == ["b: locked 2, installed 2.1", "c: locked 3, not installed", "d: installed 4, not in the lock"]


def test_importing_pkg_resources_does_not_change_what_the_check_sees():
    """jieba imports pkg_resources, which puts setuptools' vendored packages on sys.path: not the environment."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pkg_resources  # noqa: F401

    assert differences(read_lock(ROOT / "requirements.lock"), installed()) == []
