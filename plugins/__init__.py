"""Built-in backends, each a plugin registered through the ``tts_host`` entry-point group."""
