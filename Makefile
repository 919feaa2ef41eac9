# Two commands do everything on a fresh machine: `make run` and `make test`.
# Each creates its own virtual environment in $(VENV) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= music,test

.PHONY: run test test-slow lint clean

$(VENV)/.installed-$(EXTRAS): setup.cfg setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e ".[$(EXTRAS)]"
	touch $@

# Trains the music model on music21's chorales (offline) and writes a sample
# of it (MIDI, WAV, piano-roll PNG) beside the saved model.
run: $(VENV)/.installed-$(EXTRAS)
	$(VENV)/bin/deeprnn music train --generate 64

# Two workers: CI's two cores (pytest-xdist); `-n 0` runs in one process.
test: $(VENV)/.installed-$(EXTRAS)
	$(PY) -m pytest -q -n 2

lint: $(VENV)/.installed-$(EXTRAS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-slow: $(VENV)/.installed-$(EXTRAS)
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) build *.egg-info
