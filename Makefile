# One command each for a fresh machine: `make run` and `make test` do their
# own set-up (virtualenv, Python and npm packages, Chromium, services).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
DB ?= ./collab.db

.PHONY: setup run test test-py test-js lint typecheck chromium services bench soak clean

$(PY_STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

services:
	@scripts/ensure-services.sh

setup: $(PY_STAMP) $(NODE_STAMP)

run: setup
	$(VENV)/bin/intelgraph-collab serve --host $(HOST) --port $(PORT) --db $(DB)

test: setup chromium services
	$(MAKE) --no-print-directory test-js
	$(MAKE) --no-print-directory test-py

test-py: setup
	$(PY) -m pytest -q

test-js: setup
	node --test tests/js/

lint: setup
	$(VENV)/bin/ruff check src tests

typecheck: setup
	$(VENV)/bin/mypy

bench: setup
	$(PY) bench/run_all.py

# The reliability suite at nightly sizes (RELIABILITY.md, "Long runs"): hours.
soak: setup services
	COLLAB_SIM_SEEDS=0:20000 COLLAB_SIM_STEPS=1000 \
	COLLAB_STATEFUL_EXAMPLES=300 COLLAB_FUZZ_EXAMPLES=20000 \
	COLLAB_CHURN_CYCLES=20000 COLLAB_KILL_RESTARTS=50 COLLAB_CHAOS_ACKS=20000 \
	COLLAB_STORM_CLIENTS=3000 COLLAB_MEMORY_CYCLES=100000 COLLAB_SLOW_WRITES=1000 \
	COLLAB_HOSTILE_EXAMPLES=3000 \
	$(PY) -m pytest -q tests/reliability tests/integration/test_security_hostile.py

clean:
	rm -rf $(VENV) node_modules
