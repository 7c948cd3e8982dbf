"""The backend contract: a named recipe that composes components and does the work.

A backend knows how to build or import a base model, which of its files matter (and which
must never change), how to validate them, and how to fine-tune, clone, synthesise and
export. The voice library stores what a backend makes; it knows no backend internals.

What the voice library needs from a backend:

* :meth:`Backend.file_roles` -- the files of a model folder, each a :class:`FileRole`: a role
  name, the path relative to the folder that the upstream library expects, whether every
  model (base or checkpoint) must have it, and whether it is *protected*: a protected file
  must stay byte-identical to the base's (for XTTS: ``dvae``, ``mel_stats``, ``vocab``).
* :meth:`Backend.architecture` -- the architecture config recorded with a base (a JSON-able
  dict read from the folder); checkpoints must stay compatible with it.
* :meth:`Backend.validate` -- checks a materialised folder (exact state-dict keys and shapes,
  finite values, dtype, config against the recorded architecture) and raises
  :class:`~tts_host.errors.ValidationError` naming the file, the expected and the actual value.
* :meth:`Backend.conditioning` -- zero-shot cloning for ``voices add``: components + reference
  clips -> named numpy arrays, stored by the library as one safetensors blob.
* :meth:`Backend.export` -- writes a voice in a backend-specific format (``voices export
  --format``); the library's own ``.ttsvoice`` archive needs nothing from the backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from tts_host.errors import TTSHostError

from tts_host.contract import CloneRequest, FinetuneRequest, FinetuneResult, SpeakRequest, Speech

if TYPE_CHECKING:
    from tts_host.speakers.library import Library
    from tts_host.speakers.records import Model, Voice
    import numpy as np

    from tts_host.composition import Components
    from tts_host.host import PluginHost
    from tts_host.speech import SpeechResult
    from tts_host.training.distributed import Distributed
    from tts_host.training.job import TrainingJob, TrainingRun


@dataclass(frozen=True)
class FileRole:
    """One file of a model folder.

    ``role`` is a short stable name (``model``, ``dvae``); ``path`` is where the upstream
    library expects it, relative to the model folder (``dvae.pth``). ``required`` files must
    be in every base and (after inheritance from the base) every checkpoint. ``protected``
    files must stay byte-identical to the base's through every fine-tune.
    """

    role: str
    path: str
    required: bool = True
    protected: bool = False
    description: str = ""


class Backend(ABC):
    """Base class of every backend; a :class:`~tts_host.components.BackendFactory` builds one.

    The calls (:meth:`finetune`, :meth:`speak`, :meth:`clone`) are the same for every backend
    and run core's workflows; a backend supplies the parts only it knows: its settings, a
    training run over its components, synthesis with its components, conditioning from
    reference clips, and the library-facing methods below.
    """

    name: ClassVar[str]
    training_sample_rate: ClassVar[int] = 0
    """The rate the fine-tune workflow prepares data at (0: the backend cannot be fine-tuned)."""
    sampling_options: ClassVar[frozenset[str]] = frozenset()
    """The :data:`~tts_host.contract.SAMPLING_OPTIONS` its speech takes."""
    sampling_zero_means_off: ClassVar[bool] = False
    """Whether temperature 0 means greedy and top-k 0 means no top-k."""
    streams: ClassVar[bool] = False
    """Whether its speech can stream (``--stream``)."""
    speeds: ClassVar[bool] = False
    """Whether its speech takes a speaking rate (``--speed``)."""
    speech_precisions: ClassVar[frozenset[str]] = frozenset({"fp32"})
    """The :data:`~tts_host.contract.SPEECH_PRECISIONS` its speech computes in (``--precision``)."""
    settings_class: ClassVar[str | None] = None
    """Import path (``module:Class``) of its fine-tune settings dataclass: the ``--config`` keys and defaults."""
    speech_roles: ClassVar[tuple[str, ...]] = ()
    """The component roles its speech uses (built before synthesis is timed)."""
    assembles_bases: ClassVar[bool] = False
    """Whether ``base add`` converts a published folder through :meth:`assemble_base` (not a plain copy)."""
    adapter_roles: ClassVar[tuple[str, ...]] = ()
    """File roles of a LoRA voice's adapter on its acoustic model (config first): a model with them is its
    start's model plus that adapter, so servers share one loaded base among such voices."""

    def __init__(self, host: PluginHost | None = None, **options: Any) -> None:
        self.host = host
        self.options = options

    def host_or_error(self) -> PluginHost:
        """The host this backend was built by (its components come from it)."""
        if self.host is None:
            raise TTSHostError(f"backend '{self.name}' was built without a plugin host: "
                               "build it with PluginHost.build_backend")
        return self.host

    # -- the calls ------------------------------------------------------------------------
    def finetune(self, library: Library, request: FinetuneRequest) -> FinetuneResult:
        """Fine-tune a new speaker through core's one workflow (:mod:`tts_host.training.workflow`)."""
        from tts_host.training.workflow import run_finetune

        if not self.training_sample_rate:
            raise TTSHostError(f"backend '{self.name}' cannot be fine-tuned")
        return run_finetune(self, library, request)

    def speak(self, library: Library, request: SpeakRequest) -> SpeechResult:
        """Speak with a library voice through core's speech workflow (:mod:`tts_host.synthesis`)."""
        from tts_host.synthesis import speak

        return speak(self, library, request)

    def clone(self, library: Library, model: Model, request: CloneRequest) -> Voice:
        """Add a zero-shot voice cloned with ``model`` from reference clips (:mod:`tts_host.cloning`)."""
        from tts_host.cloning import clone_voice

        return clone_voice(self, library, model, request)

    # -- what the workflows need from a backend --------------------------------------------
    def training_settings(self, config: Path | None, overrides: Mapping[str, Any]) -> Any:
        """:attr:`settings_class` from its defaults, then the ``config`` YAML, then ``overrides``."""
        from tts_host.components import load_object
        from tts_host.training.settings import load_settings

        if self.settings_class is None:
            raise TTSHostError(f"backend '{self.name}' cannot be fine-tuned")
        return load_settings(load_object(self.settings_class), self.name, config, overrides)

    def check_start(self, model: Model, settings: Any) -> None:
        """Refuse a starting model these settings cannot continue (before data work starts).

        A LoRA voice's model (one with :attr:`adapter_roles` files) continues only as LoRA.
        """
        if getattr(settings, "lora_rank", None) is None and self.adapter_of(model):
            raise TTSHostError(f"{model.label} is a LoRA voice's model: continue it with --lora RANK, or fine-tune "
                               f"its base (or a full checkpoint) for a full fine-tune")

    def adapter_of(self, model: Model) -> dict[str, str]:
        """The adapter files of ``model`` by role (path in its folder); empty for a model without one."""
        return {f.role: f.path for f in model.files if f.role in self.adapter_roles}

    def chosen_components(self, config: Path | None, chosen: Mapping[str, str]) -> dict[str, str]:
        """Components chosen by role: the config YAML's ``components:`` mapping, then ``chosen``."""
        from tts_host.composition import components_in_config

        return {**components_in_config(config), **dict(chosen)}

    def device_name(self, context: Distributed) -> str:
        """The torch device this process runs its components on."""
        from tts_host.training.devices import pick_device

        return str(pick_device(context))

    def speech_device(self) -> str:
        """The torch device speech and cloning run on: CUDA when present, else the CPU."""
        from tts_host.training.devices import pick_device
        from tts_host.training.distributed import Distributed

        return str(pick_device(Distributed()))

    def training_run(self, job: TrainingJob) -> TrainingRun:
        """The backend's training of ``job`` (held-out loss, train, save)."""
        raise TTSHostError(f"backend '{self.name}' cannot be fine-tuned")

    def check_speech(self, folder: Path, voice: Voice, request: SpeakRequest) -> None:
        """Refuse a request the voice's model cannot speak, before any model loads (e.g. its language)."""

    def synthesize(self, components: Components, conditioning: Mapping[str, np.ndarray], voice: Voice,
                   request: SpeakRequest) -> Speech:
        """Speech for ``request.text`` with a voice's ``conditioning``, made by ``components``."""
        raise TTSHostError(f"backend '{self.name}' cannot speak")

    def assemble_base(self, model_dir: Path, parts: Mapping[str, Path], out_dir: Path) -> Path:
        """A base folder in ``out_dir`` from a published model folder and separate ``parts`` (e.g. ``codec``)."""
        raise TTSHostError(f"backend '{self.name}' cannot assemble a base from parts")

    def protected_difference(self, role: str, base_file: Path, changed_file: Path) -> str | None:
        """What differs in a protected file that is not the base's (e.g. the first changed tensor), or ``None``."""
        return None

    def presets(self) -> list[str]:
        """Names of the presets ``init_base`` accepts: the YAML files in ``configs/<name>/`` (e.g. ``tiny``)."""
        from tts_host.presets import preset_names

        return preset_names(self.name)

    @abstractmethod
    def init_base(self, preset: str, out_dir: Path, *, seed: int = 0) -> Path:
        """Build a base model folder offline with random weights; returns the folder."""

    # -- what the voice library needs ----------------------------------------------------
    @abstractmethod
    def file_roles(self) -> list[FileRole]:
        """Every file a model folder of this backend may hold (required, optional, protected)."""

    def architecture(self, folder: Path) -> dict[str, Any]:
        """The architecture config to record with a base imported from ``folder`` (JSON-able)."""
        return {}

    @abstractmethod
    def validate(self, folder: Path, architecture: Mapping[str, Any]) -> None:
        """Check a materialised model folder against ``architecture`` (the base's record).

        Check exact state-dict keys and shapes, finite values, dtypes and config
        compatibility; raise :class:`~tts_host.errors.ValidationError` (file, expected,
        actual) on the first problem. Return ``None`` when the folder is sound.
        """

    def conditioning(self, components: Components, request: CloneRequest) -> dict[str, np.ndarray]:
        """Zero-shot clone: speaker conditioning computed from ``request.references`` by ``components``.

        The returned arrays (e.g. ``gpt_cond_latent``, ``speaker_embedding``) are stored with the
        voice as safetensors.
        """
        raise TTSHostError(f"backend '{self.name}' cannot clone a voice from reference clips")

    def export_formats(self) -> list[str]:
        """Formats :meth:`export` writes, besides the library's own ``ttsvoice``."""
        return []

    def export(self, voice: Voice, model_folder: Path, conditioning: Mapping[str, np.ndarray],
               fmt: str, out: Path) -> Path:
        """Write ``voice`` (a :class:`tts_host.speakers.Voice`) in format ``fmt`` to ``out``.

        ``model_folder`` is the voice's materialised model, ``conditioning`` its stored arrays.
        Returns the path written. Unknown formats raise :class:`~tts_host.errors.TTSHostError`.
        """
        known = ", ".join(["ttsvoice", *self.export_formats()])
        raise TTSHostError(f"backend '{self.name}' cannot export format '{fmt}' (formats: {known})")

    def role(self, name: str) -> FileRole:
        """The declared role ``name``, or an error listing the roles."""
        for role in self.file_roles():
            if role.role == name:
                return role
        known = ", ".join(r.role for r in self.file_roles())
        raise TTSHostError(f"backend '{self.name}' has no file role '{name}' (roles: {known})")
