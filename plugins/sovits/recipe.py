"""The SoVITS part of a fine-tune: s2, then s1, on the job's clips (core's workflow does the rest).

The semantic codec gives every clip's codes once (feature cache) and its codebook vectors to s2; s2
trains the vocoder and reference-encoder components with a discriminator (the base's
when it has one, else a fresh one); s1 trains the acoustic model. The headline held-out loss the
workflow records before and after, for every speaker, is s1's (tokens per speaker); s2's held-out
mel loss per speaker, before and after, and each stage's losses are in the run's metrics
(``stages``); the headline training losses are s1's.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Sequence

import torch

from tts_host.errors import TTSHostError
from tts_host.oserrors import disk_full_errors
from tts_host.plugins.sovits.components import (
    PhonemeTextEncoder,
    ReferenceSpeakerEncoder,
    SemanticCodec,
    SovitsVocoder,
    TextToSemanticModel,
)
from tts_host.plugins.sovits.data import Item, Skipped, build_items, clip_codes
from tts_host.plugins.sovits.files import FILES
from tts_host.training.clips import ClipRef
from tts_host.training.job import TrainedModel, TrainingJob
from tts_host.training.report import TrainingLog


def _stage_figures(losses: list[float]) -> dict[str, object]:
    """First and last training loss and steps of one stage."""
    return {"steps": len(losses), "train_loss_first": losses[0] if losses else None,
            "train_loss_last": losses[-1] if losses else None, "losses": losses}


class SovitsTrainingRun:
    """One SoVITS fine-tune of a :class:`~tts_host.training.job.TrainingJob`."""

    def __init__(self, job: TrainingJob) -> None:
        from tts_host.data import FeatureCache
        from tts_host.plugins.sovits.regularisers import WeightEma
        from tts_host.plugins.sovits.train_s1 import S1Stage
        from tts_host.plugins.sovits.train_s2 import S2Stage
        from tts_host.training.batching import mix_replay
        from tts_host.training.seeding import seed_everything

        from tts_host.plugins.sovits.modelset import s1_config, s2_config

        self.job, self.settings = job, job.settings
        self.s2_hop = s2_config(job.start_dir).hop
        """s2's hop (samples per 50 Hz frame)."""
        self.bert_dim = int(s1_config(job.start_dir).model.get("bert_dim", 1024))
        components = job.components
        self.device = torch.device(components.device)
        self.text = components.get("text_encoder", PhonemeTextEncoder)
        self.codec = components.get("codec", SemanticCodec)
        self.cache = FeatureCache()
        self.items: dict[str, Item] = {}
        self.skipped: list[Skipped] = []
        new_items = self._items(job.new.train)
        if not new_items:
            reasons = "; ".join(f"{s.clip_id}: {s.reason}" for s in self.skipped[:2])
            raise TTSHostError(f"no usable training clips for speaker '{job.speaker}'" + (f" ({reasons})" if reasons else ""))
        pool = [item for name in sorted(job.earlier()) for item in self._items(job.clips[name].train)]
        for group in job.clips.values():
            self._items(group.heldout)
        seed_everything(self.settings.seed)
        self.mixed = mix_replay(new_items, pool, job.replay, random.Random(self.settings.seed))
        vocoder = components.get("vocoder", SovitsVocoder)
        reference = components.get("speaker_encoder", ReferenceSpeakerEncoder)
        discriminator = self._discriminator() if self.settings.s2_gan else None
        self.s2 = S2Stage(vocoder, reference, self.codec, discriminator, self.settings, self.device)
        self.s1 = S1Stage(components.get("acoustic_model", TextToSemanticModel), self.settings, self.device,
                          job.context)
        decay = self.settings.ema_decay
        self.s2_emas = [WeightEma(m, decay) for m in self.s2.trainable()] if decay else []
        self.s1_emas = [WeightEma(m, decay) for m in self.s1.trainable()] if decay else []
        self.s2_before = self._s2_heldout()

    def _items(self, clips: Sequence[ClipRef]) -> list[Item]:
        """Training items of ``clips``, each built once."""
        missing = [c for c in clips if c.id + c.sha256 not in self.items]
        if missing:
            semantic = self.job.file_hashes["s2_semantic"] + self.job.file_hashes["hubert_weights"]
            codes = clip_codes(missing, semantic, lambda: self.codec, self.cache, self.job.components.names()["codec"])
            bert_key = self.job.file_hashes.get("bert_weights") if self.text.has_bert else None
            built, skipped = build_items(missing, codes, self.text, self.s2_hop, self.bert_dim, self.cache,
                                         bert_key)
            by_id = {item.clip_id: item for item in built}
            self.items.update({c.id + c.sha256: by_id[c.id] for c in missing if c.id in by_id})
            self.skipped += [s for s in skipped if any(c.id == s.clip_id and c.speaker == self.job.speaker for c in missing)]
        return [self.items[c.id + c.sha256] for c in clips if c.id + c.sha256 in self.items]

    def _discriminator(self) -> torch.nn.Module:
        """The base's discriminator when the start has one, else a fresh one (random weights)."""
        from tts_host.plugins.sovits.keys import discriminator_from_upstream
        from tts_host.plugins.sovits.modelset import load_weights
        from tts_host.plugins.sovits.s2_model import build_discriminator, load_module

        discriminator = build_discriminator()
        if (self.job.start_dir / FILES["s2_discriminator"]).is_file():
            weights = discriminator_from_upstream(load_weights(self.job.start_dir, "s2_discriminator"))
            load_module(discriminator, weights, FILES["s2_discriminator"])
        return discriminator

    def _s2_heldout(self) -> dict[str, float]:
        return {name: self.s2.heldout(self._items(group.heldout)) for name, group in self.job.clips.items()
                if group.heldout}

    def heldout_loss(self, clips: Sequence[ClipRef]) -> float:
        """s1's mean token cross-entropy on ``clips``."""
        return self.s1.heldout(self._items(clips))

    def train(self) -> TrainingLog:
        """s2's epochs, then s1's (resumable from the job's state); the EMA weights are kept when enabled."""
        from tts_host.plugins.sovits.loop import StagePlan, run_stages
        from tts_host.training.devices import precision_policy

        job, settings = self.job, self.settings
        plans = [StagePlan("s2", self.s2, self.mixed, settings.s2_epochs, self.s2.batch, self.s2_emas),
                 StagePlan("s1", self.s1, self.mixed, settings.s1_epochs, None, self.s1_emas)]
        result = run_stages(plans, batch_size=settings.batch_size, seed=settings.seed, state_dir=job.state_dir,
                            resume=job.resume, precision=precision_policy(settings.precision, self.device),
                            context=job.context, on_step=job.on_step, progress=job.progress, log_dir=job.log_dir)
        for ema in [*self.s2_emas, *self.s1_emas]:
            ema.swap_in()
        after = self._s2_heldout()
        stages = {name: _stage_figures(result.losses[name]) for name in ("s2", "s1")}
        stages["s2"]["heldout"] = {name: {"before": self.s2_before.get(name), "after": value}
                                   for name, value in after.items()}
        extra = {
            "replayed_items": len(self.mixed) - len([i for i in self.mixed if i.speaker == job.speaker]),
            "skipped": [{"clip": s.clip_id, "reason": s.reason} for s in self.skipped],
            "regularisers": {"ema_decay": settings.ema_decay, "spec_augment": settings.spec_augment,
                             "mixup_alpha": settings.mixup_alpha, "layer_drop": settings.layer_drop,
                             "grad_clip": settings.grad_clip},
        }
        s1_losses = result.losses["s1"]
        return TrainingLog(s1_losses, len(s1_losses), result.resumed_from or None, None, result.log_png, extra, stages)

    def save(self, out_dir: Path) -> TrainedModel:
        """The trained s2 generator and s1 weights (GPT-SoVITS names), and the voice's reference."""
        from safetensors.torch import save_file

        from tts_host.plugins.sovits.keys import generator_to_upstream
        from tts_host.plugins.sovits.reference import from_training_clips

        out_dir = Path(out_dir)
        shutil.rmtree(out_dir, ignore_errors=True)
        generator = {**self.s2.synthesizer.state_dict(),
                     **{f"ref_enc.{k}": v for k, v in self.s2.reference.state_dict().items()}}
        try:
            with disk_full_errors(out_dir):
                for role, weights in (("s2_generator", generator_to_upstream(generator)),
                                      ("s1_weights", self.s1.model.state_dict())):
                    path = out_dir / FILES[role]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(path))
            conditioning, references = from_training_clips(self.codec, self.job.new.train)
        except BaseException:
            shutil.rmtree(out_dir, ignore_errors=True)
            raise
        return TrainedModel({role: out_dir / FILES[role] for role in ("s2_generator", "s1_weights")}, conditioning,
                            references)
