"""Export to coqui's published layout: the six files coqui-tts's ``Xtts.load_checkpoint`` and AllTalk load."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Mapping

import numpy as np

from tts_host.folders import new_folder
from tts_host.plugins.xtts.speakers_file import FILE as SPEAKERS_FILE
from tts_host.plugins.xtts.speakers_file import read_speakers
from tts_host.plugins.xtts.files import FILES
from tts_host.plugins.xtts.lora import folder_adapter

COPIED = (FILES["config"], FILES["dvae"], FILES["mel_stats"], FILES["vocab"])


def export_coqui(model_folder: Path, extra_speakers: Mapping[str, Mapping[str, np.ndarray]], out: Path) -> Path:
    """Write config.json, model.pth (fine-tuned GPT or LoRA adapter merged in), dvae.pth, mel_stats.pth, vocab.json, speakers_xtts.pth.

    dvae.pth, mel_stats.pth and vocab.json are byte copies of the base's files; speakers_xtts.pth
    holds every speaker of the checkpoint plus ``extra_speakers``.
    """
    import torch
    from safetensors.torch import load_file

    from tts_host.plugins.xtts.model import load_tensor_file, normalise_model_state

    out = Path(out)
    with new_folder(out, "export folder") as staging:
        for name in COPIED:
            shutil.copyfile(model_folder / name, staging / name)
        checkpoint = load_tensor_file(model_folder / FILES["model"])
        state = normalise_model_state(checkpoint.get("model", checkpoint))
        gpt_file = model_folder / FILES["gpt"]
        if gpt_file.is_file():
            state.update({f"gpt.{k}": v for k, v in load_file(str(gpt_file)).items()})
        if folder_adapter(model_folder) is not None:
            state.update({f"gpt.{k}": v for k, v in merged_gpt_state(model_folder).items()})
        torch.save({"model": state}, staging / FILES["model"])
        speakers = {**read_speakers(model_folder / SPEAKERS_FILE), **extra_speakers}
        torch.save(
            {name: {"gpt_cond_latent": torch.from_numpy(np.asarray(entry["gpt_cond_latent"], dtype=np.float32)),
                    "speaker_embedding": torch.from_numpy(np.asarray(entry["speaker_embedding"], dtype=np.float32))}
             for name, entry in speakers.items()},
            staging / FILES["speakers_xtts"],
        )
    return out


def merged_gpt_state(model_folder: Path) -> dict:
    """The GPT weights of a LoRA voice's model folder with its adapter merged in (plain coqui GPT keys)."""
    from tts_host import lora
    from tts_host.plugins.xtts.model import load_gpt, read_config

    gpt = load_gpt(model_folder, read_config(model_folder))
    lora.load_adapter(gpt, folder_adapter(model_folder), "voice")
    return lora.merged_copy(gpt).state_dict()
