"""The list formats a dataset can be read from (a module of its own so the CLI can offer them cheaply)."""

FORMATS = ("auto", "ljspeech", "coqui", "sovits", "folder")
