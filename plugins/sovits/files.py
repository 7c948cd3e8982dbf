"""The files of a SoVITS model folder, declared once; every other module names a file by its role.

s2 is stored in two files so that the part every voice's tokens depend on can be protected as a
whole file: ``s2/semantic.safetensors`` (``ssl_proj`` and the quantizer, never trained) and
``s2/generator.safetensors`` (everything s2 trains). Tensor names are GPT-SoVITS v2's.
"""

from __future__ import annotations

from tts_host.backend import FileRole

FILE_ROLES = [
    FileRole("hubert_config", "hubert/config.json", protected=True, description="HuBERT config (chinese-hubert-base)"),
    FileRole("hubert_weights", "hubert/model.safetensors", protected=True,
             description="HuBERT weights: the features semantic tokens are made from"),
    FileRole("hubert_preprocessor", "hubert/preprocessor_config.json", protected=True,
             description="HuBERT feature extractor settings (16 kHz, normalisation)"),
    FileRole("s2_config", "s2/config.json", protected=True, description="s2 architecture and audio framing"),
    FileRole("s2_semantic", "s2/semantic.safetensors", protected=True,
             description="s2's ssl_proj and quantizer codebook: they define the semantic tokens"),
    FileRole("s2_generator", "s2/generator.safetensors", description="s2's trainable weights (enc_p, flow, dec, enc_q, ref_enc)"),
    FileRole("s2_discriminator", "s2/discriminator.safetensors", required=False,
             description="the s2 discriminator (fine-tunes start from it when present)"),
    FileRole("s1_config", "s1/config.json", protected=True, description="s1 architecture"),
    FileRole("s1_weights", "s1/model.safetensors", description="s1 (text-to-semantic) weights"),
    FileRole("bert_config", "bert/config.json", required=False, protected=True,
             description="Chinese BERT config (chinese-roberta-wwm-ext-large)"),
    FileRole("bert_weights", "bert/model.safetensors", required=False, protected=True,
             description="Chinese BERT weights (features for Chinese text)"),
    FileRole("bert_tokenizer", "bert/tokenizer.json", required=False, protected=True,
             description="Chinese BERT tokenizer"),
]

FILES: dict[str, str] = {role.role: role.path for role in FILE_ROLES}
"""Role -> path in the model folder (``FILES["s2_semantic"]`` is ``s2/semantic.safetensors``)."""
