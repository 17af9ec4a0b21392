# Warden developer and CI entry points. Recipes are POSIX sh.
#
#   make install        .venv from uv.lock (runtime + dev group), compiled to bytecode; installs
#                       uv with pip if missing
#   make run            migrate, seed demo data, runserver on 127.0.0.1:8000 (DJANGO_ENV=dev)
#   make lint           ruff check, ruff format --check, mypy, lint-imports (the layers)
#   make test           lint, then the pytest suite on SQLite, then on PostgreSQL
#   make test-sqlite    pytest on SQLite           (PYTEST_ARGS='-x -k name' to narrow)
#   make test-postgres  pytest on PostgreSQL       (TEST_DATABASE_URL to point elsewhere)
#   make test-fast      the inner loop: SQLite, no browser, no long process tests (a few minutes)
#   make bench          every bench/*.py script
#   make compose-check  docker-compose.yml against the compose-spec JSON schema (.ci/)
#   make lock           uv lock, then re-export requirements*.txt
#   make clean          caches and test output (keeps .venv and var/)
#
# Without uv, a plain pip install works from the exported requirement files:
#   python3.11 -m venv .venv
#   .venv/bin/pip install -r requirements.txt -r requirements-dev.txt
#   .venv/bin/python -m compileall -q -j0 .venv/lib/python3.11/site-packages
#   .venv/bin/python -m compileall -q -j0 datafiles core audit registry governance
# (requirements.txt alone is the runtime set.) They are generated from uv.lock by
# `make requirements` (or `make lock`); never edit them by hand.
#
# Bytecode: where PYTHONDONTWRITEBYTECODE is set (as on many CI runners and in the image) Python
# never writes .pyc files, so every process compiles every module it imports unless they were
# compiled ahead. `make install` compiles them (uv's --compile-bytecode for the virtualenv,
# compileall for Warden's own packages), which cuts the start-up of `manage.py`, gunicorn and
# Celery by half or more (bench/startup.py).

SHELL := /bin/sh
MAKEFLAGS += --no-print-directory
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# uv from PATH, else the copy pip installed into $(PYTHON) (a pyenv shim may not exist yet).
UV ?= $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")

PYTEST_ARGS ?=
# pytest-xdist: one worker per core, each with a database of its own (pytest-django suffixes
# the test database with the worker id: test_warden_gw0, ...; Celery broker keys get a
# prefix per process). Tests that must not run side by side carry one xdist_group, which
# --dist loadgroup keeps on one worker. PYTEST_WORKERS=0 runs in this process.
PYTEST_WORKERS ?= auto
PYTEST_XDIST := -n $(PYTEST_WORKERS) --dist loadgroup
# What the inner loop leaves out: Chromium, and the tests that start servers and workers or
# run long property and concurrency batteries (each runs in make test).
FAST_MARKERS ?= not browser and not slow
TEST_SETTINGS ?= governance.settings.test
TEST_OUTPUT ?= test-output
PG_HOST ?= 127.0.0.1
PG_PORT ?= 5432
# pytest-django creates and drops test_warden next to it.
TEST_DATABASE_URL ?= postgres://postgres@$(PG_HOST):$(PG_PORT)/warden
BENCH_OUTPUT ?= $(TEST_OUTPUT)/bench
# Warden's own packages (pyproject's [tool.setuptools.packages.find]), compiled by `make install`.
APP_PACKAGES := datafiles core audit registry governance

DEV_ENV := DJANGO_ENV=dev

.PHONY: help ensure-uv install lock requirements requirements-check lock-check run lint \
	test test-sqlite test-postgres test-fast bench compose-check clean distclean

help:
	@sed -n 's/^#   make /make /p' Makefile

ensure-uv:
	@if command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1; then :; \
	else echo "uv not found: $(PYTHON) -m pip install --quiet uv"; \
	  $(PYTHON) -m pip install --quiet uv; fi

install: ensure-uv
	$(UV) sync --frozen --compile-bytecode
	$(PY) -m compileall -q -j0 $(APP_PACKAGES)

# Re-resolve uv.lock from pyproject.toml, then export the pip requirement files.
lock: ensure-uv
	$(UV) lock
	$(MAKE) requirements

requirements: ensure-uv
	$(UV) export --frozen --no-hashes --no-dev --no-emit-project --quiet -o requirements.txt
	$(UV) export --frozen --no-hashes --only-group dev --no-emit-project --quiet \
		-o requirements-dev.txt

# Fails when uv.lock no longer matches pyproject.toml.
lock-check: ensure-uv
	$(UV) lock --check

# Fails when requirements*.txt are stale relative to uv.lock.
requirements-check: ensure-uv
	@tmp=$$(mktemp -d) && status=0; \
	for spec in "requirements.txt:--no-dev" "requirements-dev.txt:--only-group dev"; do \
	  file=$${spec%%:*}; flags=$${spec#*:}; \
	  $(UV) export --frozen --no-hashes $$flags --no-emit-project --quiet -o "$$tmp/$$file"; \
	  sed 1,2d "$$tmp/$$file" > "$$tmp/$$file.body"; sed 1,2d "$$file" > "$$tmp/$$file.old"; \
	  if ! cmp -s "$$tmp/$$file.body" "$$tmp/$$file.old"; then \
	    echo "$$file is stale: run 'make requirements'" >&2; status=1; fi; \
	done; rm -rf "$$tmp"; exit $$status

run: install
	mkdir -p "$${WARDEN_VAR_DIR:-var}"
	$(DEV_ENV) $(PY) manage.py migrate --noinput
	$(DEV_ENV) $(PY) manage.py seed_demo
	$(DEV_ENV) $(PY) manage.py runserver 127.0.0.1:8000

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy . .ci/check_compose.py
	$(BIN)/lint-imports

# Sequential on purpose (also under make -j): lint, SQLite, PostgreSQL.
test:
	$(MAKE) lint
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

# The two passes do not repeat each other: the PostgreSQL pass runs the tests that get a
# database from pytest-django (or are marked `postgres`: they need the server themselves);
# the others (`database_free`: canonical JSON, the Merkle tree, the offline verifier and its
# 100,000-flip battery, PDF rendering, settings refused in a subprocess) cannot touch the
# database, behave alike on both, and run once, in the SQLite pass (tests/conftest.py).
#
# $(1): label (also names the JUnit file), $(2): extra environment assignments, $(3): extra
# pytest arguments. Every run ends with its slowest 20 tests.
# pytest's exit 5 (no tests collected) is turned into a failure: a run that tests nothing
# must not pass.
define run_pytest
	mkdir -p $(TEST_OUTPUT)
	@echo "== pytest on $(1)"
	status=0; \
	DJANGO_ENV=test DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(2) \
	  $(BIN)/pytest $(PYTEST_XDIST) --durations=20 --junitxml=$(TEST_OUTPUT)/junit-$(1).xml \
	  $(3) $(PYTEST_ARGS) || status=$$?; \
	if [ "$$status" -eq 5 ]; then \
	  echo "make: FAILED: pytest on $(1) collected no tests (pytest exit 5)" >&2; exit 1; \
	fi; \
	exit "$$status"
endef

test-sqlite: install
	$(call run_pytest,sqlite,DATABASE_URL=)

test-postgres: install
	@if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h $(PG_HOST) -p $(PG_PORT); then \
	  echo "make: PostgreSQL is not answering at $(PG_HOST):$(PG_PORT)" >&2; exit 1; fi
	$(call run_pytest,postgres,DATABASE_URL=$(TEST_DATABASE_URL))

# SQLite without Chromium and without the long process tests, across every core.
test-fast: install
	$(call run_pytest,fast,DATABASE_URL=,-m "$(FAST_MARKERS)")

# Runs every bench/*.py from the repository root (importable as PYTHONPATH=.); scripts may
# write results under $BENCH_OUTPUT_DIR. Goes on after a failing script, fails at the end.
bench: install
	@mkdir -p $(BENCH_OUTPUT); found=0; failed=""; \
	for script in bench/*.py; do \
	  [ -e "$$script" ] || continue; case "$$script" in bench/_*) continue;; esac; found=1; \
	  echo "== $$script"; \
	  PYTHONPATH=.$${PYTHONPATH:+:$$PYTHONPATH} BENCH_OUTPUT_DIR=$(BENCH_OUTPUT) \
	    $(PY) "$$script" || failed="$$failed $$script"; \
	done; \
	if [ "$$found" -eq 0 ]; then echo "bench: no bench/*.py scripts"; fi; \
	if [ -n "$$failed" ]; then echo "bench: FAILED:$$failed" >&2; exit 1; fi

compose-check: install
	$(PY) .ci/check_compose.py docker-compose.yml
	@if docker compose version >/dev/null 2>&1; then \
	  echo "docker compose -f docker-compose.yml config -q"; \
	  docker compose -f docker-compose.yml config -q; \
	else \
	  echo "compose-check: the 'docker compose' plugin is not installed; skipped 'docker compose config -q'"; \
	fi

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .grimp_cache .hypothesis htmlcov .coverage $(TEST_OUTPUT)
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

# Also removes the virtual environment; var/ (dev database, media) is left alone.
distclean: clean
	rm -rf $(VENV)
