"""``init_base``: an XTTS v2 folder built offline with random weights, laid out as a published one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tts_host.folders import new_folder
from tts_host.plugins.xtts.dvae_config import DVAE_KEY
from tts_host.presets import load_preset
from tts_host.plugins.xtts.vocab import build_vocab
from tts_host.oserrors import disk_full_errors
from tts_host.plugins.xtts.files import FILES


def base_config(preset: dict[str, Any], vocab_path: Path) -> dict[str, Any]:
    """config.json contents: coqui's XttsConfig defaults with the preset's architecture and vocabulary."""
    from tts_host.plugins.xtts.model import xtts_config

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(vocab_path))
    config = xtts_config({}).to_dict()
    args = config["model_args"]
    args.update(preset["model_args"])
    args["gpt_number_text_tokens"] = max(tokenizer.get_vocab().values()) + 1
    args["gpt_start_text_token"] = tokenizer.token_to_id("[START]")
    args["gpt_stop_text_token"] = tokenizer.token_to_id("[STOP]")
    args["tokenizer_file"] = FILES["vocab"]
    for key in ("gpt_checkpoint", "clvp_checkpoint", "decoder_checkpoint"):
        args[key] = None
    config[DVAE_KEY] = dict(preset["dvae"])
    return config


def init_base(preset_name: str, out_dir: Path, *, seed: int = 0) -> Path:
    """Write config.json, model.pth, dvae.pth, mel_stats.pth, vocab.json and an empty speakers_xtts.pth.

    Weights are random (seeded): such a base speaks noise until it is fine-tuned. The folder
    appears complete or not at all; a full disk is a one-line error naming the file.
    """
    import torch

    from tts_host.plugins.xtts.model import build_dvae, build_xtts, keep_torch_threads

    preset = load_preset("xtts", preset_name)
    out_dir = Path(out_dir)
    with new_folder(out_dir) as staging:
        torch.manual_seed(seed)
        with keep_torch_threads(), disk_full_errors(out_dir / FILES["vocab"]):
            languages = _languages()
            build_vocab(languages, staging / FILES["vocab"], size=preset.get("text_tokens"))
            config = base_config(preset, staging / FILES["vocab"])
            config["languages"] = languages
            model = build_xtts(config, staging / FILES["vocab"])
            dvae = build_dvae(config)
        mel_stats = torch.ones(80)
        model.mel_stats = mel_stats.clone()
        for name, obj in ((FILES["model"], {"model": model.state_dict()}), (FILES["dvae"], dvae.state_dict()),
                          (FILES["mel_stats"], mel_stats), (FILES["speakers_xtts"], {})):
            with disk_full_errors(out_dir / name), open(staging / name, "wb") as handle:
                torch.save(obj, handle)
                handle.flush()
                os.fsync(handle.fileno())
        with disk_full_errors(out_dir / FILES["config"]), open(staging / FILES["config"], "w", encoding="utf-8") as handle:
            handle.write(json.dumps(config, indent=2, sort_keys=True))
            handle.flush()
            os.fsync(handle.fileno())
    return out_dir


def _languages() -> list[str]:
    from tts_host.plugins.xtts.model import xtts_config

    return list(xtts_config({}).languages)
