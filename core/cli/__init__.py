"""The ``tts-host`` command line: one module per command family."""
