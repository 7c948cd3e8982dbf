"""Chinese BERT features for s1: the third-from-last hidden layer of chinese-roberta-wwm-ext-large, one
vector per character, repeated for each of the character's phonemes (GPT-SoVITS v2's ``get_bert_feature``).

A model folder's ``bert/`` holds the BERT encoder (transformers ``BertModel``, safetensors) and its fast
tokenizer. Without one, Chinese reads with zero features, as every other language does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from tts_host.errors import TTSHostError

BERT_DIR = "bert"
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class ChineseBert:
    """The BERT encoder and tokenizer of a model folder's ``bert/``."""

    def __init__(self, folder: Path, device: str = "cpu") -> None:
        from transformers import BertModel, BertTokenizerFast

        from tts_host.hf import quiet_transformers

        quiet_transformers()
        self.tokenizer = BertTokenizerFast(tokenizer_file=str(Path(folder) / "tokenizer.json"))
        self.model = BertModel.from_pretrained(folder, add_pooling_layer=False).to(device).eval()
        self.dim = int(self.model.config.hidden_size)

    @torch.no_grad()
    def features(self, text: str, word2ph: Sequence[int]) -> torch.Tensor:
        """``[dim, sum(word2ph)]``: each character's vector once per phoneme (``text`` as the front end normalised it)."""
        if len(word2ph) != len(text):
            raise TTSHostError(f"Chinese BERT features: {len(text)} characters but {len(word2ph)} phoneme counts")
        inputs = self.tokenizer(text, return_tensors="pt")
        if inputs["input_ids"].size(1) != len(text) + 2:
            raise TTSHostError(f"Chinese BERT features: the tokenizer did not split '{text}' into one token per character")
        device = next(self.model.parameters()).device
        hidden = self.model(**{k: v.to(device) for k, v in inputs.items()}, output_hidden_states=True).hidden_states
        per_char = hidden[-3][0, 1:-1].float().cpu()
        return torch.repeat_interleave(per_char, torch.tensor(list(word2ph)), dim=0).T


def build_random(out: Path, settings: dict, seed: int) -> None:
    """A random Chinese BERT (``settings``: BertConfig fields) with a character vocabulary: specials, ASCII and the
    CJK Unified Ideographs block, one token per character as chinese-roberta's."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    vocab = list(SPECIALS) + [chr(c) for c in range(33, 127)] + [chr(c) for c in range(0x4E00, 0xA000)]
    tokenizer = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.BertProcessing(("[SEP]", vocab.index("[SEP]")), ("[CLS]", vocab.index("[CLS]")))
    torch.manual_seed(seed)
    model = BertModel(BertConfig(vocab_size=len(vocab), **settings), add_pooling_layer=False)
    model.save_pretrained(out)
    tokenizer.save(str(out / "tokenizer.json"))


def import_folder(source: Path, out: Path) -> None:
    """A published Chinese BERT folder (``chinese-roberta-wwm-ext-large``) as ``bert/``: the encoder's weights
    (read by transformers, which refuses pickled code) as safetensors, and its fast tokenizer."""
    from transformers import AutoTokenizer, BertModel

    from tts_host.hf import quiet_transformers

    quiet_transformers()
    BertModel.from_pretrained(source, add_pooling_layer=False).save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if not tokenizer.is_fast:
        raise TTSHostError(f"{source}: the BERT tokenizer has no fast (tokenizer.json) form")
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
