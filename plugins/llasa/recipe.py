"""The Llasa part of a fine-tune: train the LM of the job's components on the job's clips.

The workflow in core (:mod:`tts_host.training.workflow`) does everything else. Sequential
multi-voice semantics: the new speaker's rows are tagged with its name; earlier speakers' rows
(replayed in part) keep their own tags. Rows take their codes from the codec component through
the feature cache (the codec loads only for clips not cached yet, and is released before
training); the acoustic model gives the trainable LM (full, a fresh LoRA, or the start's LoRA
continued).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Sequence

from tts_host.errors import TTSHostError
from tts_host.oserrors import disk_full_errors
from tts_host.plugins.llasa import ADAPTER_DIR, MODEL_DIR
from tts_host.plugins.llasa.components import LlamaChatTextEncoder, LlasaLanguageModel
from tts_host.plugins.llasa.data import Row, Skipped, dataset_rows
from tts_host.plugins.llasa.train import evaluate, finetune
from tts_host.training.batching import mix_replay
from tts_host.training.clips import ClipRef
from tts_host.training.job import TrainedModel, TrainingJob
from tts_host.training.report import TrainingLog


class LlasaTrainingRun:
    """One Llasa fine-tune of a :class:`~tts_host.training.job.TrainingJob` (full or LoRA)."""

    def __init__(self, job: TrainingJob) -> None:
        from tts_host.data import FeatureCache

        self.job = job
        self.settings = job.settings
        components = job.components
        self.text = components.get("text_encoder", LlamaChatTextEncoder)
        self.cache = FeatureCache()
        self.rows: dict[str, Row] = {}
        self.skipped: list[Skipped] = []
        self.new_rows = self._rows(job.new.train)
        if not self.new_rows:
            reasons = "; ".join(f"{s.clip_id}: {s.reason}" for s in self.skipped[:2])
            raise TTSHostError(f"no usable training clips for speaker '{job.speaker}'"
                               + (f" ({reasons})" if reasons else ""))
        pool = [row for name in sorted(job.earlier()) for row in self._rows(job.clips[name].train)]
        for group in job.clips.values():
            self._rows(group.heldout)
        components.release("codec")
        self.mixed = mix_replay(self.new_rows, pool, job.replay, random.Random(self.settings.seed))
        self.model = components.get("acoustic_model", LlasaLanguageModel).trainable(
            self.settings.lora_rank, self.settings.lora_alpha).to(components.device)

    def _rows(self, clips: Sequence[ClipRef]) -> list[Row]:
        """Training rows of ``clips`` (tagged with their speaker), each built once."""
        missing = [c for c in clips if c.id + c.sha256 not in self.rows]
        for speaker in dict.fromkeys(c.speaker for c in missing):
            group = [c for c in missing if c.speaker == speaker]
            rows, skipped = dataset_rows(self.text.tokenizer, self.text.layout, group,
                                         self.job.file_hashes["codec_weights"], max_length=self.settings.max_length,
                                         codec=lambda: self.job.components["codec"], speaker=speaker, cache=self.cache,
                                         codec_name=self.job.components.names()["codec"])
            by_id = {row.clip_id: row for row in rows}
            self.rows.update({c.id + c.sha256: by_id[c.id] for c in group if c.id in by_id})
            if speaker == self.job.speaker:
                self.skipped += skipped
        return [self.rows[c.id + c.sha256] for c in clips if c.id + c.sha256 in self.rows]

    def heldout_loss(self, clips: Sequence[ClipRef]) -> float:
        """Mean token loss of the LM's current weights on ``clips``' rows."""
        return evaluate(self.model, self._rows(clips), self.text.tokenizer.pad_token_id)

    def train(self) -> TrainingLog:
        """Train on the new rows with the replayed ones (resumable from the job's state)."""
        job = self.job
        result = finetune(self.model, self.mixed, job.state_dir, self.settings, pad_id=self.text.tokenizer.pad_token_id,
                          context=job.context, on_step=job.on_step, progress=job.progress, log_dir=job.log_dir)
        extra = {"tokens_per_second": round(result.tokens_per_second, 2), "lora_rank": self.settings.lora_rank,
                 "replayed_rows": len(self.mixed) - len(self.new_rows),
                 "skipped": [{"clip": s.clip_id, "reason": s.reason} for s in self.skipped]}
        return TrainingLog(list(result.losses), result.steps, result.resumed_from or None, None, result.log_png, extra)

    def save(self, out_dir: Path) -> TrainedModel:
        """The LM weights (safetensors), or the LoRA adapter alone; the voice's conditioning is its speaker tag."""
        from tts_host.conditioning import text_array

        out_dir = Path(out_dir)
        shutil.rmtree(out_dir, ignore_errors=True)
        try:
            with disk_full_errors(out_dir):
                if self.settings.lora_rank is not None:
                    # Only the LoRA matrices: the base's (frozen) embedding and output layers stay the base's blobs.
                    self.model.save_pretrained(out_dir / ADAPTER_DIR, save_embedding_layers=False)
                    files = {"adapter_config": out_dir / ADAPTER_DIR / "adapter_config.json",
                             "adapter_weights": out_dir / ADAPTER_DIR / "adapter_model.safetensors"}
                else:
                    self.model.save_pretrained(out_dir / MODEL_DIR)
                    files = {"lm_weights": out_dir / MODEL_DIR / "model.safetensors"}
        except BaseException:
            shutil.rmtree(out_dir, ignore_errors=True)
            raise
        return TrainedModel(files, {"speaker_tag": text_array(self.job.speaker)})

