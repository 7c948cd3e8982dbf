"""The built-in ``sovits`` plugin: GPT-SoVITS v2 (s1 text-to-semantic GPT, s2 SoVITS synthesiser).

Registration is cheap: only declarations are made here; torch, transformers and coqui-tts are
imported when a component or the backend is built.
"""

from __future__ import annotations

from typing import Callable

from tts_host import hookimpl
from tts_host.components import BackendFactory, ComponentFactory, Connection, Stream

SAMPLE_RATE = 32000  # s2's output and the rate its spectrograms are taken at
HUBERT_RATE = 16000  # HuBERT's input rate
SEMANTIC_HOP = 640  # 16 kHz / 640 = 25 semantic codes per second

PHONEMES = Stream("text_tokens", vocab_size=732)  # GPT-SoVITS v2 phoneme ids
SEMANTIC_CODES = Stream("codec_tokens", sample_rate=HUBERT_RATE, hop_length=SEMANTIC_HOP)  # semantic codes
VOICE_VECTOR = Stream("speaker_embedding")
MODULE = "tts_host.plugins.sovits.components"


@hookimpl
def register_text_encoders(register: Callable[[ComponentFactory], None]) -> None:
    """Register the GPT-SoVITS v2 phoneme front end (English, Chinese)."""
    register(ComponentFactory(
        name="sovits-phonemes", kind="text_encoder", accepts={"input": Stream("text")}, produces=PHONEMES,
        loader=f"{MODULE}:PhonemeTextEncoder",
        description="text -> GPT-SoVITS v2 phoneme ids (CMUdict + neural guesser; pypinyin + jieba)",
    ))


@hookimpl
def register_codecs(register: Callable[[ComponentFactory], None]) -> None:
    """Register the semantic codec: HuBERT + s2's frozen projection and codebook."""
    register(ComponentFactory(
        name="sovits-semantic", kind="codec", accepts={"input": Stream("waveform", sample_rate=HUBERT_RATE)},
        produces=SEMANTIC_CODES, loader=f"{MODULE}:SemanticCodec",
        description="HubertModel + ssl_proj + one-codebook VQ: 16 kHz audio -> 25 Hz semantic codes (frozen)",
    ))


@hookimpl
def register_acoustic_models(register: Callable[[ComponentFactory], None]) -> None:
    """Register s1, the text-to-semantic GPT."""
    register(ComponentFactory(
        name="sovits-s1", kind="acoustic_model", accepts={"text": PHONEMES, "prompt": SEMANTIC_CODES},
        produces=SEMANTIC_CODES, loader=f"{MODULE}:TextToSemanticModel",
        description="s1: phonemes + the reference's semantic codes -> new semantic codes",
    ))


@hookimpl
def register_vocoders(register: Callable[[ComponentFactory], None]) -> None:
    """Register s2, the SoVITS synthesiser."""
    register(ComponentFactory(
        name="sovits-s2", kind="vocoder",
        accepts={"input": SEMANTIC_CODES, "text": PHONEMES, "speaker": VOICE_VECTOR},
        produces=Stream("waveform", sample_rate=SAMPLE_RATE), loader=f"{MODULE}:SovitsVocoder",
        description="s2: semantic codes + phonemes + voice vector -> 32 kHz audio (VITS flow, HiFi-GAN)",
    ))


@hookimpl
def register_speaker_encoders(register: Callable[[ComponentFactory], None]) -> None:
    """Register s2's reference encoder."""
    register(ComponentFactory(
        name="sovits-ref-encoder", kind="speaker_encoder",
        accepts={"input": Stream("waveform", sample_rate=SAMPLE_RATE)}, produces=VOICE_VECTOR,
        loader=f"{MODULE}:ReferenceSpeakerEncoder",
        description="s2's ref_enc: a reference's linear spectrogram -> voice vector",
    ))


@hookimpl
def register_backends(register: Callable[[BackendFactory], None]) -> None:
    """Register the ``sovits`` backend."""
    register(BackendFactory(
        name="sovits",
        components={
            "text_encoder": ("text_encoder", "sovits-phonemes"),
            "codec": ("codec", "sovits-semantic"),
            "acoustic_model": ("acoustic_model", "sovits-s1"),
            "vocoder": ("vocoder", "sovits-s2"),
            "speaker_encoder": ("speaker_encoder", "sovits-ref-encoder"),
        },
        connections=[
            Connection("text_encoder", "acoustic_model", "text"),
            Connection("codec", "acoustic_model", "prompt"),
            Connection("acoustic_model", "vocoder", "input"),
            Connection("text_encoder", "vocoder", "text"),
            Connection("speaker_encoder", "vocoder", "speaker"),
        ],
        loader="tts_host.plugins.sovits.backend:SovitsBackend",
        description="GPT-SoVITS v2: s2 (SoVITS) then s1 (text-to-semantic GPT) fine-tunes; imports and exports "
                    "GPT-SoVITS's own files",
    ))
