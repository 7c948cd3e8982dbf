"""XTTS bases: offline init in the published layout, coqui loads them, validation catches what coqui misses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tts_host.errors import TTSHostError, ValidationError
from tts_host.plugins.xtts.files import FILE_ROLES
from xtts_fixtures import copy_base, tiny_base_dir  # noqa: F401  (fixture)


def _validate(folder):
    from tts_host.plugins.xtts.model import read_config
    from tts_host.plugins.xtts.validate import architecture_of, validate_folder

    validate_folder(folder, architecture_of(read_config(folder)))


def test_init_base_writes_the_published_layout_that_coqui_loads(tiny_base_dir):
    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    published = [r.path for r in FILE_ROLES if r.required or r.role == "speakers_xtts"]  # a published folder
    assert sorted(p.name for p in tiny_base_dir.iterdir()) == sorted(published)
    config = json.loads((tiny_base_dir / "config.json").read_text())
    assert config["model_args"]["gpt_layers"] == 2 and config["model_args"]["gpt_n_model_channels"] == 64
    assert not any(str(v).startswith("http") for v in config["model_args"].values())
    coqui_config = XttsConfig()
    coqui_config.load_json(str(tiny_base_dir / "config.json"))
    model = Xtts(coqui_config)
    model.load_checkpoint(coqui_config, checkpoint_dir=str(tiny_base_dir), eval=True, strict=True)
    assert model.gpt.model_dim == 64
    assert torch.equal(torch.load(tiny_base_dir / "mel_stats.pth", weights_only=True), torch.ones(80))
    _validate(tiny_base_dir)


def test_init_base_is_seeded(tiny_base_dir, tmp_path):
    import torch

    from tts_host.plugins.xtts.base import init_base

    again = init_base("tiny", tmp_path / "again", seed=0)
    first = torch.load(tiny_base_dir / "dvae.pth", weights_only=True)
    second = torch.load(again / "dvae.pth", weights_only=True)
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_unknown_preset_is_one_clear_line(tmp_path):
    from tts_host.plugins.xtts.base import init_base

    with pytest.raises(TTSHostError, match="unknown xtts preset 'huge' \\(presets: small, tiny, v2\\)"):
        init_base("huge", tmp_path / "x")


def test_v2_preset_has_the_published_dimensions(tmp_path):
    from tts_host.plugins.xtts.base import base_config
    from tts_host.presets import load_preset
    from tts_host.plugins.xtts.validate import expected_state_shapes
    from tts_host.plugins.xtts.vocab import build_vocab

    build_vocab(["en"], tmp_path / "vocab.json", size=load_preset("xtts", "v2")["text_tokens"])
    config = base_config(load_preset("xtts", "v2"), tmp_path / "vocab.json")
    args = config["model_args"]
    assert (args["gpt_layers"], args["gpt_n_model_channels"], args["gpt_n_heads"]) == (30, 1024, 16)
    assert args["gpt_number_text_tokens"] == 6681 and args["gpt_num_audio_tokens"] == 1026
    model_shapes, dvae_shapes = expected_state_shapes(config, tmp_path / "vocab.json")
    assert model_shapes["gpt.text_embedding.weight"] == (6681, 1024)
    assert model_shapes["gpt.mel_head.weight"] == (1026, 1024)
    gpt_params = sum(int(np.prod(s)) for k, s in model_shapes.items() if k.startswith("gpt."))
    assert 400e6 < gpt_params < 480e6
    assert dvae_shapes["codebook.embed"] == (512, 1024)


def test_alltalk_prefixed_dvae_is_refused_naming_the_file(tiny_base_dir, tmp_path):
    import torch

    folder = copy_base(tiny_base_dir, tmp_path / "base")
    state = torch.load(folder / "dvae.pth", weights_only=True)
    torch.save({f"dvae.{k}": v for k, v in state.items()}, folder / "dvae.pth")
    with pytest.raises(ValidationError, match=r"^dvae\.pth: expected plain DiscreteVAE keys.*prefixed 'dvae\.'"):
        _validate(folder)


def test_wrong_shapes_missing_keys_and_nan_are_named(tiny_base_dir, tmp_path):
    import torch

    folder = copy_base(tiny_base_dir, tmp_path / "base")
    state = torch.load(folder / "dvae.pth", weights_only=True)
    state["codebook.embed"] = torch.zeros(64, 65)
    torch.save(state, folder / "dvae.pth")
    with pytest.raises(ValidationError, match=r"dvae\.pth: expected codebook\.embed of shape \[64, 64\], actual shape \[64, 65\]"):
        _validate(folder)

    folder = copy_base(tiny_base_dir, tmp_path / "base2")
    checkpoint = torch.load(folder / "model.pth", weights_only=True)
    del checkpoint["model"]["gpt.final_norm.weight"]
    torch.save(checkpoint, folder / "model.pth")
    with pytest.raises(ValidationError, match=r"model\.pth: .*1 missing, 0 unexpected.*gpt\.final_norm\.weight"):
        _validate(folder)

    folder = copy_base(tiny_base_dir, tmp_path / "base3")
    torch.save(torch.full((80,), float("nan")), folder / "mel_stats.pth")
    with pytest.raises(ValidationError, match=r"mel_stats\.pth: expected finite positive"):
        _validate(folder)


class Payload:
    """An arbitrary pickled object: weights_only loading must refuse to build it."""


def test_pickled_objects_are_refused_by_weights_only_loading(tiny_base_dir, tmp_path):
    import torch

    folder = copy_base(tiny_base_dir, tmp_path / "base")
    torch.save({"x": Payload()}, folder / "dvae.pth")
    with pytest.raises(ValidationError, match=r"dvae\.pth: expected a torch tensor file readable with weights_only"):
        _validate(folder)


def test_config_must_match_the_recorded_architecture(tiny_base_dir, tmp_path):
    from tts_host.plugins.xtts.model import read_config
    from tts_host.plugins.xtts.validate import architecture_of, validate_folder

    recorded = architecture_of(read_config(tiny_base_dir))
    folder = copy_base(tiny_base_dir, tmp_path / "base")
    config = read_config(folder)
    config["model_args"]["gpt_layers"] = 3
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValidationError, match=r"config\.json: expected model_args\.gpt_layers = 2 .*actual 3"):
        validate_folder(folder, recorded)
