# The quick start: `make demo` and `make test` on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/wager demo

test: $(STAMP)
	./scripts/ensure-chromium
	$(PY) -m pytest -q -n 2 -m "not slow"

test-all: $(STAMP)
	./scripts/ensure-chromium
	$(PY) -m pytest -q -n 2

bench: $(STAMP)
	$(MAKE) -C benchmarks all

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
