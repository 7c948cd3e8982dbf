"""The voice library: a verified, crash-safe, content-addressed speaker registry."""
