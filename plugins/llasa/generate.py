"""KV-cached sampling of speech tokens from a Llasa LM."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.plugins.llasa.layout import SpeechLayout
from tts_host.speech import check_sampling


@dataclass(frozen=True)
class Sampling:
    """Sampling options; the defaults are the Llasa model card's (temperature 0.8, top-p 1.0).

    Temperature 0 means greedy decoding and top-k 0 no top-k; other values are checked by
    :func:`tts_host.speech.check_sampling`.
    """

    temperature: float = 0.8
    top_p: float = 1.0
    top_k: int = 50
    repetition_penalty: float = 1.0
    max_length: int = 2048
    seed: int | None = None
    use_cache: bool = True

    def __post_init__(self) -> None:
        check_sampling({"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                        "repetition_penalty": self.repetition_penalty, "max_length": self.max_length},
                       zero_means_off=True)

    @classmethod
    def from_generation_config(cls, config: Any, **overrides: Any) -> "Sampling":
        """The model's own defaults (its ``generation_config``), with non-``None`` overrides applied."""
        fields = {name: getattr(config, name) for name in ("temperature", "top_p", "top_k", "repetition_penalty",
                                                          "max_length") if getattr(config, name, None) is not None}
        fields.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**fields)


def speech_only_processor(layout: SpeechLayout) -> Any:
    """A logits processor that lets only speech tokens and ``<|SPEECH_GENERATION_END|>`` be sampled."""
    import torch
    from transformers import LogitsProcessor

    class SpeechOnly(LogitsProcessor):
        """Masks every token that is neither a speech token nor the end of speech."""

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            mask = torch.full_like(scores, float("-inf"))
            mask[:, layout.speech_offset: layout.speech_offset + layout.speech_count] = 0
            mask[:, layout.speech_end_id] = 0
            return scores + mask

    return SpeechOnly()


def generate_codes(model: Any, layout: SpeechLayout, prompt: Sequence[int], sampling: Sampling | None = None,
                   max_new_tokens: int | None = None, streamer: Any = None, **options: Any) -> np.ndarray:
    """Sample speech codes after ``prompt`` until ``<|SPEECH_GENERATION_END|>`` or the length limit.

    The limit is ``sampling.max_length`` tokens in all, and at most ``max_new_tokens`` new ones. A
    transformers ``streamer`` receives the tokens as they are sampled.
    """
    import torch
    from transformers import LogitsProcessorList

    sampling = sampling or Sampling.from_generation_config(model.generation_config, **options)
    if len(prompt) >= sampling.max_length:
        raise TTSHostError(f"the prompt has {len(prompt)} tokens, at or over the max length {sampling.max_length}")
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    input_ids = torch.tensor([list(prompt)], dtype=torch.long, device=model.device)
    greedy = sampling.temperature == 0
    with torch.inference_mode():
        output = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            do_sample=not greedy,
            temperature=None if greedy else sampling.temperature,
            top_p=None if greedy else sampling.top_p,
            top_k=None if greedy else sampling.top_k,
            repetition_penalty=sampling.repetition_penalty,
            max_length=min(sampling.max_length, len(prompt) + (max_new_tokens or sampling.max_length)),
            eos_token_id=layout.speech_end_id,
            pad_token_id=layout.speech_end_id,
            use_cache=sampling.use_cache,
            logits_processor=LogitsProcessorList([speech_only_processor(layout)]),
            streamer=streamer,
        )
    return np.asarray(layout.codes(output[0, input_ids.shape[1]:].tolist()), dtype=np.int64)


def stream_codes(model: Any, layout: SpeechLayout, prompt: Sequence[int], sampling: Sampling,
                 max_new_tokens: int | None, chunk: int) -> Iterator[np.ndarray]:
    """:func:`generate_codes`, handed on as they are sampled: ``chunk`` codes first, then growing windows
    (:func:`tts_host.streaming.window_sizes`); the model samples in a thread of its own (its error, if any, is
    raised here)."""
    import queue
    import threading

    from transformers.generation.streamers import BaseStreamer

    tokens: queue.Queue = queue.Queue()
    failure: list[BaseException] = []

    class Tokens(BaseStreamer):
        """Puts each sampled token on the queue (the first call carries the prompt: skipped)."""

        def __init__(self) -> None:
            self.prompt_seen = False

        def put(self, value: Any) -> None:
            if not self.prompt_seen:
                self.prompt_seen = True
                return
            for token in value.reshape(-1).tolist():
                tokens.put(int(token))

        def end(self) -> None:
            tokens.put(None)

    def run() -> None:
        try:
            generate_codes(model, layout, prompt, sampling, max_new_tokens=max_new_tokens, streamer=Tokens())
        except BaseException as exc:  # handed to the consumer below
            failure.append(exc)
            tokens.put(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    from tts_host.streaming import window_sizes

    pending: list[int] = []
    sizes = window_sizes(chunk)
    size = next(sizes)
    while True:
        token = tokens.get()
        if token is None:
            break
        if token == layout.speech_end_id:
            continue
        pending += layout.codes([token])
        if len(pending) >= size:
            yield np.asarray(pending, dtype=np.int64)
            pending, size = [], next(sizes)
    worker.join()
    if failure:
        raise failure[0]
    if pending:
        yield np.asarray(pending, dtype=np.int64)
