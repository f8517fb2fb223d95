# `make run` and `make test` set everything up themselves: a .venv with ratify installed
# editable and its test extra, made again whenever pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run demo test lint bench bench-quick clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ratify needs Python 3.11 or newer: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# The web application on http://127.0.0.1:8000 with the worker, a local SMTP sink shown at /sink,
# the Kanta-Häme round launched into an empty ratify.db, and new passwords printed.
run: $(STAMP)
	$(BIN)/ratify serve --dev

demo: $(STAMP)
	$(BIN)/ratify demo

# axe-core for the browser tests, from the npm lockfile (the browser is Debian's chromium).
AXE := tests/browser/node_modules/.package-lock.json

$(AXE): tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund

test: $(STAMP) $(AXE)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis tests/browser/node_modules

# The benchmark harness: each measurement of ratify beside its limit, a table, bench/results.json.
# The full sizes take about two minutes on a 2-core machine; the quick ones under one.
bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-quick: $(STAMP)
	$(BIN)/python bench/run.py --quick
