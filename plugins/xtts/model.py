"""Building and loading coqui-tts's XTTS parts (imports torch and TTS: never import at plugin load)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator

from tts_host.plugins.xtts import SAMPLE_RATE
from tts_host.plugins.xtts.dvae_config import dvae_architecture
from tts_host.plugins.xtts.files import FILES

# Mel settings of the DVAE input and of the GPT conditioning (perceiver) input, as coqui's trainer uses them.
DVAE_MEL = {"filter_length": 1024, "hop_length": 256, "win_length": 1024}
STYLE_MEL = {"filter_length": 2048, "hop_length": 256, "win_length": 1024}


@contextlib.contextmanager
def keep_torch_threads() -> Iterator[None]:
    """Restore torch's thread count after importing coqui modules that force it to one."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' warnings about what coqui does on purpose.

    coqui builds ``GPT2Config`` with GPT-2's default bos/eos ids (50256) beside a tiny unused
    vocabulary, and transformers warns about it at every model build; the ids are never used.
    Generation sets ``max_new_tokens`` (the text's budget) beside coqui's ``max_length``, and
    transformers warns about that at every sentence; ``max_new_tokens`` is meant to win.
    """
    from transformers.utils import logging

    previous = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(previous)


def read_config(folder: Path) -> dict[str, Any]:
    """The config.json of a model folder as a dict."""
    return json.loads((Path(folder) / FILES["config"]).read_text(encoding="utf-8"))


def xtts_config(config: dict[str, Any]):
    """A coqui ``XttsConfig`` from a config.json dict (unknown keys are ignored, as coqui does)."""
    from TTS.tts.configs.xtts_config import XttsConfig

    coqui = XttsConfig()
    coqui.from_dict(config)
    return coqui


def build_xtts(config: dict[str, Any], vocab_path: Path):
    """A randomly initialised coqui ``Xtts`` with the architecture of ``config`` and the given vocabulary."""
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    with quiet_transformers():
        model = Xtts(xtts_config(config))
        model.tokenizer = VoiceBpeTokenizer(vocab_file=str(vocab_path))
        model.init_models()
    return model


def build_gpt(config: dict[str, Any]):
    """A randomly initialised coqui ``GPT`` with the architecture of ``config`` (as ``Xtts.init_models`` builds it)."""
    from TTS.tts.layers.xtts.gpt import GPT

    args = config["model_args"]
    with quiet_transformers():
        return GPT(
            layers=args["gpt_layers"],
            model_dim=args["gpt_n_model_channels"],
            start_text_token=args["gpt_start_text_token"],
            stop_text_token=args["gpt_stop_text_token"],
            heads=args["gpt_n_heads"],
            max_text_tokens=args["gpt_max_text_tokens"],
            max_mel_tokens=args["gpt_max_audio_tokens"],
            max_prompt_tokens=args["gpt_max_prompt_tokens"],
            number_text_tokens=args["gpt_number_text_tokens"],
            num_audio_tokens=args["gpt_num_audio_tokens"],
            start_audio_token=args["gpt_start_audio_token"],
            stop_audio_token=args["gpt_stop_audio_token"],
            use_perceiver_resampler=args["gpt_use_perceiver_resampler"],
            code_stride_len=args["gpt_code_stride_len"],
        )


def build_hifigan(config: dict[str, Any]):
    """A randomly initialised coqui ``HifiDecoder`` (HiFi-GAN + ResNet speaker encoder) for ``config``."""
    from TTS.tts.layers.xtts.hifigan_decoder import HifiDecoder

    args = config["model_args"]
    return HifiDecoder(
        input_sample_rate=args["input_sample_rate"],
        output_sample_rate=args["output_sample_rate"],
        output_hop_length=args["output_hop_length"],
        ar_mel_length_compression=args["gpt_code_stride_len"],
        decoder_input_dim=args["decoder_input_dim"],
        d_vector_dim=args["d_vector_dim"],
        cond_d_vector_in_each_upsampling_layer=args["cond_d_vector_in_each_upsampling_layer"],
    )


def build_dvae(config: dict[str, Any]):
    """A randomly initialised ``DiscreteVAE`` with the architecture recorded in ``config``."""
    from TTS.tts.layers.xtts.dvae import DiscreteVAE

    arch = dvae_architecture(config)
    return DiscreteVAE(
        channels=80,
        normalization=None,
        positional_dims=1,
        num_tokens=arch["num_tokens"],
        codebook_dim=arch["codebook_dim"],
        hidden_dim=arch["hidden_dim"],
        num_resnet_blocks=arch["num_resnet_blocks"],
        kernel_size=3,
        num_layers=arch["num_layers"],
        use_transposed_convs=False,
    )


def mel_extractor(mel_norms, kind: str = "dvae"):
    """coqui's ``TorchMelSpectrogram`` for the DVAE (``dvae``) or conditioning (``style``) input."""
    from TTS.tts.layers.tortoise.arch_utils import TorchMelSpectrogram

    settings = DVAE_MEL if kind == "dvae" else STYLE_MEL
    extractor = TorchMelSpectrogram(
        **settings, n_mel_channels=80, mel_fmin=0, mel_fmax=8000, sampling_rate=SAMPLE_RATE,
        normalize=False, mel_norm_file=None,
    )
    extractor.mel_norms = mel_norms
    return extractor


def load_tensor_file(path: Path, *, mapped: bool = True):
    """``torch.load`` a file with ``weights_only=True`` (tensors and plain containers only).

    ``mapped``: memory-mapped, so only the tensors used are read (the HiFi-GAN's part of model.pth
    reads its own bytes, not the GPT's); for tensors that are copied into a module, not kept.
    """
    import torch

    return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mapped)


def load_gpt(folder: Path, config: dict[str, Any]):
    """The GPT of a (validated) model folder: model.pth's GPT, replaced by ``gpt.safetensors`` when present.

    A tts-host checkpoint folder holds the base's files plus ``gpt.safetensors``. The GPT is built
    on the meta device and takes the file's tensors as its own, so loading holds one copy of the
    weights, not two.
    """
    import torch
    from safetensors.torch import load_file

    with torch.device("meta"):  # no random weights to overwrite: the loaded tensors become the parameters
        gpt = build_gpt(config)
    gpt_file = Path(folder) / FILES["gpt"]
    if gpt_file.exists():
        state = load_file(str(gpt_file))
    else:
        # read into memory: tensors taken from a mapping would keep every page of the file they touched
        state = model_part(load_tensor_file(Path(folder) / FILES["model"], mapped=False), "gpt.")
    # fp32 as a built GPT's own parameters are (a file in half precision is widened; fp32 tensors are not copied)
    state = {key: value.float() if value.is_floating_point() else value for key, value in state.items()}
    gpt.load_state_dict(state, strict=True, assign=True)
    return gpt


def model_part(checkpoint: dict, prefix: str) -> dict:
    """The tensors of one part of model.pth (``gpt.``, ``hifigan_decoder.``), with the prefix removed."""
    state = normalise_model_state(checkpoint.get("model", checkpoint))
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}


IGNORED_MODEL_PREFIXES = ("torch_mel_spectrogram_style_encoder", "torch_mel_spectrogram_dvae", "dvae")


def normalise_model_state(state: dict) -> dict:
    """model.pth keys as coqui's loader sees them: ``xtts.`` prefix dropped, trainer-only parts removed."""
    out = {}
    for key, value in state.items():
        key = key[len("xtts."):] if key.startswith("xtts.") else key
        if key.split(".")[0] in IGNORED_MODEL_PREFIXES:
            continue
        out[key] = value
    return out
