"""int8 and bf16 copies of torch modules for speech: dynamic int8 linear layers, or matrix layers stored in bf16.

:func:`int8_copy` returns a copy whose linear layers hold int8 weights (activations are quantised
on the fly, per batch: torch's ``quantize_dynamic``); everything else (embeddings, norms,
convolutions) stays as it was. transformers' GPT-2 ``Conv1D`` (a linear layer stored input x output,
which torch's quantisation does not recognise) becomes an equivalent ``nn.Linear`` first. peft LoRA
layers are merged into the copy first, so it speaks through the adapter that was active.
:func:`bf16_copy` stores the matrix layers' weights in bf16 instead, for sampling under bf16 autocast.

The original module is never changed: a copy shares the tensors it only reads (embeddings, norms: no
second copy in memory) and makes its own of those it changes. Dynamic int8 runs on the CPU only. A
copy is a snapshot: after the original's weights change (training), make a new one.
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING

from tts_host.errors import TTSHostError
from tts_host.lora import lora_layers, merge_in_place

if TYPE_CHECKING:
    import torch


def _copy_sharing_tensors(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``module`` that shares the original's tensors, which it only reads (quantising makes new int8
    ones), except those of the layers under LoRA layers, whose weights merging changes (those are copied)."""
    merged = {id(tensor) for layer in lora_layers(module)
              for tensor in [*layer.get_base_layer().parameters(), *layer.get_base_layer().buffers()]}
    shared = {id(tensor): tensor for tensor in [*module.parameters(), *module.buffers()] if id(tensor) not in merged}
    return copy.deepcopy(module, memo=shared)


def conv1d_as_linear(conv: torch.nn.Module) -> torch.nn.Linear:
    """An ``nn.Linear`` computing what transformers' ``Conv1D`` ``conv`` computes (its weight transposed)."""
    import torch

    inputs, outputs = conv.weight.shape
    linear = torch.nn.Linear(inputs, outputs, bias=conv.bias is not None, device="meta")
    linear.weight = torch.nn.Parameter(conv.weight.detach().t().contiguous(), requires_grad=False)
    if conv.bias is not None:
        linear.bias = torch.nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
    return linear


def _replace_conv1d(module: torch.nn.Module) -> None:
    from transformers.pytorch_utils import Conv1D

    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                setattr(parent, name, conv1d_as_linear(child))


def int8_copy(module: torch.nn.Module) -> torch.nn.Module:
    """An int8 copy of ``module`` (on the CPU) for inference; see the module docstring. ``module`` stays as it was."""
    import torch

    device = next((p.device for p in module.parameters() if p.device.type != "cpu"), None)
    if device is not None:
        raise TTSHostError(f"int8 speech runs on the CPU only (this model is on {device}): use fp32 or bf16 there")
    quantised = _copy_sharing_tensors(module)
    merge_in_place(quantised)
    _replace_conv1d(quantised)
    with warnings.catch_warnings():  # torch >= 2.9 points to torchao (not a dependency); torch.ao still works
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated", category=DeprecationWarning)
        torch.ao.quantization.quantize_dynamic(quantised, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return quantised.eval()


def bf16_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` for bf16 speech: the weights and biases of its matrix layers (linear, 1-D convolution,
    GPT-2 ``Conv1D``) stored in bf16, the active LoRA adapter merged in first; the rest shared. Run it under bf16
    autocast: autocast rounds fp32 weights to bf16 at every use (inference keeps no cache of them), so the copy
    computes the same numbers without rounding every weight again for every token. ``module`` stays as it was."""
    import torch
    from transformers.pytorch_utils import Conv1D

    halved = _copy_sharing_tensors(module)
    merge_in_place(halved)
    for layer in halved.modules():
        if isinstance(layer, (torch.nn.Linear, torch.nn.Conv1d, Conv1D)):
            for name, tensor in list(layer.named_parameters(recurse=False)):  # new tensors: the original's stay
                setattr(layer, name, torch.nn.Parameter(tensor.detach().to(torch.bfloat16), requires_grad=False))
    return halved.eval()


def int8_layers(module: torch.nn.Module) -> dict[str, int]:
    """How many layers of ``module`` are int8 (``quantised``), float ``linear`` (``nn.Linear``) and ``conv1d``."""
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    from transformers.pytorch_utils import Conv1D

    layers = list(module.modules())
    return {"quantised": sum(isinstance(m, DynamicLinear) for m in layers),
            "linear": sum(type(m) is torch.nn.Linear for m in layers),
            "conv1d": sum(isinstance(m, Conv1D) for m in layers)}
