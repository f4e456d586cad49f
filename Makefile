# The two commands a newcomer needs: `make up` (start the platform) and `make test` (the whole suite).
# Both build .venv from pyproject.toml and install Debian's etcd (the deployment's consensus store) and Prometheus
# (its metrics history and alerts) on a fresh machine; `make test` also installs Debian Chromium.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: up down status test unit integration e2e lint typecheck browser etcd prometheus clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.runtime
	$(BIN)/pip install -q -e '.[test]'
	touch $@

up: $(VENV)/.runtime etcd prometheus
	$(BIN)/regionctl up

down: $(VENV)/.runtime
	$(BIN)/regionctl down

status: $(VENV)/.runtime
	$(BIN)/regionctl status

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }

etcd:
	@command -v etcd >/dev/null 2>&1 || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >/dev/null; }

prometheus:  # the server and promtool only: no exporters (recommends), no service (nothing runs it but `up`)
	@command -v prometheus >/dev/null 2>&1 || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	  prometheus >/dev/null; }

test: $(VENV)/.test browser etcd prometheus lint typecheck
	$(BIN)/python -m pytest -q --timeout=600 $(PYTEST_ARGS)

unit: $(VENV)/.test
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

integration: $(VENV)/.test
	$(BIN)/python -m pytest -q tests/integration $(PYTEST_ARGS)

lint: $(VENV)/.test
	$(BIN)/ruff check src tests benchmarks

typecheck: $(VENV)/.test
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache .hypothesis .schemathesis
