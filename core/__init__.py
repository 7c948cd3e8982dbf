"""tts-host: a plugin-based multi-speaker text-to-speech framework.

Plugins implement the hooks in :mod:`tts_host.hookspecs` with :data:`hookimpl`; they never
need to import pluggy themselves.
"""

from tts_host.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
