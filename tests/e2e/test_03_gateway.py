"""Step 3: v2 via the Gateway equals the offline model; bad tokens, bad payloads, direct access."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from devstack.demo import SAMPLE_CUSTOMERS, v2_request
from tests.e2e.journey import (
    NAMESPACE,
    RELEASE,
    Gateway,
    OfflineModel,
    Release,
    TrainedModel,
    customer_ids,
    customers,
)
from tests.e2e.kube import Kube, say, wait_until

# JSON carries float64 exactly both ways; the margin only absorbs a different BLAS summation order.
PROBABILITY_TOLERANCE = 1e-12


def test_gateway_answers_equal_the_offline_model(
    gateway: Gateway, first_model: TrainedModel, object_store: str
) -> None:
    rows = customers(60, seed=7)
    offline = OfflineModel(first_model.bundle_uri)

    answer = gateway.infer(rows)

    assert answer.status == 200, answer.body
    assert answer.model_version == first_model.version
    served = np.array(answer.output("churn_probability"), dtype=np.float64)
    expected = offline.probabilities(rows)
    np.testing.assert_allclose(served, expected, rtol=0, atol=PROBABILITY_TOLERANCE)
    assert answer.output("churn") == [bool(p >= offline.bundle.threshold) for p in expected]
    assert customer_ids(answer) == [row["customerID"] for row in rows]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-the-token", "Basic dXNlcjpwYXNz", "Bearer"],
    ids=["missing", "wrong-token", "basic-auth", "empty-token"],
)
def test_bad_tokens_get_401(gateway: Gateway, authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization else {}

    response = gateway.post(json.dumps(v2_request(SAMPLE_CUSTOMERS)).encode(), headers)

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")


def _without(name: str) -> dict[str, Any]:
    request = v2_request(SAMPLE_CUSTOMERS)
    request["inputs"] = [t for t in request["inputs"] if t["name"] != name]
    return request


def _with_value(name: str, row: int, value: Any) -> dict[str, Any]:
    rows = [dict(r) for r in SAMPLE_CUSTOMERS]
    rows[row][name] = value
    return v2_request(rows)


MALFORMED = {
    "not-json": (b"{inputs: [", None),
    "no-inputs": (json.dumps({"id": "x"}).encode(), None),
    "missing-tenure": (json.dumps(_without("tenure")).encode(), "tenure"),
    "unknown-contract": (json.dumps(_with_value("Contract", 1, "Montly")).encode(), "Contract"),
    "negative-tenure": (json.dumps(_with_value("tenure", 2, -3)).encode(), "tenure"),
}


@pytest.mark.parametrize(("payload", "field"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_payloads_get_4xx_naming_the_problem(
    gateway: Gateway, payload: bytes, field: str | None
) -> None:
    response = gateway.post(payload, {"authorization": f"Bearer {gateway.token}"})

    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert body["error"]
    if field:
        assert field in {detail["input"] for detail in body["details"]}, body


PROBE = """
import sys, urllib.request
for url in sys.argv[1:]:
    try:
        status = urllib.request.urlopen(url, timeout=5).status
        print(f"{url} reachable {status}")
    except Exception as error:
        print(f"{url} blocked {type(error).__name__}")
"""


def _probe_from_new_pod(kube: Kube, name: str, urls: list[str]) -> dict[str, str]:
    """Runs PROBE in a fresh pod of the release namespace, outside any arm."""
    container = {
        "name": "probe",
        "image": "churn/training:0.1.0",
        "imagePullPolicy": "Never",
        "command": ["python", "-c", PROBE, *urls],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "netpol-probe"}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
            "containers": [container],
        },
    }
    kube.kubectl("-n", NAMESPACE, "delete", "pod", name, "--ignore-not-found", "--wait")
    kube.apply(json.dumps(pod))
    wait_until(
        f"probe pod {name} to finish",
        lambda: (
            kube.get("-n", NAMESPACE, "pod", name)["status"]["phase"] in ("Succeeded", "Failed")
        ),
        timeout=180,
    )
    log = kube.kubectl("-n", NAMESPACE, "logs", name)
    kube.kubectl("-n", NAMESPACE, "delete", "pod", name, "--wait=false")
    return {line.split()[0]: line.split()[1] for line in log.splitlines() if line.strip()}


def test_only_the_transformer_port_is_reachable_from_outside_the_pod(
    kube: Kube, release: Release
) -> None:
    """The chart's NetworkPolicy (enforced by the local cluster's CNI) opens the transformer's port
    and nothing else: another pod cannot call the runtime, the transformer beside it can, on
    localhost. The Service URL is the control that shows the probe pod's network works."""
    (pod,) = (
        p
        for p in kube.get(
            "-n", NAMESPACE, "pods", "-l", f"serving.kserve.io/inferenceservice={RELEASE}"
        )["items"]
        if not p["metadata"].get("deletionTimestamp")
    )
    service = f"http://{RELEASE}-predictor.{NAMESPACE}.svc.cluster.local/v2/health/live"
    runtime = f"http://{pod['status']['podIP']}:8085/v2/health/live"

    from_probe = _probe_from_new_pod(kube, "netpol-probe", [service, runtime])
    from_transformer = kube.kubectl(
        "-n", NAMESPACE, "exec", pod["metadata"]["name"], "-c", "transformer-container", "--",
        "python", "-c", PROBE, "http://127.0.0.1:8085/v2/health/live",
    )  # fmt: skip
    say(f"probe pod: {from_probe}; transformer: {from_transformer.strip()}")

    assert from_probe[service] == "reachable"
    assert from_probe[runtime] == "blocked"
    assert from_transformer.split()[1] == "reachable"
