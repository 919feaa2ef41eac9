# Two commands do everything on a fresh machine: `make run` and `make test`.
# Each creates its own virtual environment in $(VENV) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= music,test

.PHONY: run test test-slow lint clean

$(VENV)/.installed-$(EXTRAS): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e ".[$(EXTRAS)]"
	touch $@

run: $(VENV)/.installed-$(EXTRAS)
	$(PY) -m apps.music train

test: $(VENV)/.installed-$(EXTRAS)
	$(PY) -m pytest -q

lint: $(VENV)/.installed-$(EXTRAS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-slow: $(VENV)/.installed-$(EXTRAS)
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) build *.egg-info
