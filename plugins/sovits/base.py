"""SoVITS base folders: build one offline from a preset (random weights), validate one before use.

A base holds ``hubert/`` (transformers ``HubertModel``), ``s2/`` (config, the protected semantic part,
the trainable generator, optionally the discriminator), ``s1/`` (config and weights) and optionally
``bert/`` (the Chinese BERT). See :mod:`tts_host.plugins.sovits.files`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch

from tts_host.errors import ValidationError
from tts_host.folders import new_folder
from tts_host.oserrors import disk_full_errors
from tts_host.plugins.sovits.config import V2_S1_MODEL, V2_S2_DATA, V2_S2_MODEL
from tts_host.plugins.sovits.files import FILES
from tts_host.presets import load_preset

S2_TRAIN = {"learning_rate": 0.0001, "betas": [0.8, 0.99], "eps": 1e-09, "c_mel": 45, "c_kl": 1.0,
            "text_low_lr_rate": 0.4, "segment_size": 20480}


def write_json(path: Path, value: Mapping[str, Any]) -> None:
    """``value`` as indented JSON at ``path`` (folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def init_base(preset: str, out_dir: Path, *, seed: int = 0) -> Path:
    """Build a random SoVITS base from ``preset`` into ``out_dir`` (complete or not at all); returns it."""
    from safetensors.torch import save_file
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    from tts_host.plugins.sovits.keys import generator_to_upstream, semantic_to_upstream
    from tts_host.plugins.sovits.modelset import n_symbols
    from tts_host.plugins.sovits.config import S1Config, S2Config
    from tts_host.plugins.sovits.s2_model import Synthesizer, build_reference_encoder
    from tts_host.plugins.sovits.semantic import SemanticQuantizer
    from tts_host.plugins.sovits.t2s import TextToSemantic

    from tts_host.hf import quiet_transformers

    settings = load_preset("sovits", preset)
    out_dir = Path(out_dir)
    quiet_transformers()
    with disk_full_errors(out_dir), new_folder(out_dir) as staging:
        torch.manual_seed(seed)
        s2_json = {"model": {**V2_S2_MODEL, **settings.get("s2", {})}, "data": dict(V2_S2_DATA), "train": dict(S2_TRAIN)}
        s1_json = {"model": {**V2_S1_MODEL, **settings.get("s1", {})}, "inference": dict(settings.get("generation", {}))}
        s2, s1 = S2Config.from_json(s2_json), S1Config.from_json(s1_json)
        hubert = HubertModel(HubertConfig(**settings.get("hubert", {})))
        if hubert.config.hidden_size != int(s2.model["ssl_dim"]):
            raise ValidationError(f"preset {preset}", f"HuBERT width {s2.model['ssl_dim']} (s2 ssl_dim)",
                                  hubert.config.hidden_size)
        hubert.save_pretrained(staging / "hubert")
        Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                 return_attention_mask=False).save_pretrained(staging / "hubert")
        semantic = SemanticQuantizer(int(s2.model["ssl_dim"]), int(s2.model["codebook_size"]))
        _spread_codebook(semantic)
        synthesizer = Synthesizer(s2, n_symbols())
        reference = build_reference_encoder(s2)
        generator = {**synthesizer.state_dict(), **{f"ref_enc.{k}": v for k, v in reference.state_dict().items()}}
        write_json(staging / FILES["s2_config"], s2_json)
        write_json(staging / FILES["s1_config"], s1_json)
        save_file(_contiguous(semantic_to_upstream(semantic.state_dict())), str(staging / FILES["s2_semantic"]))
        save_file(_contiguous(generator_to_upstream(generator)), str(staging / FILES["s2_generator"]))
        save_file(_contiguous(TextToSemantic(s1).state_dict()), str(staging / FILES["s1_weights"]))
        if "bert" in settings:
            from tts_host.plugins.sovits.bert import BERT_DIR, build_random

            build_random(staging / BERT_DIR, dict(settings["bert"]), seed)
        validate_base(staging)
    return out_dir


def _spread_codebook(semantic: torch.nn.Module) -> None:
    """A usable random codebook, marked initialised (no k-means on first use): each entry is ``ssl_proj`` of
    unit-normal features, so entries lie where projected HuBERT features (layer-normed) lie and all are used."""
    codebook = semantic.quantizer.layers[0]._codebook
    size, dim = codebook.embed.shape[-2:]
    with torch.no_grad():
        entries = semantic.ssl_proj(torch.randn(size, dim, 2))[..., 0]
        codebook.embed.copy_(entries.unsqueeze(0))
        codebook.embed_avg.copy_(codebook.embed)
        codebook.cluster_size.fill_(1.0)
        codebook.initted.fill_(True)


def _contiguous(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous() for k, v in weights.items()}


def validate_base(folder: Path, *, values: bool = True) -> None:
    """Every weight file holds exactly the tensors its config's architecture has, all finite."""
    from tts_host.plugins.sovits.modelset import (
        check_weights,
        discriminator_shapes,
        expected_shapes,
        read_json,
        s1_config,
        s2_config,
    )

    folder = Path(folder)
    s2, s1 = s2_config(folder), s1_config(folder)
    hubert = read_json(folder, "hubert_config")
    if int(hubert.get("hidden_size", 0)) != int(s2.model["ssl_dim"]):
        raise ValidationError(FILES["hubert_config"], f"hidden_size {s2.model['ssl_dim']} (s2's ssl_dim)",
                              f"hidden_size {hubert.get('hidden_size')}")
    if int(s1.model["vocab_size"]) != int(s2.model["codebook_size"]) + 1:
        raise ValidationError(FILES["s1_config"], f"vocab_size {int(s2.model['codebook_size']) + 1} "
                              "(the s2 codebook plus EOS)", f"vocab_size {s1.model['vocab_size']}")
    for role, shapes in expected_shapes(s2, s1).items():
        path = folder / FILES[role]
        if path.is_file():
            check_weights(path, FILES[role], shapes, values=values)
    if (folder / FILES["bert_config"]).is_file():
        bert = read_json(folder, "bert_config")
        if int(bert.get("hidden_size", 0)) != int(s1.model.get("bert_dim", 1024)):
            raise ValidationError(FILES["bert_config"], f"hidden_size {s1.model.get('bert_dim', 1024)} (s1's bert_dim)",
                                  f"hidden_size {bert.get('hidden_size')}")
    discriminator = folder / FILES["s2_discriminator"]
    if discriminator.is_file():
        check_weights(discriminator, FILES["s2_discriminator"], discriminator_shapes(), values=values)


ARCHITECTURE_KEYS = ("inter_channels", "hidden_channels", "filter_channels", "n_heads", "n_layers",
                     "upsample_initial_channel", "gin_channels", "ssl_dim", "codebook_size")


def architecture(folder: Path) -> dict[str, Any]:
    """The shape-determining config values of a model folder (recorded with a base)."""
    from tts_host.plugins.sovits.modelset import read_json, s1_config, s2_config

    s2, s1 = s2_config(folder), s1_config(folder)
    hubert = read_json(folder, "hubert_config")
    return {
        "s2": {key: s2.model[key] for key in ARCHITECTURE_KEYS},
        "s1": {key: s1.model[key] for key in ("hidden_dim", "head", "n_layer", "vocab_size", "phoneme_vocab_size")},
        "hubert": {key: hubert.get(key) for key in ("hidden_size", "num_hidden_layers")},
        "sample_rate": s2.sample_rate,
    }
