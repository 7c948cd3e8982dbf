"""``tts-host doctor``: each failing check gives exit 1 and one line that names the part and the fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from library_fixtures import base, base_folder, flip_byte, lib, toy_host  # noqa: F401

DOCTOR = [sys.executable, "-m", "tts_host.cli.main", "doctor"]


def run_doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run doctor in a fresh interpreter, as a user would."""
    return subprocess.run(DOCTOR + list(args), capture_output=True, text=True, env=env or dict(os.environ),
                          timeout=300)


def failing_lines(output: str) -> list[str]:
    """The lines doctor marks as failures."""
    return [line for line in output.splitlines() if line.startswith("[fail]")]


def part_of(line: str) -> str:
    """The part a doctor line is about."""
    return line.split()[1].rstrip(":")


@pytest.mark.smoke
def test_a_healthy_install_exits_zero_with_one_line_per_check(tts_home):
    result = run_doctor()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    parts = {part_of(line) for line in lines}
    for part in ("python", "espeak-ng", "ffmpeg", "torch+torchaudio", "coqui-tts", "transformers", "cpu",
                 "home", "library", "plugins"):
        assert part in parts, f"doctor printed no {part} line:\n{result.stdout}"
    assert not failing_lines(result.stdout)


def test_espeak_missing_from_path_names_it_and_the_install_command(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ffmpeg").symlink_to(shutil.which("ffmpeg"))
    env = dict(os.environ, PATH=str(bin_dir))
    result = run_doctor(env=env)
    assert result.returncode == 1
    failures = failing_lines(result.stdout)
    assert len(failures) == 1, result.stdout
    assert "espeak-ng" in failures[0] and "apt-get install espeak-ng" in failures[0]


def test_a_torchaudio_that_raises_oserror_is_named_with_the_fix(tmp_path):
    shim = tmp_path / "shim" / "torchaudio"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(
        "raise OSError('Could not load this library: libtorchaudio.so: "
        "undefined symbol: torch_exception_get_what_without_backtrace')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shim.parent), os.environ.get("PYTHONPATH", "")]))
    result = run_doctor(env=env)
    assert result.returncode == 1
    failures = [line for line in failing_lines(result.stdout) if "torchaudio" in part_of(line)]
    assert len(failures) == 1, result.stdout
    assert "undefined symbol" in failures[0] and "requirements.lock" in failures[0]


def test_a_flipped_byte_in_the_library_fails_the_library_check(lib, base, tts_home):
    blob = lib.blob_path(base.files[0].sha256)
    lib.close()
    flip_byte(blob, blob.stat().st_size // 2)
    result = run_doctor()
    assert result.returncode == 1
    failures = failing_lines(result.stdout)
    assert len(failures) == 1, result.stdout
    assert part_of(failures[0]) == "library"
    assert base.files[0].path in failures[0] and "tts-host voices repair" in failures[0]


def test_json_gives_every_finding_with_its_status_and_fix(tts_home):
    result = run_doctor("--json")
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)
    assert {"part", "status", "found", "fix"} <= set(findings[0])
    assert {f["status"] for f in findings} <= {"ok", "info", "warn", "fail"}
    assert any(f["part"] == "torch+torchaudio" and f["status"] == "ok" for f in findings)


def test_help_does_not_import_torch():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom tts_host.cli.main import cli\n"
            "result = CliRunner().invoke(cli, ['doctor', '--help'])\nassert result.exit_code == 0\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stdout + result.stderr


@pytest.mark.parametrize("flags, advice", [
    ({"avx2", "avx512f", "avx512_bf16"}, "bf16 runs natively"),
    ({"avx2", "avx512f", "avx512_bf16", "amx_bf16"}, "int8 speech vocodes in bf16"),
    ({"avx2"}, "bf16 is emulated on this CPU"),
])
def test_cpu_advice_follows_the_flags(flags, advice):
    from tts_host.doctor import check_cpu

    (finding,) = check_cpu(flags)
    assert advice in finding.line()
