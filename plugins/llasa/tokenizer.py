"""A small Llama-3-style tokenizer built offline, extended with Llasa's markers and speech tokens.

Byte-level BPE (any text encodes), Llama-3 header/turn specials and chat template, then the
eight Llasa markers and ``<|s_0|>``..``<|s_{N-1}|>`` appended after the text vocabulary.
The markers and speech tokens are ordinary added tokens, so ``batch_decode(...,
skip_special_tokens=True)`` keeps them, as the published Llasa inference recipe expects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from tts_host.plugins.llasa.layout import MARKER_TOKENS, speech_token

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"
HEADER_START = "<|start_header_id|>"
HEADER_END = "<|end_header_id|>"
END_OF_TURN = "<|eot_id|>"
PAD = "<|finetune_right_pad_id|>"
TEXT_SPECIALS: tuple[str, ...] = (BOS, EOS, HEADER_START, HEADER_END, END_OF_TURN, PAD)

CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# A little English so that BPE learns some merges; byte-level coverage makes any text encodable.
DEFAULT_CORPUS: tuple[str, ...] = (
    "Convert the text to speech.",
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore, and the shells she sells are sea shells for sure.",
    "A journey of a thousand miles begins with a single step.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow.",
    "We will meet at the station at half past seven in the morning, then walk to the river.",
    "Every morning the baker opens the shop before dawn, and people come for fresh bread.",
    "It is the people who speak, the voices that carry the words through the quiet rooms.",
)


def build_tokenizer(
    codebook_size: int, *, bpe_vocab_size: int = 512, corpus: Iterable[str] = DEFAULT_CORPUS
) -> "PreTrainedTokenizerFast":
    """Train a byte-level BPE and extend it with the Llasa markers and ``codebook_size`` speech tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    core.train_from_iterator(list(corpus), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=END_OF_TURN,
        pad_token=PAD,
        model_max_length=131072,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": [HEADER_START, HEADER_END, EOS]})
    tokenizer.add_tokens(list(MARKER_TOKENS))
    tokenizer.add_tokens([speech_token(code) for code in range(codebook_size)])
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
