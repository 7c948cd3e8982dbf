"""A Llasa voice fine-tune from start to files: rows, model (full or LoRA), held-out losses, saving.

Sequential multi-voice semantics: the new speaker's rows are tagged with its name; earlier
speakers' rows (replayed in part) keep their own tags, and every earlier speaker's held-out
loss is measured before and after, so forgetting is a number, not a guess.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from tts_host.errors import TTSHostError
from tts_host.plugins.llasa.base import CODEC_DIR, MODEL_DIR, quiet_transformers, validate_base
from tts_host.plugins.llasa.data import Row, Skipped, dataset_rows
from tts_host.plugins.llasa.train import FinetuneResult, FinetuneSettings, distributed_context, evaluate, finetune
from tts_host.training.batching import mix_replay
from tts_host.oserrors import disk_full_errors

if TYPE_CHECKING:
    from tts_host.data import Clip, FeatureCache

ADAPTER_DIR = "adapter"
OUTPUT_DIR = "output"


@dataclass
class SpeakerData:
    """One speaker's prepared clips: training and held-out."""

    train: Sequence["Clip"]
    heldout: Sequence["Clip"] = ()


@dataclass
class VoiceFinetune:
    """The outcome of :func:`finetune_voice`."""

    result: FinetuneResult
    files: dict[str, Path]
    skipped: list[Skipped]
    heldout_before: dict[str, float] = field(default_factory=dict)
    heldout_after: dict[str, float] = field(default_factory=dict)
    replayed: int = 0

    def metrics(self) -> dict[str, Any]:
        """JSON-able metrics for the library's checkpoint record."""
        return {
            "losses": self.result.losses,
            "first_loss": self.result.losses[0] if self.result.losses else None,
            "final_loss": self.result.losses[-1] if self.result.losses else None,
            "steps": self.result.steps,
            "tokens_per_second": round(self.result.tokens_per_second, 2),
            "heldout_before": self.heldout_before,
            "heldout_after": self.heldout_after,
            "skipped": [{"clip": s.clip_id, "reason": s.reason} for s in self.skipped],
            "replayed_rows": self.replayed,
        }


def load_trainable(start_dir: Path, settings: FinetuneSettings) -> Any:
    """The start's LM ready to train: full, a fresh LoRA, or the start's own LoRA adapter continued."""
    from tts_host.plugins.llasa.lora import load_lm, lora_config

    adapter = start_dir / ADAPTER_DIR
    has_adapter = (adapter / "adapter_config.json").is_file()
    if settings.lora_rank is None:
        if has_adapter:
            raise TTSHostError(f"{start_dir} is a LoRA checkpoint: continue it with --lora, or fine-tune its "
                               f"base (or a full checkpoint) for a full fine-tune")
        return load_lm(start_dir / MODEL_DIR)
    if has_adapter:
        import json

        rank = json.loads((adapter / "adapter_config.json").read_text())["r"]
        if rank != settings.lora_rank:
            raise TTSHostError(f"the starting checkpoint's LoRA adapter has rank {rank}; continue it with "
                               f"--lora {rank} (got --lora {settings.lora_rank})")
        return load_lm(start_dir / MODEL_DIR, adapter, trainable=True)
    from peft import get_peft_model

    return get_peft_model(load_lm(start_dir / MODEL_DIR), lora_config(settings.lora_rank, settings.lora_alpha))


def save_trained(model: Any, tokenizer: Any, out_dir: Path, lora: bool) -> dict[str, Path]:
    """Write the trained weights (LM safetensors, or the LoRA adapter alone); returns role -> file.

    A full disk is a one-line error naming ``out_dir``, which is then removed.
    """
    if out_dir.exists():
        shutil.rmtree(out_dir)
    try:
        with disk_full_errors(out_dir):
            if lora:
                # Only the LoRA matrices: the base's (frozen) embedding and output layers stay the base's blobs.
                model.save_pretrained(out_dir / ADAPTER_DIR, save_embedding_layers=False)
                return {"adapter_config": out_dir / ADAPTER_DIR / "adapter_config.json",
                        "adapter_weights": out_dir / ADAPTER_DIR / "adapter_model.safetensors"}
            model.save_pretrained(out_dir / MODEL_DIR)
            return {"lm_weights": out_dir / MODEL_DIR / "model.safetensors"}
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise


def finetune_voice(
    start_dir: Path,
    work_dir: Path,
    speaker: str,
    data: SpeakerData,
    settings: FinetuneSettings,
    *,
    earlier: Mapping[str, SpeakerData] | None = None,
    replay: float = 0.0,
    tag_speakers: bool = True,
    cache: "FeatureCache | None" = None,
    on_step: Callable[[int, int, float], None] | None = None,
    progress: bool = False,
    log_dir: Path | None = None,
) -> VoiceFinetune:
    """Fine-tune the model in ``start_dir`` (a materialised base or checkpoint) for ``speaker``.

    Files are written under ``work_dir/output`` by rank 0; ``work_dir/state`` makes a rerun resume.
    """
    from transformers import AutoTokenizer

    quiet_transformers()
    start_dir, work_dir = Path(start_dir), Path(work_dir)
    info = validate_base(start_dir, weights=False)
    tokenizer = AutoTokenizer.from_pretrained(start_dir / MODEL_DIR)
    codec_dir = start_dir / CODEC_DIR
    context = distributed_context()

    def rows_of(clips: Sequence["Clip"], name: str) -> tuple[list[Row], list[Skipped]]:
        return dataset_rows(tokenizer, info.layout, clips, codec_dir, max_length=settings.max_length,
                            speaker=name if tag_speakers else None, cache=cache)

    rows, skipped = rows_of(data.train, speaker)
    if not rows:
        reasons = "; ".join(f"{s.clip_id}: {s.reason}" for s in skipped[:2])
        raise TTSHostError(f"no usable training clips for speaker '{speaker}'" + (f" ({reasons})" if reasons else ""))
    heldout = {speaker: rows_of(data.heldout, speaker)[0]}
    earlier_train: dict[str, list[Row]] = {}
    for name, other in (earlier or {}).items():
        earlier_train[name] = rows_of(other.train, name)[0]
        heldout[name] = rows_of(other.heldout, name)[0]
    pool = [row for name in sorted(earlier_train) for row in earlier_train[name]]
    if not 0.0 <= replay < 1.0:
        raise TTSHostError(f"--replay is the share of earlier speakers' rows in training, in [0, 1); got {replay}")
    mixed = mix_replay(rows, pool, replay, random.Random(settings.seed))

    model = load_trainable(start_dir, settings)
    pad = tokenizer.pad_token_id
    before = {name: evaluate(model, hrows, pad) for name, hrows in heldout.items() if hrows}
    result = finetune(model, mixed, work_dir, settings, pad_id=pad, context=context, on_step=on_step,
                      progress=progress, log_dir=log_dir)
    after = {name: evaluate(model, hrows, pad) for name, hrows in heldout.items() if hrows}
    files: dict[str, Path] = {}
    if context.main:
        files = save_trained(model, tokenizer, work_dir / OUTPUT_DIR, settings.lora_rank is not None)
    if context.world > 1:
        import torch.distributed as dist

        dist.barrier()
    result.files = files
    return VoiceFinetune(result, files, skipped, before, after, len(mixed) - len(rows))
