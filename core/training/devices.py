"""Where a training loop runs and in which precision: one policy for every backend.

``precision`` (a fine-tune setting) is ``auto``, ``bf16``, ``fp16`` or ``fp32``. ``auto`` means
bf16 autocast where the hardware computes bf16 natively (a CUDA GPU that supports it, a CPU
with AVX512-BF16), fp16 autocast with a loss scaler on other GPUs, and fp32 on other CPUs
(emulated bf16 is slower than fp32 there). ``TTS_HOST_DEVICE=cpu`` keeps training off the GPU.
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ContextManager, Iterator

from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    import torch

    from tts_host.training.distributed import Distributed

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DEVICE_VARIABLE = "TTS_HOST_DEVICE"
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def cuda_wanted() -> bool:
    """Whether training uses CUDA: a GPU is present and ``TTS_HOST_DEVICE`` does not say ``cpu``."""
    import torch

    choice = os.environ.get(DEVICE_VARIABLE, "").strip().lower() or "auto"
    if choice not in DEVICE_CHOICES:
        raise TTSHostError(f"{DEVICE_VARIABLE}={choice!r}: expected one of {', '.join(DEVICE_CHOICES)}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise TTSHostError(f"{DEVICE_VARIABLE}=cuda but torch sees no CUDA device (`tts-host doctor` lists them)")
    return choice != "cpu" and torch.cuda.is_available()


def pick_device(context: "Distributed | None" = None) -> "torch.device":
    """The device this process trains on: CUDA device ``LOCAL_RANK`` (made current) when wanted, else the CPU."""
    import torch

    if not cuda_wanted():
        return torch.device("cpu")
    rank = context.rank if context is not None else 0
    index = int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16)."""
    import torch

    return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())


@dataclass(frozen=True)
class Precision:
    """How a training step computes: autocast to ``dtype`` (``None``: plain fp32), and fp16's loss scaler.

    A step is ``with p.autocast(): loss = ...``, ``p.backward(loss)``, optionally
    ``p.clip(optimizer, max_norm)``, then ``p.step(optimizer)``.
    """

    name: str
    device_type: str
    dtype: Any = None
    scaler: Any = None

    def autocast(self) -> ContextManager[Any]:
        """Autocast for this device and dtype (nothing for fp32)."""
        if self.dtype is None:
            return nullcontext()
        import torch

        return torch.autocast(self.device_type, dtype=self.dtype)

    def store_frozen_weights(self, module: "torch.nn.Module") -> None:
        """Store the frozen weights of ``module``'s matrix layers (linear, 1-D convolution, GPT-2's ``Conv1D``)
        in the autocast dtype, once: autocast rounds them to it at every use anyway, so the maths is the
        same, but neither the fp32 copies nor the per-step rounded copies saved for backward are held.

        Only layers none of whose own tensors train (a LoRA run's base); nothing for fp32. Afterwards the
        module computes only under :meth:`autocast`.
        """
        if self.dtype is None:
            return
        import torch
        from transformers.pytorch_utils import Conv1D

        for layer in module.modules():
            own = list(layer.parameters(recurse=False))
            if (isinstance(layer, (torch.nn.Linear, torch.nn.Conv1d, Conv1D)) and own
                    and not any(p.requires_grad for p in own)):
                layer.to(self.dtype)

    def backward(self, loss: Any) -> None:
        """Back-propagate ``loss`` (scaled first when a loss scaler is used)."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def clip(self, optimizer: Any, max_norm: float) -> float:
        """Clip the gradients of ``optimizer``'s parameters to ``max_norm`` (unscaled first); returns their norm."""
        import torch

        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    def step(self, optimizer: Any) -> None:
        """``optimizer.step()``; with a loss scaler, skipped on overflowing gradients and the scale updated."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """The loss scaler's state for a resumable run (empty without one)."""
        return dict(self.scaler.state_dict()) if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def precision_policy(setting: str, device: "torch.device") -> Precision:
    """The :class:`Precision` that ``setting`` (auto, bf16, fp16 or fp32) means on ``device``."""
    import torch

    if setting not in PRECISIONS:
        raise TTSHostError(f"precision must be one of {', '.join(PRECISIONS)} (got {setting!r})")
    cuda = device.type == "cuda"
    if setting == "auto":
        if cuda:
            setting = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            setting = "bf16" if cpu_has_bf16() else "fp32"
    if setting == "fp32":
        return Precision("fp32", device.type)
    if setting == "bf16":
        return Precision("bf16", device.type, torch.bfloat16)
    if not cuda:
        raise TTSHostError(f"precision fp16 needs a CUDA GPU and this run is on the {device.type}: "
                           "use bf16, fp32 or auto")
    return Precision("fp16", device.type, torch.float16, torch.amp.GradScaler(device.type))


@contextmanager
def on_device(module: Any, device: "torch.device") -> Iterator[Any]:
    """Move ``module`` to ``device`` for the block, and back to where its parameters were afterwards."""
    home = next(module.parameters()).device
    module.to(device)
    try:
        yield module
    finally:
        module.to(home)
