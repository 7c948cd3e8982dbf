"""Component declarations and the composition fit check."""

import pytest

from tts_host.components import (
    ComponentFactory,
    Connection,
    Stream,
    chain,
    composition_problems,
    stream_mismatch,
)


def make(name, kind, accepts, produces):
    return ComponentFactory(name=name, kind=kind, accepts={"input": accepts}, produces=produces, loader=dict)


MEL80 = Stream("mel", sample_rate=22050, hop_length=256, dim=80)


def test_streams_that_fit():
    assert stream_mismatch(MEL80, Stream("mel", sample_rate=22050, hop_length=256, dim=80)) is None
    assert stream_mismatch(MEL80, Stream("mel")) is None  # unconstrained input
    small_vocab = Stream("codec_tokens", vocab_size=512)
    assert stream_mismatch(small_vocab, Stream("codec_tokens", vocab_size=1024)) is None


@pytest.mark.parametrize(
    "produced, accepted, reason",
    [
        (Stream("codec_tokens", vocab_size=1024), MEL80, "kind codec_tokens is not mel"),
        (Stream("mel", sample_rate=24000, hop_length=256, dim=80), MEL80, "24000 Hz where 22050 Hz"),
        (Stream("mel", sample_rate=22050, hop_length=300, dim=80), MEL80, "300 samples hop where 256"),
        (Stream("mel", sample_rate=22050, hop_length=256, dim=100), MEL80, "100 dims where 80 dims"),
        (Stream("codec_tokens", vocab_size=2048), Stream("codec_tokens", vocab_size=1024),
         "2048 token ids do not fit a vocabulary of 1024"),
    ],
)
def test_mismatches_say_why(produced, accepted, reason):
    assert reason in stream_mismatch(produced, accepted)


def test_refused_composition_names_both_components():
    codec = make("dvae", "codec", Stream("waveform", sample_rate=22050),
                 Stream("codec_tokens", sample_rate=22050, hop_length=1024, vocab_size=1024))
    vocoder = make("griffin", "vocoder", MEL80, Stream("waveform", sample_rate=22050))
    problems = composition_problems({"codec": codec, "vocoder": vocoder}, chain("codec", "vocoder"))
    assert len(problems) == 1
    assert "vocoder 'griffin' cannot take the output of codec 'dvae'" in problems[0]
    assert "accepts mel (80 bins, 22050 Hz, hop 256)" in problems[0]


def test_missing_role_and_port_are_reported():
    vocoder = make("griffin", "vocoder", MEL80, Stream("waveform"))
    assert composition_problems({"vocoder": vocoder}, [Connection("am", "vocoder", "input")]) == [
        "the composition has no component in role 'am'"
    ]
    am = make("am", "acoustic_model", Stream("text_tokens"), MEL80)
    assert "has no input 'features'" in composition_problems(
        {"am": am, "vocoder": vocoder}, [Connection("am", "vocoder", "features")])[0]


def test_declarations_are_validated():
    with pytest.raises(ValueError, match="unknown component kind 'mixer'"):
        make("x", "mixer", MEL80, MEL80)
    with pytest.raises(ValueError, match="unknown stream kind 'midi'"):
        Stream("midi")
    with pytest.raises(ValueError, match="contain no spaces"):
        make("two words", "vocoder", MEL80, MEL80)


def test_factory_builds_lazily_from_an_import_path():
    factory = ComponentFactory(name="od", kind="vocoder", accepts={}, produces=Stream("waveform"),
                               loader="collections:OrderedDict")
    assert type(factory.build(a=1)).__name__ == "OrderedDict"
    bad = ComponentFactory(name="bad", kind="vocoder", accepts={}, produces=Stream("waveform"), loader="nocolon")
    with pytest.raises(ValueError, match="not of the form"):
        bad.build()
