"""A VoiceBpeTokenizer vocabulary built offline: specials, one token per language, characters."""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["[STOP]", "[UNK]", "[SPACE]"]
START = "[START]"
CHARACTERS = (
    "abcdefghijklmnopqrstuvwxyz0123456789"
    "!\"#$%&'()*+,-./:;<=>?@\\^_`{|}~"
    "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿœßğış"
)


def build_vocab(languages: list[str], path: Path, size: int | None = None) -> int:
    """Write a tokenizers BPE vocabulary (no merges) to ``path``; returns the number of text tokens.

    Ids: ``[STOP]``=0, ``[UNK]``=1, ``[SPACE]``=2, ``[lang]`` per language, the characters, then
    (when ``size`` asks for more) reserved tokens, and ``[START]`` last, as in published vocabularies.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokens = SPECIALS + [f"[{lang}]" for lang in languages] + list(dict.fromkeys(CHARACTERS))
    if size is not None:
        if size < len(tokens) + 1:
            raise ValueError(f"a vocabulary of {size} tokens cannot hold the {len(tokens) + 1} needed")
        tokens += [f"[RESERVED_{i}]" for i in range(size - len(tokens) - 1)]
    tokens.append(START)
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = [t for t in tokens if t.startswith("[")]
    tokenizer.add_special_tokens(specials)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return len(tokens)
