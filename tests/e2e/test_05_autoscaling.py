"""Step 5: each arm's HPA targets KServe's predictor Deployment (runtime and transformer in one pod)
and reports CPU from metrics-server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.journey import NAMESPACE, RELEASE, Gateway, Release
from tests.e2e.kube import Kube, wait_until

VALUES = yaml.safe_load(Path(__file__).with_name("values-e2e.yaml").read_text())


def test_hpa_targets_the_deployment_and_reports_cpu_from_metrics_server(
    kube: Kube, release: Release, gateway: Gateway
) -> None:
    name = f"{RELEASE}-predictor-hpa"
    deployment = f"{RELEASE}-predictor"
    expected = VALUES["predictor"]["autoscaling"]

    hpa = kube.get("-n", NAMESPACE, "hpa", name)
    (metric,) = hpa["spec"]["metrics"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment,
    }
    assert kube.exists("-n", NAMESPACE, "deployment", deployment)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
        expected["minReplicas"], expected["maxReplicas"],
    )  # fmt: skip
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": expected["targetCPUUtilizationPercentage"],
    }

    def current_cpu() -> dict[str, Any] | None:
        status = kube.get("-n", NAMESPACE, "hpa", name).get("status", {})
        active = {c["type"]: c["status"] for c in status.get("conditions", [])}.get("ScalingActive")
        for current in status.get("currentMetrics") or []:
            resource = current.get("resource", {})
            if (
                active == "True"
                and resource.get("name") == "cpu"
                and "averageUtilization" in resource.get("current", {})
            ):
                return dict(resource["current"])
        return None

    reported = wait_until(f"HPA {name} to report CPU from metrics-server", current_cpu, timeout=300)

    def pod_usage() -> list[dict[str, Any]] | None:
        listed = json.loads(
            kube.kubectl(
                "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/pods"
            )
        )
        pods = [p for p in listed["items"] if p["metadata"]["name"].startswith(f"{deployment}-")]
        return pods or None

    pods = wait_until(f"metrics-server to list the {deployment} pods", pod_usage, timeout=180)

    # The HPA controller fills currentMetrics only from the resource metrics API.
    assert isinstance(reported["averageUtilization"], int)
    assert reported["averageValue"]
    # Both containers count: the HPA scales the arm's pod on their summed CPU.
    assert {c["name"] for p in pods for c in p["containers"]} == {
        "kserve-container",
        "transformer-container",
    }
    assert all(c["usage"]["cpu"] for p in pods for c in p["containers"])
