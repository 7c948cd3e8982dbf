"""The voice library's CLI: base, voices and library commands through a real plugin distribution."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from library_backend import PRESETS, write_model
from library_fixtures import flip_byte
from plugin_dists import make_plugin_dist, run_cli

TESTS = Path(__file__).parent
TOY_PLUGIN = """
from tts_host import hookimpl
from library_backend import FACTORY

@hookimpl
def register_backends(register):
    register(FACTORY)
"""
HEAVY = ("torch", "torchaudio", "transformers", "TTS", "numpy", "safetensors")


@pytest.fixture
def site(tmp_path: Path) -> list[Path]:
    """PYTHONPATH entries that install the toy backend as a plugin distribution."""
    root = make_plugin_dist(tmp_path / "site", "tts-host-toy", "1.0", "toy_plugin", TOY_PLUGIN, "toy")
    return [root, TESTS]


def cli(site: list[Path], *args: str, ok: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = run_cli(*args, path=site, env={"TTS_HOST_PLUGINS": "toy", "COLUMNS": "200"}, **kwargs)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def test_base_init_add_voice_list_show_rename_remove(site, speaker_clips):
    cli(site, "base", "init", "toy", "--preset", "tiny", "--seed", "1")
    bases = json.loads(cli(site, "base", "list", "--json").stdout)
    assert [(b["name"], b["backend"], b["files"]) for b in bases] == [("toy-tiny", "toy", 4)]
    refs = [str(p) for p, _ in speaker_clips("A", 2)]
    out = cli(site, "voices", "add", "Ann", "--backend", "toy", "--ref", refs[0], "--ref", refs[1], "--language", "en")
    assert "added voice 'Ann'" in out.stdout
    rows = json.loads(cli(site, "voices", "list", "--json").stdout)
    assert [(r["name"], r["backend"], r["base"], r["language"]) for r in rows] == [("Ann", "toy", "toy-tiny", "en")]
    table = cli(site, "voices", "list").stdout
    assert "Ann" in table and "base toy-tiny" in table
    shown = yaml.safe_load(cli(site, "voices", "show", "Ann").stdout)
    assert shown["model"] == "base 'toy-tiny'" and shown["language"] == "en"
    assert shown["conditioning"]["speaker_embedding"] == {"dtype": "F32", "shape": [8]}
    assert [f["path"] for f in shown["files"]][-3:] == [
        "voice/conditioning.safetensors", "voice/references/00.wav", "voice/references/01.wav"]
    cli(site, "voices", "rename", "Ann", "Anna")
    refused = cli(site, "base", "remove", "toy-tiny", "--yes", ok=False)
    assert refused.returncode == 1 and refused.stderr == (
        "error: base 'toy-tiny' is still used by 0 checkpoint(s) and 1 voice(s) ('Anna'): remove those first\n")
    declined = cli(site, "voices", "remove", "Anna", ok=False)
    assert declined.returncode == 1 and "Aborted" in declined.stderr
    cli(site, "voices", "remove", "Anna", "--yes")
    assert json.loads(cli(site, "voices", "list", "--json").stdout) == []
    gc = cli(site, "library", "gc").stdout
    assert "removed 3 unused file(s)" in gc  # conditioning + two clips; the base stays
    cli(site, "base", "remove", "toy-tiny", "--yes")
    assert json.loads(cli(site, "base", "list", "--json").stdout) == []


def test_voices_add_errors_are_one_clear_line(site, speaker_clips, tmp_path):
    ref = str(speaker_clips("A", 1)[0][0])
    no_base = cli(site, "voices", "add", "x", "--backend", "toy", "--ref", ref, ok=False)
    assert no_base.returncode == 1
    assert no_base.stderr == ("error: backend 'toy' has 0 bases in the library (none): choose one with --base, "
                              "or add one with `tts-host base add`\n")
    cli(site, "base", "init", "toy", "--preset", "tiny")
    hostile = cli(site, "voices", "add", "../../etc/passwd", "--backend", "toy", "--ref", ref, ok=False)
    assert hostile.returncode == 1 and hostile.stderr.startswith("error: voice name '../../etc/passwd' contains")
    missing = cli(site, "voices", "add", "x", "--backend", "toy", "--ref", str(tmp_path / "nope.wav"), ok=False)
    assert missing.returncode == 1 and "nope.wav does not exist" in missing.stderr
    unknown = cli(site, "voices", "add", "x", "--backend", "nosuch", "--ref", ref, ok=False)
    assert unknown.returncode == 1 and "no backend named 'nosuch'" in unknown.stderr
    assert json.loads(cli(site, "voices", "list", "--json").stdout) == []
    assert len(unknown.stderr.splitlines()) == len(missing.stderr.splitlines()) == 1


def test_a_name_is_one_voice_in_any_unicode_spelling_and_duplicates_fail_before_loading(site, speaker_clips,
                                                                                          tmp_path):
    import unicodedata

    composed, decomposed = "café", unicodedata.normalize("NFD", "café")
    ref = str(speaker_clips("A", 1)[0][0])
    cli(site, "base", "init", "toy", "--preset", "tiny")
    cli(site, "voices", "add", composed, "--backend", "toy", "--ref", ref)
    # the duplicate is refused before the backend is even looked up
    twice = cli(site, "voices", "add", decomposed, "--backend", "nosuch", "--ref", ref, ok=False)
    assert twice.returncode == 1 and twice.stderr == "error: a voice named 'café' already exists (rename or remove it first)\n"
    assert yaml.safe_load(cli(site, "voices", "show", decomposed).stdout)["name"] == composed
    cli(site, "voices", "export", decomposed, "-o", str(tmp_path))
    assert (tmp_path / f"{composed}.ttsvoice").is_file()
    cli(site, "voices", "rename", decomposed, "cafe")
    cli(site, "voices", "rename", "cafe", decomposed)
    cli(site, "voices", "remove", decomposed, "--yes")
    assert json.loads(cli(site, "voices", "list", "--json").stdout) == []


def test_base_add_refuses_a_folder_missing_a_required_file(site, tmp_path):
    folder = write_model(tmp_path / "m", PRESETS["tiny"], seed=0)
    (folder / "stats.safetensors").unlink()
    result = cli(site, "base", "add", "toy", str(folder), ok=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"error: base folder {folder}: stats.safetensors: expected a file "
                                     "(required by backend 'toy'), actual missing")
    (folder / "stats.safetensors").write_bytes(b"not safetensors")
    result = cli(site, "base", "add", "toy", str(folder), "--name", "m", ok=False)
    assert result.returncode == 1 and "stats.safetensors: expected a safetensors file" in result.stderr


def test_verify_finds_damage_and_readding_the_base_repairs_it(site, tmp_path, tts_home):
    folder = write_model(tmp_path / "m", PRESETS["tiny"], seed=0)
    cli(site, "base", "add", "toy", str(folder), "--name", "m")
    clip = tmp_path / "clip.wav"
    sf.write(clip, np.sin(np.arange(8000) / 7).astype("float32"), 16000)
    cli(site, "voices", "add", "v", "--backend", "toy", "--ref", str(clip))
    assert "all files intact" in cli(site, "voices", "verify", "v", "--deep").stdout
    codec = hashlib.sha256((folder / "codec.safetensors").read_bytes()).hexdigest()
    blob = tts_home / "library" / "blobs" / codec[:2] / codec
    flip_byte(blob, 100)
    for args in (["voices", "verify", "v"], ["voices", "verify", "v", "--deep"], ["base", "verify", "--deep"]):
        result = cli(site, *args, ok=False)
        assert result.returncode == 1, args
        assert "DAMAGED base 'm' file codec.safetensors (voices: 'v'): damaged" in result.stderr
    refused = cli(site, "voices", "repair", "v", ok=False)
    assert refused.returncode == 1 and f"Supply a file with sha256 {codec}" in refused.stderr
    cli(site, "base", "add", "toy", str(folder), "--name", "m")  # the original folder re-supplies the blob
    assert "all files intact" in cli(site, "library", "verify", "--deep").stdout


def test_export_import_between_two_libraries_and_backend_formats(site, tmp_path, speaker_clips):
    cli(site, "base", "init", "toy", "--preset", "tiny")
    cli(site, "voices", "add", "Bo", "--backend", "toy", "--ref", str(speaker_clips("B", 1)[0][0]), "--notes", "hi")
    archive = tmp_path / "bo.ttsvoice"
    cli(site, "voices", "export", "Bo", "-o", str(archive))
    other = {"TTS_HOST_HOME": str(tmp_path / "other-home")}
    imported = run_cli("voices", "import", str(archive), "--as", "Bob", path=site, env={"TTS_HOST_PLUGINS": "toy", **other})
    assert imported.returncode == 0, imported.stderr
    rows = json.loads(run_cli("voices", "list", "--json", path=site, env=other).stdout)
    assert [(r["name"], r["base"]) for r in rows] == [("Bob", "toy-tiny")]
    npz = tmp_path / "bo.npz"
    cli(site, "voices", "export", "Bo", "-o", str(npz), "--format", "npz")
    assert "voice.speaker_embedding" in np.load(npz).files
    bad = cli(site, "voices", "export", "Bo", "-o", str(tmp_path / "x"), "--format", "onnx", ok=False)
    assert bad.returncode == 1 and "cannot export format 'onnx' (formats: ttsvoice, npz)" in bad.stderr


def test_listing_voices_imports_nothing_heavy(site, tmp_path):
    cli(site, "base", "init", "toy", "--preset", "tiny")
    code = (
        "import sys\n"
        "from tts_host.cli.main import main\n"
        "for args in (['voices', 'list'], ['voices', 'list', '--json'], ['base', 'list']):\n"
        "    try:\n        main(args)\n    except SystemExit as exc:\n        assert not exc.code, exc.code\n"
        f"print('HEAVY=' + ','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TTS_HOST_PLUGINS"}  # the installed plugins only
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="


@pytest.fixture
def bo(site, speaker_clips) -> None:
    """Voice 'Bo' on the tiny toy base, made through the CLI."""
    cli(site, "base", "init", "toy", "--preset", "tiny")
    cli(site, "voices", "add", "Bo", "--backend", "toy", "--ref", str(speaker_clips("B", 1)[0][0]))


def damage_a_model_blob(home: Path) -> str:
    """Flip one byte of the base's model file in the blob store; returns its sha256."""
    from library_fixtures import toy_host
    from tts_host.speakers import Library

    with Library(home, host=toy_host()) as lib:
        sha = next(f.sha256 for f in lib.bases()[0].files if f.role == "model")
        flip_byte(lib.blob_path(sha), 100)
    return sha


@pytest.mark.parametrize("fmt", ["ttsvoice", "npz"])
def test_export_refuses_a_damaged_blob_naming_voice_file_and_hashes(site, bo, tts_home, tmp_path, fmt):
    sha = damage_a_model_blob(tts_home)
    out = tmp_path / f"bo.{fmt}"
    result = cli(site, "voices", "export", "Bo", "-o", str(out), "--format", fmt, ok=False)
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line and "voice 'Bo'" in line and "model.safetensors" in line and sha[:16] in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "tts-home"]  # no partial file


def test_export_never_overwrites_without_force_and_names_a_file_in_a_folder(site, bo, tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    refused = cli(site, "voices", "export", "Bo", "-o", str(precious), ok=False)
    assert refused.returncode == 1 and "already exists" in refused.stderr and "--force" in refused.stderr
    assert precious.read_text() == "mine"
    folder = tmp_path / "exports"
    folder.mkdir()
    cli(site, "voices", "export", "Bo", "-o", str(folder))
    assert (folder / "Bo.ttsvoice").is_file()
    again = cli(site, "voices", "export", "Bo", "-o", str(folder), ok=False)
    assert again.returncode == 1 and str(folder / "Bo.ttsvoice") in again.stderr
    npz = tmp_path / "bo.npz"
    npz.write_text("old")
    assert cli(site, "voices", "export", "Bo", "-o", str(npz), "--format", "npz", ok=False).returncode == 1
    cli(site, "voices", "export", "Bo", "-o", str(npz), "--format", "npz", "--force")
    assert "voice.speaker_embedding" in np.load(npz).files
    cli(site, "voices", "export", "Bo", "-o", str(precious), "--force")
    assert precious.read_bytes()[:2] != b"mi" and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert (folder / "Bo.ttsvoice").read_bytes() == precious.read_bytes()


def test_export_to_an_unwritable_path_is_one_line(site, bo, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = cli(site, "voices", "export", "Bo", "-o", str(blocker / "bo.ttsvoice"), ok=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: cannot write {blocker / 'bo.ttsvoice'}: a part of the path is not a folder"


def test_force_never_replaces_the_library_or_a_folder_an_export_did_not_write(site, bo, tts_home, tmp_path):
    for target in (tts_home / "library", tts_home, tmp_path):
        refused = cli(site, "voices", "export", "Bo", "-o", str(target), "--format", "npz", "--force", ok=False)
        assert refused.returncode == 1 and "library home" in refused.stderr, refused.stderr
    assert json.loads(cli(site, "voices", "list", "--json").stdout)[0]["name"] == "Bo"
    empty = cli(site, "voices", "export", "Bo", "-o", "", ok=False)
    assert empty.returncode == 2 and "the path is empty" in empty.stderr


def test_force_replaces_only_an_earlier_export_folder(tmp_path):
    from tts_host.errors import TTSHostError
    from tts_host.speakers.exporting import EXPORT_MARKER, write_folder

    def export(target: Path) -> Path:
        target.mkdir()
        (target / "model.bin").write_text("new")
        return target

    home = tmp_path / "home"
    out = tmp_path / "out"
    write_folder(out, False, export, home)
    assert (out / EXPORT_MARKER).is_file() and (out / "model.bin").read_text() == "new"
    (out / "model.bin").write_text("old")
    write_folder(out, True, export, home)
    assert (out / "model.bin").read_text() == "new"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep")
    with pytest.raises(TTSHostError, match="an export did not write"):
        write_folder(mine, True, export, home)
    assert (mine / "precious.txt").read_text() == "keep"
