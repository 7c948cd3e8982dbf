"""The llasa plugin: cheap registration, components that fit, backend file roles against a real base."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from llasa_fixtures import tiny_base  # noqa: F401  (fixture)
from tts_host.host import PluginHost


def test_registration_imports_no_heavy_library():
    code = ("import sys, tts_host.plugins.llasa; "
            "heavy = [m for m in ('torch', 'transformers', 'torchaudio', 'TTS') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_components_and_backend_are_registered_and_fit():
    host = PluginHost(selection={"llasa"}, strict=True).load()
    names = {(r.kind, r.name) for r in host.components()}
    assert {("codec", "xcodec2"), ("text_encoder", "llama-chat"), ("acoustic_model", "llasa-lm"),
            ("vocoder", "xcodec2-decoder")} <= names
    assert host.composition_problems("llasa") == []
    backend = host.build_backend("llasa")
    assert backend.name == "llasa" and backend.presets() == ["small", "tiny"]


def test_every_required_role_is_in_a_base_and_protected_roles_cover_tokenizer_and_codec(tiny_base: Path):
    backend = PluginHost(selection={"llasa"}, strict=True).load().build_backend("llasa")
    roles = backend.file_roles()
    for role in roles:
        if role.required:
            assert (tiny_base / role.path).is_file(), role.path
    protected = {r.path for r in roles if r.protected}
    assert {"model/tokenizer.json", "codec/model.safetensors", "codec/config.json"} <= protected
    assert "model/model.safetensors" not in protected
    architecture = backend.architecture(tiny_base)
    assert architecture["codebook_size"] == 128 and architecture["hidden_size"] == 64
    backend.validate(tiny_base, architecture)


def test_the_components_speech_uses_build_from_a_base_through_the_host(tiny_base: Path, speaker_clips):
    import librosa

    host = PluginHost(selection={"llasa"}, strict=True).load()
    components = host.components_for("llasa", tiny_base)
    encoder = components["text_encoder"]
    ids = encoder.encode("Hello there.")
    chat = [{"role": "user", "content": "Convert the text to speech:<|TEXT_UNDERSTANDING_START|>Hello there."
                                        "<|TEXT_UNDERSTANDING_END|>"},
            {"role": "assistant", "content": "<|SPEECH_GENERATION_START|>"}]
    expected = encoder.tokenizer.apply_chat_template(chat, tokenize=True, continue_final_message=True)["input_ids"]
    assert ids == list(expected)
    codec, vocoder = components["codec"], components["vocoder"]
    audio, _ = librosa.load(speaker_clips("A", 1)[0][0], sr=codec.sample_rate)
    assert vocoder.vocode(codec.encode(audio)).shape[0] > 0.9 * len(audio)
    acoustic = components["acoustic_model"]
    codes = acoustic.generate(ids, [], max_new_tokens=5)
    assert len(codes) <= 5 and all(0 <= code < codec.codebook_size for code in codes)
