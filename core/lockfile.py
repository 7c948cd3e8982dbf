"""The lock of exact versions (``requirements.lock``) compared with what is installed.

``python -m tts_host.lockfile [LOCK]`` prints every package whose installed version differs
from the lock (``make test-latest`` uses it to say what the newest releases changed) and
exits 1 when there is any difference.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

LOCK_FILE = "requirements.lock"
# Installed but never locked: the installer itself and the project (installed editable from source).
UNLOCKED = {"pip", "tts-host"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """``{name: version}`` of every ``name==version`` line in a pip requirements lock."""
    pins: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def installed() -> dict[str, str]:
    """``{name: version}`` of every distribution in this environment's site-packages, except :data:`UNLOCKED`.

    Only the environment's own folders are read, not all of ``sys.path``: importing ``pkg_resources`` (as
    jieba does) puts setuptools' vendored copies of packaging, platformdirs ... on the path.
    """
    import sysconfig

    folders = list(dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib")))
    found = {canonical(dist.metadata["Name"]): dist.version for dist in metadata.distributions(path=folders)
             if dist.metadata["Name"]}
    return {name: version for name, version in found.items() if name not in UNLOCKED}


def differences(lock: dict[str, str], present: dict[str, str]) -> list[str]:
    """One line per package that is missing, extra or at another version than the lock says."""
    lines = []
    for name in sorted(set(lock) | set(present)):
        locked, have = lock.get(name), present.get(name)
        if locked == have:
            continue
        if have is None:
            lines.append(f"{name}: locked {locked}, not installed")
        elif locked is None:
            lines.append(f"{name}: installed {have}, not in the lock")
        else:
            lines.append(f"{name}: locked {locked}, installed {have}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print how this environment differs from the lock; 0 when it matches exactly."""
    args = sys.argv[1:] if argv is None else argv
    lock = Path(args[0]) if args else Path(LOCK_FILE)
    lines = differences(read_lock(lock), installed())
    for line in lines:
        print(line)
    print(f"{len(lines)} package(s) differ from {lock}" if lines else f"every installed package matches {lock}")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
