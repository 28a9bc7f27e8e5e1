# The two commands: `make run` serves the dashboard (and runs its task worker), `make test` runs every test.
# `make run` gives gunicorn's workers and the task worker one metrics directory, so /metrics adds them up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
# The browser tests drive Debian's Chromium; AUTOPACK_CHROMIUM points them at another binary.
CHROMIUM := $(or $(AUTOPACK_CHROMIUM),/usr/bin/chromium)

.PHONY: run test lint format bench-setup clean chromium bench load

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0
	$(BIN)/python manage.py demo --if-empty
	$(BIN)/python manage.py start_alert_sweep
	@echo "Dashboard: http://localhost:$(PORT)/dashboard/ (and a task worker beside it; Ctrl-C stops both)"
	@export PROMETHEUS_MULTIPROC_DIR=$$(mktemp -d "$${TMPDIR:-/tmp}/autopack-metrics.XXXXXX"); \
	$(BIN)/python manage.py db_worker --no-reload --interval 1 & worker=$$!; \
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker; rm -rf "$$PROMETHEUS_MULTIPROC_DIR"' EXIT INT TERM; \
	$(BIN)/gunicorn autopack_site.wsgi --config autopack_site/gunicorn_conf.py --bind $(HOST):$(PORT) --workers $(WORKERS)

# Installs Debian's chromium package when it can (as root, with apt); otherwise says how, and stops.
chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "== installing Chromium (Debian package) for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Chromium at $(CHROMIUM). Install it with:"; \
	    echo "    sudo apt-get install chromium"; \
	    echo "or point AUTOPACK_CHROMIUM at a Chromium binary."; \
	    exit 1; \
	  fi; \
	fi

test: $(VENV)/.installed chromium
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Every speed figure beside a reference measured in the same run (PostgreSQL at BENCH_POSTGRES, and wrk,
# installed from Debian's package when it can, as the chromium target does). Not part of `make test`.
bench: $(VENV)/.runtime
	@if ! command -v wrk >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "== installing wrk (Debian package) for the benchmarks"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else \
	    echo "make bench needs wrk. Install it with:"; \
	    echo "    sudo apt-get install wrk"; \
	    exit 1; \
	  fi; \
	fi
	$(BIN)/python bench/run_all.py

# The served app under 8 clients for 30 s, then the same through a database restart (a throwaway cluster
# made with initdb), each checked against the database afterwards. About 2 minutes; not part of `make test`.
load: $(VENV)/.runtime
	$(BIN)/python bench/load.py
	$(BIN)/python bench/load.py --restart

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
