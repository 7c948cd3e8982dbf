"""LoRA adapters (peft) on any backend's trainable torch module: added, stored, checked, loaded and switched.

A stored adapter is peft's own format, a folder with ``adapter_config.json`` and
``adapter_model.safetensors`` (only ``lora_*`` tensors), so peft's ``PeftModel.from_pretrained``
reads it too. Adapters are injected into the module in place (peft's ``inject_adapter_in_model``),
under a name each, so one loaded base serves many voices: :func:`activate` picks the adapter a
call speaks through (or none: the base itself). The base's own weights are frozen and never
changed; merging happens only on copies (:func:`merged_copy`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from tts_host.errors import TTSHostError, ValidationError

if TYPE_CHECKING:
    import torch
    from peft import LoraConfig

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PEFT_MODEL_PREFIX = "base_model.model."  # what peft's PeftModel.save_pretrained puts before the module's own names


def check_rank(rank: object) -> int:
    """A LoRA rank as a positive int; anything else is a one-line error."""
    if isinstance(rank, bool) or not isinstance(rank, int) or rank <= 0:
        raise TTSHostError(f"LoRA rank must be a positive integer (e.g. --lora 8), got {rank!r}")
    return rank


@contextlib.contextmanager
def _quiet_peft() -> Iterator[None]:
    """peft warns per layer when one config covers both GPT-2 ``Conv1D`` and ``Linear`` layers (it sets each
    right), and at every adapter after the first (several adapters on one model are the point here)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*fan_in_fan_out.*")
        warnings.filterwarnings("ignore", message=".*Already found a `peft_config` attribute.*")  # one per adapter
        yield


def add_adapter(module: torch.nn.Module, config: LoraConfig, name: str, *, trainable: bool) -> None:
    """Inject a fresh adapter ``name`` into ``module``; with ``trainable`` only its tensors require gradients."""
    from peft import inject_adapter_in_model

    with _quiet_peft():
        inject_adapter_in_model(copy.deepcopy(config), module, adapter_name=name)
    set_trainable(module, name if trainable else None)
    activate(module, name)


def load_adapter(module: torch.nn.Module, folder: Path, name: str, *, trainable: bool = False) -> LoraConfig:
    """Inject the stored adapter in ``folder`` into ``module`` as ``name`` (checked first); returns its config."""
    from peft import LoraConfig
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(folder)
    validate_adapter(folder)
    config = LoraConfig.from_pretrained(str(folder))
    add_adapter(module, config, name, trainable=trainable)
    stored = load_file(str(folder / ADAPTER_WEIGHTS))
    weights = {key.removeprefix(PEFT_MODEL_PREFIX): tensor for key, tensor in stored.items()}
    result = set_peft_model_state_dict(module, weights, adapter_name=name)
    missing = [key for key in result.missing_keys if f".{name}." in key or key.endswith(f".{name}")]
    if missing or result.unexpected_keys:
        problem = f"no tensor for {missing[0]}" if missing else f"tensor {result.unexpected_keys[0]} fits no layer"
        raise ValidationError(str(folder / ADAPTER_WEIGHTS), "an adapter for this model's layers", problem)
    return config


def save_adapter(module: torch.nn.Module, config: LoraConfig, name: str, folder: Path) -> dict[str, Path]:
    """Write adapter ``name`` of ``module`` to ``folder`` in peft's format; returns the two files."""
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = get_peft_model_state_dict(module, adapter_name=name, save_embedding_layers=False)
    save_file({key: tensor.detach().contiguous().cpu() for key, tensor in state.items()}, str(folder / ADAPTER_WEIGHTS))
    document = config.to_dict()
    document["target_modules"] = _plain(document.get("target_modules"))
    (folder / ADAPTER_CONFIG).write_text(json.dumps(document, indent=2, sort_keys=True, default=_plain),
                                         encoding="utf-8")
    return {"config": folder / ADAPTER_CONFIG, "weights": folder / ADAPTER_WEIGHTS}


def _plain(value: object) -> object:
    """JSON for what peft keeps as sets (target modules) or enums."""
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return getattr(value, "value", value if isinstance(value, (str, int, float, bool, list, dict, type(None)))
                   else str(value))


def adapter_rank(folder: Path) -> int:
    """The rank of the stored adapter in ``folder``."""
    return int(json.loads((Path(folder) / ADAPTER_CONFIG).read_text(encoding="utf-8"))["r"])


def lora_layers(module: torch.nn.Module) -> list:
    """The peft LoRA layers inside ``module``."""
    from peft.tuners.lora import LoraLayer

    return [layer for layer in module.modules() if isinstance(layer, LoraLayer)]


def activate(module: torch.nn.Module, name: str | None) -> None:
    """Make adapter ``name`` the one ``module`` computes with; ``None``: the base alone."""
    for layer in lora_layers(module):
        if name is None:
            layer.enable_adapters(False)
            continue
        if name not in layer.lora_A and name not in layer.lora_embedding_A:
            raise TTSHostError(f"no LoRA adapter named {name!r} is loaded")
        layer.enable_adapters(True)
        layer.set_adapter(name)
    set_trainable(module, _trainable_name(module))


def _trainable_name(module: torch.nn.Module) -> str | None:
    for layer in lora_layers(module):
        for adapters in (layer.lora_A, layer.lora_embedding_A):
            for adapter, part in adapters.items():
                weight = part.weight if hasattr(part, "weight") else part
                if weight.requires_grad:
                    return adapter
    return None


def set_trainable(module: torch.nn.Module, name: str | None) -> None:
    """Only adapter ``name``'s tensors require gradients (``None``: leave the module as it is)."""
    if name is None:
        return
    for param_name, param in module.named_parameters():
        param.requires_grad_(f".{name}" in param_name and "lora_" in param_name)


def loaded_adapters(module: torch.nn.Module) -> set[str]:
    """The names of the adapters injected into ``module``."""
    names: set[str] = set()
    for layer in lora_layers(module):
        names.update(layer.lora_A.keys(), layer.lora_embedding_A.keys())
    return names


def remove_adapter(module: torch.nn.Module, name: str) -> None:
    """Drop adapter ``name`` from every layer of ``module`` (its memory goes back)."""
    for layer in lora_layers(module):
        if name in layer.lora_A or name in layer.lora_embedding_A:
            layer.delete_adapter(name)


def trainable_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The tensors that train (an adapter's, or every parameter in a full fine-tune), by state-dict name."""
    return {name: param.detach() for name, param in module.named_parameters() if param.requires_grad}


def merged_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` with its active adapter merged into the base layers and the LoRA layers removed."""
    return merge_in_place(copy.deepcopy(module))


def merge_in_place(module: torch.nn.Module) -> torch.nn.Module:
    """Merge each LoRA layer's active adapter into its base layer and put the base layer in its place; returns
    ``module``. For copies only (:func:`merged_copy`, :mod:`tts_host.quantisation`): its adapters are gone after."""
    layers = {id(layer) for layer in lora_layers(module)}
    for parent in list(module.modules()):
        for child_name, child in list(parent.named_children()):
            if id(child) in layers:
                if not child.disable_adapters and child.active_adapters:
                    with _quiet_peft():
                        child.merge(safe_merge=True)
                setattr(parent, child_name, child.get_base_layer())
    return module


def validate_adapter(folder: Path, layer_shapes: dict[str, tuple[int, ...]] | None = None) -> int:
    """Check a stored adapter: a LoRA config with a positive rank, only finite ``lora_*`` tensors of that rank.

    With ``layer_shapes`` (a base layer's name -> its weight's shape) every tensor must also
    belong to one of those layers, with fitting sizes. Returns the rank.
    """
    import torch
    from safetensors import safe_open

    folder = Path(folder)
    config_path, weights_path = folder / ADAPTER_CONFIG, folder / ADAPTER_WEIGHTS
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ValidationError(str(path), "a file (adapters come as config + weights)", "missing")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(str(config_path), "a JSON adapter config", f"unreadable ({exc})") from exc
    rank = config.get("r") if isinstance(config, dict) else None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA" or isinstance(rank, bool) \
            or not isinstance(rank, int) or rank <= 0:
        raise ValidationError(str(config_path), "a LoRA config with a positive rank r",
                              f"peft_type {config.get('peft_type') if isinstance(config, dict) else None!r}, "
                              f"r {rank!r}")
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            keys = list(handle.keys())
            if not keys:
                raise ValidationError(str(weights_path), "LoRA weights", "no tensors")
            for key in keys:
                _check_tensor(weights_path, key, list(handle.get_slice(key).get_shape()), rank, layer_shapes)
                if not torch.isfinite(handle.get_tensor(key)).all():
                    raise ValidationError(str(weights_path), f"finite values in {key}", "NaN or inf")
    except (OSError, RuntimeError) as exc:  # safetensors' errors for a truncated or foreign file
        raise ValidationError(str(weights_path), "a safetensors file", f"unreadable ({exc})") from exc
    return rank


def _check_tensor(path: Path, key: str, shape: list[int], rank: int,
                  layer_shapes: dict[str, tuple[int, ...]] | None) -> None:
    """One stored tensor: a ``lora_A``/``lora_B`` matrix of ``rank`` on a layer the model has."""
    kind = next((part for part in ("lora_embedding_A", "lora_embedding_B", "lora_A", "lora_B") if f".{part}" in key),
                None)
    if kind is None:
        raise ValidationError(str(path), "only lora_A / lora_B weights", f"tensor {key}")
    rank_axis = 0 if kind in ("lora_A", "lora_embedding_A") else 1
    if len(shape) != 2 or shape[rank_axis] != rank:
        raise ValidationError(str(path), f"{key} of rank {rank}", f"shape {shape}")
    if layer_shapes is None:
        return
    layer = key.split(f".{kind}")[0]
    base = layer_shapes.get(layer)
    if base is None:
        raise ValidationError(str(path), "adapters on this model's layers", f"{key}: the model has no layer {layer}")
    if shape[1 - rank_axis] not in base:
        raise ValidationError(str(path), f"{key} fitting {layer} of shape {list(base)}", f"shape {shape}")
