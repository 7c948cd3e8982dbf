"""GPT-SoVITS v2 files in and out through the command line.

In: ``tts-host base add sovits FOLDER`` on a model set in upstream's own formats (s1 ``.ckpt``, s2G ``.pth``
with ``enc_q``, s2D ``.pth``, a ``chinese-hubert-base`` transformers folder), stored with exactly the v2
names and shapes and the fp16 values; other versions, hostile pickles and incomplete folders refused in
one line. Out: a zero-shot voice on the random v2 base exported as ``NAME.pth`` + ``NAME.ckpt`` that read
back as v2, fp16 on disk, with the reference; a tiny-preset voice refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from cli_helpers import cli_ok, cli_refused
from gsv_fixtures import (
    discriminator_shapes,
    manifest_shapes,
    random_weights,
    write_random_d,
    write_random_s1,
    write_random_s2,
    write_v1_s2,
)

S1_NAME = "s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"  # upstream's published file names
S2G_NAME, S2D_NAME = "s2G2333k.pth", "s2D2333k.pth"
PRETRAINED = "gsv-v2final-pretrained"  # GPT_SoVITS/pretrained_models/<this>/ holds the three files
VARIANTS = {"plain": {}, "hparams": {"hparams_class": True, "header": b"01"}}
"""Both header variants of an s2 file: plain (``PK``, a plain-dict config) and tagged (the two-byte version tag
``01`` = v2 of upstream's ``head2version`` over the zip header, with the config pickled as GPT-SoVITS's
``utils.HParams``); a tagged v2Pro is refused below."""


def _link_tree(source: Path, dest: Path) -> None:
    """``dest`` holding hard links to every file of ``source`` (the big shared pieces are written once)."""
    for path in source.rglob("*"):
        if path.is_file():
            target = dest / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> dict:
    """The pieces of a GPT-SoVITS v2 model set, written once: HuBERT folder, s1, s2 variants, discriminator."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    root = tmp_path_factory.mktemp("gsv-parts")
    hubert = root / "hubert" / "chinese-hubert-base"
    torch.manual_seed(0)
    HubertModel(HubertConfig()).save_pretrained(hubert)  # 768 wide, 12 layers, random
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(hubert)
    s1 = write_random_s1(root / S1_NAME, seed=1)
    d = write_random_d(root / S2D_NAME, seed=2)
    s2 = {}
    for variant, options in VARIANTS.items():
        (root / variant).mkdir()
        s2[variant] = write_random_s2(root / variant / S2G_NAME, include_enc_q=True, seed=3, **options)
    return {"root": root, "hubert": hubert.parent, "s1": s1, "d": d, "s2": s2}


def model_set(parts: dict, dest: Path, s2: Path | None = None, *, hubert: bool = True, d: bool = True) -> Path:
    """``dest`` laid out as upstream's ``pretrained_models``: the v2 files in a sub-folder, HuBERT beside it."""
    files = dest / PRETRAINED
    files.mkdir(parents=True)
    os.link(parts["root"] / S1_NAME, files / S1_NAME)
    os.link(s2 if s2 is not None else parts["root"] / "plain" / S2G_NAME, files / S2G_NAME)
    if d:
        os.link(parts["root"] / S2D_NAME, files / S2D_NAME)
    if hubert:
        _link_tree(parts["hubert"], dest)
    return dest


def stored(name: str, role: str) -> dict[str, torch.Tensor]:
    """The tensors of base ``name``'s file ``role`` as the library holds them."""
    from safetensors.torch import load_file

    from tts_host.host import get_host
    from tts_host.speakers import Library

    with Library(Path(os.environ["TTS_HOST_HOME"]), host=get_host()) as lib:
        entry = {f.role: f for f in lib.base(name).files}[role]
        return load_file(str(lib.blob_path(entry.sha256)))


def shapes(weights: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {name: tuple(tensor.shape) for name, tensor in weights.items()}


def assert_fp32_of(found: dict[str, torch.Tensor], originals: dict[str, torch.Tensor]) -> None:
    for name, tensor in found.items():
        assert tensor.dtype == torch.float32 and torch.equal(tensor, originals[name].float()), name


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_base_add_imports_an_upstream_v2_model_set(parts, tmp_path, variant):
    with_d = variant == "plain"  # the discriminator's import does not depend on the s2 file: checked once
    folder = model_set(parts, tmp_path / "pretrained_models", parts["root"] / variant / S2G_NAME, d=with_d)
    if with_d:  # upstream's pretrained_models also holds the v1 files, beside the v2 folder: they are left alone
        write_v1_s2(folder / "s2G488k.pth", keys=("enc_p.text_embedding.weight",))
        os.link(parts["root"] / S1_NAME, folder / "s1bert25hz-2kh-longer-epoch=68e-step=50232.ckpt")
    out = cli_ok("base", "add", "sovits", str(folder), "--name", f"gsv-{variant}")
    files = 9 if with_d else 8
    assert f"added base 'gsv-{variant}' (sovits, {files} files" in out
    listed = json.loads(cli_ok("base", "list", "--json"))
    assert [(b["name"], b["backend"], b["files"]) for b in listed] == [(f"gsv-{variant}", "sovits", files)]

    generator, semantic = stored(f"gsv-{variant}", "s2_generator"), stored(f"gsv-{variant}", "s2_semantic")
    assert not generator.keys() & semantic.keys()
    assert shapes({**generator, **semantic}) == manifest_shapes("s2")  # every v2 tensor, enc_q included
    assert any(name.startswith("enc_q.") for name in generator)
    assert set(semantic) == {n for n in manifest_shapes("s2") if n.startswith(("ssl_proj.", "quantizer."))}
    assert_fp32_of({**generator, **semantic}, parts["s2"][variant])
    s1 = stored(f"gsv-{variant}", "s1_weights")
    assert shapes(s1) == manifest_shapes("s1")  # without "model."
    assert_fp32_of(s1, parts["s1"])
    if with_d:
        discriminator = stored(f"gsv-{variant}", "s2_discriminator")
        assert shapes(discriminator) == discriminator_shapes()
        assert_fp32_of(discriminator, parts["d"])
    hubert = stored(f"gsv-{variant}", "hubert_weights")
    assert hubert["encoder.layers.11.final_layer_norm.weight"].shape == (768,)


def test_v1_s2_refused_naming_v1(parts, tmp_path):
    v1 = tmp_path / "v1" / S2G_NAME
    v1.parent.mkdir()
    write_v1_s2(v1)
    folder = model_set(parts, tmp_path / "pretrained_models", v1)
    line = cli_refused("base", "add", "sovits", str(folder))
    assert "v1" in line and "imports v2 only" in line and S2G_NAME in line
    assert json.loads(cli_ok("base", "list", "--json")) == []


def test_tagged_v2pro_s2_refused_naming_v2pro(parts, tmp_path):
    pro = tmp_path / "pro" / "s2Gv2Pro.pth"
    pro.parent.mkdir()
    keys = ("enc_p.text_embedding.weight", "ssl_proj.weight", "ge_to512.weight", "prelu.weight")  # the tells
    write_random_s2(pro, version="v2Pro", header=b"05", hparams_class=True, keys=keys)  # as my_save2 writes it
    folder = model_set(parts, tmp_path / "pretrained_models", pro)
    line = cli_refused("base", "add", "sovits", str(folder))
    assert line.endswith("a GPT-SoVITS v2Pro model; tts-host imports v2 only")


class _Hostile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_hostile_pickle_refused_and_never_run(parts, tmp_path):
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile" / S2G_NAME
    hostile.parent.mkdir()
    weights = random_weights({"enc_p.text_embedding.weight": (732, 192)})
    torch.save({"weight": weights, "config": {"model": _Hostile(marker)}, "info": ""}, str(hostile))
    folder = model_set(parts, tmp_path / "pretrained_models", hostile)
    line = cli_refused("base", "add", "sovits", str(folder))
    assert "refused to load" in line and "system" in line and S2G_NAME in line
    assert not marker.exists()
    assert json.loads(cli_ok("base", "list", "--json")) == []


def test_missing_hubert_folder_refused(parts, tmp_path):
    folder = model_set(parts, tmp_path / "pretrained_models", hubert=False)
    line = cli_refused("base", "add", "sovits", str(folder))
    assert "no HuBERT folder" in line and "chinese-hubert-base" in line


def test_two_s1_files_refused(parts, tmp_path):
    folder = model_set(parts, tmp_path / "pretrained_models", d=False)
    os.link(parts["root"] / S1_NAME, folder / PRETRAINED / "s1-other.ckpt")
    line = cli_refused("base", "add", "sovits", str(folder))
    assert "expected exactly one s1 .ckpt, found 2" in line and S1_NAME in line and "s1-other.ckpt" in line


# -- export --------------------------------------------------------------------------------------------

REF_TEXT = "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore."


@pytest.fixture(scope="module")
def voices(tmp_path_factory, speaker_clips, parts) -> dict:
    """A library with the imported v2 model set and a zero-shot voice on it, and the same on the tiny preset."""
    home = tmp_path_factory.mktemp("sovits-export") / "home"
    clips = speaker_clips("A", 2)
    audio = [sf.read(wav, dtype="float32") for wav, _ in clips]
    rate = audio[0][1]
    ref = home.parent / "ref.wav"
    sf.write(ref, np.concatenate([a for a, _ in audio]), rate)  # two espeak sentences: about 5.7 s
    assert " ".join(text for _, text in clips) == REF_TEXT
    previous = os.environ.get("TTS_HOST_HOME")
    os.environ["TTS_HOST_HOME"] = str(home)
    try:
        cli_ok("base", "add", "sovits", str(model_set(parts, home.parent / "pretrained_models", d=False)), "--name", "gsv")
        cli_ok("base", "init", "sovits", "--preset", "tiny")
        for name, base in (("Ada", "gsv"), ("Tiny", "sovits-tiny")):
            cli_ok("voices", "add", name, "--backend", "sovits", "--base", base, "--ref", str(ref),
                "--ref-text", REF_TEXT)
    finally:
        if previous is None:
            os.environ.pop("TTS_HOST_HOME", None)
        else:
            os.environ["TTS_HOST_HOME"] = previous
    return {"home": home, "ref_seconds": sf.info(ref).duration}


def test_export_writes_gpt_sovits_v2_files(voices, parts, tmp_path, monkeypatch):
    from tts_host.plugins.sovits.gsv_files import V1_SIZE_THRESHOLD, read_s1, read_s2

    monkeypatch.setenv("TTS_HOST_HOME", str(voices["home"]))
    out = tmp_path / "out"
    assert "exported voice 'Ada'" in cli_ok("voices", "export", "Ada", "--format", "gpt-sovits", "-o", str(out))
    pth, ckpt = out / "Ada.pth", out / "Ada.ckpt"
    assert pth.is_file() and ckpt.is_file()

    s2 = read_s2(pth)
    assert s2.version == "v2" and s2.header == b"PK" and not s2.lora
    assert shapes(s2.weights) == {n: s for n, s in manifest_shapes("s2").items() if not n.startswith("enc_q.")}
    s1 = read_s1(ckpt)
    assert shapes(s1.weights) == manifest_shapes("s1")
    assert s1.config["data"]["max_sec"] == 54 and s1.config["model"]["n_layer"] == 24

    raw_s2 = torch.load(pth, map_location="cpu", weights_only=True)  # plain containers: no pickled classes
    assert {t.dtype for t in raw_s2["weight"].values()} == {torch.float16}
    assert raw_s2["config"]["model"]["version"] == "v2"
    raw_s1 = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert {t.dtype for t in raw_s1["weight"].values()} == {torch.float16}
    assert set(raw_s1["weight"]) == {"model." + n for n in manifest_shapes("s1")}
    assert pth.read_bytes()[:2] == b"PK" and pth.stat().st_size > V1_SIZE_THRESHOLD  # upstream's size rule: v2

    # GPT-SoVITS's fp16 weights come back out bit for bit (the voice is zero-shot: the base's weights)
    for name, tensor in raw_s2["weight"].items():
        assert torch.equal(tensor, parts["s2"]["plain"][name].half()), name
    for name, tensor in raw_s1["weight"].items():
        assert torch.equal(tensor, parts["s1"][name[len("model."):]].half()), name

    info = sf.info(out / "ref.wav")
    assert info.samplerate == 32000 and info.duration == pytest.approx(voices["ref_seconds"], abs=0.01)
    assert (out / "ref.txt").read_text(encoding="utf-8") == REF_TEXT + "\n"


def test_export_of_a_tiny_voice_refused(voices, tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_HOST_HOME", str(voices["home"]))
    out = tmp_path / "out"
    line = cli_refused("voices", "export", "Tiny", "--format", "gpt-sovits", "-o", str(out))
    assert "'Tiny'" in line and "not v2-sized" in line and "v2 base" in line
    assert not out.exists()
