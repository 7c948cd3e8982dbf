"""GPT-SoVITS v2's own model files, read and written (import published models, export fine-tuned voices).

The formats (upstream ``process_ckpt.py``, ``s1_train.py``, ``inference_webui.py``, ``TTS.py``):

- s1 (GPT) ``.ckpt``: ``torch.save({"weight": fp16 state dict with "model."-prefixed names, "config": dict,
  "info": str})``; upstream loads it strictly.
- s2 (SoVITS) ``.pth``: ``torch.save({"weight": fp16 state dict, "config": ..., "info": str})``; user saves
  drop ``enc_q.*``, and GPT-SoVITS's own saves pickle its ``utils.HParams`` class as the config. Upstream
  loads with ``strict=False``, so :func:`check_state_dict` checks names and shapes here.
- Headers: plain files start with the zip's ``PK``; LoRA, v3/v4 and v2Pro(Plus) files replace those two
  bytes with a version tag (:data:`VERSION_TAGS`). Untagged files are v1 or v2 by size upstream.
- s2 discriminator ``s2D*.pth``: ``{"weight": state dict}``.

Reading never runs code from the file: ``weights_only=True`` first, then a restricted unpickler
(:mod:`.gsv_pickle`) for the HParams configs. This module gathers the public names of :mod:`.gsv_read`
and :mod:`.gsv_write`.
"""

from __future__ import annotations

from .gsv_pickle import VERSION_TAGS, ZIP_HEADER, HParamsRecord, RestrictedPickle, load_torch_file, to_plain
from .gsv_read import (
    GsvS1File,
    GsvS2File,
    check_state_dict,
    check_v2,
    read_s1,
    read_s2,
    read_s2_discriminator,
    version_of_weights,
)
from .gsv_write import V1_SIZE_THRESHOLD, write_s1, write_s2

__all__ = [
    "GsvS1File",
    "GsvS2File",
    "HParamsRecord",
    "RestrictedPickle",
    "V1_SIZE_THRESHOLD",
    "VERSION_TAGS",
    "ZIP_HEADER",
    "check_state_dict",
    "check_v2",
    "load_torch_file",
    "read_s1",
    "read_s2",
    "read_s2_discriminator",
    "to_plain",
    "version_of_weights",
    "write_s1",
    "write_s2",
]
