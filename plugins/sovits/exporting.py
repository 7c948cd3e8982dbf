"""``voices export --format gpt-sovits``: a voice as GPT-SoVITS v2's own files.

Written into the folder OUT: ``NAME.ckpt`` (s1, fp16, ``model.``-prefixed), ``NAME.pth`` (s2 without
``enc_q``, fp16, a plain-dict config, sized so upstream's size rule reads it as v2), ``ref.wav`` with
``ref.txt`` (the voice's 3-10 s reference and transcript) and ``voice.json`` (the reference's language
and the files' roles), so GPT-SoVITS's webui and api load the voice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.folders import new_folder
from tts_host.oserrors import disk_full_errors
from tts_host.plugins.sovits import SAMPLE_RATE
from tts_host.plugins.sovits.files import FILES

# s1longer-v2.yaml's train section (upstream's s1 files carry it; gsv_write.write_s1 requires the section).
S1_TRAIN = {"seed": 1234, "epochs": 20, "batch_size": 8, "save_every_n_epoch": 1, "precision": "16-mixed",
            "gradient_clip": 1.0}


def export_voice(name: str, model_folder: Path, conditioning: Mapping[str, np.ndarray], out: Path) -> Path:
    """Write the GPT-SoVITS files of voice ``name`` (its model folder and reference) into ``out``."""
    import soundfile

    from tts_host.plugins.sovits.gsv_files import write_s1, write_s2
    from tts_host.plugins.sovits.modelset import load_weights, read_json
    from tts_host.plugins.sovits.reference import reference_of

    audio, _codes, text, language = reference_of(conditioning)
    s2_config, s1_config = read_json(model_folder, "s2_config"), read_json(model_folder, "s1_config")
    weights = {role: load_weights(model_folder, role) for role in ("s2_semantic", "s2_generator", "s1_weights")}
    _check_v2_shapes(name, weights)
    s2_weights = {**weights["s2_semantic"], **weights["s2_generator"]}
    info = f"tts-host voice {name}"
    with disk_full_errors(out), new_folder(Path(out)) as staging:
        write_s2(staging / f"{name}.pth", s2_weights, _s2_upstream_config(s2_config), info)
        write_s1(staging / f"{name}.ckpt", weights["s1_weights"],
                 _s1_upstream_config(s1_config), info)
        soundfile.write(str(staging / "ref.wav"), audio, SAMPLE_RATE, subtype="PCM_16")
        (staging / "ref.txt").write_text(text + "\n", encoding="utf-8")
        (staging / "voice.json").write_text(json.dumps({
            "voice": name, "gpt_weights": f"{name}.ckpt", "sovits_weights": f"{name}.pth", "ref_audio": "ref.wav",
            "ref_text": text, "ref_language": language, "sources": {k: FILES[k] for k in ("s1_weights", "s2_generator")},
        }, indent=2) + "\n", encoding="utf-8")
    return Path(out)


def _check_v2_shapes(name: str, weights: Mapping[str, Mapping]) -> None:
    """Refuse, in one line, a voice whose model is not GPT-SoVITS v2-sized (a tiny-preset voice, say)."""
    from tts_host.plugins.sovits.config import S1Config, S2Config
    from tts_host.plugins.sovits.modelset import expected_shapes

    for role, v2 in expected_shapes(S2Config.from_json({}), S1Config.from_json({})).items():
        found = {key: tuple(tensor.shape) for key, tensor in weights[role].items()}
        differs = next((key for key in sorted(set(v2) | set(found)) if found.get(key) != v2.get(key)), None)
        if differs is not None:
            raise TTSHostError(f"voice '{name}' cannot be exported as GPT-SoVITS v2: its model is not v2-sized "
                               f"({FILES[role]}: {differs} is {found.get(differs, 'absent')}, v2's is "
                               f"{v2.get(differs, 'absent')}); only voices on a v2 base export")


def _s2_upstream_config(config: dict) -> dict:
    """s2.json as GPT-SoVITS reads it (``model.version`` v2, ``train.segment_size`` in samples)."""
    model = {k: v for k, v in config.get("model", {}).items() if k not in ("ssl_dim", "codebook_size", "ref_hidden",
                                                                          "ref_bins")}
    train = {"segment_size": 20480, **config.get("train", {})}
    return {"data": dict(config.get("data", {})), "model": {**model, "version": "v2"}, "train": train}


def _s1_upstream_config(config: dict) -> dict:
    """The s1 YAML as GPT-SoVITS reads it."""
    model = {k: v for k, v in config.get("model", {}).items() if k != "bert_dim"}
    train = {**S1_TRAIN, **config.get("train", {})}  # s1_train.py saves its whole config, train section included
    return {"train": train, "data": {"max_sec": 54, **config.get("data", {})}, "model": model,
            "inference": {"top_k": int(config.get("inference", {}).get("top_k", 15))}}
