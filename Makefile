# Hetang: `make run` serves the demo city; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HETANG_DATA_DIR ?= ./var

.PHONY: run test install install-test lint typecheck pytest migrate demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

migrate: install
	$(BIN)/hetang migrate

demo: migrate
	$(BIN)/hetang demo --if-empty

# Two demo venue agents run beside the server (staff pages on 127.0.0.1:8765 and :8766).
run: demo
	@$(BIN)/hetang --log-level WARNING demo-agents --count 2 & agents=$$!; \
	trap 'kill $$agents 2>/dev/null; wait $$agents' EXIT INT TERM; \
	$(BIN)/hetang serve

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-test
	$(BIN)/mypy

pytest: install-test
	$(BIN)/pytest -q --durations=25

test: lint typecheck pytest

bench: install-test
	$(BIN)/python bench/members.py
	$(BIN)/python bench/checkins.py
	$(BIN)/python bench/finalize.py
	$(BIN)/python bench/relay.py
	$(BIN)/python bench/agent_cost.py
	$(BIN)/python bench/reports.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
