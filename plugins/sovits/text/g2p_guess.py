"""Pronunciations for words CMUdict lacks: g2p-en's GRU encoder-decoder, run in numpy.

The PyPI package ``g2p-en`` ships the trained weights as ``checkpoint20.npz``. Importing ``g2p_en``
would start nltk downloads (which cannot work offline), so this module never imports it: it only
locates the package folder and reads the npz. The network is a one-layer GRU encoder over the
word's letters and a one-layer GRU decoder that greedily emits ARPAbet phonemes (at most 20), the
same computation as ``g2p_en.G2p.predict`` (same gate layout as torch's ``nn.GRU``).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from tts_host.errors import TTSHostError

GRAPHEMES = ("<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz")
PHONEMES = (
    "<pad>", "<unk>", "<s>", "</s>",
    "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2", "AO0", "AO1", "AO2",
    "AW0", "AW1", "AW2", "AY0", "AY1", "AY2", "B", "CH", "D", "DH", "EH0", "EH1", "EH2",
    "ER0", "ER1", "ER2", "EY0", "EY1", "EY2", "F", "G", "HH", "IH0", "IH1", "IH2",
    "IY0", "IY1", "IY2", "JH", "K", "L", "M", "N", "NG", "OW0", "OW1", "OW2", "OY0", "OY1", "OY2",
    "P", "R", "S", "SH", "T", "TH", "UH0", "UH1", "UH2", "UW", "UW0", "UW1", "UW2",
    "V", "W", "Y", "Z", "ZH",
)  # fmt: skip
_G2IDX = {g: i for i, g in enumerate(GRAPHEMES)}
_UNK, _START, _END = 1, 2, 3  # grapheme <unk>; phoneme <s> and </s>
MAX_PHONEMES = 20


def g2p_en_folder() -> Path:
    """The installed ``g2p_en`` package folder, found without importing it."""
    spec = importlib.util.find_spec("g2p_en")
    if spec is None or not spec.submodule_search_locations:
        raise TTSHostError("the SoVITS English front end needs g2p-en: `pip install 'tts-host[sovits]'`")
    return Path(list(spec.submodule_search_locations)[0])


@functools.lru_cache(maxsize=1)
def _weights() -> dict[str, np.ndarray]:
    path = g2p_en_folder() / "checkpoint20.npz"
    if not path.is_file():
        raise TTSHostError(f"{path}: expected g2p-en's checkpoint20.npz, actual: no such file")
    with np.load(path) as npz:
        return {name: np.asarray(npz[name], dtype=np.float32) for name in npz.files}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _gru_cell(x: np.ndarray, h: np.ndarray, w: dict[str, np.ndarray], prefix: str) -> np.ndarray:
    """One GRU step; gates stacked as (reset, update, new) like torch's ``nn.GRU``."""
    gi = x @ w[prefix + "w_ih"].T + w[prefix + "b_ih"]
    gh = h @ w[prefix + "w_hh"].T + w[prefix + "b_hh"]
    size = h.shape[-1]
    r = _sigmoid(gi[:, :size] + gh[:, :size])
    z = _sigmoid(gi[:, size : 2 * size] + gh[:, size : 2 * size])
    n = np.tanh(gi[:, 2 * size :] + r * gh[:, 2 * size :])
    return (1.0 - z) * n + z * h


@functools.lru_cache(maxsize=4096)
def _predict(word: str) -> tuple[str, ...]:
    w = _weights()
    ids = [_G2IDX.get(char, _UNK) for char in word] + [_G2IDX["</s>"]]
    h = np.zeros((1, w["enc_w_hh"].shape[1]), np.float32)
    for index in ids:  # encoder over the letters and </s>; its last state starts the decoder
        h = _gru_cell(w["enc_emb"][[index]], h, w, "enc_")
    previous = _START
    out: list[str] = []
    for _ in range(MAX_PHONEMES):
        h = _gru_cell(w["dec_emb"][[previous]], h, w, "dec_")
        logits = h @ w["fc_w"].T + w["fc_b"]
        previous = int(logits.argmax())
        if previous == _END:
            break
        out.append(PHONEMES[previous] if previous < len(PHONEMES) else "<unk>")
    return tuple(out)


def guess_phones(word: str) -> list[str]:
    """ARPAbet phonemes (with stress digits) that g2p-en's network predicts for ``word``.

    The word is lower-cased; characters outside a-z are read as ``<unk>``, as in g2p-en. The result
    may hold ``UW`` (without stress) or ``<unk>``, which the caller filters as upstream does.
    """
    return list(_predict(word.lower()))
