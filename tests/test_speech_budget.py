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
def test_xtts_speech_from_a_model_that_never_stops_ends_at_the_texts_budget(tiny_base_dir, speaker_clips, stream):
    from tts_host.plugins.xtts.model import load_xtts
    from tts_host.plugins.xtts.synthesis import conditioning_from_model, synthesize

    model = load_xtts(tiny_base_dir)
    never_stopping(model.gpt.mel_head, model.gpt.stop_audio_token)
    conditioning = conditioning_from_model(model, [speaker_clips("A", 1)[0][0]])
    text = "Hello there."
    audio, _ = synthesize(model, text, conditioning, stream=stream, seed=0)
    seconds = len(audio) / 24000
    limit = speech_seconds_limit(text)
    # The model cannot stop, so it runs to the budget: about the limit, never far beyond it.
    assert 0.8 * limit <= seconds <= limit + 0.5, (seconds, limit)


def test_llasa_speech_from_a_model_that_never_stops_ends_at_the_texts_budget(tiny_base):
    from tts_host.plugins.llasa.synthesis import load_model, synthesize

    loaded = load_model(Path(tiny_base))
    never_stopping(loaded.model.lm_head, loaded.layout.speech_end_id)
    text = "Hello there."
    audio = synthesize(loaded, text, speaker="A")
    seconds = len(audio) / loaded.codec.sample_rate
    limit = speech_seconds_limit(text)
    assert np.isfinite(audio).all()
    assert 0.8 * limit <= seconds <= limit + 0.5, (seconds, limit)
