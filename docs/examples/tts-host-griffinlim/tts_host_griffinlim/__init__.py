"""tts-host plugin: registers the ``griffin-lim`` vocoder (cheap: librosa loads only on build)."""

from tts_host import hookimpl
from tts_host.components import ComponentFactory, Stream

SAMPLE_RATE = 22050
HOP_LENGTH = 256
N_MELS = 80


@hookimpl
def register_vocoders(register):
    """Register the Griffin-Lim vocoder for 80-bin, 22.05 kHz, hop-256 power mel spectrograms."""
    register(
        ComponentFactory(
            name="griffin-lim",
            kind="vocoder",
            accepts={"input": Stream("mel", sample_rate=SAMPLE_RATE, hop_length=HOP_LENGTH, dim=N_MELS)},
            produces=Stream("waveform", sample_rate=SAMPLE_RATE),
            loader="tts_host_griffinlim.vocoder:GriffinLimVocoder",
            description="Phase reconstruction with librosa.griffinlim; no weights, no training.",
        )
    )
