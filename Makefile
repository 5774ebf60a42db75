# Mesh shop lab. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv lock lint typecheck pytest test dev proto system-packages

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): requirements/dev.txt requirements/runtime.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP) ## create or update the virtualenv in .venv

lock: ## re-pin requirements/*.txt from requirements/*.in (needs uv)
	uv pip compile --quiet --universal --python-version 3.11 --no-header --annotation-style line requirements/runtime.in -o requirements/runtime.txt
	uv pip compile --quiet --universal --python-version 3.11 --no-header --annotation-style line requirements/dev.in -o requirements/dev.txt

proto: $(STAMP) ## regenerate the gRPC code from services/protos/*.proto
	$(PY) -m grpc_tools.protoc -I services/protos --python_out=services/protos --pyi_out=services/protos \
	  --grpc_python_out=services/protos services/protos/inventory.proto
	sed -i 's/^import inventory_pb2/from services.protos import inventory_pb2/' services/protos/inventory_pb2_grpc.py

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP) ## mypy (strict on the service kit)
	$(VENV)/bin/mypy services bench

# Test files run on PYTEST_WORKERS processes (pytest-xdist; a file's tests stay together in one): most tests
# wait on subprocesses and sockets, so two workers on a 2-core machine take ~40 % less time. PYTEST_WORKERS=0
# runs them in this process (for pdb, or -x that stops at the first failure at once).
PYTEST_WORKERS ?= 2
pytest: $(STAMP) ## pytest (cluster tests skip without a cluster)
	$(VENV)/bin/pytest -q -rs -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Debian packages that tests drive: Chromium for the browser test (Playwright never downloads a browser here),
# shellcheck for the script checks, wrk for the bench's load generator. Installed when missing (root with apt-get, as in CI); otherwise only
# the tests that need one skip, saying why. tests/test_system_packages.py keeps this list and the tests' needs
# in step.
SYSTEM_PACKAGES := chromium shellcheck wrk
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && echo "installing Debian packages:$$missing" && \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } ; } || \
	  echo "could not install$$missing: the tests that need it will be skipped"

# `tools` first: CI starts with nothing installed (a cold build of every pinned tool; seconds when cached).
test: tools lint typecheck validate system-packages wrk pytest mutation-smoke image-test bench-smoke integration-ferretdb trace-test chaos-test sim-test ## everything that runs without a cluster (installs what it needs)

TRACING ?= off
STORE ?= memory
PORT_BASE ?=

dev: $(STAMP) ## run the whole shop locally (TRACING=jaeger: Jaeger on :16686 too; STORE=ferretdb: a real MongoDB wire-protocol server; PORT_BASE=N; Ctrl-C stops all)
	$(PY) scripts/dev.py --tracing $(TRACING) --store $(STORE) $(if $(PORT_BASE),--port-base $(PORT_BASE))

-include mk/*.mk
