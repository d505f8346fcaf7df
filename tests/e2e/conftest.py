"""The e2e suite runs against the kind cluster that `make e2e` (or `make kind-up stack-up`) created.

Steps share session fixtures in journey order: the first model (training Job), the release
installed with it, the second model. A fixture that fails fails every step that needs it, once.
On a failed step the cluster's state (objects, events, unready pods with logs) is attached to the
report.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devstack.demo import SAMPLE_CUSTOMERS
from tests.e2e.journey import (
    NAMESPACE,
    PLATFORM_NAMESPACE,
    RELEASE,
    Gateway,
    Release,
    TrainedModel,
    run_training_job,
)
from tests.e2e.kube import Kube, PortForward, say, wait_until

# Progress lines, not one line per HTTP call of the canary sample.
for chatty in ("httpx", "botocore", "urllib3"):
    logging.getLogger(chatty).setLevel(logging.WARNING)

CONTEXT = f"kind-{os.environ.get('KIND_CLUSTER_NAME', 'churn')}"
VALUES_FILE = Path(__file__).with_name("values-e2e.yaml")
DIAGNOSED_NAMESPACES = (NAMESPACE, PLATFORM_NAMESPACE, "kserve", "traefik", "monitoring")


# Steps wait for rollouts and training on a 2-core machine: far beyond the suite-wide default.
STEP_TIMEOUT_SECONDS = 2400


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(Path(__file__).parent):
            continue
        item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(STEP_TIMEOUT_SECONDS))


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Kube:
    """kubectl/helm on a kubeconfig holding only the e2e context, so nothing else is touched."""
    kubeconfig = tmp_path_factory.mktemp("kube") / "config"
    view = subprocess.run(
        ["kubectl", "config", "view", "--minify", "--flatten", "--context", CONTEXT],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if view.returncode != 0:
        pytest.fail(f"no kube context {CONTEXT}: run `make kind-up stack-up` first\n{view.stderr}")
    kubeconfig.touch(mode=0o600)
    kubeconfig.write_text(view.stdout)
    cluster = Kube(kubeconfig)
    cluster.kubectl("get", "--raw", "/readyz")
    return cluster


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and call.when in ("setup", "call"):
        cluster = item.funcargs.get("kube") if hasattr(item, "funcargs") else None
        if isinstance(cluster, Kube):
            report.sections.append(("cluster state", cluster.diagnostics(DIAGNOSED_NAMESPACES)))
    return report


@pytest.fixture(scope="session")
def object_store(kube: Kube) -> Iterator[str]:
    """MinIO on a loopback port; the AWS variables point this process's S3 clients at it."""
    secret = kube.get("-n", PLATFORM_NAMESPACE, "secret", "minio-root")["data"]
    with kube.port_forward(PLATFORM_NAMESPACE, "svc/minio", 9000) as forward:
        os.environ.update(
            AWS_ENDPOINT_URL=forward.url,
            AWS_ACCESS_KEY_ID=base64.b64decode(secret["MINIO_ROOT_USER"]).decode(),
            AWS_SECRET_ACCESS_KEY=base64.b64decode(secret["MINIO_ROOT_PASSWORD"]).decode(),
        )
        yield forward.url


@pytest.fixture(scope="session")
def mlflow_url(kube: Kube) -> Iterator[str]:
    # MLflow clients send usage telemetry unless told not to: nothing may leave this machine.
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    with kube.port_forward(PLATFORM_NAMESPACE, "svc/mlflow", 5000) as forward:
        yield forward.url


@pytest.fixture(scope="session")
def prometheus(kube: Kube) -> Iterator[PortForward]:
    with kube.port_forward("monitoring", "svc/prometheus-operated", 9090) as forward:
        yield forward


@pytest.fixture(scope="session")
def gateway_url(kube: Kube) -> Iterator[str]:
    """The Gateway as a client outside the cluster reaches it: the kind node's NodePort 30080,
    published on 127.0.0.1:8080 (manifests/kind/cluster.yaml). CHURN_E2E_GATEWAY_URL overrides it;
    without the port mapping the Traefik Service is port-forwarded instead."""
    configured = os.environ.get("CHURN_E2E_GATEWAY_URL", "http://127.0.0.1:8080")
    try:
        httpx.get(f"{configured}/", timeout=5)
        yield configured
        return
    except httpx.TransportError as error:
        say(f"gateway not reachable on {configured} ({error}); port-forwarding svc/traefik")
    with kube.port_forward("traefik", "svc/traefik", 80) as forward:
        yield forward.url


@pytest.fixture(scope="session")
def first_model(kube: Kube, object_store: str, mlflow_url: str) -> TrainedModel:
    return run_training_job(kube, "churn-training-e2e-1", seed=101)


@pytest.fixture(scope="session")
def second_model(kube: Kube, first_model: TrainedModel) -> TrainedModel:
    return run_training_job(kube, "churn-training-e2e-2", seed=202)


@pytest.fixture(scope="session")
def release_values(tmp_path_factory: pytest.TempPathFactory, kube: Kube) -> list[str]:
    """values-e2e.yaml, plus the MinIO credentials in a private file. The predictor runtime is
    the chart's default."""
    secret = kube.get("-n", PLATFORM_NAMESPACE, "secret", "minio-root")["data"]
    private = tmp_path_factory.mktemp("values") / "cluster-values.yaml"
    private.touch(mode=0o600)
    private.write_text(
        yaml.safe_dump(
            {
                "s3": {
                    "accessKeyId": base64.b64decode(secret["MINIO_ROOT_USER"]).decode(),
                    "secretAccessKey": base64.b64decode(secret["MINIO_ROOT_PASSWORD"]).decode(),
                },
            }
        )
    )
    return [str(VALUES_FILE), str(private)]


@pytest.fixture(scope="session")
def release(kube: Kube, release_values: list[str], first_model: TrainedModel) -> Release:
    """`helm upgrade --install` with the first model, waited until it serves."""
    chart_release = Release(kube, release_values)
    if kube.run("helm", "status", RELEASE, "-n", NAMESPACE, check=False).returncode == 0:
        say(f"removing the previous release {RELEASE} (a re-run on a kept cluster)")
        kube.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", timeout=600)
    chart_release.install(first_model.bundle_uri)
    chart_release.wait_serving(RELEASE, first_model.bundle_uri)
    return chart_release


@pytest.fixture(scope="session")
def token(kube: Kube, release: Release) -> str:
    """The token the chart generated into its tokens Secret (auth.tokens left empty)."""
    encoded = kube.get("-n", NAMESPACE, "secret", f"{RELEASE}-tokens")["data"]["tokens.json"]
    tokens: dict[str, str] = json.loads(base64.b64decode(encoded))
    return tokens["default"]


@pytest.fixture(scope="session")
def gateway(gateway_url: str, token: str, release: Release) -> Gateway:
    client = Gateway(gateway_url, token)
    wait_until(
        "the Gateway to route to the release",
        lambda: client.infer(SAMPLE_CUSTOMERS).status == 200,
        timeout=300,
    )
    return client
