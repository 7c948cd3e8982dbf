"""Every hook is documented in docs/plugins.md and implemented by at least one test plugin."""

import inspect
import re
from pathlib import Path

import pytest

from tts_host import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(
    name for name, func in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(func, "tts_host_spec")
)


def test_there_are_hooks_for_every_component_kind_backends_and_commands():
    assert HOOKS == sorted([
        "register_codecs", "register_text_encoders", "register_acoustic_models", "register_vocoders",
        "register_speaker_encoders", "register_backends", "register_commands",
    ])


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert re.search(rf"^### `{hook}\(", docs, re.MULTILINE), f"docs/plugins.md has no section for {hook}"
    assert getattr(hookspecs, hook).__doc__.strip()


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook):
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py"))
    assert re.search(rf"def {hook}\((self, )?(register|cli)", sources), f"no test implements {hook}"
