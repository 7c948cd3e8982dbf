"""The XTTS acoustic model component: coqui's ``GPT`` (text tokens + conditioning -> codes and latents).

It is the part fine-tuning trains (:attr:`GptAcousticModel.gpt`), and the part speech samples
from: :meth:`GptAcousticModel.generate` for a whole sentence, :meth:`GptAcousticModel.stream`
for latents as they are sampled. The conditioning latent of reference audio is computed the way
coqui's ``Xtts.get_gpt_cond_latents`` computes it, with this GPT (so it follows fine-tuning).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.plugins.xtts import SAMPLE_RATE
from tts_host.plugins.xtts.model import load_gpt, load_tensor_file, quiet_transformers, read_config
from tts_host.plugins.xtts.files import FILES
from tts_host.plugins.xtts.lora import folder_adapter

if TYPE_CHECKING:
    from peft import LoraConfig

FOLDER_ADAPTER = "folder"  # the name of the adapter a LoRA voice's own model folder holds
MIN_REFERENCE_SAMPLES = SAMPLE_RATE // 3  # coqui: 0.33 s


class GptAcousticModel:
    """The XTTS GPT of a model folder (``model.pth``'s GPT, or a checkpoint's ``gpt.safetensors``)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        import torch

        folder = Path(model_folder)
        self.config = read_config(folder)
        self.device = torch.device(device)
        self.gpt = load_gpt(folder, self.config).to(self.device)
        self.mel_stats = load_tensor_file(folder / FILES["mel_stats"]).to(torch.float32)
        self.code_stride_len = int(self.gpt.code_stride_len)
        self.max_audio_tokens = int(self.gpt.max_gen_mel_tokens)
        self._ready_for_inference = False
        self.adapter: str | None = None
        """The LoRA adapter speech goes through (``None``: the GPT itself)."""
        self.adapter_configs: dict[str, LoraConfig] = {}
        """Every loaded adapter's peft config, by name."""
        self._copies: dict[str, tuple[str | None, Any]] = {}
        """By precision, the reduced-precision copy of the GPT speech last used (:meth:`inference_gpt`): the
        adapter merged into it, and the copy."""
        adapter = folder_adapter(folder)
        if adapter is not None:
            self.use_adapter(FOLDER_ADAPTER, adapter)

    def use_adapter(self, name: str | None, folder: Path | None = None) -> None:
        """Speak through LoRA adapter ``name``, loaded from ``folder`` (a model folder or the adapter's own) the
        first time; ``None``: the GPT alone. The GPT's own weights never change, so switching is exact."""
        from tts_host import lora

        if name is not None and name not in lora.loaded_adapters(self.gpt):
            if folder is None:
                raise TTSHostError(f"LoRA adapter {name!r} is not loaded and no folder was given")
            self._drop_inference_wrapper()  # it holds the layers the adapter replaces, under names of its own
            self.adapter_configs[name] = lora.load_adapter(self.gpt, folder_adapter(Path(folder)) or Path(folder), name)
        lora.activate(self.gpt, name)
        self.adapter = name

    def drop_adapter(self, name: str) -> None:
        """Unload adapter ``name`` (speech goes through the GPT alone if it was the one in use)."""
        from tts_host import lora

        if name == self.adapter:
            self.use_adapter(None)
        lora.remove_adapter(self.gpt, name)
        self.adapter_configs.pop(name, None)
        for precision, (merged, _) in list(self._copies.items()):
            if merged == name:  # merged from the adapter just dropped: an adapter loaded later under its name is another
                del self._copies[precision]

    @property
    def codes_per_second(self) -> float:
        """Audio codes the GPT samples per second of speech."""
        return SAMPLE_RATE / self.code_stride_len

    def conditioning_latent(self, audio: np.ndarray) -> np.ndarray:
        """The GPT conditioning latent ``(1, latents, dim)`` of mono 22.05 kHz audio (at most ``gpt_cond_len`` s)."""
        import torch

        from TTS.tts.models.xtts import wav_to_mel_cloning

        samples = torch.from_numpy(np.asarray(audio, dtype=np.float32)).reshape(1, -1)
        if samples.shape[-1] < MIN_REFERENCE_SAMPLES:
            raise TTSHostError("reference audio too short: at least 0.33 s of speech is needed")
        length, chunk = int(self.config["gpt_cond_len"]), int(self.config["gpt_cond_chunk_len"])
        samples = samples[:, : SAMPLE_RATE * length]
        perceiver = bool(self.config["model_args"]["gpt_use_perceiver_resampler"])
        mel_options = ({"n_fft": 2048, "hop_length": 256, "win_length": 1024} if perceiver
                       else {"n_fft": 4096, "hop_length": 1024, "win_length": 4096})
        pieces = ([samples[:, i: i + SAMPLE_RATE * chunk] for i in range(0, samples.shape[1], SAMPLE_RATE * chunk)]
                  if perceiver else [samples])
        embeddings = []
        with torch.inference_mode():
            for piece in pieces:
                if perceiver and piece.shape[-1] < MIN_REFERENCE_SAMPLES:
                    continue  # coqui skips a too-short last chunk
                mel = wav_to_mel_cloning(piece, mel_norms=self.mel_stats, power=2, normalized=False,
                                         sample_rate=SAMPLE_RATE, f_min=0, f_max=8000, n_mels=80, **mel_options)
                embeddings.append(self.gpt.get_style_emb(mel.to(self.device), None) if perceiver
                                  else self.gpt.get_style_emb(mel.to(self.device)))
            latent = torch.stack(embeddings).mean(dim=0).transpose(1, 2)
        return latent.float().cpu().numpy()

    def _drop_inference_wrapper(self) -> None:
        """Undo ``init_gpt_for_inference``'s aliases of the GPT's layers; the next speech builds them again."""
        if hasattr(self.gpt, "gpt_inference"):
            del self.gpt.gpt_inference
        if getattr(self.gpt.gpt, "wte", None) is self.gpt.mel_embedding:
            del self.gpt.gpt.wte
        self._ready_for_inference = False

    def _prepare_inference(self) -> None:
        if not self._ready_for_inference:
            with quiet_transformers():
                self.gpt.init_gpt_for_inference()
                self.gpt.eval()
            self._ready_for_inference = True

    def inference_gpt(self, precision: str | None = "fp32") -> Any:
        """The GPT speech samples from: :attr:`gpt` itself for fp32, else a cached copy of it in ``precision``,
        the active LoRA adapter merged in (:mod:`tts_host.quantisation`: ``int8`` linear layers, CPU only;
        ``bf16`` matrix layers stored in bf16, sampled under bf16 autocast).

        Each precision's copy is made once, and again only when the adapter in use is another one (the
        copy it replaces goes first).
        """
        self._prepare_inference()
        if precision not in ("int8", "bf16"):
            return self.gpt
        if precision not in self._copies or self._copies[precision][0] != self.adapter:
            from tts_host.quantisation import bf16_copy, int8_copy

            self._copies.pop(precision, None)
            copy = (int8_copy if precision == "int8" else bf16_copy)(self.gpt)
            with quiet_transformers():
                copy.init_gpt_for_inference()  # its inference wrapper over the copy's own layers
                copy.eval()
            self._copies[precision] = (self.adapter, copy)
        return self._copies[precision][1]

    @property
    def speech_copies(self) -> frozenset[str]:
        """The precisions of the GPT copies made for speech so far (and still held)."""
        return frozenset(self._copies)

    def _inputs(self, text_tokens: Any, conditioning: Mapping[str, np.ndarray]) -> tuple[Any, Any]:
        import torch

        tokens = torch.as_tensor(np.asarray(text_tokens), dtype=torch.int32).reshape(1, -1).to(self.device)
        latent = torch.as_tensor(np.asarray(conditioning["gpt_cond_latent"]), dtype=torch.float32).to(self.device)
        return tokens, latent

    def generate(self, text_tokens: Any, conditioning: Mapping[str, np.ndarray], *, precision: str | None = "fp32",
                 **sampling: Any) -> dict[str, np.ndarray]:
        """``{"codes": (n,), "latents": (1, n, dim)}`` for one sentence (``precision``: :meth:`inference_gpt`).

        ``sampling``: transformers generation options (``temperature``, ``top_p``, ``top_k``,
        ``repetition_penalty``, ``length_penalty``, ``max_new_tokens``). Runs in the precision's sampling
        autocast (:func:`tts_host.speech_precision.sampling_autocast`).
        """
        import torch

        from tts_host.speech_precision import sampling_autocast

        gpt = self.inference_gpt(precision)
        tokens, latent = self._inputs(text_tokens, conditioning)
        with sampling_autocast(precision or "fp32", self.device.type), torch.inference_mode(), quiet_transformers():
            codes = gpt.generate(cond_latents=latent, text_inputs=tokens, do_sample=True, num_beams=1,
                                 num_return_sequences=1, output_attentions=False, **sampling)
            latents = gpt(tokens, torch.tensor([tokens.shape[-1]], device=self.device), codes,
                          torch.tensor([codes.shape[-1] * self.code_stride_len], device=self.device),
                          cond_latents=latent, return_attentions=False, return_latent=True)
        return {"codes": codes[0].cpu().numpy(), "latents": latents.float().cpu().numpy()}

    def stream(self, text_tokens: Any, conditioning: Mapping[str, np.ndarray], *, chunk_tokens: int = 20,
               precision: str | None = "fp32", **sampling: Any) -> Iterator[np.ndarray]:
        """Latents ``(1, k, dim)`` as the GPT samples them: ``chunk_tokens`` codes first, then growing windows
        (:func:`tts_host.streaming.window_sizes`); ``precision`` as for :meth:`generate`. A generator cannot
        hold an autocast open between its pieces without leaking it to the caller, so ``bf16`` is iterated
        under the caller's bf16 autocast (as :func:`tts_host.streaming.stream_audio` does), else refused."""
        import torch
        from TTS.tts.layers.xtts.stream_generator import init_stream_support

        from tts_host.streaming import window_sizes

        if precision == "bf16" and not torch.is_autocast_enabled(self.device.type):
            raise TTSHostError("bf16 streaming samples under bf16 autocast: iterate it inside "
                               "tts_host.speech_precision.sampling_autocast('bf16', device)")

        init_stream_support()  # coqui's streaming generate (coqui's Xtts module does this when it is imported)

        gpt = self.inference_gpt(precision)
        tokens, latent = self._inputs(text_tokens, conditioning)
        with torch.inference_mode(), quiet_transformers():
            embeddings = gpt.compute_embeddings(latent, tokens)
            generator = gpt.get_generator(fake_inputs=embeddings, do_sample=True, num_beams=1,
                                          num_return_sequences=1, output_attentions=False,
                                          output_hidden_states=True, return_dict_in_generate=True, **sampling)
            pending: list[Any] = []
            sizes = window_sizes(chunk_tokens)
            size = next(sizes)
            for _, hidden in generator:
                pending.append(hidden)
                if len(pending) >= size:
                    yield torch.cat(pending, dim=0)[None].float().cpu().numpy()
                    pending, size = [], next(sizes)
            if pending:
                yield torch.cat(pending, dim=0)[None].float().cpu().numpy()
