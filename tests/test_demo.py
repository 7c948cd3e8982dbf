"""`tts-host demo`, the README's first command, run as users run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from plugin_dists import run_cli


@pytest.mark.smoke
@pytest.mark.slow
def test_demo_fine_tunes_two_voices_speaks_and_verifies(tmp_path):
    workdir = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "tts_host.cli.main", "demo", "--workdir", str(workdir), "--quiet"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "library verified: 2 voices, 2 checkpoints, all blobs intact" in out
    assert out.strip().splitlines()[-1].startswith("done in ")
    for speaker in ("A", "B"):
        audio, rate = sf.read(workdir / "out" / f"{speaker}.wav")
        assert rate == 24000 and len(audio) > 2400 and np.isfinite(audio).all() and np.abs(audio).max() > 1e-3
        assert list((workdir / "logs" / speaker).glob("*.png")), f"no loss curve for {speaker}"
    listing = run_cli("voices", "list", "--json", env={"TTS_HOST_HOME": str(workdir / "home")})
    assert listing.returncode == 0
    assert sorted(row["name"] for row in json.loads(listing.stdout)) == ["A", "B"]


def test_demo_without_espeak_says_what_to_install(tmp_path):
    bin_dir = tmp_path / "bin"  # a PATH with python but no espeak-ng
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python")
    assert shutil.which("espeak-ng", path=str(bin_dir)) is None
    done = run_cli("demo", "--workdir", str(tmp_path / "demo"), "--quiet", env={"PATH": str(bin_dir)})
    assert done.returncode == 1
    assert "espeak-ng" in done.stderr and "apt-get install espeak-ng" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "demo" / "home").exists()  # nothing half-made
