"""The built-in ``xtts`` plugin: coqui-tts XTTS v2 components and the ``xtts`` backend.

Registration is cheap: only declarations live here; torch and coqui-tts load when a
component or the backend is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from tts_host import hookimpl
from tts_host.components import BackendFactory, ComponentFactory, Connection, Stream

if TYPE_CHECKING:
    import click

SAMPLE_RATE = 22050  # the GPT's and DVAE's audio rate
OUTPUT_SAMPLE_RATE = 24000  # the HiFi-GAN decoder's
CODE_HOP = 1024  # audio samples per DVAE code (DVAE mel hop 256 x 4)
SPEAKER_SAMPLE_RATE = 16000  # the ResNet speaker encoder's
D_VECTOR_DIM = 512

TEXT_TOKENS = Stream("text_tokens")
AUDIO_CODES = Stream("codec_tokens", sample_rate=SAMPLE_RATE, hop_length=CODE_HOP)
GPT_LATENTS = Stream("latents", sample_rate=SAMPLE_RATE, hop_length=CODE_HOP)
D_VECTOR = Stream("speaker_embedding", dim=D_VECTOR_DIM)

MODULE = "tts_host.plugins.xtts.components"


@hookimpl
def register_codecs(register: Callable[[ComponentFactory], None]) -> None:
    """The XTTS DVAE: 22.05 kHz audio -> one code per 1024 samples."""
    register(ComponentFactory(
        name="xtts-dvae", kind="codec",
        accepts={"input": Stream("waveform", sample_rate=SAMPLE_RATE)}, produces=AUDIO_CODES,
        loader=f"{MODULE}:DvaeCodec", description="coqui-tts DiscreteVAE (frozen; codes cached per clip)",
    ))


@hookimpl
def register_text_encoders(register: Callable[[ComponentFactory], None]) -> None:
    """The XTTS VoiceBpeTokenizer."""
    register(ComponentFactory(
        name="xtts-bpe", kind="text_encoder", accepts={"input": Stream("text")}, produces=TEXT_TOKENS,
        loader=f"{MODULE}:BpeTextEncoder", description="coqui-tts VoiceBpeTokenizer (vocab.json)",
    ))


@hookimpl
def register_acoustic_models(register: Callable[[ComponentFactory], None]) -> None:
    """The XTTS GPT: text tokens + conditioning -> audio codes and latents (the trainable part)."""
    register(ComponentFactory(
        name="xtts-gpt", kind="acoustic_model",
        accepts={"text": TEXT_TOKENS, "codes": AUDIO_CODES, "conditioning": Stream("waveform", sample_rate=SAMPLE_RATE)},
        produces=GPT_LATENTS, loader="tts_host.plugins.xtts.acoustic:GptAcousticModel",
        description="coqui-tts XTTS GPT with perceiver conditioning",
    ))


@hookimpl
def register_vocoders(register: Callable[[ComponentFactory], None]) -> None:
    """The XTTS HiFi-GAN decoder: GPT latents + d-vector -> 24 kHz audio."""
    register(ComponentFactory(
        name="xtts-hifigan", kind="vocoder",
        accepts={"input": GPT_LATENTS, "speaker": D_VECTOR},
        produces=Stream("waveform", sample_rate=OUTPUT_SAMPLE_RATE),
        loader=f"{MODULE}:HifiganVocoder", description="coqui-tts HifiDecoder (frozen)",
    ))


@hookimpl
def register_speaker_encoders(register: Callable[[ComponentFactory], None]) -> None:
    """The HiFi-GAN decoder's ResNet speaker encoder: 16 kHz audio -> 512-d d-vector."""
    register(ComponentFactory(
        name="xtts-resnet-speaker", kind="speaker_encoder",
        accepts={"input": Stream("waveform", sample_rate=SPEAKER_SAMPLE_RATE)}, produces=D_VECTOR,
        loader=f"{MODULE}:ResnetSpeakerEncoder", description="coqui-tts ResNet speaker encoder (frozen)",
    ))


@hookimpl
def register_backends(register: Callable[[BackendFactory], None]) -> None:
    """The ``xtts`` backend: sequential, verified XTTS v2 fine-tuning."""
    register(BackendFactory(
        name="xtts",
        components={
            "text_encoder": ("text_encoder", "xtts-bpe"),
            "codec": ("codec", "xtts-dvae"),
            "acoustic_model": ("acoustic_model", "xtts-gpt"),
            "vocoder": ("vocoder", "xtts-hifigan"),
            "speaker_encoder": ("speaker_encoder", "xtts-resnet-speaker"),
        },
        connections=[
            Connection("text_encoder", "acoustic_model", "text"),
            Connection("codec", "acoustic_model", "codes"),
            Connection("acoustic_model", "vocoder", "input"),
            Connection("speaker_encoder", "vocoder", "speaker"),
        ],
        loader="tts_host.plugins.xtts.backend:XttsBackend",
        description="coqui-tts XTTS v2: GPT fine-tuning on DVAE codes, HiFi-GAN with d-vectors",
    ))


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``tts-host demo``: the whole job on a tiny XTTS base and espeak-ng speech."""
    from tts_host.plugins.xtts.cli import demo_command

    cli.add_command(demo_command)
