"""Chinese text normalisation: numbers, dates, times, units and symbols read out in characters.

Follows GPT-SoVITS v2's ``text/zh_normalization`` (from PaddleSpeech): full-width letters and digits
become half-width, the text is split after sentence punctuation, and each piece has dates,
times, ranges, temperatures, units, arithmetic, fractions, percentages, phone numbers and plain
numbers verbalised in that order, after traditional characters are simplified.
"""

from __future__ import annotations

import re
import string

from .zh_t2s import to_simplified

DIGITS = dict(zip("0123456789", "零一二三四五六七八九"))
_UNITS = ((8, "亿"), (4, "万"), (3, "千"), (2, "百"), (1, "十"))  # largest first

_F2H = {ord(c) + 65248: ord(c) for c in string.ascii_letters + string.digits}
_F2H[0x3000] = ord(" ")
_SENTENCE_SPLITTER = re.compile(r"([：、，；。？！,;?!][”’]?)")


def verbalize_digits(digits: str, alt_one: bool = False) -> str:
    """Read digit by digit: ``"2024"`` -> 二零二四 (with ``alt_one``, 一 is read 幺 as in codes)."""
    out = "".join(DIGITS[d] for d in digits)
    return out.replace("一", "幺") if alt_one else out


def _cardinal_parts(value: str, use_zero: bool = True) -> list[str]:
    stripped = value.lstrip("0")
    if not stripped:
        return []
    if len(stripped) == 1:
        if use_zero and len(stripped) < len(value):
            return [DIGITS["0"], DIGITS[stripped]]
        return [DIGITS[stripped]]
    power, unit = next((p, u) for p, u in _UNITS if p < len(stripped))
    return _cardinal_parts(value[:-power]) + [unit] + _cardinal_parts(value[-power:])


def verbalize_cardinal(value: str) -> str:
    """Read an integer string as a number: ``"105"`` -> 一百零五, ``"12"`` -> 十二."""
    value = value.lstrip("0")
    if not value:
        return DIGITS["0"]
    parts = _cardinal_parts(value)
    if len(parts) >= 2 and parts[0] == "一" and parts[1] == "十":
        parts = parts[1:]
    return "".join(parts)


def num2str(value: str) -> str:
    """Read ``"3.20"`` -> 三点二, ``".5"`` -> 零点五, ``"12"`` -> 十二."""
    integer, _, decimal = value.partition(".")
    out = verbalize_cardinal(integer) if integer else ""
    decimal = decimal.rstrip("0") + "0" if decimal.endswith("0") else decimal
    if decimal:
        out = (out or "零") + "点" + verbalize_digits(decimal)
    return out


def _time_num(value: str) -> str:
    out = num2str(value.lstrip("0"))
    return DIGITS["0"] + out if value.startswith("0") else out


_RE_DATE = re.compile(r"(\d{4}|\d{2})年((0?[1-9]|1[0-2])月)?(((0?[1-9])|((1|2)[0-9])|30|31)([日号]))?")
_RE_DATE2 = re.compile(r"(\d{4})([- /.])(0[1-9]|1[012])\2(0[1-9]|[12][0-9]|3[01])")
_TIME = r"([0-1]?[0-9]|2[0-3]):([0-5][0-9])(:([0-5][0-9]))?"
_RE_TIME = re.compile(_TIME)
_RE_TIME_RANGE = re.compile(_TIME + r"(~|-)" + _TIME)


def _date(m: re.Match) -> str:
    out = f"{verbalize_digits(m.group(1))}年"
    if m.group(3):
        out += f"{verbalize_cardinal(m.group(3))}月"
    if m.group(5):
        out += f"{verbalize_cardinal(m.group(5))}{m.group(9)}"
    return out


def _date2(m: re.Match) -> str:
    return f"{verbalize_digits(m.group(1))}年{verbalize_cardinal(m.group(3))}月{verbalize_cardinal(m.group(4))}日"


def _clock(hour: str, minute: str, second: str | None) -> str:
    out = f"{num2str(hour)}点"
    if minute.lstrip("0"):
        out += "半" if int(minute) == 30 else f"{_time_num(minute)}分"
    if second and second.lstrip("0"):
        out += f"{_time_num(second)}秒"
    return out


def _time(m: re.Match) -> str:
    out = _clock(m.group(1), m.group(2), m.group(4))
    if len(m.groups()) > 5:  # a range (upstream reads the end as 半 when the start minute is 30)
        out += "至" + _clock(m.group(6), m.group(7), m.group(9))
    return out


_NUM = r"((-?)((\d+)(\.\d+)?)|(\.(\d+)))"
_TO_UNITS = r"(%|°C|℃|度|摄氏度|cm2|cm²|cm3|cm³|cm|db|ds|kg|km|m2|m²|m³|m3|ml|m|mm|s)"
_RE_TO_RANGE = re.compile(_NUM + _TO_UNITS + "[~]" + _NUM + _TO_UNITS)
_RE_TEMPERATURE = re.compile(r"(-?)(\d+(\.\d+)?)(°C|℃|度|摄氏度)")
_MEASURES = {
    "cm2": "平方厘米", "cm²": "平方厘米", "cm3": "立方厘米", "cm³": "立方厘米", "cm": "厘米",
    "db": "分贝", "ds": "毫秒", "kg": "千克", "km": "千米", "m2": "平方米", "m²": "平方米",
    "m³": "立方米", "m3": "立方米", "ml": "毫升", "m": "米", "mm": "毫米", "s": "秒",
}  # fmt: skip
_POWER = "⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ"
_OPERAND = rf"((-?)((\d+)(\.\d+)?[{_POWER}]*)|(\.\d+[{_POWER}]*)|([A-Za-z][{_POWER}]*))"
_RE_ASMD = re.compile(_OPERAND + r"([\+\-\×÷=])" + _OPERAND)
_ASMD = {"+": "加", "-": "减", "×": "乘", "÷": "除", "=": "等于"}
_RE_POWER = re.compile(f"[{_POWER}]+")
_RE_FRAC = re.compile(r"(-?)(\d+)/(\d+)")
_RE_PERCENTAGE = re.compile(r"(-?)(\d+(\.\d+)?)%")
_RE_MOBILE = re.compile(r"(?<!\d)((\+?86 ?)?1([38]\d|5[0-35-9]|7[678]|9[89])\d{8})(?!\d)")
_RE_TELEPHONE = re.compile(r"(?<!\d)((0(10|2[1-3]|[3-9]\d{2})-?)?[1-9]\d{6,7})(?!\d)")
_RE_NATIONAL_NUMBER = re.compile(r"(400)(-)?\d{3}(-)?\d{4}")
_RE_RANGE = re.compile(r"(?<![\d\+\-\×÷=])((-?)((\d+)(\.\d+)?))[-~]((-?)((\d+)(\.\d+)?))(?![\d\+\-\×÷=])")
_RE_NEGATIVE = re.compile(r"(-)(\d+)")
_RE_VERSION = re.compile(r"((\d+)(\.\d+)(\.\d+)?(\.\d+)+)")
_RE_DECIMAL = re.compile(r"(-?)((\d+)(\.\d+))|(\.(\d+))")
_QUANTIFIERS = (
    "(处|台|架|枚|趟|幅|平|方|堵|间|床|株|批|项|例|列|篇|栋|注|亩|封|艘|把|目|套|段|人|所|朵|匹|张|座|回|场|尾|条|个|首|阙|阵|网|炮|"
    "顶|丘|棵|只|支|袭|辆|挑|担|颗|壳|窠|曲|墙|群|腔|砣|座|客|贯|扎|捆|刀|令|打|手|罗|坡|山|岭|江|溪|钟|队|单|双|对|出|口|头|脚|板|跳|"
    "枝|件|贴|针|线|管|名|位|身|堂|课|本|页|家|户|层|丝|毫|厘|分|钱|两|斤|担|铢|石|钧|锱|忽|(千|毫|微)克|毫|厘|(公)分|分|寸|尺|丈|里|"
    "寻|常|铺|程|(千|分|厘|毫|微)米|米|撮|勺|合|升|斗|石|盘|碗|碟|叠|桶|笼|盆|盒|杯|钟|斛|锅|簋|篮|盘|桶|罐|瓶|壶|卮|盏|箩|箱|煲|啖|袋|"
    "钵|年|月|日|季|刻|时|周|天|秒|分|小时|旬|纪|岁|世|更|夜|春|夏|秋|冬|代|伏|辈|丸|泡|粒|颗|幢|堆|条|根|支|道|面|片|张|颗|块|元|"
    "(亿|千万|百万|万|千|百)|(亿|千万|百万|万|千|百|美|)元|(亿|千万|百万|万|千|百|十|)吨|(亿|千万|百万|万|千|百|)块|角|毛|分)"
)
_RE_QUANTIFIER = re.compile(r"(\d+)([多余几\+])?" + _QUANTIFIERS)
_RE_DEFAULT_NUM = re.compile(r"\d{3}\d*")
_RE_NUMBER = re.compile(r"(-?)((\d+)(\.\d+)?)|(\.(\d+))")


def _number(m: re.Match) -> str:
    if m.group(5):
        return num2str(m.group(5))
    return ("负" if m.group(1) else "") + num2str(m.group(2))


def _phone(m: re.Match, mobile: bool) -> str:
    text = m.group(0)
    parts = text.strip("+").split() if mobile else text.split("-")
    return "，".join(verbalize_digits(part, alt_one=True) for part in parts)


def _quantifier(m: re.Match) -> str:
    number = num2str(m.group(1))
    more = {"+": "多", None: ""}.get(m.group(2), m.group(2))
    return ("两" if number == "二" else number) + more + m.group(3)


def _version(m: re.Match) -> str:
    return "".join("点" if c == "." else num2str(c) for c in m.group(1))


_SYMBOLS = (
    "/每 ①一 ②二 ③三 ④四 ⑤五 ⑥六 ⑦七 ⑧八 ⑨九 ⑩十 α阿尔法 β贝塔 γ伽玛 Γ伽玛 δ德尔塔 Δ德尔塔 ε艾普西龙 ζ捷塔 η依塔 "
    "θ西塔 Θ西塔 ι艾欧塔 κ喀帕 λ拉姆达 Λ拉姆达 μ缪 ν拗 ξ克西 Ξ克西 ο欧米克伦 π派 Π派 ρ肉 ς西格玛 Σ西格玛 σ西格玛 τ套 "
    "υ宇普西龙 φ服艾 Φ服艾 χ器 ψ普赛 Ψ普赛 ω欧米伽 Ω欧米伽 +加 -减 ×乘 ÷除 =等"
).split()


def _post_replace(sentence: str) -> str:
    for item in _SYMBOLS:
        sentence = sentence.replace(item[0], item[1:])
    return re.sub(r"[-——《》【】<=>{}()（）#&@“”^_|\\]", "", sentence)


def normalize_sentence(sentence: str) -> str:
    """Verbalise numbers and symbols in one sentence (upstream ``TextNormalizer.normalize_sentence``)."""
    s = to_simplified(sentence).translate(_F2H)
    s = _RE_DATE.sub(_date, s)
    s = _RE_DATE2.sub(_date2, s)
    s = _RE_TIME_RANGE.sub(_time, s)
    s = _RE_TIME.sub(_time, s)
    s = _RE_TO_RANGE.sub(lambda m: m.group(0).replace("~", "至"), s)
    s = _RE_TEMPERATURE.sub(
        lambda m: ("零下" if m.group(1) else "") + num2str(m.group(2)) + ("摄氏度" if m.group(4) == "摄氏度" else "度"),
        s,
    )
    for notation, reading in _MEASURES.items():
        s = s.replace(notation, reading)
    while _RE_ASMD.search(s):
        s = _RE_ASMD.sub(lambda m: m.group(1) + _ASMD[m.group(8)] + m.group(9), s)
    s = _RE_POWER.sub(lambda m: "的" + m.group(0).translate(str.maketrans(_POWER, "0123456789xyn")) + "次方", s)
    s = _RE_FRAC.sub(lambda m: ("负" if m.group(1) else "") + f"{num2str(m.group(3))}分之{num2str(m.group(2))}", s)
    s = _RE_PERCENTAGE.sub(lambda m: ("负" if m.group(1) else "") + "百分之" + num2str(m.group(2)), s)
    s = _RE_MOBILE.sub(lambda m: _phone(m, mobile=True), s)
    s = _RE_TELEPHONE.sub(lambda m: _phone(m, mobile=False), s)
    s = _RE_NATIONAL_NUMBER.sub(lambda m: _phone(m, mobile=False), s)
    s = _RE_RANGE.sub(lambda m: _RE_NUMBER.sub(_number, m.group(1)) + "到" + _RE_NUMBER.sub(_number, m.group(6)), s)
    s = _RE_NEGATIVE.sub(lambda m: "负" + num2str(m.group(2)), s)
    s = _RE_VERSION.sub(_version, s)
    s = _RE_DECIMAL.sub(_number, s)
    s = _RE_QUANTIFIER.sub(_quantifier, s)
    s = _RE_DEFAULT_NUM.sub(lambda m: verbalize_digits(m.group(0), alt_one=True), s)
    s = _RE_NUMBER.sub(_number, s)
    return _post_replace(s)


def split_sentences(text: str) -> list[str]:
    """Drop spaces and bracket-like symbols, then split after sentence punctuation (upstream ``_split``)."""
    text = text.replace(" ", "")
    text = re.sub(r"[——《》【】<>{}()（）#&@“”^_|\\]", "", text)
    text = _SENTENCE_SPLITTER.sub(r"\1\n", text).strip()
    return [piece.strip() for piece in re.split(r"\n+", text)]


def normalize(text: str) -> list[str]:
    """Split ``text`` into sentences and verbalise each (upstream ``TextNormalizer.normalize``)."""
    return [normalize_sentence(sentence) for sentence in split_sentences(text)]
