"""The built-in ``llasa`` plugin: a Llama LM over X-Codec-2.0 speech tokens.

Registration is cheap: only declarations are made here; torch and transformers are imported
when a component or the backend is built.
"""

from __future__ import annotations

from typing import Callable

from tts_host import hookimpl
from tts_host.components import BackendFactory, ComponentFactory, Connection, Stream

SAMPLE_RATE = 16000
HOP_LENGTH = 320  # X-Codec-2.0: 50 codes per second at 16 kHz
MODEL_DIR = "model"  # the LM and its tokenizer, inside a model folder
CODEC_DIR = "codec"  # the X-Codec-2.0 folder
ADAPTER_DIR = "adapter"  # a LoRA checkpoint's peft adapter

SPEECH_CODES = Stream("codec_tokens", sample_rate=SAMPLE_RATE, hop_length=HOP_LENGTH)
AUDIO = Stream("waveform", sample_rate=SAMPLE_RATE)


@hookimpl
def register_codecs(register: Callable[[ComponentFactory], None]) -> None:
    """Register the X-Codec-2.0 codec (transformers' native ``Xcodec2Model``)."""
    register(ComponentFactory(
        name="xcodec2", kind="codec", accepts={"input": AUDIO}, produces=SPEECH_CODES,
        loader="tts_host.plugins.llasa.codec:codec_component",
        description="X-Codec-2.0: 16 kHz audio <-> one FSQ code stream at 50 codes/s",
    ))


@hookimpl
def register_text_encoders(register: Callable[[ComponentFactory], None]) -> None:
    """Register the Llama tokenizer with the Llasa chat template."""
    register(ComponentFactory(
        name="llama-chat", kind="text_encoder", accepts={"input": Stream("text")}, produces=Stream("text_tokens"),
        loader="tts_host.plugins.llasa.components:LlamaChatTextEncoder",
        description="Llama tokenizer + chat template: text -> Llasa prompt ids",
    ))


@hookimpl
def register_acoustic_models(register: Callable[[ComponentFactory], None]) -> None:
    """Register the Llasa causal LM (text prompt + optional reference codes -> speech codes)."""
    register(ComponentFactory(
        name="llasa-lm", kind="acoustic_model",
        accepts={"text": Stream("text_tokens"), "prompt": SPEECH_CODES}, produces=SPEECH_CODES,
        loader="tts_host.plugins.llasa.components:LlasaLanguageModel",
        description="causal LM (LlamaForCausalLM by default) sampling speech tokens with a KV cache",
    ))


@hookimpl
def register_vocoders(register: Callable[[ComponentFactory], None]) -> None:
    """Register the X-Codec-2.0 decoder as the vocoder."""
    register(ComponentFactory(
        name="xcodec2-decoder", kind="vocoder", accepts={"input": SPEECH_CODES}, produces=AUDIO,
        loader="tts_host.plugins.llasa.codec:XcodecVocoder",
        description="X-Codec-2.0 decoder: speech codes -> 16 kHz audio",
    ))


@hookimpl
def register_backends(register: Callable[[BackendFactory], None]) -> None:
    """Register the ``llasa`` backend."""
    register(BackendFactory(
        name="llasa",
        components={
            "codec": ("codec", "xcodec2"),
            "text_encoder": ("text_encoder", "llama-chat"),
            "acoustic_model": ("acoustic_model", "llasa-lm"),
            "vocoder": ("vocoder", "xcodec2-decoder"),
        },
        connections=[
            Connection("text_encoder", "acoustic_model", "text"),
            Connection("codec", "acoustic_model", "prompt"),
            Connection("acoustic_model", "vocoder", "input"),
        ],
        loader="tts_host.plugins.llasa.backend:LlasaBackend",
        description="Llasa: a Llama LM over X-Codec-2.0 speech tokens; fine-tune (full or LoRA), clone, export to HF",
    ))
