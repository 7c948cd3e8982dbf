"""Validation of an XTTS model folder: every file against the architecture, before anything uses it.

Checks exact state-dict keys and shapes (against models built on torch's ``meta`` device, so
no memory is spent), loads every tensor file with ``weights_only=True``, and rejects
non-finite values. The AllTalk failure -- a dvae.pth whose keys carry a ``dvae.`` prefix,
which coqui's ``strict=False`` load silently ignores -- is named as such.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Mapping

from tts_host.errors import ValidationError
from tts_host.plugins.xtts.dvae_config import dvae_architecture
from tts_host.plugins.xtts.files import FILE_ROLES, FILES

ARCHITECTURE_ARGS = (
    "gpt_layers", "gpt_n_model_channels", "gpt_n_heads", "gpt_number_text_tokens", "gpt_start_text_token",
    "gpt_stop_text_token", "gpt_num_audio_tokens", "gpt_start_audio_token", "gpt_stop_audio_token",
    "gpt_max_audio_tokens", "gpt_max_text_tokens", "gpt_max_prompt_tokens", "gpt_code_stride_len",
    "gpt_use_perceiver_resampler", "decoder_input_dim", "d_vector_dim", "cond_d_vector_in_each_upsampling_layer",
    "input_sample_rate", "output_sample_rate", "output_hop_length",
)
REPAIR_HINT = "restore it from the base with `tts-host voices repair`, or re-import the published folder"


def architecture_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The shape-determining part of a config.json dict (model args and DVAE dimensions)."""
    args = config.get("model_args", {})
    return {"model_args": {key: args.get(key) for key in ARCHITECTURE_ARGS}, "dvae": dvae_architecture(dict(config))}


def validate_folder(folder: Path, architecture: Mapping[str, Any] | None = None, *, subject: str = "") -> None:
    """Raise :class:`ValidationError` on the first file of ``folder`` that does not fit.

    ``architecture`` is the base's record (:func:`architecture_of`); when given, config.json
    must match it exactly.
    """
    folder = Path(folder)
    for name in (role.path for role in FILE_ROLES if role.required):
        if not (folder / name).is_file():
            raise ValidationError(name, "a file", "missing", subject=subject)
    config = _read_json(folder / FILES["config"], subject)
    actual_arch = architecture_of(config)
    if architecture:
        _compare_architecture(dict(architecture), actual_arch, subject)
    _check_vocab(folder / FILES["vocab"], config, subject)
    _check_mel_stats(folder / FILES["mel_stats"], subject)
    expected_model, expected_dvae = expected_state_shapes(config, folder / FILES["vocab"])
    _check_dvae(folder / FILES["dvae"], expected_dvae, subject)
    _check_model(folder / FILES["model"], expected_model, subject)
    if (folder / FILES["gpt"]).is_file():
        expected_gpt = {k[len("gpt."):]: v for k, v in expected_model.items() if k.startswith("gpt.")}
        _check_gpt(folder / FILES["gpt"], expected_gpt, subject)
    if (folder / FILES["lora_config"]).exists() or (folder / FILES["lora_weights"]).exists():
        _check_adapter(folder, expected_model)
    dim = config["model_args"]["gpt_n_model_channels"]
    if (folder / FILES["speakers_xtts"]).is_file():
        _check_speakers_pth(folder / FILES["speakers_xtts"], dim, config["model_args"].get("d_vector_dim", 512), subject)


def expected_state_shapes(config: dict[str, Any], vocab_path: Path) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """Exact key -> shape maps of model.pth (normalised) and dvae.pth for this architecture.

    The GPT is built on torch's meta device (no memory, any size); the HiFi-GAN decoder and
    the DVAE have few variants and are built once per variant.
    """
    import torch

    from tts_host.plugins.xtts.model import build_gpt, keep_torch_threads

    with keep_torch_threads(), torch.device("meta"):
        gpt = build_gpt(config)
    args = config["model_args"]
    model_shapes = {f"gpt.{k}": tuple(v.shape) for k, v in gpt.state_dict().items()}
    hifigan_args = {key: args.get(key) for key in HIFIGAN_ARGS}
    model_shapes.update(_hifigan_shapes(json.dumps(hifigan_args, sort_keys=True)))
    model_shapes["mel_stats"] = (80,)
    dvae_shapes = _dvae_shapes(json.dumps(dvae_architecture(config), sort_keys=True))
    return model_shapes, dict(dvae_shapes)


HIFIGAN_ARGS = ("input_sample_rate", "output_sample_rate", "output_hop_length", "gpt_code_stride_len",
                "decoder_input_dim", "d_vector_dim", "cond_d_vector_in_each_upsampling_layer")


@functools.lru_cache(maxsize=4)
def _hifigan_shapes(hifigan_args_json: str) -> dict[str, tuple]:
    from tts_host.plugins.xtts.model import build_hifigan, keep_torch_threads

    with keep_torch_threads():
        decoder = build_hifigan({"model_args": json.loads(hifigan_args_json)})
    return {f"hifigan_decoder.{k}": tuple(v.shape) for k, v in decoder.state_dict().items()}


@functools.lru_cache(maxsize=4)
def _dvae_shapes(dvae_json: str) -> dict[str, tuple]:
    from tts_host.plugins.xtts.model import build_dvae, keep_torch_threads

    with keep_torch_threads():
        dvae = build_dvae({"dvae": json.loads(dvae_json)})
    return {k: tuple(v.shape) for k, v in dvae.state_dict().items()}


def _read_json(path: Path, subject: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(path.name, "valid JSON", f"{type(exc).__name__}: {exc}", subject=subject) from exc
    if not isinstance(data, dict) or not isinstance(data.get("model_args"), dict):
        raise ValidationError(path.name, "an XTTS config with model_args", "no model_args", subject=subject)
    return data


def _compare_architecture(expected: dict[str, Any], actual: dict[str, Any], subject: str) -> None:
    for section in ("model_args", "dvae"):
        want, have = expected.get(section, {}), actual.get(section, {})
        for key in sorted(set(want) | set(have)):
            if want.get(key) != have.get(key):
                raise ValidationError(
                    FILES["config"], f"{section}.{key} = {want.get(key)!r} (the base's architecture)",
                    repr(have.get(key)), subject=subject,
                )


def _load(path: Path, subject: str) -> Any:
    import pickle

    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # unreadable, truncated, flipped bytes or disallowed pickles
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, pickle.UnpicklingError):
            reason = "a pickle that is not plain tensors (refused by weights_only loading)"
        raise ValidationError(
            path.name, "a torch tensor file readable with weights_only=True", f"unreadable ({reason}); {REPAIR_HINT}",
            subject=subject,
        ) from exc


def _check_state(name: str, state: Any, expected: dict[str, tuple], subject: str) -> None:
    import torch

    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValidationError(name, "a state dict of tensors", type(state).__name__, subject=subject)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValidationError(
            name, f"{len(expected)} keys such as {_sample(missing or sorted(expected))}",
            f"{len(missing)} missing, {len(unexpected)} unexpected (e.g. {_sample(unexpected or missing)}); "
            f"{REPAIR_HINT}", subject=subject,
        )
    for key, shape in expected.items():
        tensor = state[key]
        if tuple(tensor.shape) != shape:
            raise ValidationError(name, f"{key} of shape {list(shape)}", f"shape {list(tensor.shape)}", subject=subject)
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValidationError(name, f"finite values in {key}", "NaN or infinite values", subject=subject)


def _sample(keys: list[str]) -> str:
    return ", ".join(repr(k) for k in keys[:2]) or "none"


def _check_dvae(path: Path, expected: dict[str, tuple], subject: str) -> None:
    state = _load(path, subject)
    if isinstance(state, dict) and state and all(str(k).startswith("dvae.") for k in state):
        raise ValidationError(
            path.name, f"plain DiscreteVAE keys such as {_sample(sorted(expected))}",
            "every key prefixed 'dvae.' (a dvae.pth rebuilt from trainer-checkpoint keys: coqui would ignore it "
            f"and train against a random DVAE); {REPAIR_HINT}", subject=subject,
        )
    _check_state(path.name, state, expected, subject)


def _check_model(path: Path, expected: dict[str, tuple], subject: str) -> None:
    from tts_host.plugins.xtts.model import normalise_model_state

    checkpoint = _load(path, subject)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if isinstance(state, dict):
        state = normalise_model_state(state)
    _check_state(path.name, state, expected, subject)


def _check_adapter(folder: Path, expected_model: dict[str, tuple]) -> None:
    """A LoRA voice's adapter: a LoRA config, finite lora tensors of its rank on layers this GPT has."""
    from tts_host.lora import validate_adapter

    layers = {key[len("gpt."):-len(".weight")]: shape for key, shape in expected_model.items()
              if key.startswith("gpt.") and key.endswith(".weight")}
    validate_adapter(folder / Path(FILES["lora_weights"]).parent, layers)


def _check_gpt(path: Path, expected: dict[str, tuple], subject: str) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ValidationError(path.name, "a safetensors file", f"unreadable ({exc})", subject=subject) from exc
    _check_state(path.name, state, expected, subject)


def _check_mel_stats(path: Path, subject: str) -> None:
    import torch

    stats = _load(path, subject)
    if not isinstance(stats, torch.Tensor) or tuple(stats.shape) != (80,):
        actual = f"shape {list(stats.shape)}" if isinstance(stats, torch.Tensor) else type(stats).__name__
        raise ValidationError(path.name, "a tensor of shape [80]", actual, subject=subject)
    if not bool(torch.isfinite(stats).all()) or not bool((stats > 0).all()):
        raise ValidationError(path.name, "finite positive mel norms", "NaN, infinite or non-positive values",
                              subject=subject)


def _check_vocab(path: Path, config: dict[str, Any], subject: str) -> None:
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise ValidationError(path.name, "a tokenizers vocabulary", f"unreadable ({exc})", subject=subject) from exc
    vocab = tokenizer.get_vocab()
    args = config["model_args"]
    count = max(vocab.values()) + 1
    if args.get("gpt_number_text_tokens") not in (None, count):
        raise ValidationError(path.name, f"{args['gpt_number_text_tokens']} text tokens (config.json)", count,
                              subject=subject)
    for token, key in (("[START]", "gpt_start_text_token"), ("[STOP]", "gpt_stop_text_token")):
        want = args.get(key)
        if vocab.get(token) is None or (want is not None and vocab.get(token) != want):
            raise ValidationError(path.name, f"{token} with id {want}", vocab.get(token), subject=subject)


def _check_speakers_pth(path: Path, dim: int, d_vector_dim: int, subject: str) -> None:
    import torch

    speakers = _load(path, subject)
    if not isinstance(speakers, dict):
        raise ValidationError(path.name, "a dict of speakers", type(speakers).__name__, subject=subject)
    for name, entry in speakers.items():
        if not isinstance(entry, dict) or set(entry) != {"gpt_cond_latent", "speaker_embedding"}:
            raise ValidationError(path.name, f"'{name}': gpt_cond_latent and speaker_embedding",
                                  sorted(entry) if isinstance(entry, dict) else type(entry).__name__, subject=subject)
        latent, embedding = entry["gpt_cond_latent"], entry["speaker_embedding"]
        if not isinstance(latent, torch.Tensor) or latent.ndim != 3 or latent.shape[-1] != dim:
            raise ValidationError(path.name, f"'{name}' gpt_cond_latent of shape [1, N, {dim}]",
                                  getattr(latent, "shape", type(latent).__name__), subject=subject)
        if not isinstance(embedding, torch.Tensor) or tuple(embedding.shape) != (1, d_vector_dim, 1):
            raise ValidationError(path.name, f"'{name}' speaker_embedding of shape [1, {d_vector_dim}, 1]",
                                  getattr(embedding, "shape", type(embedding).__name__), subject=subject)
