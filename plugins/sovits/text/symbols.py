"""The GPT-SoVITS v2 phoneme inventory: 732 symbols, a phoneme's id is its index.

The order is upstream's (``GPT_SoVITS/text/symbols2.py``): the 322 v1 symbols sorted by code point
(pad, Mandarin initials and tone-numbered finals, Japanese, punctuation and pauses, ARPAbet), then
the Japanese pitch marks ``[`` and ``]``, then 29 Korean jamo (sorted), then 379 Cantonese symbols
(sorted, each prefixed with ``Y``). A published v2 model's embedding rows follow this order, so it
must never change; ``SYMBOLS_MD5`` pins it (md5 of ``"\\n".join(SYMBOLS)``).
"""

from __future__ import annotations

import hashlib

PAD = "_"
PUNCTUATION = ("!", "?", "…", ",", ".", "-")
# Pauses: SP (a comma-like pause), SP2/SP3 (the ￥ and ^ pause marks of Chinese text), UNK.
PAUSES = ("SP", "SP2", "SP3", "UNK")

_MANDARIN_INITIALS = "AA EE OO b c ch d f g h j k l m n p q r s sh t w x y z zh".split()
_MANDARIN_FINALS = (
    "E En a ai an ang ao e ei en eng er i i0 ia ian iang iao ie in ing iong ir iu "
    "o ong ou u ua uai uan uang ui un uo v van ve vn"
).split()
_JAPANESE = "I N U a b by ch cl d dy e f g gy h hy i j k ky m my n ny o p py r ry s sh t ts u v w y z".split()
_ARPABET = (
    "AA0 AA1 AA2 AE0 AE1 AE2 AH0 AH1 AH2 AO0 AO1 AO2 AW0 AW1 AW2 AY0 AY1 AY2 B CH D DH "
    "EH0 EH1 EH2 ER ER0 ER1 ER2 EY0 EY1 EY2 F G HH IH IH0 IH1 IH2 IY0 IY1 IY2 JH K L M N NG "
    "OW0 OW1 OW2 OY0 OY1 OY2 P R S SH T TH UH0 UH1 UH2 UW0 UW1 UW2 V W Y Z ZH"
).split()
_KOREAN = "ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎㄲㄸㅃㅆㅉㅏㅓㅗㅜㅡㅣㅐㅔ空停"
# Cantonese: "base:tones", tone "0" meaning the bare base; each symbol is "Y" + base (+ tone).
_CANTONESE = (
    "a:0123456 aa:0123456 aai:123456 aak:123456 aam:123456 aan:123456 aang:123456 aap:123456 "
    "aat:123456 aau:123456 ai:0123456 ak:0123456 am:123456 an:123456 ang:123456 ap:123456 "
    "at:123456 au:0123456 b:0 c:0 d:0 e:0123456 ei:123456 ek:123456 eng:123456 eoi:123456 "
    "eon:123456 eot:123456 f:0 g:0123456 gw:0 h:0 i:123456 ik:123456 im:123456 in:123456 "
    "ing:123456 ip:123456 it:123456 iu:123456 j:0 k:0123456 kw:0 l:0 m:0123456 n:0123456 ng:0 "
    "o:0123456 oe:123456 oek:123456 oeng:123456 oi:0123456 ok:0123456 on:0123456 ong:123456 "
    "ot:123456 ou:0123456 p:0123456 s:0 t:0123456 u:123456 ui:123456 uk:0123456 un:123456 "
    "ung:123456 ut:123456 w:0 yu:123456 yun:123456 yut:123456 z:0"
)


def _cantonese() -> list[str]:
    out = []
    for group in _CANTONESE.split():
        base, tones = group.split(":")
        out += ["Y" + base + ("" if tone == "0" else tone) for tone in tones]
    return out


def _build() -> tuple[str, ...]:
    finals = [final + tone for tone in "12345" for final in _MANDARIN_FINALS]
    v1 = sorted(set([PAD, *_MANDARIN_INITIALS, *finals, *_JAPANESE, *PUNCTUATION, *PAUSES, *_ARPABET]))
    return tuple(v1 + ["[", "]"] + sorted(_KOREAN) + sorted(_cantonese()))


SYMBOLS: tuple[str, ...] = _build()
SYMBOL_ID: dict[str, int] = {symbol: index for index, symbol in enumerate(SYMBOLS)}
SYMBOLS_MD5 = "2496328db31f8ce15e5f98756508862e"
ARPABET: frozenset[str] = frozenset(_ARPABET)


def symbols_md5(symbols: tuple[str, ...] = SYMBOLS) -> str:
    """md5 of ``"\\n".join(symbols)``: equals ``SYMBOLS_MD5`` for the upstream v2 list."""
    return hashlib.md5("\n".join(symbols).encode("utf-8")).hexdigest()


def to_ids(phones: list[str]) -> list[int]:
    """Map phones to v2 ids; a phone outside the inventory becomes ``UNK`` (as upstream's cleaner does)."""
    unk = SYMBOL_ID["UNK"]
    return [SYMBOL_ID.get(phone, unk) for phone in phones]
