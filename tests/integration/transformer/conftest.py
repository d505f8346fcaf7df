"""One bundle trained by the real training CLI, served by KServe's real kserve-sklearnserver
behind the transformer, which calls it over v2 REST JSON (the session stack, as the chart's
pods do by default), REST binary tensors or v2 gRPC."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import yaml

from devstack.stack import (
    DEFAULT_PROTOCOL,
    REPO_ROOT,
    Service,
    Stack,
    new_token,
    serving_stack,
    train_bundle,
    transformer,
)
from model.bundle import MODEL_PATH, ServingBundle, load_serving_bundle
from model.schema import CUSTOMER_ID, FEATURES, NumericFeature
from tests.rows import spec_columns
from transformer.settings import PredictorProtocol

pytestmark = pytest.mark.integration

MAX_BODY_BYTES = 8_000_000
# The transformer's settings in the Helm chart's default values.
CHART_VALUES = yaml.safe_load((REPO_ROOT / "helm/churn-predictor/values.yaml").read_text())
CHART_TRANSFORMER_ENV = {
    "CHURN_TRANSFORMER_MAX_BODY_BYTES": str(CHART_VALUES["transformer"]["maxBodyBytes"]),
    "CHURN_TRANSFORMER_RATE_LIMIT_PER_SECOND": "100000",
    "CHURN_TRANSFORMER_RATE_LIMIT_BURST": "100000",
}
# The session stack's transformer: no rate limit in the way, bodies up to MAX_BODY_BYTES.
STACK_TRANSFORMER_ENV = {
    "CHURN_TRANSFORMER_RATE_LIMIT_PER_SECOND": "100000",
    "CHURN_TRANSFORMER_RATE_LIMIT_BURST": "100000",
    "CHURN_TRANSFORMER_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
}


@dataclass(frozen=True)
class Trained:
    bundle_dir: Path
    bundle: ServingBundle
    customers: list[dict[str, Any]]

    def matrix(self, customers: list[dict[str, Any]]) -> np.ndarray:
        """The model matrix the bundle's spec builds for these rows, in process."""
        return self.bundle.spec.transform(spec_columns(customers)).matrix

    def expected_probabilities(self, customers: list[dict[str, Any]]) -> np.ndarray:
        """The in-process pipeline: the bundle's spec, then its scikit-learn model."""
        classifier = joblib.load(self.bundle_dir / MODEL_PATH)
        return np.asarray(classifier.predict_proba(self.matrix(customers))[:, 1])


def read_customers(path: Path) -> list[dict[str, Any]]:
    """CSV rows typed as a client would send them: TotalCharges stays text (BYTES)."""
    numbers = {f.name: f for f in FEATURES if isinstance(f, NumericFeature)}
    rows = []
    with path.open(newline="") as handle:
        for raw in csv.DictReader(handle):
            row: dict[str, Any] = {CUSTOMER_ID: raw[CUSTOMER_ID]}
            for feature in FEATURES:
                value = raw[feature.name]
                if feature.name in numbers and feature.name != "TotalCharges":
                    row[feature.name] = (
                        int(value) if numbers[feature.name].integer else float(value)
                    )
                else:
                    row[feature.name] = value
            rows.append(row)
    return rows


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    work = tmp_path_factory.mktemp("trained")
    bundle_dir = train_bundle(work, rows=2000, seed=11, progress=print)
    return Trained(
        bundle_dir,
        load_serving_bundle(str(bundle_dir)),
        read_customers(work / "data/customers.csv"),
    )


@pytest.fixture(scope="session")
def stack(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with serving_stack(
        trained.bundle_dir,
        tmp_path_factory.mktemp("stack"),
        tokens={"alpha": new_token(), "beta": new_token()},
        transformer_env=STACK_TRANSFORMER_ENV,
        progress=print,
    ) as running:
        yield running


@pytest.fixture
def own_transformer(stack: Stack, tmp_path: Path) -> Iterator[Service]:
    """A transformer process of its own, with the chart's limits (CHART_TRANSFORMER_ENV), in
    front of the stack's predictor: for measuring one process from a known state."""
    with another_transformer(stack, tmp_path, env=CHART_TRANSFORMER_ENV) as service:
        yield service


@contextmanager
def another_transformer(
    stack: Stack, work_dir: Path, protocol: PredictorProtocol = DEFAULT_PROTOCOL, **options: Any
) -> Iterator[Service]:
    """A transformer of its own in front of the stack's predictor, on its bundle and tokens,
    calling it over ``protocol``; ``options`` as devstack's transformer() takes them."""
    host = stack.predictor.predictor_host(protocol)
    with transformer(
        str(stack.bundle_dir), host, work_dir, stack.tokens_file, protocol=protocol, **options
    ) as service:
        yield service


def variant_stack(
    stack: Stack, work_dir: Path, protocol: PredictorProtocol, encoding: str = "json"
) -> Iterator[Stack]:
    """The session stack with a second transformer in front of its predictor, one that calls
    it over ``protocol`` (REST in ``encoding``: CHURN_TRANSFORMER_PREDICTOR_ENCODING)."""
    env = {**STACK_TRANSFORMER_ENV, "CHURN_TRANSFORMER_PREDICTOR_ENCODING": encoding}
    with another_transformer(stack, work_dir, protocol, env=env, progress=print) as service:
        yield replace(stack, transformer=service)


@pytest.fixture(scope="session")
def grpc_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """v2 gRPC to the runtime's gRPC port: raw FP64 tensors both ways."""
    yield from variant_stack(stack, tmp_path_factory.mktemp("grpc-transformer"), "grpc-v2")


@pytest.fixture(scope="session")
def binary_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Binary tensors both ways: the transformer asks for binary answers too."""
    yield from variant_stack(stack, tmp_path_factory.mktemp("binary-transformer"), "v2", "binary")


# Each way the transformer can call the runtime, and the session fixture whose transformer
# calls it that way (the session stack: REST JSON, the chart's default).
HOPS = {"json": "stack", "grpc": "grpc_stack", "binary": "binary_stack"}


@pytest.fixture(params=HOPS)
def hop_stack(request: pytest.FixtureRequest) -> Stack:
    """The stack whose transformer calls the predictor the way of the test's id: v2 REST in
    JSON or binary tensors, or v2 gRPC."""
    chosen: Stack = request.getfixturevalue(HOPS[request.param])
    return chosen
