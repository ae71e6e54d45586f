# Hetang: `make run` serves the demo city; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HETANG_DATA_DIR ?= ./var

.PHONY: run test install install-test install-agent lock audit lint typecheck pytest migrate demo bench clean

# Installs come only from the hashed locks requirements*.txt (pip-tools: `make lock` refreshes
# them from pyproject.toml); pip checks every file's hash, so every machine gets what CI tested.
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps
# The project itself, without build isolation: its build backend is the locked setuptools.
PIP_SELF := $(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -r requirements.txt
	$(PIP_SELF) -e .
	touch $@

$(VENV)/.installed-test: requirements-test.txt pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -r requirements-test.txt
	$(PIP_SELF) -e .
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# What a branch venue's PC gets: the agent's own lock (no server or test packages).
AGENT_VENV ?= .venv-agent
install-agent:
	test -x $(AGENT_VENV)/bin/python || $(PYTHON) -m venv $(AGENT_VENV)
	$(AGENT_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-agent.txt
	$(AGENT_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation .

# Re-resolve the locks from pyproject.toml, whose direct dependencies are pinned exactly (move one by
# editing its pin there), keeping every transitive pin it still can (LOCK_FLAGS=--upgrade-package=NAME
# moves a transitive one). The test lock holds everything; the
# server's and the agent's are constrained to it, so a package has one version in all three.
LOCK := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --all-build-deps \
	--no-emit-index-url --no-emit-find-links $(LOCK_FLAGS)
lock: install-test
	$(LOCK) --extra server --extra test -o requirements-test.txt pyproject.toml
	$(LOCK) -c requirements-test.txt --extra server -o requirements.txt pyproject.toml
	$(LOCK) -c requirements-test.txt -o requirements-agent.txt pyproject.toml

# Known vulnerabilities in any locked package fail the run (accepted ones: tools/audit-accepted.txt).
audit: install-test
	$(BIN)/python -m tools.audit requirements-test.txt

migrate: install
	$(BIN)/hetang migrate

# The demo city with a year of history, built once; every run (again) makes sure a session
# starts within minutes, to try check-in and broadcast on.
demo: migrate
	$(BIN)/hetang demo --if-empty

# Two demo venue agents run beside the server (staff pages on 127.0.0.1:8765 and :8766), which
# prints one line once it listens; `make run ACCESS_LOG=1` also logs every request.
run: demo
	@$(BIN)/hetang --log-level WARNING demo-agents --count 2 & agents=$$!; \
	trap 'kill $$agents 2>/dev/null; wait $$agents' EXIT INT TERM; \
	$(BIN)/hetang serve $(if $(ACCESS_LOG),--access-log)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-test
	$(BIN)/mypy

# Two passes: everything but the `solo` tests on three workers (a file's tests stay on one
# worker: they may share a Redis database or a module's server; the whole-process tests among
# them mostly wait on their processes, so a third worker keeps both cores busy), then the `solo`
# tests (media through Chromium, the network lab, tight deadlines) one at a time, since they
# measure frame rates and seconds. While working, `pytest -m "not slow"` skips every whole-process test.
pytest: install-test
	$(BIN)/pytest -q -n 3 --dist loadfile -m "not solo" --durations=15
	$(BIN)/pytest -q -m solo --durations=15

test: lint typecheck audit pytest

bench: install-test
	$(BIN)/python bench/members.py
	$(BIN)/python bench/checkins.py
	$(BIN)/python bench/finalize.py
	$(BIN)/python bench/relay.py
	$(BIN)/python bench/agent_cost.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/fleet.py

clean:
	rm -rf $(VENV) .venv-agent var .mypy_cache .ruff_cache .pytest_cache
