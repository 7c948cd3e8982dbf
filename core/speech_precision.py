"""What each part of speech computes in, for a request's precision (``fp32``, ``bf16``, ``int8``).

Speech has two parts: the model that samples codes (a GPT, an LM) and the decoder that turns them into
audio (a vocoder, a codec's decoder). A backend samples in :func:`sampling_autocast` (bf16 autocast for
``bf16``; ``int8`` samples from the backend's int8 copy of its model, :mod:`tts_host.quantisation`) and
decodes in :func:`decoding_autocast`: fp32 for ``fp32``, bf16 autocast for ``bf16``, and for ``int8``
bf16 autocast where the CPU computes bf16 natively (AVX512-BF16, which AMX CPUs have too), fp32 elsewhere. Dynamic int8
does not cover convolutions, and on such CPUs bf16 makes XTTS's HiFi-GAN 1.7x faster, its largest
sample change under 2% of the peak and Resemblyzer's similarity to fp32 1.0000
(``benchmarks/xtts_synthesis.py``), while emulated bf16 would be slower than fp32. A backend whose decoder does not gain from bf16 (Llasa's small X-Codec-2.0
decoders, measured slower in bf16) keeps it in fp32 for ``int8`` speech.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager


def _bf16_autocast(device_type: str) -> ContextManager[None]:
    import torch

    return torch.autocast(device_type, dtype=torch.bfloat16)


def sampling_autocast(precision: str, device_type: str) -> ContextManager[None]:
    """The context a speech model samples in: bf16 autocast for ``bf16``, else none (int8 is its own copy)."""
    return _bf16_autocast(device_type) if precision == "bf16" else contextlib.nullcontext()


def decodes_in_bf16(precision: str, device_type: str) -> bool:
    """Whether speech in ``precision`` decodes its audio under bf16 autocast on ``device_type``."""
    from tts_host.training.devices import cpu_has_bf16

    return precision == "bf16" or (precision == "int8" and device_type == "cpu" and cpu_has_bf16())


def decoding_autocast(precision: str, device_type: str) -> ContextManager[None]:
    """The context a speech decoder (vocoder, codec decoder) runs in for ``precision`` (:func:`decodes_in_bf16`)."""
    return _bf16_autocast(device_type) if decodes_in_bf16(precision, device_type) else contextlib.nullcontext()
