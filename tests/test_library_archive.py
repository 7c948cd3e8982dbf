"""The .ttsvoice archive: round trips between libraries, and hostile archives refused whole."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from library_backend import finetune_weights
from library_fixtures import base, base_folder, embedding, lib, toy_host  # noqa: F401  (fixtures)
from tts_host.speakers import Library
from tts_host.speakers.archive import ArchiveError


@pytest.fixture
def other(tmp_path: Path):
    """A second library: another machine."""
    library = Library(tmp_path / "other-home", host=toy_host())
    yield library
    library.close()


@pytest.fixture
def archive(lib, base, base_folder, tmp_path) -> Path:
    """A voice on a second-generation checkpoint, exported with its base."""
    first = lib.add_checkpoint("toy", base, None, ["a"], {"model": finetune_weights(base_folder, tmp_path / "1.st", 1)},
                               {"lr": 1e-4}, {"loss": 2.0})
    second = lib.add_checkpoint("toy", base, first, ["a", "b"],
                                {"model": finetune_weights(base_folder, tmp_path / "2.st", 2)}, {"lr": 1e-4}, {"loss": 1.5})
    lib.add_voice("b", "toy", second, embedding(7), language="en", notes="second speaker")
    return lib.export_voice("b", tmp_path / "b.ttsvoice")


def untouched(library: Library) -> bool:
    """Nothing entered: no records, no blobs, no temp files left behind."""
    return (library.voices() == [] and library.bases() == [] and library.blobs.on_disk() == {}
            and list(library.blobs.tmp_dir.iterdir()) == [])


def test_round_trip_to_another_library(lib, other, archive):
    voice = other.import_voice(archive)
    assert (voice.name, voice.language, voice.notes) == ("b", "en", "second speaker")
    source = lib.voice("b")
    assert np.array_equal(other.voice_conditioning(voice)["speaker_embedding"], embedding(7)["speaker_embedding"])
    theirs, ours = other.model_of(voice), lib.model_of(source)
    assert theirs.uid == ours.uid and theirs.files == ours.files and theirs.metrics == {"loss": 1.5}
    assert theirs.training_config["imported_lineage"][0]["metrics"] == {"loss": 2.0}
    assert other.validate_for_finetune("b") == theirs
    assert other.verify(deep=True) == []
    again = other.import_voice(archive, as_name="b2")
    assert other.model_of(again).id == theirs.id  # the same checkpoint is not stored twice
    with pytest.raises(ArchiveError, match="a voice named 'b' already exists: import with --as"):
        other.import_voice(archive)


def test_an_archive_without_its_base_names_the_base_to_add(lib, other, base, base_folder, archive, tmp_path):
    slim = lib.export_voice("b", tmp_path / "slim.ttsvoice", include_base=False)
    assert slim.stat().st_size < archive.stat().st_size
    with pytest.raises(ArchiveError, match=r"needs base 'tiny' \(backend 'toy', digest [0-9a-f]{16}\), which is not in "
                                           r"the library: add it first with `tts-host base add toy PATH --name tiny`"):
        other.import_voice(slim)
    assert untouched(other)
    other.add_base("toy", base_folder, "renamed-base")
    voice = other.import_voice(slim)
    assert voice.base_name == "renamed-base" and other.validate_for_finetune("b")


def rewrite(archive: Path, out: Path, change) -> Path:
    """Copy an archive member by member through ``change(info, data) -> [(info, data)]``."""
    with tarfile.open(archive) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for info in src.getmembers():
            data = src.extractfile(info).read() if info.isreg() else b""
            for new_info, new_data in change(info, data):
                dst.addfile(new_info, io.BytesIO(new_data) if new_info.isreg() else None)
    return out



def special(name: str, kind: bytes, **attrs) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def _replace_first_blob(make):
    state = {"done": False}

    def change(info, data):
        if info.name.startswith("blobs/") and not state["done"]:
            state["done"] = True
            return make(info, data)
        return [(info, data)]
    return change


HOSTILE = {
    "absolute path": (_replace_first_blob(lambda i, d: [(i, d), (_renamed(i, "/etc/evil"), d)]), "absolute or parent path"),
    "parent path": (_replace_first_blob(lambda i, d: [(i, d), (_renamed(i, "blobs/../../evil"), d)]), "absolute or parent path"),
    "symlink": (_replace_first_blob(lambda i, d: [(special(i.name, tarfile.SYMTYPE, linkname="/etc/passwd"), b"")]), "is a link"),
    "hard link": (_replace_first_blob(lambda i, d: [(special(i.name, tarfile.LNKTYPE, linkname="manifest.json"), b"")]), "is a link"),
    "device": (_replace_first_blob(lambda i, d: [(special(i.name, tarfile.CHRTYPE, devmajor=1, devminor=3), b"")]), "is a device"),
    "oversized": (_replace_first_blob(lambda i, d: [(_sized(i, len(d) + 1), d + b"x")]), "more than the"),
    "flipped byte": (_replace_first_blob(lambda i, d: [(i, bytes([d[0] ^ 1]) + d[1:])]), "does not match its hash"),
    "truncated": (_replace_first_blob(lambda i, d: [(_sized(i, len(d) - 1), d[:-1])]), "does not match its hash or size"),
    "missing blob": (_replace_first_blob(lambda i, d: []), "is missing from the archive"),
    "unlisted member": (_replace_first_blob(lambda i, d: [(i, d), (_renamed(i, "blobs/" + "0" * 64), d)]), "not a blob listed"),
    "duplicate member": (_replace_first_blob(lambda i, d: [(i, d), (i, d)]), "appears twice"),
}


def _renamed(info: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    copy = tarfile.TarInfo(name)
    copy.size, copy.mode = info.size, info.mode
    return copy


def _sized(info: tarfile.TarInfo, size: int) -> tarfile.TarInfo:
    copy = _renamed(info, info.name)
    copy.size = size
    return copy


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused_and_change_nothing(other, archive, tmp_path, case):
    change, message = HOSTILE[case]
    bad = rewrite(archive, tmp_path / "bad.ttsvoice", change)
    with pytest.raises(ArchiveError, match=message) as err:
        other.import_voice(bad)
    assert "\n" not in str(err.value)
    assert untouched(other)
    assert not (tmp_path / "evil").exists()


def test_manifest_must_come_first_and_be_sane(other, archive, tmp_path):
    def manifest_last(info, data):
        return [] if info.name == "manifest.json" else [(info, data)]
    with pytest.raises(ArchiveError, match="first member must be manifest.json"):
        other.import_voice(rewrite(archive, tmp_path / "h1.ttsvoice", manifest_last))

    def hostile_path(info, data):
        if info.name != "manifest.json":
            return [(info, data)]
        manifest = json.loads(data)
        manifest["voice"]["files"][0]["path"] = "../../escape"
        new = json.dumps(manifest).encode()
        return [(_sized(info, len(new)), new)]
    with pytest.raises(ArchiveError, match="not a plain relative path"):
        other.import_voice(rewrite(archive, tmp_path / "h2.ttsvoice", hostile_path))

    def hostile_name(info, data):
        if info.name != "manifest.json":
            return [(info, data)]
        manifest = json.loads(data)
        manifest["voice"]["name"] = "../x"
        new = json.dumps(manifest).encode()
        return [(_sized(info, len(new)), new)]
    with pytest.raises(ArchiveError.__mro__[1], match="voice name '../x' contains"):
        other.import_voice(rewrite(archive, tmp_path / "h3.ttsvoice", hostile_name))
    def other_backend(info, data):
        if info.name != "manifest.json":
            return [(info, data)]
        manifest = json.loads(data)
        manifest["base"]["backend"] = "xtts"
        new = json.dumps(manifest).encode()
        return [(_sized(info, len(new)), new)]
    with pytest.raises(ArchiveError, match=r"name different backends \(toy, xtts\)"):
        other.import_voice(rewrite(archive, tmp_path / "h4.ttsvoice", other_backend))
    (tmp_path / "d.ttsvoice").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ArchiveError, match="not a tar archive|first member"):
        other.import_voice(tmp_path / "d.ttsvoice")
    assert untouched(other)
