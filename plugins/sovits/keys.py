"""The one place where tensor names change: GPT-SoVITS v2's names <-> the runtime modules' names.

Stored files (``s2/*.safetensors``, ``s1/model.safetensors``) use GPT-SoVITS's own names, so import
and export only change dtypes and containers. The runtime modules use maintained libraries whose
names differ:

- coqui-tts's ``HifiganGenerator`` (``dec``): ``cond`` is ``cond_layer``;
- coqui-tts's ``ResidualCouplingBlocks`` (``flow``): upstream interleaves parameter-free flips, so its
  couplings are ``flows.0/2/4/6`` where coqui's are ``flows.0/1/2/3``;
- coqui-tts's ``VitsDiscriminator``: ``discriminators`` is ``nets``;
- torch's parametrised weight norm: ``weight_g``/``weight_v`` are
  ``parametrizations.weight.original0``/``original1``;
- vector-quantize-pytorch's ``ResidualVQ``: ``quantizer.vq.layers.0._codebook.inited`` [1] is
  ``quantizer.layers.0._codebook.initted`` [], and its tensors carry a leading codebook-head axis.
"""

from __future__ import annotations

import re
from typing import Mapping

import torch

_WEIGHT_NORM = ((".weight_g", ".parametrizations.weight.original0"), (".weight_v", ".parametrizations.weight.original1"))
_CODEBOOK = "quantizer.vq.layers.0._codebook."
_RUNTIME_CODEBOOK = "quantizer.layers.0._codebook."


def _weight_norm_to_runtime(name: str) -> str:
    for upstream, runtime in _WEIGHT_NORM:
        if name.endswith(upstream):
            return name[: -len(upstream)] + runtime
    return name


def _weight_norm_to_upstream(name: str) -> str:
    for upstream, runtime in _WEIGHT_NORM:
        if name.endswith(runtime):
            return name[: -len(runtime)] + upstream
    return name


def _flow_index(name: str, scale: float) -> str:
    match = re.match(r"flow\.flows\.(\d+)\.(.*)", name)
    if not match:
        return name
    return f"flow.flows.{int(int(match.group(1)) * scale)}.{match.group(2)}"


def generator_from_upstream(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Upstream s2 generator names (``enc_p``, ``dec``, ``flow``, ``enc_q``, ``ref_enc``) -> runtime names."""
    out = {}
    for name, tensor in weights.items():
        name = _weight_norm_to_runtime(_flow_index(name, 0.5))
        if name.startswith("dec.cond."):
            name = "dec.cond_layer." + name[len("dec.cond."):]
        out[name] = tensor
    return out


def generator_to_upstream(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`generator_from_upstream`."""
    out = {}
    for name, tensor in weights.items():
        name = _flow_index(_weight_norm_to_upstream(name), 2)
        if name.startswith("dec.cond_layer."):
            name = "dec.cond." + name[len("dec.cond_layer."):]
        out[name] = tensor
    return out


def semantic_from_upstream(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Upstream ``ssl_proj.*`` + ``quantizer.vq.*`` -> :class:`~tts_host.plugins.sovits.semantic.SemanticQuantizer` names."""
    out = {}
    for name, tensor in weights.items():
        if name.startswith(_CODEBOOK):
            field = name[len(_CODEBOOK):]
            if field == "inited":
                out[_RUNTIME_CODEBOOK + "initted"] = tensor.reshape(()).bool()
            else:
                out[_RUNTIME_CODEBOOK + field] = tensor.unsqueeze(0)
        else:
            out[name] = tensor
    return out


def semantic_to_upstream(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`semantic_from_upstream`."""
    out = {}
    for name, tensor in weights.items():
        if name.startswith(_RUNTIME_CODEBOOK):
            field = name[len(_RUNTIME_CODEBOOK):]
            if field == "initted":
                out[_CODEBOOK + "inited"] = tensor.reshape(1).float()
            else:
                out[_CODEBOOK + field] = tensor.squeeze(0)
        else:
            out[name] = tensor
    return out


def discriminator_from_upstream(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Upstream ``discriminators.*`` (s2D) -> coqui ``VitsDiscriminator`` names."""
    return {_weight_norm_to_runtime(re.sub(r"^discriminators\.", "nets.", k)): v for k, v in weights.items()}


def discriminator_to_upstream(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`discriminator_from_upstream`."""
    return {re.sub(r"^nets\.", "discriminators.", _weight_norm_to_upstream(k)): v for k, v in weights.items()}


def with_prefix(weights: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix.`` with the prefix removed."""
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in weights.items() if k.startswith(prefix + ".")}
