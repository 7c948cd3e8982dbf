"""Run a Llasa fine-tune on pre-built rows; launched by the tests as one process or under torchrun.

Usage: python llasa_ddp_run.py BASE_DIR ROWS_JSON WORK_DIR OUT_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transformers import AutoTokenizer

from tts_host.plugins.llasa.data import Row
from tts_host.plugins.llasa.lora import load_lm
from tts_host.plugins.llasa.train import FinetuneSettings, distributed_context, finetune


def main() -> None:
    """Train 6 steps with a global batch of 4 and write the per-step losses (rank 0)."""
    base, rows_path, work, out = (Path(arg) for arg in sys.argv[1:5])
    rows = [Row(**row) for row in json.loads(rows_path.read_text())]
    context = distributed_context()
    tokenizer = AutoTokenizer.from_pretrained(base / "model")
    settings = FinetuneSettings(learning_rate=2e-3, batch_size=4, epochs=3, seed=0)
    result = finetune(load_lm(base / "model"), rows, work, settings, pad_id=tokenizer.pad_token_id, context=context)
    if context.main:
        out.write_text(json.dumps({"losses": result.losses, "world": context.world}))


if __name__ == "__main__":
    main()
