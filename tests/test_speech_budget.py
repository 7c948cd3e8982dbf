"""A speech request samples no more audio than its text can need, even from a model that never stops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llasa_fixtures import tiny_base  # noqa: F401  (fixture)
from tts_host.speech import audio_token_budget, speech_seconds_limit
from xtts_fixtures import tiny_base_dir  # noqa: F401  (fixture)


def test_budget_grows_with_the_text_and_never_passes_the_models_limit():
    short, long = audio_token_budget("Hi.", 50, 10_000), audio_token_budget("Hi. " * 40, 50, 10_000)
    assert 50 <= short < long
    assert audio_token_budget("Hi. " * 400, 50, 605) == 605
    assert audio_token_budget("Hi.", 21.5, 1) == 1
    # Whitespace runs do not buy extra audio.
    assert speech_seconds_limit("a      b") == speech_seconds_limit("a b")


def never_stopping(linear, token: int):
    """Make ``linear`` (a model's output head) never score ``token`` above -inf: the model cannot stop."""
    def hook(_module, _inputs, output):
        output[..., token] = float("-inf")
        return output

    return linear.register_forward_hook(hook)


@pytest.mark.parametrize("stream", [False, True])
def test_xtts_speech_from_a_model_that_never_stops_ends_at_the_texts_budget(tiny_base_dir, speaker_clips, stream,
                                                                             tmp_path):
    from tts_host.contract import SpeakRequest
    from tts_host.host import get_host
    from tts_host.plugins.xtts.synthesis import clone_conditioning, synthesize

    components = get_host().components_for("xtts", tiny_base_dir)
    gpt = components["acoustic_model"].gpt
    never_stopping(gpt.mel_head, gpt.stop_audio_token)
    conditioning = clone_conditioning(components, [speaker_clips("A", 1)[0][0]])
    text = "Hello there."
    speech = synthesize(components, conditioning, "en", SpeakRequest("v", text, tmp_path / "x.wav", stream=stream))
    seconds = len(speech.audio) / speech.sample_rate
    limit = speech_seconds_limit(text)
    # The model cannot stop, so it runs to the budget: about the limit, never far beyond it.
    assert 0.8 * limit <= seconds <= limit + 0.5, (seconds, limit)


def test_llasa_speech_from_a_model_that_never_stops_ends_at_the_texts_budget(tiny_base, tmp_path):
    from tts_host.contract import SpeakRequest
    from tts_host.host import get_host
    from tts_host.conditioning import text_array
    from tts_host.plugins.llasa.synthesis import synthesize

    components = get_host().components_for("llasa", Path(tiny_base))
    acoustic = components["acoustic_model"]
    never_stopping(acoustic.model.lm_head, acoustic.layout.speech_end_id)
    text = "Hello there."
    speech = synthesize(components, {"speaker_tag": text_array("A")}, SpeakRequest("v", text, tmp_path / "x.wav"))
    seconds = len(speech.audio) / speech.sample_rate
    limit = speech_seconds_limit(text)
    assert np.isfinite(speech.audio).all()
    assert 0.8 * limit <= seconds <= limit + 0.5, (seconds, limit)


@pytest.mark.parametrize("cloned", [False, True])
def test_llasa_streams_codec_windows_as_long_as_its_whole_speech(tiny_base, tmp_path, cloned):
    """Streamed Llasa speech comes in windows of decoded codes (a cloned voice's reference audio cut), as long
    as the same codes decoded whole, with the time to first audio reported."""
    from tts_host.conditioning import text_array
    from tts_host.contract import SpeakRequest
    from tts_host.host import get_host
    from tts_host.plugins.llasa.synthesis import synthesize

    components = get_host().components_for("llasa", Path(tiny_base))
    acoustic = components["acoustic_model"]
    never_stopping(acoustic.model.lm_head, acoustic.layout.speech_end_id)  # every sentence runs to its budget
    conditioning = ({"ref_codes": np.arange(40, dtype=np.int64) % 100, "ref_text": text_array("Hello.")} if cloned
                    else {"speaker_tag": text_array("A")})
    text = "Hello there. How are you today?"
    whole = synthesize(components, conditioning, SpeakRequest("v", text, tmp_path / "a.wav", seed=3))
    chunks: list[np.ndarray] = []
    streamed = synthesize(components, conditioning, SpeakRequest("v", text, tmp_path / "b.wav", seed=3, stream=True,
                                                                 on_chunk=chunks.append))
    assert len(chunks) > 4 and streamed.first_chunk_seconds is not None
    assert len(streamed.audio) == len(whole.audio) == sum(len(c) for c in chunks)
    assert np.isfinite(streamed.audio).all()
