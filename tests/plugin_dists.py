"""Throwaway plugin distributions: real dist-info folders that importlib.metadata discovers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def make_plugin_dist(root: Path, dist_name: str, version: str, module_name: str, source: str,
                     entry_name: str | None = None) -> Path:
    """Write module ``module_name`` and a ``dist_name`` distribution whose ``tts_host`` entry point loads it.

    Put ``root`` on ``PYTHONPATH`` (or ``sys.path``) and the plugin is installed as far as
    ``importlib.metadata`` and the host can tell. Returns ``root``.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module_name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist_name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[tts_host]\n{entry_name or module_name} = {module_name}\n", encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")
    return root


def run_cli(*args: str, path: list[Path] | None = None, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``tts-host ARGS`` in a fresh interpreter with extra ``path`` entries on PYTHONPATH."""
    full_env = dict(os.environ)
    extra = [str(p) for p in path or []]
    if extra:
        full_env["PYTHONPATH"] = os.pathsep.join(extra + [full_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "tts_host.cli.main", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=300)
