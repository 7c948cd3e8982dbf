"""Errors that reach the user as one clear line."""


class TTSHostError(Exception):
    """A failure the user can act on; the CLI prints its message on one line and exits 1."""


class PluginError(TTSHostError):
    """A plugin failed to import, to validate or to register."""


class CompositionError(TTSHostError):
    """Two components of a composition do not fit together."""
