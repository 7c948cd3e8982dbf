"""Mandarin text -> GPT-SoVITS v2 phones and ``word2ph``, following upstream ``text/chinese2.py``.

jieba segments the text with parts of speech, pypinyin gives each word's initials and
tone-numbered finals, the tone sandhi rules and 儿化 adjust them, and the opencpop-strict table
maps each syllable to an (initial, final) pair of v2 symbols, the final carrying the tone digit.
Each Chinese character gives two phones and each punctuation mark one; ``word2ph`` lists these
counts per character of the normalised text (to spread per-character BERT features over phones).

Upstream picks readings of polyphonic characters with the g2pW model; this module uses
pypinyin's own phrase dictionary (upstream's ``is_g2pw=False`` path) instead.
"""

from __future__ import annotations

import functools
import re
from types import ModuleType

from . import tone_sandhi
from .symbols import PUNCTUATION
from .zh_normalize import normalize

# opencpop-strict.txt: per v2 initial, the pinyin remainders after it, "rest=final" where the final
# symbol differs from the remainder (AA/EE/OO are the zero-initial a/e/o rows: pinyin = remainder).
_OPENCPOP = """
AA: a ai an ang ao
b: a ai an ang ao ei en eng i ian iao ie in ing o u
c: a ai an ang ao e ei en eng i=i0 ong ou u uan ui un uo
ch: a ai an ang ao e en eng i=ir ong ou u ua uai uan uang ui un uo
d: a ai an ang ao e ei en eng i ia ian iao ie ing iu ong ou u uan ui un uo
EE: e ei en eng er
f: a an ang ei en eng o ou u
g: a ai an ang ao e ei en eng ong ou u ua uai uan uang ui un uo
h: a ai an ang ao e ei en eng ong ou u ua uai uan uang ui un uo
j: i ia ian iang iao ie in ing iong iu u=v v uan=van van ue=ve ve un=vn vn
k: a ai an ang ao e ei en eng ong ou u ua uai uan uang ui un uo
l: a ai an ang ao e ei eng i ia ian iang iao ie in ing iu o ong ou u uan un uo v ve
m: a ai an ang ao e ei en eng i ian iao ie in ing iu o ou u
n: a ai an ang ao e ei en eng i ian iang iao ie in ing iu ong ou u uan un uo v ve
OO: o ou
p: a ai an ang ao ei en eng i ian iao ie in ing o ou u
q: i ia ian iang iao ie in ing iong iu u=v v uan=van van ue=ve ve un=vn vn
r: an ang ao e en eng i=ir ong ou u ua uan ui un uo
s: a ai an ang ao e en eng i=i0 ong ou u uan ui un uo
sh: a ai an ang ao e ei en eng i=ir ou u ua uai uan uang ui un uo
t: a ai an ang ao e ei eng i ian iao ie ing ong ou u uan ui un uo
w: a ai an ang ei en eng o u
x: i ia ian iang iao ie in ing iong iu u=v v uan=van van ue=ve ve un=vn vn
y: a an=En ang ao e=E i in ing o ong ou u=v v uan=van van ue=ve ve un=vn vn
z: a ai an ang ao e ei en eng i=i0 ong ou u uan ui un uo
zh: a ai an ang ao e ei en eng i=ir ong ou u ua uai uan uang ui un uo
"""


def _opencpop() -> dict[str, tuple[str, str]]:
    table = {}
    for line in _OPENCPOP.strip().splitlines():
        initial, rests = line.split(":")
        prefix = "" if initial in ("AA", "EE", "OO") else initial
        for item in rests.split():
            rest, _, final = item.partition("=")
            table[prefix + rest] = (initial, final or rest)
    return table


PINYIN_TO_SYMBOLS: dict[str, tuple[str, str]] = _opencpop()  # 429 syllables

_REP_MAP = {
    "：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ",",
    "...": "…", "$": ".", "/": ",", "—": "-", "~": "…", "～": "…",
}  # fmt: skip
_REP_RE = re.compile("|".join(re.escape(key) for key in _REP_MAP))
_PUNCT_CLASS = "".join(re.escape(p) for p in PUNCTUATION)
_NOT_KEPT = re.compile(r"[^\u4e00-\u9fa5" + _PUNCT_CLASS + r"]+")
_REPEATED_PUNCT = re.compile(f"([{_PUNCT_CLASS}])([{_PUNCT_CLASS}])+")

MUST_ERHUA = frozenset("小院儿 胡同儿 范儿 老汉儿 撒欢儿 寻老礼儿 妥妥儿 媳妇儿".split())
NOT_ERHUA = frozenset(
    """
    虐儿 为儿 护儿 瞒儿 救儿 替儿 有儿 一儿 我儿 俺儿 妻儿 拐儿 聋儿 乞儿 患儿 幼儿 孤儿 婴儿 婴幼儿 连体儿
    脑瘫儿 流浪儿 体弱儿 混血儿 蜜雪儿 舫儿 祖儿 美儿 应采儿 可儿 侄儿 孙儿 侄孙儿 女儿 男儿 红孩儿 花儿 虫儿
    马儿 鸟儿 猪儿 猫儿 狗儿 少儿
    """.split()
)


def replace_punctuation(text: str) -> str:
    """Map Chinese punctuation to the v2 marks and drop everything but Chinese characters and marks."""
    text = text.replace("嗯", "恩").replace("呣", "母")
    text = _REP_RE.sub(lambda m: _REP_MAP[m.group()], text)
    return _NOT_KEPT.sub("", text)


def text_normalize(text: str) -> str:
    """Normalise Chinese text as upstream does: verbalise numbers, map punctuation, collapse repeats."""
    out = "".join(replace_punctuation(sentence) for sentence in normalize(text))
    return _REPEATED_PUNCT.sub(r"\1", out)


@functools.lru_cache(maxsize=1)
def _posseg() -> ModuleType:
    """jieba's part-of-speech segmenter, loaded on first use."""
    return tone_sandhi.load_jieba().posseg


def _initials_finals(word: str) -> tuple[list[str], list[str]]:
    from pypinyin import Style, lazy_pinyin

    initials = lazy_pinyin(word, neutral_tone_with_five=True, style=Style.INITIALS)
    return initials, tone_sandhi.finals_tone3(word)


def _merge_erhua(initials: list[str], finals: list[str], word: str, pos: str) -> tuple[list[str], list[str]]:
    """儿化: a word-final 儿 takes the tone of the syllable before it (er2/er5 -> er + that tone)."""
    if finals and len(word) >= len(finals) and word[len(finals) - 1] == "儿" and finals[-1] == "er1":
        finals[-1] = "er2"
    if word not in MUST_ERHUA and (word in NOT_ERHUA or pos in {"a", "j", "nr"}):
        return initials, finals
    if len(finals) != len(word):
        return initials, finals
    last = len(finals) - 1
    if last >= 1 and word[last] == "儿" and finals[last] in {"er2", "er5"} and word[-2:] not in NOT_ERHUA:
        finals[last] = "er" + finals[last - 1][-1]
    return initials, finals


def _syllable_phones(initial: str, final: str) -> list[str]:
    """One syllable's v2 phones: punctuation as itself, else the opencpop (initial, final+tone)."""
    if initial == final:
        return [initial] if initial in PUNCTUATION else ["UNK"]
    body, tone = final[:-1], final[-1:]
    if not tone or tone not in "12345":
        return ["UNK"]
    pinyin = initial + body
    if initial:
        pinyin = initial + {"uei": "ui", "iou": "iu", "uen": "un"}.get(body, body)
    elif pinyin in ("ing", "i", "in", "u"):
        pinyin = {"ing": "ying", "i": "yi", "in": "yin", "u": "wu"}[pinyin]
    elif pinyin[:1] in ("v", "e", "i", "u"):
        pinyin = {"v": "yu", "e": "e", "i": "y", "u": "w"}[pinyin[0]] + pinyin[1:]
    if pinyin not in PINYIN_TO_SYMBOLS:
        return ["UNK"]
    new_initial, new_final = PINYIN_TO_SYMBOLS[pinyin]
    return [new_initial, new_final + tone]


def _sentence_phones(sentence: str) -> tuple[list[str], list[int]]:
    sentence = re.sub("[a-zA-Z]+", "", sentence)
    initials: list[str] = []
    finals: list[str] = []
    for word, pos in tone_sandhi.pre_merge(_posseg().lcut(sentence)):
        if pos == "eng":
            continue
        word_initials, word_finals = _initials_finals(word)
        word_finals = tone_sandhi.modified_tone(word, pos, word_finals)
        word_initials, word_finals = _merge_erhua(word_initials, word_finals, word, pos)
        initials += word_initials
        finals += word_finals
    phones: list[str] = []
    word2ph: list[int] = []
    for initial, final in zip(initials, finals):
        syllable = _syllable_phones(initial, final)
        phones += syllable
        word2ph.append(len(syllable))
    return phones, word2ph


def chinese_phones(text: str) -> tuple[list[str], list[int]]:
    """Phones and ``word2ph`` for already normalised Chinese text (see :func:`text_normalize`).

    ``word2ph`` has one count per character of ``text`` (2 for a character, 1 for a mark) and
    sums to ``len(phones)``. A syllable outside the v2 table becomes the single phone ``UNK``.
    """
    pieces = [piece for piece in re.split(f"(?<=[{_PUNCT_CLASS}])\\s*", text) if piece.strip()]
    phones: list[str] = []
    word2ph: list[int] = []
    for piece in pieces:
        piece_phones, piece_word2ph = _sentence_phones(piece)
        phones += piece_phones
        word2ph += piece_word2ph
    return phones, word2ph
