"""Export a model folder's XTTS HiFi-GAN decoder to ONNX (imports torch: used on a cache miss only)."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch

from tts_host.folders import write_file_atomically

INPUT_NAMES = ["latents", "speaker"]
OUTPUT_NAME = "waveform"
OPSET = 17
EXAMPLE_FRAMES = 8  # the trace's length; the time axis is exported as dynamic


class SpeakerConditioned(torch.nn.Module):
    """``decoder(latents, g=speaker)`` with two positional inputs, as the exporter wants them."""

    def __init__(self, decoder: torch.nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, latents: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """``(1, T, dim)`` latents and a ``(1, 512, 1)`` d-vector -> ``(1, 1, samples)`` audio."""
        return self.decoder(latents, g=speaker)


def export_decoder(model_folder: Path, target: Path) -> Path:
    """Write the folder's decoder as ONNX to ``target`` (atomically), with a dynamic time axis.

    The decoder is loaded exactly as tts-host's ``xtts-hifigan`` vocoder loads it. torch's
    TorchScript-based exporter (``dynamo=False``) is used: the torch.export-based one turns
    coqui's no-op ``squeeze(1)`` into a Squeeze node that ONNX Runtime rejects.
    """
    from tts_host.plugins.xtts.components import HifiganVocoder

    args = json.loads((Path(model_folder) / "config.json").read_text(encoding="utf-8"))["model_args"]
    module = SpeakerConditioned(HifiganVocoder(model_folder=model_folder).decoder).eval()
    example = (torch.zeros(1, EXAMPLE_FRAMES, args["decoder_input_dim"]), torch.zeros(1, args["d_vector_dim"], 1))
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch flags this exporter on every call
        warnings.filterwarnings("ignore", message="This model contains a squeeze operation")  # that no-op
        torch.onnx.export(
            module, example, buffer, dynamo=False, opset_version=OPSET,
            input_names=INPUT_NAMES, output_names=[OUTPUT_NAME],
            dynamic_axes={"latents": {1: "frames"}, OUTPUT_NAME: {2: "samples"}},
        )
    return write_file_atomically(target, buffer.getvalue())
