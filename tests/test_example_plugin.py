"""The example third-party plugin in docs/examples: installed with pip, discovered, listed, usable."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from plugin_dists import run_cli
from tts_host.components import ComponentFactory, Stream, chain, composition_problems
from tts_host.host import PluginHost

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "tts-host-griffinlim"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install`` the example package into a private site folder."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(EXAMPLE)],
        check=True, capture_output=True, text=True,
    )
    return target


@pytest.fixture(scope="module")
def host(installed: Path) -> PluginHost:
    sys.path.insert(0, str(installed))
    try:
        eps = [ep for dist in distributions(path=[str(installed)]) for ep in dist.entry_points
               if ep.group == "tts_host"]
        yield PluginHost(eps, selection=None, strict=True).load()
    finally:
        sys.path.remove(str(installed))
        for name in [m for m in sys.modules if m.startswith("tts_host_griffinlim")]:
            del sys.modules[name]


def test_discovered_and_listed_with_its_version(installed: Path):
    result = run_cli("plugins", "--json", path=[installed])
    assert result.returncode == 0, result.stderr
    row = next(r for r in json.loads(result.stdout) if r["name"] == "griffinlim")
    assert (row["distribution"], row["version"], row["status"]) == ("tts-host-griffinlim", "0.2.0", "loaded")
    assert row["hooks"] == ["register_vocoders"]
    assert row["components"] == [{"kind": "vocoder", "name": "griffin-lim"}]


def _mel_producer(name: str) -> ComponentFactory:
    return ComponentFactory(name=name, kind="acoustic_model", accepts={},
                            produces=Stream("mel", sample_rate=22050, hop_length=256, dim=80), loader="builtins:dict")


def _token_producer(name: str) -> ComponentFactory:
    return ComponentFactory(name=name, kind="codec", accepts={},
                            produces=Stream("codec_tokens", sample_rate=22050, hop_length=1024, vocab_size=1024),
                            loader="builtins:dict")


def test_fits_after_a_mel_producer_and_is_refused_after_codec_tokens(host: PluginHost):
    vocoder = host.component("vocoder", "griffin-lim")
    assert vocoder.distribution == "tts-host-griffinlim" and vocoder.version == "0.2.0"
    fits = {"am": _mel_producer("test-mel-am"), "voc": vocoder.factory}
    assert composition_problems(fits, chain("am", "voc")) == []
    refused = {"codec": _token_producer("test-codec"), "voc": vocoder.factory}
    problems = composition_problems(refused, chain("codec", "voc"))
    assert len(problems) == 1
    assert "vocoder 'griffin-lim'" in problems[0] and "codec 'test-codec'" in problems[0]


def test_vocodes_real_speech_from_its_mel(host: PluginHost, speaker_clips):
    import librosa

    wav, _ = speaker_clips("A", 1)[0]
    audio, rate = sf.read(wav, dtype="float32")
    vocoder = host.component("vocoder", "griffin-lim").factory.build(n_iter=16)
    assert rate == vocoder.sample_rate
    mel = vocoder.mel(audio)
    rebuilt = vocoder.vocode(mel)
    assert abs(len(rebuilt) - len(audio)) <= vocoder.hop_length
    assert np.sqrt(np.mean(rebuilt**2)) > 0.01
    log_a = librosa.power_to_db(mel).ravel()
    log_b = librosa.power_to_db(vocoder.mel(rebuilt)[:, : mel.shape[1]]).ravel()
    assert np.corrcoef(log_a, log_b)[0, 1] > 0.9
    with pytest.raises(ValueError, match=r"shape \(80, frames\)"):
        vocoder.vocode(np.zeros((10, 5)))
