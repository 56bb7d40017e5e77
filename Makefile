# Developer entry points. `make run` for the demo, `make test` for the suite.
PYTHON ?= $(shell command -v python3.13 2>/dev/null || echo $(HOME)/.pyenv/versions/3.13.0/bin/python3.13)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
PORT ?= 8000

export COMPLIANCE_DEMO ?= 1

.PHONY: install run test browser-test lint check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: install
	mkdir -p var
	$(MANAGE) migrate --noinput
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) seed_demo
	PORT=$(PORT) bin/serve

test: install
	$(BIN)/pytest

# Browser journeys in Debian's Chromium (/usr/bin/chromium). Plain `make test`
# deselects them, and CI runs them once, on SQLite.
browser-test: install
	$(BIN)/pytest -m browser tests/browser

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check: install
	$(MANAGE) check
	$(MANAGE) makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var
