# Set-up and everyday entry points. `make demo` and `make test` each do all the set-up they need.
# Versions come from requirements.lock (exact, hashed); see docs/install.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
LATEST := .venv-latest
TOOLS := .venv-tools
UV_VERSION := 0.13.9
APT_PACKAGES := espeak-ng ffmpeg libsndfile1 chromium chromium-driver
# The platform the lock resolves for: CPython 3.11 on x86-64 Linux (CI's and the usual server's).
LOCK_TARGET := --python-version 3.11 --python-platform x86_64-manylinux_2_28

.PHONY: system-deps install demo test test-fast test-latest lock bench clean

# Debian/Ubuntu packages: espeak-ng (test and demo speech), ffmpeg (mp3 and other compressed audio), libsndfile1,
# chromium + chromium-driver (the server's web page is tested in a real headless browser).
system-deps:
	@missing=""; command -v espeak-ng >/dev/null || missing="yes"; command -v ffmpeg >/dev/null || missing="yes"; \
	command -v chromedriver >/dev/null || missing="yes"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $(APT_PACKAGES); \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq $(APT_PACKAGES); fi; \
	fi

# Exactly the lock's versions (hash-checked), then tts-host itself, editable, with no other dependency.
$(BIN)/tts-host: pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
	  echo "requirements.lock is resolved for CPython 3.11: run with PYTHON=python3.11 (see docs/install.md)"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m tts_host.lockfile $(LOCK)
	touch $@

install: system-deps $(BIN)/tts-host

demo: install
	$(BIN)/tts-host demo

# Two workers, one test file each at a time (a file's fixtures stay in one process).
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

# Everything but the end-to-end runs marked slow.
test-fast: install
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow"

# The newest releases pyproject allows, without the lock, in a virtualenv of their own: what differs
# from the lock, then doctor and the smoke tests (a tiny XTTS and Llasa fine-tune and speak).
# Run it before every `make lock`; a failure here is a report, not a broken main.
test-latest: system-deps
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet -e ".[dev]"
	@status=0; \
	echo "== packages that differ from $(LOCK)"; $(LATEST)/bin/python -m tts_host.lockfile $(LOCK) || true; \
	echo "== tts-host doctor"; $(LATEST)/bin/tts-host doctor || status=1; \
	echo "== smoke tests"; $(LATEST)/bin/python -m pytest -m smoke -q -p no:cacheprovider || status=1; \
	if [ $$status = 0 ]; then echo "test-latest: the newest releases work: \`make lock\` may take them"; \
	else echo "test-latest: the newest releases break something (above): keep the lock, or fix and re-run"; fi; \
	exit $$status

# Re-resolve every version from pyproject's ranges (after `make test-latest` passed).
lock:
	[ -x $(TOOLS)/bin/uv ] || { $(PYTHON) -m venv $(TOOLS) && $(TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION); }
	$(TOOLS)/bin/uv pip compile pyproject.toml --extra dev $(LOCK_TARGET) --generate-hashes --upgrade --quiet \
	  -o $(LOCK)

bench: install
	$(BIN)/python benchmarks/cli_startup.py

clean:
	rm -rf $(VENV) $(LATEST) $(TOOLS) build *.egg-info .pytest_cache
