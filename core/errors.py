"""Errors that reach the user as one clear line."""


class TTSHostError(Exception):
    """A failure the user can act on; the CLI prints its message on one line and exits 1."""


class PluginError(TTSHostError):
    """A plugin failed to import, to validate or to register."""


class CompositionError(TTSHostError):
    """Two components of a composition do not fit together."""


class ValidationError(TTSHostError):
    """A model file failed a check: names the file, what was expected and what was found."""

    def __init__(self, file: str, expected: object, actual: object, *, subject: str = "") -> None:
        self.file = file
        self.expected = expected
        self.actual = actual
        self.subject = subject
        where = f"{subject}: " if subject else ""
        super().__init__(f"{where}{file}: expected {expected}, actual {actual}")
