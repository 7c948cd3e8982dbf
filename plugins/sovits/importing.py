"""``tts-host base add sovits PATH``: a GPT-SoVITS v2 model set converted into a SoVITS base folder
(or a tts-host SoVITS base folder, copied).

PATH holds (at most two folder levels down) one s1 ``.ckpt``, one s2 generator ``.pth`` (``s2G*``),
optionally its discriminator (``s2D*.pth``), a ``chinese-hubert-base`` folder (a transformers HuBERT
folder) and optionally a ``chinese-roberta-wwm-ext-large`` folder (the Chinese BERT). GPT-SoVITS's own ``pretrained_models`` folder, which also holds v1 files, works too: the
files in its ``gsv-v2final-pretrained`` folder are taken. Weights are read without running code from the files (:mod:`.gsv_files`), checked
for exact v2 names and shapes and finite values, and written as safetensors with the same names.
Anything but v2 is refused with one line naming its version.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tts_host.errors import TTSHostError
from tts_host.folders import new_folder
from tts_host.oserrors import disk_full_errors
from tts_host.plugins.sovits.config import V2_S1_MODEL, V2_S2_DATA, V2_S2_MODEL
from tts_host.plugins.sovits.files import FILES

SEMANTIC_PREFIXES = ("ssl_proj.", "quantizer.")
SAMPLING_DEFAULTS = {"top_k": 15, "top_p": 1.0, "temperature": 1.0, "repetition_penalty": 1.35, "max_length": 1500}


def _found(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for depth in ("", "*/", "*/*/") for p in folder.glob(depth + pattern) if p.is_file())


def _one(paths: list[Path], what: str, folder: Path) -> Path:
    """The one file of ``paths``; where GPT-SoVITS's ``pretrained_models`` holds several versions' files, the
    one in the v2 folder (``gsv-v2final-pretrained``)."""
    if len(paths) > 1:
        v2 = [p for p in paths if "v2" in p.relative_to(folder).parent.as_posix()]
        paths = v2 if len(v2) == 1 else paths
    if len(paths) != 1:
        listed = ", ".join(str(p.relative_to(folder)) for p in paths[:4]) or "none"
        raise TTSHostError(f"{folder}: expected exactly one {what}, found {len(paths)} ({listed}): "
                           "pass a folder holding one model set")
    return paths[0]


def _model_folder(folder: Path, model_type: str) -> Path | None:
    """The transformers folder under ``folder`` whose config.json says ``model_type``."""
    for config in _found(folder, "config.json"):
        try:
            kind = json.loads(config.read_text(encoding="utf-8")).get("model_type")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if kind == model_type:
            return config.parent
    return None


def import_model_set(folder: Path, out_dir: Path) -> Path:
    """Convert the model set in ``folder`` into a base folder ``out_dir`` (complete or not at all)."""
    from safetensors.torch import save_file
    from transformers import HubertModel, Wav2Vec2FeatureExtractor

    from tts_host.hf import quiet_transformers
    from tts_host.plugins.sovits.base import validate_base, write_json
    from tts_host.plugins.sovits.gsv_files import check_v2, read_s1, read_s2, read_s2_discriminator

    folder = Path(folder)
    if not folder.is_dir():
        raise TTSHostError(f"GPT-SoVITS folder {folder} does not exist or is not a folder")
    if (folder / FILES["s2_config"]).is_file():
        return _copy_base(folder, Path(out_dir))
    pths = _found(folder, "*.pth")
    discriminators = [p for p in pths if p.name.startswith(("s2D", "D_"))]
    s2_path = _one([p for p in pths if p not in discriminators], "s2 generator .pth (s2G*.pth)", folder)
    s1_path = _one(_found(folder, "*.ckpt"), "s1 .ckpt", folder)
    hubert_dir = _model_folder(folder, "hubert")
    if hubert_dir is None:
        raise TTSHostError(f"{folder}: no HuBERT folder (chinese-hubert-base: a config.json with model_type 'hubert')")
    bert_dir = _model_folder(folder, "bert")
    s2 = read_s2(s2_path)
    check_v2(s2, s2_path)
    s1 = read_s1(s1_path)
    quiet_transformers()
    with disk_full_errors(out_dir), new_folder(Path(out_dir)) as staging:
        hubert = HubertModel.from_pretrained(hubert_dir)
        hubert.save_pretrained(staging / "hubert")
        if (hubert_dir / "preprocessor_config.json").is_file():
            Wav2Vec2FeatureExtractor.from_pretrained(hubert_dir).save_pretrained(staging / "hubert")
        else:
            Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                     return_attention_mask=False).save_pretrained(staging / "hubert")
        generator = {k: v for k, v in s2.weights.items() if not k.startswith(SEMANTIC_PREFIXES)}
        if not any(k.startswith("enc_q.") for k in generator):
            generator.update(_fresh_posterior_encoder())
        semantic = {k: v for k, v in s2.weights.items() if k.startswith(SEMANTIC_PREFIXES)}
        s2_json = {"model": {**V2_S2_MODEL, **dict(s2.config.get("model", {}))},
                   "data": {**V2_S2_DATA, **dict(s2.config.get("data", {}))}, "train": dict(s2.config.get("train", {}))}
        if bert_dir is not None:
            from tts_host.plugins.sovits.bert import BERT_DIR, import_folder

            import_folder(bert_dir, staging / BERT_DIR)
        s1_json = {"model": {**V2_S1_MODEL, **dict(s1.config.get("model", {}))},
                   "data": dict(s1.config.get("data", {})), "inference": dict(SAMPLING_DEFAULTS)}
        write_json(staging / FILES["s2_config"], s2_json)
        write_json(staging / FILES["s1_config"], s1_json)
        for role, weights in (("s2_generator", generator), ("s2_semantic", semantic), ("s1_weights", s1.weights)):
            save_file({k: v.contiguous() for k, v in weights.items()}, str(staging / FILES[role]))
        if discriminators:
            d_path = _one(discriminators, "s2 discriminator .pth (s2D*.pth)", folder)
            save_file({k: v.contiguous() for k, v in read_s2_discriminator(d_path).items()},
                      str(staging / FILES["s2_discriminator"]))
        validate_base(staging)
    return Path(out_dir)


def _copy_base(folder: Path, out_dir: Path) -> Path:
    """A tts-host SoVITS base folder (``s2/``, ``s1/``, ``hubert/`` ...) copied file by declared file, then validated."""
    import shutil

    from tts_host.plugins.sovits.base import validate_base

    with disk_full_errors(out_dir), new_folder(out_dir) as staging:
        for path in FILES.values():
            if (folder / path).is_file():
                (staging / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(folder / path, staging / path)
        validate_base(staging)
    return out_dir


def _fresh_posterior_encoder() -> dict[str, torch.Tensor]:
    """Random ``enc_q.*`` (GPT-SoVITS names) for a user-trained s2 file, which ships without its training-only part."""
    from tts_host.plugins.sovits.config import S2Config
    from tts_host.plugins.sovits.keys import generator_to_upstream
    from tts_host.plugins.sovits.modelset import n_symbols
    from tts_host.plugins.sovits.s2_model import Synthesizer

    fresh = Synthesizer(S2Config.from_json({}), n_symbols())
    return {k: v for k, v in generator_to_upstream(fresh.state_dict()).items() if k.startswith("enc_q.")}
