"""The plugin host: registration, provenance, atomic skipping of broken plugins, strict mode."""

from __future__ import annotations

import pytest

from tts_host import hookimpl
from tts_host.components import BackendFactory, ComponentFactory, Connection, Stream
from tts_host.errors import CompositionError, PluginError, TTSHostError
from tts_host.host import PluginHost

MEL = Stream("mel", sample_rate=22050, hop_length=256, dim=80)
WAVE = Stream("waveform", sample_rate=22050)
TOKENS = Stream("codec_tokens", sample_rate=22050, hop_length=1024, vocab_size=1024)
TEXT_IDS = Stream("text_tokens", vocab_size=100)
DVEC = Stream("speaker_embedding", dim=512)


def component(name: str, kind: str, accepts: dict, produces: Stream) -> ComponentFactory:
    return ComponentFactory(name=name, kind=kind, accepts=accepts, produces=produces, loader=dict)


class GoodPlugin:
    """Registers one component of every kind and a backend composing them."""

    @hookimpl
    def register_codecs(self, register):
        register(component("good-codec", "codec", {"input": WAVE}, TOKENS))

    @hookimpl
    def register_text_encoders(self, register):
        register(component("good-text", "text_encoder", {"input": Stream("text")}, TEXT_IDS))

    @hookimpl
    def register_acoustic_models(self, register):
        register(component("good-am", "acoustic_model", {"text": TEXT_IDS, "speaker": DVEC}, MEL))

    @hookimpl
    def register_vocoders(self, register):
        register(component("good-vocoder", "vocoder", {"input": MEL}, WAVE))

    @hookimpl
    def register_speaker_encoders(self, register):
        register(component("good-dvec", "speaker_encoder", {"input": WAVE}, DVEC))

    @hookimpl
    def register_backends(self, register):
        register(BackendFactory(
            name="good",
            components={"text": ("text_encoder", "good-text"), "am": ("acoustic_model", "good-am"),
                        "voc": ("vocoder", "good-vocoder"), "spk": ("speaker_encoder", "good-dvec")},
            connections=[Connection("text", "am", "text"), Connection("spk", "am", "speaker"),
                         Connection("am", "voc", "input")],
            loader=lambda host, **options: ("built", host, options),
        ))


def fresh_host(**kwargs) -> tuple[PluginHost, list[str]]:
    warnings: list[str] = []
    host = PluginHost([], selection=None, strict=kwargs.pop("strict", False), warn=warnings.append)
    host.load()
    return host, warnings


def test_registrations_carry_their_provenance():
    host, warnings = fresh_host()
    assert host.add_plugin(GoodPlugin(), "good", distribution="tts-host-good", version="1.2.3")
    assert warnings == []
    names = [(r.kind, r.name) for r in host.components()]
    assert names == [("codec", "good-codec"), ("text_encoder", "good-text"), ("acoustic_model", "good-am"),
                     ("vocoder", "good-vocoder"), ("speaker_encoder", "good-dvec")]
    vocoder = host.component("vocoder", "good-vocoder")
    assert (vocoder.plugin, vocoder.distribution, vocoder.version) == ("good", "tts-host-good", "1.2.3")
    info = host.plugins["good"]
    assert "register_vocoders" in info.hooks and ("backend", "good") in info.registered
    assert host.composition_problems("good") == []
    assert host.build_backend("good", flavour="x")[2] == {"flavour": "x"}


def test_unknown_names_give_an_error_listing_what_is_installed():
    host, _ = fresh_host()
    host.add_plugin(GoodPlugin(), "good")
    with pytest.raises(TTSHostError, match=r"no vocoder named 'nope' is installed \(installed: good-vocoder\)"):
        host.component("vocoder", "nope")
    with pytest.raises(TTSHostError, match=r"no backend named 'xtts' is installed \(installed: good\)"):
        host.backend("xtts")


class DuplicatePlugin:
    """Registers a fresh codec, then a vocoder name that GoodPlugin already owns."""

    @hookimpl
    def register_codecs(self, register):
        register(component("fresh-codec", "codec", {"input": WAVE}, TOKENS))

    @hookimpl
    def register_vocoders(self, register):
        register(component("good-vocoder", "vocoder", {"input": MEL}, WAVE))


def test_duplicate_name_skips_the_plugin_and_rolls_back_what_it_registered():
    host, warnings = fresh_host()
    host.add_plugin(GoodPlugin(), "good", distribution="tts-host-good", version="1.0")
    assert not host.add_plugin(DuplicatePlugin(), "dup", distribution="tts-host-dup", version="0.1")
    assert len(warnings) == 1
    assert "plugin 'dup' (tts-host-dup 0.1)" in warnings[0] and "good-vocoder" in warnings[0]
    assert "already registered by plugin 'good'" in warnings[0]
    assert ("codec", "fresh-codec") not in [(r.kind, r.name) for r in host.components()]
    assert host.component("vocoder", "good-vocoder").plugin == "good"
    assert "dup" not in host.plugins and host.pm.get_plugin("dup") is None


class BadSignaturePlugin:
    @hookimpl
    def register_vocoders(self, register, sample_rate):
        register(component("bad", "vocoder", {"input": MEL}, WAVE))


def test_hookimpl_with_an_argument_the_spec_lacks_is_skipped():
    host, warnings = fresh_host()
    assert not host.add_plugin(BadSignaturePlugin(), "badsig", distribution="tts-host-badsig", version="2.0")
    assert len(warnings) == 1 and "plugin 'badsig' (tts-host-badsig 2.0): failed validation" in warnings[0]
    assert "sample_rate" in warnings[0]
    assert host.components() == []


class RaisingPlugin:
    @hookimpl
    def register_codecs(self, register):
        register(component("half", "codec", {"input": WAVE}, TOKENS))
        raise RuntimeError("weights missing")


def test_plugin_raising_while_registering_is_rolled_back():
    host, warnings = fresh_host()
    assert not host.add_plugin(RaisingPlugin(), "raiser")
    assert "failed while registering: RuntimeError: weights missing" in warnings[0]
    assert host.components() == []


class WrongKindPlugin:
    @hookimpl
    def register_codecs(self, register):
        register(component("sneaky", "vocoder", {"input": MEL}, WAVE))


def test_component_registered_through_the_wrong_hook_is_refused():
    host, warnings = fresh_host()
    assert not host.add_plugin(WrongKindPlugin(), "wrongkind")
    assert "registered vocoder 'sneaky' through register_codecs" in warnings[0]


class MisspelledPlugin:
    @hookimpl
    def register_vocoder(self, register):  # missing the final "s"
        raise AssertionError("never called")


def test_misspelled_hook_warns_and_fails_in_strict_mode():
    host, warnings = fresh_host()
    assert host.add_plugin(MisspelledPlugin(), "typo")
    assert "unknown hook(s) register_vocoder" in warnings[0]
    strict, _ = fresh_host(strict=True)
    with pytest.raises(PluginError, match="plugin 'typo'.*register_vocoder"):
        strict.add_plugin(MisspelledPlugin(), "typo")


@pytest.mark.parametrize("plugin", [DuplicatePlugin(), BadSignaturePlugin(), RaisingPlugin()])
def test_strict_mode_turns_every_problem_into_an_error(plugin):
    host, _ = fresh_host(strict=True)
    host.add_plugin(GoodPlugin(), "good")
    with pytest.raises(PluginError, match="plugin 'broken'"):
        host.add_plugin(plugin, "broken")


def test_backend_with_a_missing_component_reports_it_and_refuses_to_build():
    host, _ = fresh_host()

    class Lonely:
        @hookimpl
        def register_backends(self, register):
            register(BackendFactory(name="lonely", components={"voc": ("vocoder", "absent")}, connections=[],
                                    loader=dict))

    host.add_plugin(Lonely(), "lonely")
    assert host.composition_problems("lonely") == ["backend 'lonely' needs vocoder 'absent', which is not installed"]
    with pytest.raises(CompositionError, match="absent"):
        host.build_backend("lonely")


def test_commands_hook_adds_cli_commands_and_a_failing_one_is_skipped():
    import click

    host, warnings = fresh_host()

    class Commands:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("hello")
            def hello():
                """Say hello."""

    class BrokenCommands:
        @hookimpl
        def register_commands(self, cli):
            raise ValueError("no")

    host.add_plugin(Commands(), "cmds")
    host.add_plugin(BrokenCommands(), "brokencmds", distribution="tts-host-bc", version="1")
    group = click.Group("root")
    host.add_commands(group)
    assert "hello" in group.commands
    assert warnings == ["plugin 'brokencmds' (tts-host-bc 1): failed to add commands: ValueError: no"]
