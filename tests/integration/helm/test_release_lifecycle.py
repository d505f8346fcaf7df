"""The canary runbook (docs/runbook-canary.md) as real helm releases against a real API server:
install, start a canary, shift, promote, `helm rollback`. Nothing runs (no controllers); what is
checked is what helm stores and the API server accepts, step by step."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kube_apiserver import REPO, ApiServer

pytestmark = pytest.mark.integration

CHART = REPO / "helm" / "churn-predictor"
NAMESPACE = "churn"
RELEASE = "ab"
STABLE = "churn"
CANDIDATE = "churn-candidate"
STABLE_URI = "s3://models/churn/20260101T000000Z-abc1234"
CANDIDATE_URI = "s3://models/churn/20260201T000000Z-def5678"
# The candidate arm's own HPA and budget: they come and go with its InferenceService.
CANDIDATE_POLICIES = [
    ("horizontalpodautoscaler", f"{CANDIDATE}-predictor-hpa"),
    ("poddisruptionbudget", f"{CANDIDATE}-predictor"),
]


def helm_upgrade(server: ApiServer, *sets: str, install: bool = False) -> None:
    args = ["helm", "upgrade", RELEASE, str(CHART), "--namespace", NAMESPACE]
    args += ["--install"] if install else ["--reuse-values"]
    for item in sets:
        args += ["--set", item]
    server.must(*args)


def get(server: ApiServer, kind: str, name: str) -> dict[str, Any] | None:
    result = server.run("kubectl", "get", kind, name, "--namespace", NAMESPACE, "-o", "json")
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return None
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def storage_uri(server: ApiServer, isvc: str) -> str | None:
    found = get(server, "inferenceservice", isvc)
    return None if found is None else found["spec"]["predictor"]["model"]["storageUri"]


def route_weights(server: ApiServer) -> dict[str, int]:
    route = get(server, "httproute", f"{STABLE}-route")
    assert route is not None
    weighted = next(r for r in route["spec"]["rules"] if "headers" not in r["matches"][0])
    return {b["name"]: b.get("weight", 1) for b in weighted["backendRefs"]}


def tokens(server: ApiServer) -> dict[str, str]:
    secret = get(server, "secret", f"{STABLE}-tokens")
    assert secret is not None
    decoded: dict[str, str] = json.loads(base64.b64decode(secret["data"]["tokens.json"]))
    return decoded


@pytest.fixture(scope="module")
def installed(apiserver: ApiServer) -> Iterator[ApiServer]:
    helm_upgrade(
        apiserver,
        "fullnameOverride=churn",
        f"stable.bundleUri={STABLE_URI}",
        "s3.accessKeyId=minio",
        "s3.secretAccessKey=minio-secret",
        "serviceMonitor.enabled=true",
        "prometheusRule.enabled=true",
        install=True,
    )
    yield apiserver
    apiserver.must("helm", "uninstall", RELEASE, "--namespace", NAMESPACE)


def test_canary_runbook_end_to_end(installed: ApiServer) -> None:
    server = installed
    generated = tokens(server)
    assert storage_uri(server, STABLE) == STABLE_URI
    assert route_weights(server) == {f"{STABLE}-predictor": 100}

    # 1. Start: the candidate gets its own InferenceService and 10% of requests.
    helm_upgrade(
        server, "canary.enabled=true", f"canary.bundleUri={CANDIDATE_URI}", "canary.weight=10"
    )
    assert storage_uri(server, CANDIDATE) == CANDIDATE_URI
    for kind, name in CANDIDATE_POLICIES:
        assert get(server, kind, name) is not None, (kind, name)
    assert route_weights(server) == {f"{STABLE}-predictor": 90, f"{CANDIDATE}-predictor": 10}
    rule = get(server, "prometheusrule", STABLE)
    assert rule is not None
    assert "ChurnCanaryWorseThanStable" in json.dumps(rule)

    # 2. Shift.
    helm_upgrade(server, "canary.weight=50")
    assert route_weights(server) == {f"{STABLE}-predictor": 50, f"{CANDIDATE}-predictor": 50}

    # 3. Promote in two steps: all traffic on the candidate while the stable arm rolls to its
    #    bundle, then back to the (now identical) stable arm and the candidate goes away.
    helm_upgrade(server, "canary.weight=100", f"stable.bundleUri={CANDIDATE_URI}")
    assert route_weights(server) == {f"{STABLE}-predictor": 0, f"{CANDIDATE}-predictor": 100}
    assert storage_uri(server, STABLE) == CANDIDATE_URI
    helm_upgrade(server, "canary.enabled=false")
    assert storage_uri(server, STABLE) == CANDIDATE_URI
    assert get(server, "inferenceservice", CANDIDATE) is None
    for kind, name in CANDIDATE_POLICIES:
        assert get(server, kind, name) is None, (kind, name)
    assert route_weights(server) == {f"{STABLE}-predictor": 100}

    # 4. Roll back to the pre-canary revision with plain `helm rollback`.
    server.must("helm", "rollback", RELEASE, "1", "--namespace", NAMESPACE)
    assert storage_uri(server, STABLE) == STABLE_URI
    assert get(server, "inferenceservice", CANDIDATE) is None
    assert route_weights(server) == {f"{STABLE}-predictor": 100}

    # The generated token survived every upgrade (the chart reuses the live Secret).
    assert tokens(server) == generated
    history = json.loads(
        server.must("helm", "history", RELEASE, "--namespace", NAMESPACE, "-o", "json")
    )
    assert [h["revision"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert history[-1]["status"] == "deployed"


def test_rollback_in_the_middle_of_a_canary_removes_the_candidate(installed: ApiServer) -> None:
    server = installed
    before = json.loads(server.must("helm", "history", RELEASE, "-n", NAMESPACE, "-o", "json"))
    last = before[-1]["revision"]
    helm_upgrade(
        server, "canary.enabled=true", f"canary.bundleUri={CANDIDATE_URI}", "canary.weight=25"
    )
    assert get(server, "inferenceservice", CANDIDATE) is not None

    server.must("helm", "rollback", RELEASE, str(last), "--namespace", NAMESPACE)

    assert get(server, "inferenceservice", CANDIDATE) is None
    assert route_weights(server) == {f"{STABLE}-predictor": 100}
