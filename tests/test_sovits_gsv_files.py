"""GPT-SoVITS v2 model files: reading upstream's formats safely, refusing other versions, exporting v2."""

from __future__ import annotations

import builtins
import os
import pickle
import shutil
import sys
from pathlib import Path

import pytest
import torch

from gsv_fixtures import (
    discriminator_shapes,
    manifest_config,
    manifest_shapes,
    random_weights,
    write_random_d,
    write_random_s1,
    write_random_s2,
    write_v1_s2,
)
from tts_host.errors import TTSHostError, ValidationError
from tts_host.plugins.sovits.gsv_files import (
    V1_SIZE_THRESHOLD,
    check_state_dict,
    check_v2,
    read_s1,
    read_s2,
    read_s2_discriminator,
    write_s1,
    write_s2,
)

SMALL_S2 = ("enc_p.text_embedding.weight", "ref_enc.spectral.0.fc.weight", "ssl_proj.weight", "ssl_proj.bias")


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert isinstance(error.value, TTSHostError)
    assert "\n" not in message and message
    return message


def tag(source: Path, dest: Path, header: bytes) -> Path:
    """A copy of ``source`` with its first two bytes replaced, as process_ckpt.my_save2 writes."""
    if source != dest:
        shutil.copyfile(source, dest)
    with open(dest, "r+b") as handle:
        handle.write(header)
    return dest


@pytest.fixture(scope="session")
def v2_files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Full-size v2 s2 files (no enc_q), written once: plain-dict config and pickled-HParams config."""
    folder = tmp_path_factory.mktemp("gsv-s2")
    weights = write_random_s2(folder / "voice_e8_s96.pth")
    write_random_s2(folder / "voice_hparams_e8_s96.pth", hparams_class=True)  # same seed: same weights
    return {"folder": folder, "weights": weights, "plain": folder / "voice_e8_s96.pth",
            "hparams": folder / "voice_hparams_e8_s96.pth"}


@pytest.fixture(scope="session")
def v2_s1(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("gsv-s1") / "voice-e15.ckpt"
    return {"path": path, "weights": write_random_s1(path)}


@pytest.mark.parametrize("header", [b"PK", b"01"])
@pytest.mark.parametrize("config", ["plain", "hparams"])
def test_read_v2_s2(v2_files: dict, tmp_path: Path, header: bytes, config: str) -> None:
    path = v2_files[config]
    if header != b"PK":
        path = tag(path, tmp_path / path.name, header)
    s2 = read_s2(path)
    assert s2.header == header and s2.version == "v2" and not s2.lora
    check_v2(s2, path)
    assert s2.config == manifest_config("s2") and type(s2.config["model"]) is dict
    assert s2.info == "8epoch_96iteration"
    assert s2.weights.keys() == v2_files["weights"].keys()
    for key, tensor in v2_files["weights"].items():
        assert s2.weights[key].dtype == torch.float32
        assert torch.equal(s2.weights[key], tensor.float()), key
    check_state_dict(path, s2.weights, manifest_shapes("s2"), optional_prefixes=("enc_q.",))


def test_hparams_config_needs_the_restricted_unpickler(v2_files: dict) -> None:
    with pytest.raises(pickle.UnpicklingError):
        torch.load(v2_files["hparams"], map_location="cpu", weights_only=True)
    assert "utils" not in sys.modules or not hasattr(sys.modules["utils"], "HParams")


@pytest.mark.parametrize("header", [b"PK", b"00"])
def test_v1_refused(tmp_path: Path, header: bytes) -> None:
    path = tmp_path / "old_v1.pth"
    weights = write_v1_s2(path, keys=SMALL_S2)
    if header != b"PK":
        tag(path, path, header)
    s2 = read_s2(path)
    assert s2.version == "v1"
    assert s2.weights["enc_p.text_embedding.weight"].shape == weights["enc_p.text_embedding.weight"].shape
    with pytest.raises(TTSHostError) as error:
        check_v2(s2, path)
    assert one_line(error) == f"{path}: a GPT-SoVITS v1 model; tts-host imports v2 only"


@pytest.mark.parametrize(
    "header, version, keys, expected",
    [
        (b"05", "v2", SMALL_S2, "v2Pro"),
        (b"06", "v2", SMALL_S2, "v2ProPlus"),
        (b"03", "v2", SMALL_S2, "v3 LoRA"),
        (b"PK", "v2Pro", SMALL_S2 + ("ge_to512.weight", "prelu.weight"), "v2Pro"),
        (b"PK", "v2ProPlus", SMALL_S2 + ("prelu.weight", "dec.conv_pre.weight"), "v2ProPlus"),
    ],
)
def test_other_versions_refused(tmp_path: Path, header: bytes, version: str, keys: tuple, expected: str) -> None:
    path = tmp_path / "other.pth"
    write_random_s2(path, version=version, header=header, keys=keys, hparams_class=header == b"05")
    s2 = read_s2(path)
    assert s2.header == header
    with pytest.raises(TTSHostError) as error:
        check_v2(s2, path)
    assert one_line(error) == f"{path}: a GPT-SoVITS {expected} model; tts-host imports v2 only"


class _Hostile:
    def __init__(self, call, argument) -> None:
        self.call, self.argument = call, argument

    def __reduce__(self):
        return self.call, (self.argument,)


@pytest.mark.parametrize("kind, header", [("os.system", b"PK"), ("builtins.eval", b"05"), ("builtins.eval", b"PK")])
def test_hostile_pickle_refused_and_not_run(tmp_path: Path, kind: str, header: bytes) -> None:
    marker = tmp_path / "pwned"
    if kind == "os.system":
        payload = _Hostile(os.system, f"touch {marker}")
        shown = f"{os.system.__module__}.system"  # posix.system
    else:
        payload = _Hostile(builtins.eval, f"open({str(marker)!r}, 'w').close()")
        shown = "builtins.eval"
    path = tmp_path / "voice.pth"
    obj = {"weight": random_weights({"enc_p.text_embedding.weight": (732, 192)}), "config": {"x": payload}, "info": ""}
    torch.save(obj, str(path))
    if header != b"PK":
        tag(path, path, header)
    for reader in (read_s2, read_s1, read_s2_discriminator):
        with pytest.raises(TTSHostError) as error:
            reader(path)
        message = one_line(error)
        assert message.startswith(f"{path}: refused to load") and shown in message
    assert not marker.exists()


def test_damaged_files(tmp_path: Path) -> None:
    path = tmp_path / "voice.pth"
    write_random_s2(path, keys=SMALL_S2)
    data = path.read_bytes()
    cases = {"truncated.pth": data[: len(data) // 2], "tagged-truncated.pth": b"05" + data[2:1000],
             "empty.pth": b"", "text.pth": b"hello, not a model"}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(TTSHostError) as error:
            read_s2(tmp_path / name)
        assert one_line(error).startswith(f"{tmp_path / name}: ")
    with pytest.raises(TTSHostError) as error:
        read_s2(tmp_path / "absent.pth")
    assert one_line(error).startswith(f"{tmp_path / 'absent.pth'}: cannot read")


def test_wrong_kind_of_file(tmp_path: Path, v2_s1: dict) -> None:
    s2_path = tmp_path / "voice.pth"
    write_random_s2(s2_path, keys=SMALL_S2)
    with pytest.raises(TTSHostError) as error:
        read_s1(s2_path)
    assert one_line(error) == f"{s2_path}: an s2 (SoVITS) model, not an s1 (GPT) model"
    with pytest.raises(TTSHostError) as error:
        read_s2(v2_s1["path"])
    assert one_line(error) == f"{v2_s1['path']}: an s1 (GPT) model, not an s2 (SoVITS) model"
    training = tmp_path / "G_233.pth"
    torch.save({"model": {}, "optimizer": {}, "iteration": 1, "learning_rate": 1e-4}, str(training))
    with pytest.raises(TTSHostError) as error:
        read_s2(training)
    assert "training checkpoint" in one_line(error)


def test_s1_read_and_write_round_trip(v2_s1: dict, tmp_path: Path) -> None:
    s1 = read_s1(v2_s1["path"])
    assert s1.config == manifest_config("s1") and s1.info == "GPT-e15"
    assert {k: tuple(v.shape) for k, v in s1.weights.items()} == manifest_shapes("s1")
    for key, tensor in v2_s1["weights"].items():
        assert s1.weights[key].dtype == torch.float32 and torch.equal(s1.weights[key], tensor.float()), key
    check_state_dict(v2_s1["path"], s1.weights, manifest_shapes("s1"))

    out = tmp_path / "exported-e15.ckpt"
    write_s1(out, s1.weights, s1.config, "GPT-e15")
    raw = torch.load(out, map_location="cpu", weights_only=True)  # a plain dict: loads without our unpickler
    assert {k: tuple(v.shape) for k, v in raw["weight"].items()} == manifest_shapes("s1_file")
    assert all(v.dtype == torch.float16 for v in raw["weight"].values())
    assert raw["config"] == manifest_config("s1") and raw["info"] == "GPT-e15"
    again = read_s1(out)
    assert all(torch.equal(again.weights[k], s1.weights[k]) for k in s1.weights)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left


def test_s2_write_round_trip(v2_files: dict, tmp_path: Path) -> None:
    s2 = read_s2(v2_files["hparams"])
    enc_q = {k: v.float() for k, v in random_weights(
        {k: v for k, v in manifest_shapes("s2").items() if k.startswith("enc_q.")}, seed=1).items()}
    out = tmp_path / "v.pth"  # a short name: the size rule must not depend on it
    write_s2(out, {**s2.weights, **enc_q}, s2.config, "8epoch_96iteration")
    assert out.read_bytes()[:2] == b"PK"
    assert out.stat().st_size >= V1_SIZE_THRESHOLD  # GPT-SoVITS's size rule reads it as v2
    raw = torch.load(out, map_location="cpu", weights_only=True)
    assert not any(k.startswith("enc_q") for k in raw["weight"])
    assert all(v.dtype == torch.float16 for v in raw["weight"].values())
    assert type(raw["config"]) is dict and raw["config"] == manifest_config("s2")
    again = read_s2(out)
    assert again.version == "v2" and again.header == b"PK"
    assert again.weights.keys() == s2.weights.keys()
    assert all(torch.equal(again.weights[k], s2.weights[k]) for k in s2.weights)
    check_v2(again, out)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_write_s2_refusals_leave_nothing(tmp_path: Path) -> None:
    config = manifest_config("s2")
    small = {k: v.float() for k, v in random_weights({"enc_p.text_embedding.weight": (732, 192)}).items()}
    out = tmp_path / "voice.pth"
    cases = [
        (small, config, "would load it as v1"),
        ({"enc_p.text_embedding.weight": torch.zeros(322, 192)}, config, "v1-shaped"),
        ({**small, "x": torch.full((2,), 1e6)}, config, "overflows float16"),
        ({**small, "x": torch.tensor([float("nan")])}, config, "NaN"),
        (small, {**config, "data": {}}, "data.filter_length"),
        (small, {**config, "model": {"p": Path("x")}}, "PosixPath"),
    ]
    for weights, cfg, words in cases:
        with pytest.raises(TTSHostError) as error:
            write_s2(out, weights, cfg, "")
        assert one_line(error).startswith(f"{out}: cannot export") and words in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_read_discriminator(tmp_path: Path) -> None:
    path = tmp_path / "s2D2333k.pth"
    weights = write_random_d(path, periods=(2,))
    read = read_s2_discriminator(path)
    assert {k: tuple(v.shape) for k, v in read.items()} == discriminator_shapes((2,))
    assert all(v.dtype == torch.float32 and torch.equal(v, weights[k].float()) for k, v in read.items())
    check_state_dict(path, read, discriminator_shapes((2,)))


def test_check_state_dict_messages() -> None:
    expected = {"a.weight": (2, 3), "b.bias": (4,), "enc_q.w": (1,)}
    good = {"a.weight": torch.zeros(2, 3), "b.bias": torch.zeros(4)}
    check_state_dict(Path("m.pth"), good, expected, optional_prefixes=("enc_q.",))
    cases = [
        ({"a.weight": torch.zeros(2, 3)}, "m.pth: expected tensor b.bias (4,), actual missing"),
        ({**good, "c": torch.zeros(1)}, "m.pth: expected no tensor c, actual one of shape (1,)"),
        ({**good, "enc_q.w": torch.zeros(2)}, "m.pth: expected enc_q.w of shape (1,), actual (2,)"),
        ({**good, "a.weight": torch.zeros(3, 2)}, "m.pth: expected a.weight of shape (2, 3), actual (3, 2)"),
        ({**good, "b.bias": torch.tensor([0, float("nan"), float("inf"), 1])},
         "m.pth: expected finite values in b.bias, actual 2 of 4 NaN or infinite"),
    ]
    for actual, message in cases:
        with pytest.raises(ValidationError) as error:
            check_state_dict(Path("m.pth"), actual, expected, optional_prefixes=("enc_q.",))
        assert one_line(error) == message
    with pytest.raises(ValidationError) as error:
        check_state_dict(Path("m.pth"), good, expected)
    assert one_line(error) == "m.pth: expected tensor enc_q.w (1,), actual missing"
    renamed = {"a.weight": torch.zeros(2, 3), "bb.bias": torch.zeros(4)}
    with pytest.raises(ValidationError) as error:
        check_state_dict(Path("m.pth"), renamed, {"a.weight": (2, 3), "b.bias": (4,)})
    assert one_line(error) == "m.pth: expected tensor b.bias (4,), actual missing; 1 unexpected, first bb.bias"
