"""Step 6: Prometheus scrapes the chart's ServiceMonitor (each arm's transformer) and holds the
project's metrics, the runtime's latency among them as the transformer times its calls."""

from __future__ import annotations

from typing import Any

import httpx

from devstack.demo import SAMPLE_CUSTOMERS
from tests.e2e.journey import NAMESPACE, RELEASE, Gateway, Release
from tests.e2e.kube import PortForward, wait_until

REQUESTS = 7


def query(prometheus: PortForward, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": promql}, timeout=30)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def per_pod(prometheus: PortForward, series: str) -> dict[str, float]:
    """Counter values by pod: pods replaced by a rollout drop out instead of lowering a sum."""
    result = query(prometheus, f"sum by (pod) ({series})")
    return {r["metric"]["pod"]: float(r["value"][1]) for r in result}


def growth(before: dict[str, float], after: dict[str, float]) -> float:
    return sum(value - before.get(pod, 0.0) for pod, value in after.items())


def test_service_monitor_targets_are_up(prometheus: PortForward, release: Release) -> None:
    pools = {f"serviceMonitor/{NAMESPACE}/{RELEASE}/0"}

    def targets_up() -> dict[str, list[str]] | None:
        response = httpx.get(
            f"{prometheus.url}/api/v1/targets", params={"state": "active"}, timeout=30
        )
        response.raise_for_status()
        health: dict[str, list[str]] = {}
        for target in response.json()["data"]["activeTargets"]:
            if target["scrapePool"] in pools:
                health.setdefault(target["scrapePool"], []).append(target["health"])
        ready = set(health) == pools and all(h and set(h) == {"up"} for h in health.values())
        return health if ready else None

    health = wait_until("the ServiceMonitor's targets to be up", targets_up, timeout=300)

    assert set(health) == pools


def test_prometheus_holds_the_project_metrics(
    prometheus: PortForward, gateway: Gateway, release: Release
) -> None:
    # Both arms, should a canary run: the Gateway decides which one answers.
    release_series = f'namespace="{NAMESPACE}", isvc=~"{RELEASE}(-candidate)?"'
    served = {
        "transformer": f'churn_transformer_requests_total{{{release_series}, status="200"}}',
        # Calls to the runtime on localhost, as the transformer times them.
        "runtime call": (
            f'churn_transformer_stage_duration_seconds_count{{{release_series}, stage="predict"}}'
        ),
    }
    before = {component: per_pod(prometheus, series) for component, series in served.items()}

    for _ in range(REQUESTS):
        assert gateway.infer(SAMPLE_CUSTOMERS).status == 200

    for component, series in served.items():

        def counted(series: str = series, start: dict[str, float] = before[component]) -> bool:
            return growth(start, per_pod(prometheus, series)) >= REQUESTS

        wait_until(f"{component} requests in Prometheus to grow by {REQUESTS}", counted, 180)
    arms = query(prometheus, f'count by (arm) (up{{namespace="{NAMESPACE}"}} == 1)')
    assert {r["metric"]["arm"] for r in arms} >= {"stable"}
