# Set-up and everyday entry points. `make demo` and `make test` each do all the set-up they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := espeak-ng ffmpeg libsndfile1

.PHONY: system-deps install demo test bench clean

# Debian/Ubuntu packages: espeak-ng (test and demo speech), ffmpeg (mp3 and other compressed audio), libsndfile1.
system-deps:
	@missing=""; command -v espeak-ng >/dev/null || missing="yes"; command -v ffmpeg >/dev/null || missing="yes"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $(APT_PACKAGES); \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq $(APT_PACKAGES); fi; \
	fi

$(BIN)/tts-host: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: system-deps $(BIN)/tts-host

demo: install
	$(BIN)/tts-host demo

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/cli_startup.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
