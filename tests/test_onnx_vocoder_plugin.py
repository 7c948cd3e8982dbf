"""The example third-party plugin in docs/examples: an ONNX Runtime XTTS vocoder, pip-installed and used."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

from plugin_dists import run_cli
from tts_host.components import Stream, composition_problems
from tts_host.hashing import sha256_file
from tts_host.host import PluginHost
from tts_host.interfaces import Vocoder
from xtts_fixtures import tiny_base_dir  # noqa: F401  (fixture)

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "tts-host-onnx-vocoder"
NAME = "xtts-hifigan-onnx"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install`` a copy of the example distribution (builds write into it) into a private site folder."""
    source = shutil.copytree(EXAMPLE, tmp_path_factory.mktemp("src") / EXAMPLE.name,
                             ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        check=True, capture_output=True, text=True,
    )
    return target


@pytest.fixture(scope="module")
def host(installed: Path) -> PluginHost:
    """A strict host over every installed ``tts_host`` entry point: the built-ins and the example."""
    sys.path.insert(0, str(installed))
    try:
        yield PluginHost(entry_points(group="tts_host"), selection=None, strict=True).load()
    finally:
        sys.path.remove(str(installed))
        for name in [m for m in sys.modules if m.startswith("tts_host_onnx_vocoder")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def vocoders(host: PluginHost, tiny_base_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    """``(torch vocoder, ONNX vocoder, home)`` built through the host from the tiny base."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TTS_HOST_HOME", str(home))
        onnx = host.component("vocoder", NAME).factory.build(model_folder=tiny_base_dir, device="cpu")
    torch_vocoder = host.component("vocoder", "xtts-hifigan").factory.build(model_folder=tiny_base_dir, device="cpu")
    return torch_vocoder, onnx, home


def _features(frames: int, width: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    speaker = rng.standard_normal((1, 512, 1)).astype(np.float32)
    return {"latents": rng.standard_normal((1, frames, width)).astype(np.float32),
            "speaker_embedding": speaker / np.linalg.norm(speaker)}


def test_listed_with_its_distribution(installed: Path):
    result = run_cli("plugins", "--json", path=[installed], env={"TTS_HOST_STRICT_PLUGINS": "1"})
    assert result.returncode == 0, result.stderr
    row = next(r for r in json.loads(result.stdout) if r["name"] == "onnx-vocoder")
    assert (row["distribution"], row["version"], row["status"]) == ("tts-host-onnx-vocoder", "0.1.0", "loaded")
    assert row["hooks"] == ["register_vocoders"]
    assert row["components"] == [{"kind": "vocoder", "name": NAME}]


def test_matches_the_torch_vocoder_at_two_lengths(vocoders, tiny_base_dir: Path):  # noqa: F811
    torch_vocoder, onnx, _ = vocoders
    assert isinstance(onnx, Vocoder) and onnx.sample_rate == torch_vocoder.sample_rate == 24000
    width = json.loads((tiny_base_dir / "config.json").read_text())["model_args"]["gpt_n_model_channels"]
    for frames, seed in ((12, 0), (5, 1)):  # neither is the export trace's length: the time axis is dynamic
        features = _features(frames, width, seed)
        expected, audio = torch_vocoder.vocode(features), onnx.vocode(features)
        assert audio.dtype == np.float32 and audio.shape == expected.shape
        assert np.abs(audio - expected).max() < 1e-3
        assert np.abs(expected).max() > 0.01


def test_the_export_is_cached_by_the_weights_hash_and_reused(vocoders, host: PluginHost,
                                                            tiny_base_dir: Path):  # noqa: F811
    _, onnx, home = vocoders
    digest, _ = sha256_file(tiny_base_dir / "model.pth")
    cached = home / "cache" / "onnx-vocoder" / f"{digest}.onnx"
    assert onnx.onnx_file == cached and cached.is_file()
    before = cached.stat().st_mtime_ns
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TTS_HOST_HOME", str(home))
        again = host.component("vocoder", NAME).factory.build(model_folder=tiny_base_dir, device="cpu")
    assert again.onnx_file == cached and cached.stat().st_mtime_ns == before
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no temp file left behind


HEAVY = ("torch", "onnxruntime", "onnx", "TTS")
IMPORTS_AT_EACH_STAGE = f"""
import sys
from pathlib import Path
from tts_host.host import PluginHost
host = PluginHost(strict=True).load()
factory = host.component("vocoder", "{NAME}").factory
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
factory.build(model_folder=Path(sys.argv[1]), device="cpu")
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_registration_imports_nothing_heavy_and_a_cached_build_no_torch(vocoders, installed: Path,
                                                                       tiny_base_dir: Path):  # noqa: F811
    _, _, home = vocoders  # its export is in this home's cache
    path = os.pathsep.join(filter(None, [str(installed), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "TTS_HOST_HOME": str(home), "PYTHONPATH": path}
    result = subprocess.run([sys.executable, "-c", IMPORTS_AT_EACH_STAGE, str(tiny_base_dir)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "['onnxruntime']"]


def _xtts_composition(host: PluginHost, **replaced):
    backend = host.backend("xtts").factory
    components = {role: host.component(kind, name).factory for role, (kind, name) in backend.components.items()}
    return {**components, **replaced}, backend.connections


def test_fits_the_xtts_composition_in_place_of_xtts_hifigan(host: PluginHost):
    registration = host.component("vocoder", NAME)
    assert (registration.distribution, registration.version) == ("tts-host-onnx-vocoder", "0.1.0")
    torch_vocoder = host.component("vocoder", "xtts-hifigan").factory
    assert registration.factory.accepts == torch_vocoder.accepts
    assert registration.factory.produces == torch_vocoder.produces
    assert composition_problems(*_xtts_composition(host, vocoder=registration.factory)) == []


def test_a_vocoder_of_another_rate_or_width_is_refused_naming_both(host: PluginHost):
    ours = host.component("vocoder", NAME).factory
    gpt = host.component("acoustic_model", "xtts-gpt").factory
    wrong_rate = dataclasses.replace(ours, name="latents-24k", accepts={
        **ours.accepts, "input": Stream("latents", sample_rate=24000, hop_length=1024)})
    problems = composition_problems(*_xtts_composition(host, vocoder=wrong_rate))
    assert len(problems) == 1 and "\n" not in problems[0]
    assert "vocoder 'latents-24k'" in problems[0] and "acoustic model 'xtts-gpt'" in problems[0]
    assert "22050 Hz where 24000 Hz is expected" in problems[0]
    wide = dataclasses.replace(ours, name="latents-1024", accepts={
        **ours.accepts, "input": dataclasses.replace(ours.accepts["input"], dim=1024)})
    narrow_gpt = dataclasses.replace(gpt, name="gpt-64", produces=dataclasses.replace(gpt.produces, dim=64))
    problems = composition_problems(*_xtts_composition(host, vocoder=wide, acoustic_model=narrow_gpt))
    assert len(problems) == 1 and "\n" not in problems[0]
    assert "vocoder 'latents-1024'" in problems[0] and "acoustic model 'gpt-64'" in problems[0]
    assert "64 dims where 1024 dims is expected" in problems[0]


@pytest.fixture(scope="module")
def cloned_voice(tmp_path_factory: pytest.TempPathFactory, speaker_clips) -> Path:
    """A library home with a tiny XTTS base and a voice cloned from one espeak-ng clip."""
    from cli_helpers import run_cli_here

    home = tmp_path_factory.mktemp("swap-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TTS_HOST_HOME", str(home))
        assert run_cli_here("base", "init", "xtts", "--preset", "tiny")[0] == 0
        code, _, err = run_cli_here("voices", "add", "ann", "--backend", "xtts", "--ref",
                                    str(speaker_clips("A", 1)[0][0]), "--language", "en")
    assert code == 0, err
    return home


def test_speak_with_the_vocoder_swapped_by_name_runs_the_onnx_vocoder(installed: Path, cloned_voice: Path,
                                                                      tmp_path: Path):
    import soundfile as sf

    from cli_helpers import run_cli_here

    env = {"TTS_HOST_HOME": str(cloned_voice)}
    torch_wav, onnx_wav = tmp_path / "torch.wav", tmp_path / "onnx.wav"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TTS_HOST_HOME", str(cloned_voice))
        code, _, err = run_cli_here("speak", "--voice", "ann", "Hello there.", "-o", str(torch_wav))
    assert code == 0, err
    assert not (cloned_voice / "cache" / "onnx-vocoder").exists()  # the default vocoder is the torch one
    swapped = run_cli("speak", "--voice", "ann", "Hello there.", "-o", str(onnx_wav), "--component",
                      f"vocoder={NAME}", path=[installed], env=env)
    assert swapped.returncode == 0, swapped.stderr
    assert len(list((cloned_voice / "cache" / "onnx-vocoder").glob("*.onnx"))) == 1  # the ONNX vocoder made it
    expected, rate = sf.read(torch_wav, dtype="float32")
    actual, onnx_rate = sf.read(onnx_wav, dtype="float32")
    assert rate == onnx_rate == 24000 and actual.shape == expected.shape
    assert float(np.max(np.abs(actual - expected))) <= 2 / 32768  # the same speech, from another runtime


def test_an_incompatible_swap_is_refused_in_one_line_naming_both(cloned_voice: Path, tmp_path: Path):
    out = tmp_path / "never.wav"
    result = run_cli("speak", "--voice", "ann", "Hello there.", "-o", str(out), "--component",
                     "vocoder=xcodec2-decoder", env={"TTS_HOST_HOME": str(cloned_voice)})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "xcodec2-decoder" in lines[0] and "xtts-gpt" in lines[0] and "codec_tokens" in lines[0]
    assert not out.exists()


def test_a_component_chosen_in_the_finetune_config_is_checked_before_any_work(cloned_voice: Path, tmp_path: Path,
                                                                            speaker_clips):
    config = tmp_path / "finetune.yaml"
    config.write_text("epochs: 1\ncomponents:\n  vocoder: no-such-vocoder\n", encoding="utf-8")
    data = speaker_clips("B", 1)[0][0].parent
    result = run_cli("finetune", "--backend", "xtts", "--speaker", "bea", "--data", str(data), "--config", str(config),
                     env={"TTS_HOST_HOME": str(cloned_voice)})
    assert result.returncode == 1 and "no vocoder named 'no-such-vocoder' is installed" in result.stderr
    assert not (cloned_voice / "datasets").exists()  # refused before the data was touched
