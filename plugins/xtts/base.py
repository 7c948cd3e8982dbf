"""``init_base``: an XTTS v2 folder built offline with random weights, laid out as a published one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tts_host.errors import TTSHostError
from tts_host.plugins.xtts.presets import DVAE_KEY, load_preset
from tts_host.plugins.xtts.vocab import build_vocab

BASE_FILES = ("config.json", "model.pth", "dvae.pth", "mel_stats.pth", "vocab.json", "speakers_xtts.pth")


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
    args["tokenizer_file"] = "vocab.json"
    for key in ("gpt_checkpoint", "clvp_checkpoint", "decoder_checkpoint"):
        args[key] = None
    config[DVAE_KEY] = dict(preset["dvae"])
    return config


def init_base(preset_name: str, out_dir: Path, *, seed: int = 0) -> Path:
    """Write config.json, model.pth, dvae.pth, mel_stats.pth, vocab.json and an empty speakers_xtts.pth.

    Weights are random (seeded): such a base speaks noise until it is fine-tuned.
    """
    import torch

    from tts_host.plugins.xtts.model import build_dvae, build_xtts, keep_torch_threads

    preset = load_preset(preset_name)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise TTSHostError(f"{out_dir}: the output folder is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    with keep_torch_threads():
        languages = _languages()
        build_vocab(languages, out_dir / "vocab.json", size=preset.get("text_tokens"))
        config = base_config(preset, out_dir / "vocab.json")
        config["languages"] = languages
        model = build_xtts(config, out_dir / "vocab.json")
        dvae = build_dvae(config)
    mel_stats = torch.ones(80)
    model.mel_stats = mel_stats.clone()
    _atomic_torch_save({"model": model.state_dict()}, out_dir / "model.pth")
    _atomic_torch_save(dvae.state_dict(), out_dir / "dvae.pth")
    _atomic_torch_save(mel_stats, out_dir / "mel_stats.pth")
    _atomic_torch_save({}, out_dir / "speakers_xtts.pth")
    _atomic_write_text(out_dir / "config.json", json.dumps(config, indent=2, sort_keys=True))
    return out_dir


def _languages() -> list[str]:
    from tts_host.plugins.xtts.model import xtts_config

    return list(xtts_config({}).languages)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
