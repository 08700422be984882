# The single entry point: `make help` lists every target.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= examples/development.yaml
ARGS ?=
SEED ?=
INSTALLED := $(VENV)/.installed-dev
INSTALLED_RUN := $(VENV)/.installed-run
# Debian's prometheus package unpacked (prometheus, promtool) for the metrics and alert-rule tests
PROMETHEUS_TOOLS := .tools/prometheus/.fetched

.DEFAULT_GOAL := help
.PHONY: help run test lint fmt typecheck check audit fuzz bench lock openapi clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(INSTALLED_RUN): $(VENV)/bin/python pyproject.toml requirements.lock
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(INSTALLED): $(INSTALLED_RUN) requirements-dev.lock
	$(BIN)/pip install --quiet -r requirements-dev.lock
	touch $@

run: $(INSTALLED_RUN) ## install, then serve on 127.0.0.1:8080 (embedded Redis); ARGS='--port 9090'
	$(BIN)/raibid-api serve --config $(CONFIG) $(ARGS)

$(PROMETHEUS_TOOLS): .ci/fetch-prometheus
	.ci/fetch-prometheus .tools/prometheus
	touch $@

test: $(INSTALLED) $(PROMETHEUS_TOOLS) ## install the dev extras and the Prometheus tools, then lint, type-check and run every test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n 2

lint: $(INSTALLED) ## ruff and import-linter
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

fmt: $(INSTALLED) ## format and auto-fix
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

typecheck: $(INSTALLED) ## mypy --strict
	$(BIN)/mypy

check: test ## everything CI runs

audit: $(INSTALLED) ## pip-audit over the locked dependencies (needs the PyPI vulnerability API)
	$(BIN)/pip-audit --strict --disable-pip --no-deps -r requirements.lock

fuzz: $(INSTALLED) ## Schemathesis against a real server, 1,000 examples per operation; SEED=n repeats a run
	SCHEMATHESIS_MAX_EXAMPLES=1000 SCHEMATHESIS_SEED=$(SEED) $(BIN)/pytest -p no:cacheprovider \
		--timeout 3600 tests/faults/test_schemathesis.py

bench: $(INSTALLED) ## run every benchmark against its baseline (see docs/benchmarks.md)
	$(BIN)/python -m bench.jobs.run
	$(BIN)/python -m bench.jobs.badge_cost
	$(BIN)/python -m bench.agents.run
	$(BIN)/python -m bench.agents.cancel
	$(BIN)/python -m bench.agents.hold_cost
	$(BIN)/python -m bench.webhooks.run
	$(BIN)/python -m bench.webhooks.busy
	$(BIN)/python -m bench.metrics.overhead
	$(BIN)/python -m bench.metrics.hot_path
	$(BIN)/python -m bench.metrics.scrape
	$(BIN)/python -m bench.logs.fanout
	$(BIN)/python -m bench.dashboard.run
	$(BIN)/python -m bench.faults.run
	$(BIN)/python -m bench.faults.wait_cost
	$(BIN)/python -m bench.faults.slow_loris

openapi: $(INSTALLED_RUN) ## regenerate docs/openapi.json
	$(BIN)/raibid-api openapi > docs/openapi.json

lock: $(INSTALLED) ## re-resolve requirements*.lock from pyproject.toml
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 pyproject.toml -o requirements.lock
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --extra dev pyproject.toml -o requirements-dev.lock

clean: ## remove the virtualenv and local state
	rm -rf $(VENV) .raibid .tools .mypy_cache .ruff_cache .pytest_cache
