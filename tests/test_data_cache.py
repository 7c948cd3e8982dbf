"""The feature cache: keyed by content, producer and parameters; corruption detected and recomputed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_helpers import copy_clips
from tts_host.data import FeatureCache, prepare_dataset, producer_id
from tts_host.data.cache import cache_key
from tts_host.data.errors import DatasetError

AUDIO = "ab" * 32
PRODUCER = producer_id("mel-stats", "cd" * 32)


class Counted:
    """A compute function that counts its calls and returns deterministic arrays."""

    def __init__(self, seed: int = 0) -> None:
        self.calls = 0
        self.seed = seed

    def __call__(self) -> dict[str, np.ndarray]:
        self.calls += 1
        rng = np.random.default_rng(self.seed)
        return {"codes": rng.integers(0, 1024, size=(1, 37)).astype(np.int64),
                "latent": rng.standard_normal((4, 8)).astype(np.float32)}


def test_second_lookup_is_served_from_disk(tts_home: Path):
    compute = Counted()
    first = FeatureCache().get_or_compute(AUDIO, PRODUCER, {"hop": 256}, compute)
    cache = FeatureCache()  # a new process would see the same files
    second = cache.get_or_compute(AUDIO, PRODUCER, {"hop": 256}, compute)
    assert compute.calls == 1 and cache.stats.hits == 1 and cache.stats.computed == 0
    assert set(second) == {"codes", "latent"}
    for name in first:
        assert second[name].dtype == first[name].dtype and np.array_equal(second[name], first[name])
    entries = list((tts_home / "cache" / "features").rglob("*.safetensors"))
    assert entries == [cache.path_for(cache_key(AUDIO, PRODUCER, {"hop": 256}))]


@pytest.mark.parametrize("change", [
    {"audio": "ef" * 32}, {"producer": producer_id("mel-stats", "00" * 32)}, {"params": {"hop": 320}}])
def test_new_audio_weights_or_params_compute_again(change):
    cache, compute = FeatureCache(), Counted()
    cache.get_or_compute(AUDIO, PRODUCER, {"hop": 256}, compute)
    cache.get_or_compute(change.get("audio", AUDIO), change.get("producer", PRODUCER),
                         change.get("params", {"hop": 256}), compute)
    assert compute.calls == 2


def test_parameter_order_does_not_matter():
    cache, compute = FeatureCache(), Counted()
    cache.get_or_compute(AUDIO, PRODUCER, {"hop": 256, "n_mels": 80}, compute)
    cache.get_or_compute(AUDIO, PRODUCER, {"n_mels": 80, "hop": 256}, compute)
    assert compute.calls == 1


@pytest.mark.parametrize("damage", ["flip_data_byte", "truncate", "garbage", "swap_entries"])
def test_corrupt_entry_is_detected_and_recomputed(tmp_path: Path, damage: str):
    cache, compute = FeatureCache(tmp_path / "cache"), Counted()
    expected = cache.get_or_compute(AUDIO, PRODUCER, {}, compute)
    other = cache.get_or_compute("ef" * 32, PRODUCER, {}, Counted(seed=1))
    path = cache.path_for(cache_key(AUDIO, PRODUCER, {}))
    data = bytearray(path.read_bytes())
    if damage == "flip_data_byte":
        data[-5] ^= 0x40
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "garbage":
        path.write_bytes(b"not a safetensors file")
    else:  # a valid file of another entry under this entry's name
        path.write_bytes(cache.path_for(cache_key("ef" * 32, PRODUCER, {})).read_bytes())
    fresh = FeatureCache(tmp_path / "cache")
    result = fresh.get_or_compute(AUDIO, PRODUCER, {}, compute)
    assert compute.calls == 2 and fresh.stats.corrupt == 1 and fresh.stats.computed == 1
    assert np.array_equal(result["latent"], expected["latent"]) and not np.array_equal(result["latent"], other["latent"])
    assert FeatureCache(tmp_path / "cache").get(AUDIO, PRODUCER, {}) is not None


def test_bad_producer_output_is_refused():
    with pytest.raises(DatasetError, match="must return a non-empty dict of arrays"):
        FeatureCache().get_or_compute(AUDIO, PRODUCER, {}, lambda: {})
    with pytest.raises(DatasetError, match="expected str -> numpy array"):
        FeatureCache().get_or_compute(AUDIO, PRODUCER, {}, lambda: {"x": [1, 2]})
    with pytest.raises(DatasetError, match="JSON values"):
        FeatureCache().get_or_compute(AUDIO, PRODUCER, {"f": object()}, Counted())


def test_features_of_a_prepared_dataset_are_computed_once(tmp_path: Path, speaker_clips):
    copy_clips(speaker_clips("A", 5), tmp_path / "src")
    calls = []

    def mel_stats(clip):
        def compute():
            import librosa

            calls.append(clip.id)
            mel = librosa.feature.melspectrogram(y=clip.read(), sr=22050, n_mels=40)
            return {"mean": np.log(mel + 1e-5).mean(axis=1).astype(np.float32)}
        return compute

    for _ in range(2):
        dataset = prepare_dataset(tmp_path / "src", tmp_path / "out", "a")
        cache = FeatureCache()
        stats = [cache.get_or_compute(clip.sha256, PRODUCER, {"n_mels": 40}, mel_stats(clip)) for clip in dataset.clips]
    assert len(calls) == 5 and cache.stats.hits == 5 and all(s["mean"].shape == (40,) for s in stats)
