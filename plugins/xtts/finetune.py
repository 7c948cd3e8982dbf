"""The XTTS part of a fine-tune: train the GPT of the job's components on the job's clips.

The workflow in core (:mod:`tts_host.training.workflow`) does everything else. Here: the text
encoder tokenises every clip and the codec (the frozen DVAE) gives its audio codes once, through
the feature cache, before the codec is released; the speaker encoder and the acoustic model give
the new speaker's conditioning, and the speaker encoder is released; the acoustic model's GPT
trains (the vocoder component is not built): all of it, or with ``--lora`` an adapter on its
frozen weights (:mod:`tts_host.plugins.xtts.lora`). Saving a full fine-tune recomputes every
speaker's conditioning latent with the trained GPT and writes ``gpt.safetensors`` and the
speakers file; saving a LoRA fine-tune writes the adapter alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from tts_host.errors import TTSHostError
from tts_host.oserrors import disk_full_errors
from tts_host.plugins.xtts.acoustic import FOLDER_ADAPTER, GptAcousticModel
from tts_host.plugins.xtts.components import BpeTextEncoder
from tts_host.plugins.xtts.features import Collator, ItemBuilder, TrainItem
from tts_host.plugins.xtts.speakers_file import FILE as SPEAKERS_FILE
from tts_host.plugins.xtts.speakers_file import read_speakers, write_speakers
from tts_host.plugins.xtts.lora import ADAPTER_DIR, lora_config
from tts_host.plugins.xtts.training import FinetuneSettings, evaluate_items, train_gpt
from tts_host.training.clips import ClipRef
from tts_host.training.job import TrainedModel, TrainingJob
from tts_host.training.report import TrainingLog
from tts_host.plugins.xtts.files import FILES

if TYPE_CHECKING:
    from peft import LoraConfig

REFERENCE_SECONDS = 6.0  # conditioning audio gathered from a speaker's longest training clips


class XttsTrainingRun:
    """One XTTS fine-tune of a :class:`~tts_host.training.job.TrainingJob` (GPT only)."""

    def __init__(self, job: TrainingJob) -> None:
        from tts_host.data.cache import FeatureCache
        from tts_host.plugins.xtts.synthesis import clone_conditioning

        self.job = job
        components = job.components
        self.builder = ItemBuilder(components.get("text_encoder", BpeTextEncoder), lambda: components["codec"],
                                   components.names()["codec"], job.file_hashes["dvae"], FeatureCache())
        self.items: dict[str, TrainItem] = {}
        new = job.new
        self.new_train = self._items(new.train)
        self.new_heldout = self._items(new.heldout)
        earlier = job.earlier()
        self.earlier_train = self._items([c for group in earlier.values() for c in group.train]) if job.replay else []
        for group in earlier.values():
            self._items(group.heldout)
        components.release("codec")  # training needs only the cached codes
        self.acoustic = components.get("acoustic_model", GptAcousticModel)
        self.references = _reference_clips(new.train)
        self.conditioning = clone_conditioning(components, self.references)
        components.release("speaker_encoder")  # its d-vector is computed: free the HiFi-GAN for the run
        self.gpt = self.acoustic.gpt
        self.collator = Collator(self.acoustic.mel_stats)
        self.settings = job.settings
        self.lora = _prepare_lora(self.acoustic, job.settings)

    def _items(self, clips: Sequence[ClipRef]) -> list[TrainItem]:
        missing = [c for c in clips if c.id + c.sha256 not in self.items]
        for clip, item in zip(missing, self.builder.build(missing)):
            self.items[clip.id + clip.sha256] = item
        return [self.items[c.id + c.sha256] for c in clips]

    def heldout_loss(self, clips: Sequence[ClipRef]) -> float:
        """Mean held-out loss of the GPT's current weights on ``clips``."""
        return evaluate_items(self.gpt, self.collator, self._items(clips), self.settings)

    def train(self) -> TrainingLog:
        """Train the GPT (resumable); it then holds the weights with the lowest held-out loss."""
        job = self.job
        result = train_gpt(self.gpt, self.collator, self.new_train, self.earlier_train, self.new_heldout,
                           self.settings, job.state_dir, fingerprint=job.fingerprint, replay=job.replay,
                           resume=job.resume,
                           log_dir=job.log_dir, progress=job.progress, label=f"xtts {job.speaker}",
                           on_step=job.on_step, context=job.context)
        self.gpt_state = result.gpt_state
        self.gpt.eval()
        extra = {"lora_rank": self.lora.r, "lora_targets": list(self.settings.lora_targets)} if self.lora else {}
        return TrainingLog([loss for _, loss in result.train_losses], result.steps, result.resumed_from,
                           result.best_step, result.log_png, extra)

    def save(self, out_dir: Path) -> TrainedModel:
        """``gpt.safetensors`` and the speakers file (every speaker's latent from the trained GPT); for LoRA the
        adapter alone (the GPT, its conditioning encoder and so every other voice's latent stay the start's)."""
        if self.lora is not None:
            return self._save_adapter(Path(out_dir))
        from safetensors.torch import save_file

        speakers = read_speakers(self.job.start_dir / SPEAKERS_FILE)
        speakers[self.job.speaker] = self.conditioning
        for entry in speakers.values():
            if "cond_audio" in entry:  # the GPT's conditioning encoder changed: recompute the latent
                entry["gpt_cond_latent"] = self.acoustic.conditioning_latent(entry["cond_audio"])
        out_dir = Path(out_dir)
        shutil.rmtree(out_dir, ignore_errors=True)
        try:
            with disk_full_errors(out_dir):
                out_dir.mkdir(parents=True)
                save_file({k: v.contiguous() for k, v in self.gpt_state.items()}, str(out_dir / FILES["gpt"]))
                write_speakers(out_dir / SPEAKERS_FILE, speakers)
        except BaseException:
            shutil.rmtree(out_dir, ignore_errors=True)
            raise
        return TrainedModel({"gpt": out_dir / FILES["gpt"], "speakers": out_dir / SPEAKERS_FILE},
                            self.conditioning, list(self.references))


    def _save_adapter(self, out_dir: Path) -> TrainedModel:
        from tts_host.lora import save_adapter

        shutil.rmtree(out_dir, ignore_errors=True)
        try:
            with disk_full_errors(out_dir):
                written = save_adapter(self.gpt, self.lora, self.acoustic.adapter, out_dir / ADAPTER_DIR)
        except BaseException:
            shutil.rmtree(out_dir, ignore_errors=True)
            raise
        return TrainedModel({"lora_config": written["config"], "lora_weights": written["weights"]},
                            self.conditioning, list(self.references))


def _prepare_lora(acoustic: GptAcousticModel, settings: FinetuneSettings) -> LoraConfig | None:
    """For ``--lora``: the start's adapter continued (a LoRA voice's model), else a fresh one on the frozen GPT.

    Returns the adapter's config, or ``None`` for a full fine-tune.
    """
    from tts_host import lora

    if settings.lora_rank is None:
        return None
    gpt = acoustic.gpt
    if acoustic.adapter is not None:  # the start is a LoRA voice: B's adapter starts as A's (A keeps its own)
        config = acoustic.adapter_configs[acoustic.adapter]
        if config.r != settings.lora_rank:
            raise TTSHostError(f"the starting voice's LoRA adapter has rank {config.r}; continue it with "
                               f"--lora {config.r} (got --lora {settings.lora_rank})")
        lora.set_trainable(gpt, acoustic.adapter)
        return config
    config = lora_config(settings.lora_rank, settings.lora_alpha, settings.lora_dropout, settings.lora_targets)
    lora.add_adapter(gpt, config, FOLDER_ADAPTER, trainable=True)
    acoustic.adapter, acoustic.adapter_configs[FOLDER_ADAPTER] = FOLDER_ADAPTER, config
    return config


def _reference_clips(clips: Sequence[ClipRef]) -> list[Path]:
    """The longest training clips, up to about 6 s together: the speaker's conditioning references."""
    chosen, total = [], 0.0
    for clip in sorted(clips, key=lambda c: (-c.duration, c.id)):
        chosen.append(Path(clip.audio_path))
        total += clip.duration
        if total >= REFERENCE_SECONDS:
            break
    return chosen

