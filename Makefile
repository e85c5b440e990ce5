# Atrium's developer commands. Only Python 3.11 is needed on the machine: the rest is installed
# into .venv on first use. `make run` serves the portal; `make test` runs the whole suite.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

# Developer commands run in dev mode (a generated SECRET_KEY under var/, loopback hosts);
# production settings are exercised by the settings tests with DEBUG off.
export DEBUG ?= true
export PORTAL_BASE_URL ?= http://127.0.0.1:$(PORT)

.PHONY: help install lock run test test-integration check format clean

help:
	@echo "make run     start web, Celery worker, beat and the devtenant on $(PORTAL_BASE_URL)"
	@echo "make test    run the whole test suite"
	@echo "make check   ruff, ruff format --check, mypy, the import layering, makemigrations --check"
	@echo "make lock    update requirements/*.txt from pyproject.toml (UPGRADE=--upgrade for newer)"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Atrium needs Python 3.11 on PATH (or PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Everything comes from the lock, hashes checked; the project itself goes in without resolving.
$(STAMP): requirements/dev.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

install: $(STAMP)

# The locks: requirements/dev.txt (everything `make install` puts in .venv) and
# requirements/runtime.txt (what the image installs, at dev.txt's versions), both resolved by
# uv for every platform, with hashes. Existing pins are kept unless pyproject.toml needs others;
# `make lock UPGRADE=--upgrade` moves everything to the newest allowed,
# `make lock UPGRADE="--upgrade-package django"` one package.
UV_VERSION := 0.13.8
LOCK_TOOLS := var/lock-tools
UV := $(LOCK_TOOLS)/bin/uv
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet \
	--custom-compile-command "make lock" $(UPGRADE)

$(UV):
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION)

lock: $(UV)
	$(UV) pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements/dev.txt
	$(UV) pip compile pyproject.toml $(LOCK_FLAGS) -c requirements/dev.txt -o requirements/runtime.txt

# The tests' npm packages, each folder from its package-lock.json: Backstage's own catalog
# client, for the test that reads Atrium's API with it, and axe-core, which the browser tests
# run on each persona's pages.
CLIENT_DIR := tests/backstage_client
AXE_DIR := tests/browser
NPM_STAMPS := $(CLIENT_DIR)/node_modules/.installed $(AXE_DIR)/node_modules/.installed
%/node_modules/.installed: %/package-lock.json
	@command -v npm >/dev/null || { echo "make test needs Node.js and npm (Backstage's client, axe-core)"; exit 1; }
	cd $* && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: install
	$(BIN)/python manage.py migrate --no-input
	@echo
	@$(BIN)/python manage.py seed_demo
	@echo
	@echo "  Atrium is starting on $(PORTAL_BASE_URL)/"
	@echo "  (Ctrl-C stops web, Celery worker, beat and the devtenant)"
	@echo
	PATH="$(abspath $(BIN)):$$PATH" PORT=$(PORT) $(BIN)/honcho start -f Procfile

test: install $(NPM_STAMPS)
	DJANGO_ALLOW_ASYNC_UNSAFE=true $(BIN)/pytest --cov --cov-report=term-missing:skip-covered $(PYTEST_ARGS)

test-integration: install
	DJANGO_ALLOW_ASYNC_UNSAFE=true $(BIN)/pytest -m integration $(PYTEST_ARGS)

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy portal catalog access devtenant tests
	$(BIN)/lint-imports --no-cache
	$(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .coverage $(CLIENT_DIR)/node_modules $(AXE_DIR)/node_modules
