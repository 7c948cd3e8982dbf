"""The CLI as a user meets it: exit codes, one-line errors, broken plugins, light start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plugin_dists import make_plugin_dist, run_cli
from tts_host import __version__

HEAVY = ("torch", "torchaudio", "transformers", "TTS")

BROKEN_PLUGINS = {
    # name: (distribution, module source)
    "importfail": ("tts-host-importfail", "import a_module_that_does_not_exist\n"),
    "badsig": ("tts-host-badsig", """
        from tts_host import hookimpl

        @hookimpl
        def register_vocoders(register, sample_rate):
            pass
        """),
    "dupname": ("tts-host-dupname", """
        from tts_host import hookimpl
        from tts_host.components import ComponentFactory, Stream

        @hookimpl
        def register_vocoders(register):
            register(ComponentFactory(name="xtts-hifigan", kind="vocoder", accepts={}, produces=Stream("waveform"),
                                      loader="builtins:dict"))
        """),
}

OWNER = """
from tts_host import hookimpl
from tts_host.components import ComponentFactory, Stream

@hookimpl
def register_vocoders(register):
    register(ComponentFactory(name="clash", kind="vocoder", accepts={}, produces=Stream("waveform"),
                              loader="builtins:dict"))
"""


def test_version_and_help():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"tts-host, version {__version__}"
    result = run_cli("--help")
    assert result.returncode == 0
    for group in ("plugins", "backends", "base", "voices", "dataset", "finetune", "speak"):
        assert f"  {group} " in result.stdout


def test_usage_error_exits_2():
    result = run_cli("no-such-command")
    assert result.returncode == 2 and "No such command" in result.stderr


def test_errors_are_one_line_without_traceback_unless_debug(tmp_path):
    source = """
        import click
        from tts_host import hookimpl
        from tts_host.errors import TTSHostError

        @hookimpl
        def register_commands(cli):
            @cli.command("fail")
            def fail():
                raise TTSHostError("voice 'x' is not in the library")

            @cli.command("crash")
            def crash():
                raise ZeroDivisionError("division by zero")
        """
    root = make_plugin_dist(tmp_path / "site", "tts-host-failing", "1.0", "failing_plugin", source, "failing")
    result = run_cli("fail", path=[root])
    assert result.returncode == 1
    assert result.stderr == "error: voice 'x' is not in the library\n"
    result = run_cli("crash", path=[root])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: ZeroDivisionError: division by zero (run with --debug for the traceback)"]
    result = run_cli("--debug", "crash", path=[root])
    assert result.returncode == 1 and "Traceback" in result.stderr


@pytest.fixture()
def broken_site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    make_plugin_dist(root, "tts-host-owner", "1.0", "owner_plugin", OWNER, "anchor")
    for name, (dist, source) in BROKEN_PLUGINS.items():
        make_plugin_dist(root, dist, "0.3", f"{name}_plugin", source, name)
    return root


@pytest.mark.parametrize("name", sorted(BROKEN_PLUGINS))
def test_a_broken_plugin_is_reported_once_and_skipped(broken_site: Path, name: str):
    env = {"TTS_HOST_PLUGINS": f"anchor,xtts,{name}"}
    result = run_cli("plugins", "--all", "--json", path=[broken_site], env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    dist = BROKEN_PLUGINS[name][0]
    assert len(lines) == 1 and lines[0].startswith(f"warning: plugin '{name}' ({dist} 0.3): ")
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["anchor"]["status"] == "loaded" and rows["xtts"]["status"] == "loaded"
    assert {"kind": "vocoder", "name": "xtts-hifigan"} in rows["xtts"]["components"]
    assert rows[name]["status"].startswith("skipped: ")


def test_a_third_party_name_clash_loses_to_the_built_in(broken_site: Path):
    result = run_cli("plugins", "--json", path=[broken_site], env={"TTS_HOST_PLUGINS": "xtts,dupname"})
    assert result.returncode == 0
    assert result.stderr == (
        "warning: plugin 'dupname' (tts-host-dupname 0.3): registers vocoder 'xtts-hifigan', "
        f"a name already registered by plugin 'xtts' (tts-host {__version__})\n"
    )


@pytest.mark.parametrize("name", sorted(BROKEN_PLUGINS))
def test_strict_mode_fails_hard_on_a_broken_plugin(broken_site: Path, name: str):
    env = {"TTS_HOST_PLUGINS": f"anchor,xtts,{name}", "TTS_HOST_STRICT_PLUGINS": "1"}
    result = run_cli("plugins", path=[broken_site], env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: plugin '{name}' ({BROKEN_PLUGINS[name][0]} 0.3): ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_plugin_selection_by_environment(broken_site: Path):
    only_owner = run_cli("plugins", "--json", path=[broken_site], env={"TTS_HOST_PLUGINS": "anchor"})
    assert [row["name"] for row in json.loads(only_owner.stdout)] == ["anchor"] and only_owner.stderr == ""
    none = run_cli("plugins", "--all", "--json", path=[broken_site], env={"TTS_HOST_PLUGINS": ""})
    assert json.loads(none.stdout) == [] and none.stderr == ""


def test_plugins_table_lists_name_version_hooks_components(broken_site: Path):
    result = run_cli("plugins", path=[broken_site], env={"TTS_HOST_PLUGINS": "anchor", "COLUMNS": "200"})
    assert result.returncode == 0
    line = next(line for line in result.stdout.splitlines() if "anchor" in line)
    for text in ("tts-host-owner", "1.0", "register_vocoders", "vocoder: clash", "loaded"):
        assert text in line


@pytest.mark.parametrize("args", [["--help"], ["plugins", "--all"], ["backends"], ["plugins", "--json"]])
def test_cli_start_up_never_imports_heavy_libraries(args):
    code = (
        "import sys\n"
        "from tts_host.cli.main import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        f"print('HEAVY=' + ','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="


def test_only_the_tts_host_namespace_is_importable(tmp_path: Path):
    code = (
        "import importlib.util\n"
        "print([n for n in ('core', 'plugins', 'speakers', 'configs') if importlib.util.find_spec(n)])\n"
        "import tts_host.speakers, tts_host.plugins, tts_host.configs\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_backends_json_lists_each_backend_with_its_components_and_plugin():
    result = run_cli("backends", "--json")
    assert result.returncode == 0, result.stderr
    for row in json.loads(result.stdout):
        assert row["distribution"] and row["plugin"] and row["components"]
        assert row["fits"], row["problems"]


def test_core_never_imports_a_built_in_plugin():
    core = Path(__file__).resolve().parents[1] / "core"
    offenders = [str(p.relative_to(core)) for p in core.rglob("*.py") if "tts_host.plugins" in p.read_text("utf-8")]
    assert offenders == []  # built-in plugins reach the CLI through hooks, as third-party ones do
