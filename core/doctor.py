"""``tts-host doctor``: what is installed, what works together, and how to fix what does not.

Each check yields one :class:`Finding`: its part, what was found and, when something is
wrong, the fix. ``fail`` findings make the command exit 1; ``warn`` and ``info`` do not.
The checks import torch, coqui-tts and transformers themselves (inside ``try``), so a broken
install is reported, not raised; nothing here is imported until the command runs.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable

OK, INFO, WARN, FAIL = "ok", "info", "warn", "fail"
MIN_PYTHON = (3, 10)
# Below this much free space a v2-size fine-tune (checkpoint, optimizer state, cache) cannot finish.
LOW_DISK_BYTES = 10 * 1024**3
FULL_DISK_BYTES = 1 * 1024**3
# The packages whose versions pyproject pins to a tested range, in the order they are reported.
RANGED_PACKAGES = ("torch", "torchaudio", "torchcodec", "coqui-tts", "transformers", "peft", "tokenizers")
REINSTALL = "run `make install` (it installs the exact versions of requirements.lock)"


@dataclass(frozen=True)
class Finding:
    """The result of one check: ``status`` is ok, info, warn or fail."""

    part: str
    status: str
    found: str
    fix: str = ""

    def line(self) -> str:
        """One line for the terminal: status, part, what was found and the fix."""
        fix = f"; fix: {self.fix}" if self.fix and self.status in (WARN, FAIL) else ""
        return f"[{self.status}] {self.part}: {self.found}{fix}"


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]


def check_python() -> list[Finding]:
    """The interpreter is new enough."""
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:
        return [Finding("python", FAIL, f"Python {version} is too old (tts-host needs >= 3.10)",
                        "create the virtualenv with Python 3.10 or newer: `make install PYTHON=python3.11`")]
    return [Finding("python", OK, f"Python {version} ({sys.executable})")]


def check_programs() -> list[Finding]:
    """espeak-ng (demo and test speech) and ffmpeg (compressed audio, torchcodec) are on PATH."""
    wanted = {"espeak-ng": "the demo, the tests and dataset speech need it",
              "ffmpeg": "mp3/ogg/m4a input and torchcodec need it"}
    findings = []
    for program, why in wanted.items():
        path = shutil.which(program)
        if path:
            findings.append(Finding(program, OK, path))
        else:
            findings.append(Finding(program, FAIL, f"not found on PATH ({why})",
                                    f"`apt-get install {program}` (or `make system-deps`)"))
    return findings


def _ranges() -> dict[str, str]:
    """Each ranged package's specifier as tts-host's installed metadata declares it."""
    from packaging.requirements import Requirement

    found: dict[str, str] = {}
    for text in metadata.requires("tts-host") or []:
        requirement = Requirement(text)
        name = requirement.name.lower()
        if name in RANGED_PACKAGES and str(requirement.specifier):
            found[name] = str(requirement.specifier)
    return found


def check_versions() -> list[Finding]:
    """Each pinned package is installed at a version inside pyproject's tested range."""
    from packaging.version import Version

    try:
        ranges = _ranges()
    except metadata.PackageNotFoundError:
        return [Finding("tts-host", FAIL, "tts-host is not installed as a package", "`pip install -e .` or `make install`")]
    from packaging.specifiers import SpecifierSet

    findings = []
    for name in RANGED_PACKAGES:
        version = _installed(name)
        wanted = ranges.get(name, "")
        if version is None:
            findings.append(Finding(name, FAIL, f"not installed (tested: {wanted or 'any'})", REINSTALL))
        elif wanted and Version(version) not in SpecifierSet(wanted):
            findings.append(Finding(name, FAIL, f"{version} is outside the tested range {wanted}", REINSTALL))
        else:
            findings.append(Finding(name, OK, f"{version} (tested: {wanted or 'any'})"))
    return findings


def check_torch_family() -> list[Finding]:
    """torch and torchaudio import together (the ABI pairing), then coqui-tts and transformers import."""
    findings = []
    try:
        import torch
    except Exception as exc:  # a broken wheel raises anything from OSError to ImportError
        return [Finding("torch", FAIL, f"does not import: {_one_line(exc)}", REINSTALL)]
    try:
        import torchaudio  # noqa: F401
    except Exception as exc:
        audio = _installed("torchaudio") or "?"
        abi = "undefined symbol" in str(exc) or isinstance(exc, OSError)
        why = (f"torchaudio {audio} cannot load next to torch {torch.__version__} (its library is built for "
               f"another torch release: {_one_line(exc)})" if abi else f"does not import: {_one_line(exc)}")
        findings.append(Finding("torchaudio", FAIL, why, "install the exact pair from requirements.lock: " + REINSTALL))
        return findings
    findings.append(Finding("torch+torchaudio", OK, f"torch {torch.__version__} and torchaudio load together"))
    for part, module in (("coqui-tts", "TTS.tts.models.xtts"), ("transformers", "transformers")):
        try:
            __import__(module)
        except Exception as exc:
            findings.append(Finding(part, FAIL, f"does not import: {_one_line(exc)}", REINSTALL))
        else:
            findings.append(Finding(part, OK, "imports"))
    return findings


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    match = re.search(r"^flags\s*:\s*(.*)$", text, re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def check_cpu(flags: set[str] | None = None) -> list[Finding]:
    """Which vector and matrix units the CPU has, and what follows for precision."""
    flags = cpu_flags() if flags is None else flags
    names = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}
    present = [label for flag, label in names.items() if flag in flags]
    native_bf16 = "avx512_bf16" in flags  # what torch's check (training.devices.cpu_has_bf16) reads; AMX CPUs have it
    advice = ("bf16 runs natively: bf16 autocast can speed up training and synthesis, and int8 speech "
              "vocodes in bf16" if native_bf16 else
              "bf16 is emulated on this CPU (slower than fp32): tts-host trains, and int8 speech vocodes, in fp32 here")
    cores = os.cpu_count() or 1
    found = f"{platform.machine()}, {cores} cores, {', '.join(present) or 'no AVX2'}; {advice}"
    return [Finding("cpu", INFO if "avx2" in flags else WARN, found,
                    "expect slow training: tts-host's CPU kernels assume at least AVX2")]


def check_cuda() -> list[Finding]:
    """CUDA devices, their memory and whether they do bf16."""
    try:
        import torch
    except Exception:
        return []  # the torch check already says why
    if not torch.cuda.is_available():
        return [Finding("cuda", INFO, "no CUDA device: training and synthesis run on the CPU")]
    findings = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16 with a grad scaler"
        findings.append(Finding(f"cuda:{index}", OK, f"{props.name}, {props.total_memory / 1024**3:.1f} GiB; "
                                                     f"mixed precision: {precision}"))
    return findings


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_home(home: Path) -> list[Finding]:
    """``TTS_HOST_HOME``, its free disk, and a quick integrity check of the library in it."""
    from tts_host.home import index_path

    free = shutil.disk_usage(_existing(home)).free
    found = f"{home} ({free / 1024**3:.1f} GiB free)"
    if free < FULL_DISK_BYTES:
        findings = [Finding("home", FAIL, found, "free disk space or point TTS_HOST_HOME at a larger disk")]
    elif free < LOW_DISK_BYTES:
        findings = [Finding("home", WARN, found + ": a v2-size fine-tune may not fit",
                            "free disk space or point TTS_HOST_HOME at a larger disk")]
    else:
        findings = [Finding("home", OK, found)]
    if not index_path(home).parent.exists():
        return findings + [Finding("library", INFO, "no library yet (it is created on first use)")]
    from tts_host.speakers.index_health import IndexDamagedError
    from tts_host.speakers.library import Library

    try:
        with Library(home) as library:
            problems = library.verify()
            voices = len(library.voices())
    except IndexDamagedError as exc:
        return findings + [Finding("library", FAIL, _one_line(exc), "`tts-host library recover`")]
    except Exception as exc:
        return findings + [Finding("library", FAIL, f"cannot be read: {_one_line(exc)}",
                                   "`tts-host library verify` says more")]
    if problems:
        first = problems[0].line()
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return findings + [Finding("library", FAIL, f"{len(problems)} damaged file(s): {first}{more}",
                                   "`tts-host voices repair NAME` restores protected files; "
                                   "`tts-host library verify` lists every problem")]
    return findings + [Finding("library", OK, f"{voices} voice(s), every file intact (quick check)")]


def check_plugins() -> list[Finding]:
    """Plugins that loaded, and every plugin that was skipped and why."""
    from tts_host.host import get_host

    host = get_host()
    names = ", ".join(f"{info.name} {info.version}".strip() for info in host.plugins.values())
    findings = [Finding("plugins", OK if host.plugins else WARN, f"loaded: {names or 'none'}",
                        "install a backend plugin, or unset TTS_HOST_PLUGINS")]
    for problem in host.problems:
        findings.append(Finding("plugin", FAIL, problem.line(),
                                f"reinstall or uninstall {problem.distribution or problem.plugin}"))
    return findings


def run_checks(home: Path) -> list[Finding]:
    """Every check, in the order a user reads them."""
    checks: Iterable[Callable[[], list[Finding]]] = (
        check_python, check_programs, check_versions, check_torch_family, check_cpu, check_cuda,
        lambda: check_home(home), check_plugins,
    )
    findings: list[Finding] = []
    for check in checks:
        findings.extend(check())
    return findings


def as_dicts(findings: list[Finding]) -> list[dict[str, str]]:
    """JSON-ready findings."""
    return [{**asdict(f), "fix": f.fix if f.status in (WARN, FAIL) else ""} for f in findings]
