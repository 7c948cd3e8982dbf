"""The voice library's Python API: bases, checkpoints, voices, lineage, materialising, validation."""

from __future__ import annotations

import json
import os
import sqlite3

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from library_backend import PRESETS, finetune_weights, write_model
from library_fixtures import base, base_folder, clone, embedding, lib, toy_host  # noqa: F401  (fixtures)
from tts_host.errors import TTSHostError, ValidationError
from tts_host.speakers import InvalidNameError, Library
from tts_host.speakers.db import SCHEMA_VERSION


def test_add_base_records_manifest_and_architecture(lib, base, base_folder):
    assert base.name == "tiny" and base.backend == "toy"
    assert base.architecture == PRESETS["tiny"]
    assert {f.role: f.path for f in base.files} == {
        "config": "config.json", "model": "model.safetensors", "codec": "codec.safetensors", "stats": "stats.safetensors"
    }
    for entry in base.files:
        blob = lib.blob_path(entry.sha256)
        assert blob.read_bytes() == (base_folder / entry.path).read_bytes()
        assert not os.access(blob, os.W_OK) or os.geteuid() == 0
        assert blob.stat().st_mode & 0o222 == 0
    assert [b.name for b in lib.bases()] == ["tiny"]


def test_add_base_missing_required_file_is_refused(lib, base_folder):
    (base_folder / "codec.safetensors").unlink()
    with pytest.raises(ValidationError) as err:
        lib.add_base("toy", base_folder, "broken")
    assert err.value.file == "codec.safetensors" and "missing" in str(err.value)
    assert lib.bases() == []


def test_add_base_with_wrong_shapes_is_refused_and_stores_nothing(lib, base_folder):
    weights = load_file(str(base_folder / "model.safetensors"))
    weights["proj.bias"] = np.zeros(3, dtype=np.float32)
    save_file(weights, str(base_folder / "model.safetensors"))
    with pytest.raises(ValidationError) as err:
        lib.add_base("toy", base_folder, "bad")
    assert err.value.file == "model.safetensors"
    assert "(8,)" in str(err.value.expected) and "(3,)" in str(err.value.actual)
    assert lib.bases() == [] and lib.stored_bytes() == 0


def test_readding_a_base_returns_it_and_a_different_one_needs_another_name(lib, base, base_folder, tmp_path):
    assert lib.add_base("toy", base_folder, "tiny") == base
    other = write_model(tmp_path / "other", PRESETS["tiny"], seed=5)
    with pytest.raises(TTSHostError, match="different base named 'tiny'"):
        lib.add_base("toy", other, "tiny")
    assert len(lib.bases()) == 1


def test_init_base_builds_and_adds(lib):
    from tts_host.bases import init_base

    made = init_base(lib, lib.backend("toy"), "small", seed=3)
    assert made.name == "toy-small" and made.architecture == PRESETS["small"]
    with pytest.raises(TTSHostError, match="no preset 'huge'.*tiny, small"):
        init_base(lib, lib.backend("toy"), "huge")


def test_checkpoint_inherits_unchanged_files_from_the_base(lib, base, base_folder, tmp_path):
    new_model = finetune_weights(base_folder, tmp_path / "model.safetensors", seed=1)
    ckpt = lib.add_checkpoint("toy", base, None, ["alice"], {"model": new_model}, {"lr": 1e-4}, {"loss": 0.5})
    by_role = {f.role: f for f in ckpt.files}
    base_roles = {f.role: f for f in base.files}
    for role in ("codec", "stats", "config"):
        assert by_role[role] == base_roles[role]  # literally the base's blobs
    assert by_role["model"].sha256 != base_roles["model"].sha256
    assert ckpt.speakers == ("alice",) and ckpt.metrics == {"loss": 0.5} and ckpt.training_config == {"lr": 1e-4}
    with pytest.raises(TTSHostError, match="no file role 'optimizer'"):
        lib.add_checkpoint("toy", base, None, ["alice"], {"optimizer": new_model})


def test_lineage_and_descendants(lib, base, base_folder, tmp_path):
    first = lib.add_checkpoint("toy", base, None, ["alice"],
                               {"model": finetune_weights(base_folder, tmp_path / "a.safetensors", 1)})
    second = lib.add_checkpoint("toy", base, first, ["alice", "bob"],
                                {"model": finetune_weights(base_folder, tmp_path / "b.safetensors", 2)})
    third = lib.add_checkpoint("toy", base, second.id, ["alice", "bob", "carol"],
                               {"model": finetune_weights(base_folder, tmp_path / "c.safetensors", 3)})
    side = lib.add_checkpoint("toy", base, first, ["alice", "dan"],
                              {"model": finetune_weights(base_folder, tmp_path / "d.safetensors", 4)})
    assert [c.id for c in lib.lineage(third)] == [first.id, second.id, third.id]
    assert [c.id for c in lib.descendants(first)] == [second.id, third.id, side.id]
    assert lib.descendants(third) == []
    assert [c.id for c in lib.checkpoints("tiny")] == [first.id, second.id, third.id, side.id]


def test_clone_voice_computes_conditioning_from_the_clips(lib, base, speaker_clips):
    a = clone(lib, "Ann", "toy", base, [p for p, _ in speaker_clips("A", 2)], language="en", notes="espeak A")
    b = clone(lib, "Bo", "toy", base, [p for p, _ in speaker_clips("B", 2)], language="en")
    cond_a, cond_b = lib.voice_conditioning(a), lib.voice_conditioning(b)
    assert cond_a["speaker_embedding"].shape == (8,) and cond_a["latents"].shape == (2, 8)
    assert not np.allclose(cond_a["speaker_embedding"], cond_b["speaker_embedding"])
    assert [f.path for f in a.files] == ["conditioning.safetensors", "references/00.wav", "references/01.wav"]
    assert lib.blob_path(a.files[1].sha256).read_bytes() == speaker_clips("A", 1)[0][0].read_bytes()
    assert lib.voice("Ann").notes == "espeak A" and lib.voice("Ann").language == "en"
    assert [v.name for v in lib.voices()] == ["Ann", "Bo"] and lib.voices(backend="other") == []


def test_materialise_links_blobs_in_the_upstream_layout(lib, base, tmp_path):
    voice = lib.add_voice("v", "toy", base, embedding(1))
    out = lib.materialise(voice, tmp_path / "out")
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == ["codec.safetensors", "config.json", "model.safetensors", "stats.safetensors",
                     "voice/conditioning.safetensors"]
    model = {f.role: f for f in base.files}["model"]
    assert (out / "model.safetensors").stat().st_ino == lib.blob_path(model.sha256).stat().st_ino
    with pytest.raises(TTSHostError, match="not an empty folder"):
        lib.materialise(voice, out)


def test_validate_for_finetune_passes_and_fills_dest(lib, base, base_folder, tmp_path):
    ckpt = lib.add_checkpoint("toy", base, None, ["alice"],
                              {"model": finetune_weights(base_folder, tmp_path / "m.safetensors", 1)})
    lib.add_voice("alice", "toy", ckpt, embedding(2))
    assert lib.validate_for_finetune("alice", dest=tmp_path / "start") == ckpt
    assert (tmp_path / "start" / "codec.safetensors").read_bytes() == (base_folder / "codec.safetensors").read_bytes()
    assert lib.validate_for_finetune(f"checkpoint:{ckpt.id}") == ckpt
    assert lib.validate_for_finetune("base:tiny") == base


def test_validate_for_finetune_runs_the_backend_schema(lib, base, tmp_path):
    bad = tmp_path / "m.safetensors"
    arrays = {"embed.weight": np.zeros((12, 8), np.float32), "proj.weight": np.zeros((8, 10), np.float32),
              "proj.bias": np.full(8, np.nan, np.float32)}
    save_file(arrays, str(bad))
    ckpt = lib.add_checkpoint("toy", base, None, ["x"], {"model": bad})
    with pytest.raises(ValidationError) as err:
        lib.validate_for_finetune(ckpt)
    assert err.value.file == "model.safetensors" and "finite" in str(err.value.expected)
    assert str(err.value).startswith(f"checkpoint {ckpt.id}: model.safetensors: expected")
    del arrays["proj.bias"]
    arrays["proj.extra"] = np.zeros(8, np.float32)
    save_file(arrays, str(bad))
    ckpt = lib.add_checkpoint("toy", base, None, ["x"], {"model": bad})
    with pytest.raises(ValidationError, match=r"expected keys \['embed.weight', 'proj.bias', 'proj.weight'\]"):
        lib.validate_for_finetune(ckpt)


def test_protected_file_that_differs_is_refused_and_repair_restores_it(lib, base, base_folder, tmp_path):
    rebuilt = tmp_path / "codec.safetensors"  # a codec rebuilt by another tool: same keys, other bytes
    save_file({"codebook": np.ones((16, 8), np.float32)}, str(rebuilt))
    ckpt = lib.add_checkpoint("toy", base, None, ["alice"], {"codec": rebuilt,
                              "model": finetune_weights(base_folder, tmp_path / "m.safetensors", 1)})
    lib.add_voice("alice", "toy", ckpt, embedding(1))
    with pytest.raises(ValidationError) as err:
        lib.validate_for_finetune("alice")
    assert err.value.file == "codec.safetensors" and "protected" in str(err.value.expected)
    assert "voice 'alice'" in str(err.value)
    report = lib.repair("alice")
    assert any("codec.safetensors restored from the base" in line for line in report.actions)
    assert lib.validate_for_finetune("alice") == lib.checkpoint(ckpt.id)
    codec = {f.role: f for f in lib.checkpoint(ckpt.id).files}["codec"]
    assert codec == {f.role: f for f in base.files}["codec"]


@pytest.mark.parametrize("name", ["../evil", "a/b", "a\\b", "..", "bell\x07", "nul\x00x", "x" * 65, "",
                                  " padded", "rtl\u202eoverride", "line\u2028sep"])
def test_hostile_names_are_refused_and_change_nothing(lib, base, name):
    before = lib.stored_bytes()
    with pytest.raises(InvalidNameError) as err:
        lib.add_voice(name, "toy", base, embedding(1))
    assert "voice name" in str(err.value) and "\n" not in str(err.value)
    assert lib.voices() == [] and lib.stored_bytes() == before


def test_unicode_names_are_welcome(lib, base):
    for name in ("Zoë", "Алёна", "小明", "O'Brien (2)"):
        lib.add_voice(name, "toy", base, embedding(1))
    assert {v.name for v in lib.voices()} == {"Zoë", "Алёна", "小明", "O'Brien (2)"}


def test_rename_and_remove_voice(lib, base):
    lib.add_voice("a", "toy", base, embedding(1))
    lib.add_voice("b", "toy", base, embedding(2))
    with pytest.raises(TTSHostError, match="already exists"):
        lib.rename_voice("a", "b")
    with pytest.raises(TTSHostError, match="already exists"):
        lib.add_voice("a", "toy", base, embedding(3))
    assert lib.rename_voice("a", "c").name == "c"
    lib.remove_voice("c")
    assert [v.name for v in lib.voices()] == ["b"]
    with pytest.raises(TTSHostError, match="no voice named 'c'"):
        lib.voice("c")


def test_base_removal_is_refused_while_used(lib, base, tmp_path):
    lib.add_voice("a", "toy", base, embedding(1))
    with pytest.raises(TTSHostError, match=r"base 'tiny' is still used by 0 checkpoint\(s\) and 1 voice\(s\) \('a'\)"):
        lib.remove_base("tiny")
    lib.remove_voice("a")
    lib.remove_base("tiny")
    assert lib.bases() == []
    assert lib.gc().blobs == 5 and lib.stored_bytes() == 0  # 4 base files + 1 conditioning


def test_ten_voices_on_one_base_store_each_shared_file_once(lib, base, base_folder, speaker_clips):
    base_bytes = sum(f.size for f in base.files)
    clip = speaker_clips("C", 1)[0][0]
    for index in range(10):
        clone(lib, f"voice {index}", "toy", base, [clip])
    conditioning = {lib.voice(f"voice {i}").files[0].sha256 for i in range(10)}
    assert len(conditioning) == 1  # same clip, same model: the same blob, stored once
    expected = base_bytes + clip.stat().st_size + lib.voice("voice 0").files[0].size
    assert lib.stored_bytes() == expected
    assert len(lib.blobs.on_disk()) == len(base.files) + 2  # base files, one clip, one conditioning


def test_the_index_is_wal_versioned_and_a_newer_one_is_refused(tts_home):
    Library(tts_home).close()
    index = tts_home / "library" / "index.sqlite"
    conn = sqlite3.connect(index)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(TTSHostError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade tts-host"):
        Library(tts_home)


def test_conditioning_roundtrips_through_safetensors(lib, base):
    arrays = {"gpt_cond_latent": np.arange(96, dtype=np.float32).reshape(1, 32, 3),
              "speaker_embedding": np.ones((1, 512, 1), np.float32)}
    voice = lib.add_voice("x", "toy", base, arrays)
    stored = lib.voice_conditioning(voice)
    assert set(stored) == set(arrays) and all(np.array_equal(stored[k], arrays[k]) for k in arrays)
    assert json.loads(json.dumps(voice.files[0].path)) == "conditioning.safetensors"


def test_a_voice_moves_to_a_later_sequential_checkpoint(lib, base, base_folder, tmp_path):
    first = lib.add_checkpoint("toy", base, None, ["a"], {"model": finetune_weights(base_folder, tmp_path / "1", 1)})
    second = lib.add_checkpoint("toy", base, first, ["a", "b"], {"model": finetune_weights(base_folder, tmp_path / "2", 2)})
    lib.add_voice("a", "toy", first, embedding(1))
    moved = lib.set_voice_model("a", second, embedding(5))
    assert moved.checkpoint_id == second.id
    assert np.array_equal(lib.voice_conditioning(moved)["speaker_embedding"], embedding(5)["speaker_embedding"])
    assert lib.validate_for_finetune("a") == second
    other_base = lib.add_base("toy", write_model(tmp_path / "o", PRESETS["tiny"], 9), "other")
    with pytest.raises(TTSHostError, match="is not a model of that base"):
        lib.set_voice_model("a", other_base)
    lib.gc()
    assert lib.verify(deep=True) == []


def test_a_voice_file_is_replaced_in_one_transaction_and_kept_by_the_journal(lib, base, tmp_path, tts_home):
    from tts_host.speakers.recovery import recover

    lib.add_voice("a", "toy", base, embedding(1))
    for value in ("first", "second"):
        (tmp_path / "s.json").write_text(value, encoding="utf-8")
        voice = lib.set_voice_files("a", {"speech": ("speech.json", tmp_path / "s.json")})
    files = {f.role: f for f in voice.files}
    assert set(files) == {"conditioning", "speech"} and lib.blob_path(files["speech"].sha256).read_text() == "second"
    with pytest.raises(TTSHostError, match="already has a file at conditioning.safetensors"):
        lib.set_voice_files("a", {"other": ("conditioning.safetensors", tmp_path / "s.json")})
    with pytest.raises(TTSHostError, match="not a plain relative path"):
        lib.set_voice_files("a", {"speech": ("../speech.json", tmp_path / "s.json")})
    assert lib.voice("a").files == voice.files  # the refusals changed nothing
    lib.close()
    recover(tts_home / "library", force=True)  # the journal has the new file too
    with Library(tts_home, host=toy_host()) as rebuilt:
        assert rebuilt.voice("a").files == voice.files and rebuilt.verify(deep=True) == []


def test_materialise_copies_where_hard_links_are_impossible(lib, base, tmp_path, monkeypatch):
    def no_links(source, target):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)  # as across file systems
    out = lib.materialise(base, tmp_path / "copied")
    model = {f.role: f for f in base.files}["model"]
    assert (out / "model.safetensors").read_bytes() == lib.blob_path(model.sha256).read_bytes()
    assert (out / "model.safetensors").stat().st_ino != lib.blob_path(model.sha256).stat().st_ino
