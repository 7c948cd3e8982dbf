"""tts-host plugin: the ``xtts-hifigan-onnx`` vocoder (registration only; nothing heavy is imported)."""

from tts_host import hookimpl
from tts_host.components import ComponentFactory, Stream
from tts_host.plugins.xtts import D_VECTOR, GPT_LATENTS, OUTPUT_SAMPLE_RATE


@hookimpl
def register_vocoders(register):
    """XTTS's HiFi-GAN decoder on ONNX Runtime: the streams of ``xtts-hifigan``, another engine."""
    register(ComponentFactory(
        name="xtts-hifigan-onnx",
        kind="vocoder",
        accepts={"input": GPT_LATENTS, "speaker": D_VECTOR},
        produces=Stream("waveform", sample_rate=OUTPUT_SAMPLE_RATE),
        loader="tts_host_onnx_vocoder.vocoder:OnnxHifiganVocoder",
        description="XTTS HiFi-GAN decoder exported to ONNX, run by ONNX Runtime",
    ))
