"""English text normalisation: numbers, money, times, units and symbols spelled out in words.

Follows GPT-SoVITS v2 (``text/en_normalization/expend.py`` and ``english.text_normalize``), using
``inflect`` for number words. The result holds only letters, spaces and ``' . , ? ! -``; a capital
letter inside a word starts a new word (upstream reads all-capital words letter by letter).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

from .symbols import PUNCTUATION

_MEASUREMENTS = {
    "m": ("meter", "meters"), "km": ("kilometer", "kilometers"),
    "km/h": ("kilometer per hour", "kilometers per hour"), "ft": ("feet", "feet"),
    "L": ("liter", "liters"), "tbsp": ("tablespoon", "tablespoons"), "tsp": ("teaspoon", "teaspoons"),
    "h": ("hour", "hours"), "min": ("minute", "minutes"), "s": ("second", "seconds"),
    "°C": ("degree celsius", "degrees celsius"), "°F": ("degree fahrenheit", "degrees fahrenheit"),
}  # fmt: skip
# Upstream maps these to "," and "'" through a table it compiles with re.escape, so they never
# match; this applies what it meant for ; : and ’ (":" only outside times like 13:30; the
# straight double quote stays dropped, as upstream in effect drops it).
_PUNCT_MAP = {";": ",", "：": ",", "，": ",", "；": ",", "’": "'", "。": ".", "！": "!", "？": "?"}
_PUNCT_MAP_RE = re.compile("|".join(re.escape(key) for key in _PUNCT_MAP) + r"|:(?!\d)|(?<!\d):")
_PUNCT_CLASS = "".join(re.escape(p) for p in PUNCTUATION)
_REPEATED_PUNCT = re.compile(f"([{_PUNCT_CLASS}\\s])([{_PUNCT_CLASS}])+")

_ORDINAL_ITEM = re.compile(r"^(\s*)([0-9]+)\. ", re.MULTILINE)
_COMMA_NUMBER = re.compile(r"([0-9][0-9\,]+[0-9])")
_TIME = re.compile(r"\b([01]?[0-9]|2[0-3]):([0-5][0-9])\b")
_MEASUREMENT = re.compile(r"\b([0-9]+(\.[0-9]+)?(m|km|km/h|ft|L|tbsp|tsp|h|min|s|°C|°F))\b")
_POUNDS_START = re.compile(r"£([0-9\.\,]*[0-9]+)")
_POUNDS_END = re.compile(r"([0-9\.\,]*[0-9]+)£")
_DOLLARS_START = re.compile(r"\$([0-9\.\,]*[0-9]+)")
_DOLLARS_END = re.compile(r"([(0-9\.\,]*[0-9]+)\$")
_DECIMAL = re.compile(r"([0-9]+\.\s*[0-9]+)")
_FRACTION = re.compile(r"([0-9]+/[0-9]+)")
_ORDINAL = re.compile(r"[0-9]+(st|nd|rd|th)")
_NUMBER = re.compile(r"[0-9]+")
_POWER = "⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ"
_OPERAND = rf"((-?)((\d+)(\.\d+)?[{_POWER}]*)|(\.\d+[{_POWER}]*)|([A-Za-z][{_POWER}]*))"
_ASMD = re.compile(_OPERAND + r"\s+([\+\-\×÷=])\s+" + _OPERAND)
_ASMD_WORDS = {"+": " plus ", "-": " minus ", "×": " times ", "÷": " divided by ", "=": " Equals "}
_NEGATIVE = re.compile(r"(^|\s+)(-)(\d+)")


@functools.lru_cache(maxsize=1)
def _inflect() -> Any:
    import inflect

    return inflect.engine()


def _words(number: int | str, **options: Any) -> str:
    return _inflect().number_to_words(number, **options)


def _time(m: re.Match) -> str:
    hours, minutes = int(m.group(1)), int(m.group(2))
    period = "a.m." if hours < 12 else "p.m."
    if hours > 12:
        hours -= 12
    if minutes == 0:
        return f"{_words(hours)} o'clock {period}"
    return f"{_words(hours)} {_words(minutes)} {period}"


def _measurement(m: re.Match) -> str:
    unit = m.group(3)
    number = int(m.group(1).replace(unit, "").replace(".", ""))
    plural = 0 if m.group(2) is None and number == 1 else 1
    return m.group(1).replace(unit, " " + _MEASUREMENTS[unit][plural])


def _money(m: re.Match, unit: tuple[str, str], sub: tuple[str, str]) -> str:
    parts = m.group(1).replace("(", "").replace(",", "").split(".")
    if len(parts) > 2:
        return m.group(1) + " " + unit[1]
    whole = int(parts[0]) if parts[0] else 0
    cents = int(parts[1].ljust(2, "0")) if len(parts) > 1 and parts[1] else 0
    spoken = []
    if whole:
        spoken.append(f"{whole} {unit[0] if whole == 1 else unit[1]}")
    if cents:
        spoken.append(f"{cents} {sub[0] if cents == 1 else sub[1]}")
    return " and ".join(spoken) if spoken else f"zero {unit[1]}"


def _pounds(m: re.Match) -> str:
    return _money(m, ("pound", "pounds"), ("penny", "pence"))


def _dollars(m: re.Match) -> str:
    return _money(m, ("dollar", "dollars"), ("cent", "cents"))


def _decimal(m: re.Match) -> str:
    whole, decimals = m.group(1).split(".", 1)
    return whole + " point " + " ".join(decimals)


def _fraction(m: re.Match) -> str:
    numerator, denominator = (int(x) for x in m.group(0).split("/"))
    top = _words(numerator)
    if denominator == 1:
        return top
    if denominator == 2:
        return f"{top} {'half' if numerator == 1 else 'halves'}"
    bottom = _inflect().ordinal(_words(denominator))
    return f"{top} {bottom}{'s' if numerator > 1 else ''}"


def _number(m: re.Match) -> str:
    num = int(m.group(0))
    if 1000 < num < 3000:  # years: 1990 -> nineteen ninety, 2005 -> two thousand five
        if num == 2000:
            return "two thousand"
        if 2000 < num < 2010:
            return "two thousand " + _words(num % 100)
        if num % 100 == 0:
            return _words(num // 100) + " hundred"
        return _words(num, andword="", zero="oh", group=2).replace(", ", " ")
    return _words(num, andword="")


def _map_punctuation(text: str) -> str:
    return _PUNCT_MAP_RE.sub(lambda m: _PUNCT_MAP.get(m.group(), ","), text)


def normalize(text: str) -> str:
    """Spell out numbers and symbols (upstream ``en_normalization.expend.normalize``).

    Two upstream slips are not copied: a number followed by ``". "`` is read as an ordinal only
    at the start of a line (a list item), not mid-text ("I am 25. He" is not "twenty-fifth"),
    and a negative number keeps the space before it.
    """
    text = _ORDINAL_ITEM.sub(lambda m: m.group(1) + _inflect().ordinal(m.group(2)) + ", ", text)
    while _ASMD.search(text):
        text = _ASMD.sub(lambda m: m.group(1) + _ASMD_WORDS[m.group(8)] + m.group(9), text)
    text = _NEGATIVE.sub(lambda m: m.group(1) + "negative " + m.group(3), text)
    text = _COMMA_NUMBER.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _TIME.sub(_time, text)
    text = _MEASUREMENT.sub(_measurement, text)
    text = _POUNDS_START.sub(_pounds, text)
    text = _POUNDS_END.sub(_pounds, text)
    text = _DOLLARS_START.sub(_dollars, text)
    text = _DOLLARS_END.sub(_dollars, text)
    text = _DECIMAL.sub(_decimal, text)
    text = _FRACTION.sub(_fraction, text)
    text = _ORDINAL.sub(lambda m: _words(m.group(0)), text)
    text = _NUMBER.sub(_number, text)
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    text = text.replace("%", " percent")
    text = re.sub(r"[^ A-Za-z'.,?!\-]", "", text)
    text = re.sub(r"(?i)i\.e\.", "that is", text)
    text = re.sub(r"(?i)e\.g\.", "for example", text)
    return re.sub(r"(?<!^)(?<![\s])([A-Z])", r" \1", text)  # split capitals: "GPU" -> "G P U"


def text_normalize(text: str) -> str:
    """Normalise English text as upstream v2 does before its g2p: punctuation, words, repeats."""
    text = normalize(_map_punctuation(text))
    return _REPEATED_PUNCT.sub(r"\1", text)  # also drops a mark right after a space: "a , b"
