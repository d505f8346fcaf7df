"""Every rendered object against a real kube-apiserver: the Kubernetes OpenAPI schema of the pinned
version plus the real KServe, Gateway API and prometheus-operator CRD schemas (and their CEL rules),
with strict field validation, so an unknown field is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kube_apiserver import REPO, ApiServer

pytestmark = pytest.mark.integration

CHART = REPO / "helm" / "churn-predictor"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
BASE = CHART / "ci" / "standard-values.yaml"
STABLE_URI = "s3://models/churn/20260101T000000Z-abc1234"
CANDIDATE_URI = "s3://models/churn/20260201T000000Z-def5678"
# The runbook's steps (docs/runbook-canary.md) as --set lists on top of the standard scenario.
CANARY_STEPS = {
    "start": [
        "canary.enabled=true",
        f"canary.bundleUri={CANDIDATE_URI}",
        "canary.weight=10",
    ],
    "shift": ["canary.enabled=true", f"canary.bundleUri={CANDIDATE_URI}", "canary.weight=50"],
    "promote-prepare": [
        "canary.enabled=true",
        f"canary.bundleUri={CANDIDATE_URI}",
        "canary.weight=100",
        f"stable.bundleUri={CANDIDATE_URI}",
    ],
    "promote": [f"stable.bundleUri={CANDIDATE_URI}", "canary.enabled=false"],
    "rollback": [f"stable.bundleUri={STABLE_URI}", "canary.enabled=false"],
}


def render(server: ApiServer, values: Path, sets: list[str] | None = None) -> str:
    args = [
        "helm",
        "template",
        "churn",
        str(CHART),
        "--namespace",
        "churn",
        "--values",
        str(values),
    ]
    for item in sets or []:
        args += ["--set", item]
    return server.must(*args)


def dry_run(server: ApiServer, manifests: str, namespace: str = "churn") -> tuple[str, str]:
    result = server.run(
        "kubectl", "apply", "--dry-run=server", "--validate=strict", "--namespace", namespace,
        "-f", "-", stdin=manifests,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


def kinds(manifests: str) -> list[str]:
    return [doc["kind"] for doc in yaml.safe_load_all(manifests) if doc]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_every_scenario_is_accepted_by_the_api_server(apiserver: ApiServer, values: Path) -> None:
    manifests = render(apiserver, values)
    stdout, stderr = dry_run(apiserver, manifests)

    assert stdout.count("(server dry run)") == len(kinds(manifests))
    assert "Warning" not in stderr


@pytest.mark.parametrize("step", list(CANARY_STEPS))
def test_every_canary_step_is_accepted_by_the_api_server(apiserver: ApiServer, step: str) -> None:
    manifests = render(apiserver, BASE, CANARY_STEPS[step])
    stdout, _ = dry_run(apiserver, manifests)

    assert stdout.count("(server dry run)") == len(kinds(manifests))
    assert "InferenceService" in kinds(manifests)


def standard_manifests(apiserver: ApiServer) -> list[dict[str, object]]:
    return [doc for doc in yaml.safe_load_all(render(apiserver, BASE)) if doc]


def rejection(apiserver: ApiServer, manifest: dict[str, object]) -> str:
    result = apiserver.run(
        "kubectl", "apply", "--dry-run=server", "--validate=strict", "--namespace", "churn",
        "-f", "-", stdin=json.dumps(manifest),
    )  # fmt: skip
    assert result.returncode != 0, f"the API server accepted a broken object:\n{result.stdout}"
    return result.stderr


def first(manifests: list[dict[str, object]], kind: str) -> dict[str, object]:
    return next(m for m in manifests if m["kind"] == kind)


def test_unknown_inference_service_field_is_an_error(apiserver: ApiServer) -> None:
    isvc = first(standard_manifests(apiserver), "InferenceService")
    isvc["spec"]["predictor"]["model"]["storageUrl"] = STABLE_URI  # type: ignore[index]

    assert 'unknown field "spec.predictor.model.storageUrl"' in rejection(apiserver, isvc)


def test_unknown_core_field_is_an_error(apiserver: ApiServer) -> None:
    policy = first(standard_manifests(apiserver), "NetworkPolicy")
    policy["spec"]["podSelectors"] = {}  # type: ignore[index]

    assert 'unknown field "spec.podSelectors"' in rejection(apiserver, policy)


def test_gateway_api_schema_rules_are_enforced(apiserver: ApiServer) -> None:
    route = first(
        [doc for doc in yaml.safe_load_all(render(apiserver, BASE, CANARY_STEPS["start"])) if doc],
        "HTTPRoute",
    )
    route["spec"]["rules"][-1]["backendRefs"][0]["weight"] = 1_000_001  # type: ignore[index]

    assert "weight" in rejection(apiserver, route)


def test_service_monitor_schema_is_enforced(apiserver: ApiServer) -> None:
    monitor = first(standard_manifests(apiserver), "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"  # type: ignore[index]

    assert "intervall" in rejection(apiserver, monitor)
