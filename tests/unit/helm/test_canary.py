"""Canary and A/B: the candidate InferenceService behind the weighted HTTPRoute, and the
start -> shift -> promote -> roll back flow of docs/runbook-canary.md as value changes."""

from __future__ import annotations

import pytest
from helm_chart import (
    BASE_VALUES,
    CANDIDATE,
    CANDIDATE_URI,
    STABLE,
    STABLE_URI,
    Manifest,
    Render,
    RenderError,
    by_kind,
    one,
    runtime_container,
)

ROUTE = f"{STABLE}-route"


def start_canary(weight: int) -> dict[str, object]:
    return {"canary__enabled": True, "canary__bundleUri": CANDIDATE_URI, "canary__weight": weight}


PROMOTE = {"stable__bundleUri": CANDIDATE_URI, "canary__enabled": False}


def weighted_rule(route: Manifest) -> Manifest:
    """The catch-all rule (no header match) that splits traffic by weight."""
    rules: list[Manifest] = [
        r for r in route["spec"]["rules"] if not any("headers" in m for m in r["matches"])
    ]
    assert len(rules) == 1
    return rules[0]


def backend_weights(route: Manifest) -> dict[str, int]:
    return {b["name"]: b.get("weight", 1) for b in weighted_rule(route)["backendRefs"]}


def storage_uri(isvc: Manifest) -> str:
    uri: str = runtime_container(isvc)["storageUri"]
    return uri


@pytest.mark.parametrize("weight", [0, 1, 10, 25, 50, 99, 100])
def test_canary_weights_sum_to_100_and_target_each_arms_predictor_service(
    render: Render, weight: int
) -> None:
    route = one(render(BASE_VALUES, **start_canary(weight)), "HTTPRoute", ROUTE)

    weights = backend_weights(route)
    assert weights == {f"{STABLE}-predictor": 100 - weight, f"{CANDIDATE}-predictor": weight}
    assert sum(weights.values()) == 100
    # KServe's predictor Service: its port 80 leads to the transformer-container's port 8080, so
    # every request passes the token check before the runtime (on localhost) sees it.
    for rule in route["spec"]["rules"]:
        for backend in rule["backendRefs"]:
            assert backend["port"] == 80


def test_candidate_is_a_full_inference_service_beside_the_stable_one(render: Render) -> None:
    manifests = render(BASE_VALUES, **start_canary(10))
    stable = one(manifests, "InferenceService", STABLE)
    candidate = one(manifests, "InferenceService", CANDIDATE)

    # Each arm's pod downloads its own bundle; its transformer reads the copy in its own pod.
    assert storage_uri(stable) == STABLE_URI
    assert storage_uri(candidate) == CANDIDATE_URI
    assert stable["metadata"]["labels"]["churn-predictor/arm"] == "stable"
    assert candidate["metadata"]["labels"]["churn-predictor/arm"] == "candidate"
    # Plain spec.canary would let canary traffic skip the transformer; the chart never uses it.
    for isvc in (stable, candidate):
        assert "canary" not in isvc["spec"]


def test_pin_header_sends_a_request_to_one_arm(render: Render) -> None:
    route = one(render(BASE_VALUES, **start_canary(10)), "HTTPRoute", ROUTE)
    pinned = {
        rule["matches"][0]["headers"][0]["value"]: rule["backendRefs"]
        for rule in route["spec"]["rules"]
        if "headers" in rule["matches"][0]
    }

    assert pinned == {
        "stable": [{"name": f"{STABLE}-predictor", "port": 80}],
        "candidate": [{"name": f"{CANDIDATE}-predictor", "port": 80}],
    }
    assert route["spec"]["rules"][0]["matches"][0]["headers"][0]["name"] == "x-churn-arm"
    without_pins = one(
        render(BASE_VALUES, canary__pinHeader="", **start_canary(10)), "HTTPRoute", ROUTE
    )
    assert len(without_pins["spec"]["rules"]) == 1


def test_promotion_swaps_the_storage_uri_and_removes_the_candidate(render: Render) -> None:
    during = render(BASE_VALUES, **start_canary(100))
    after = render(BASE_VALUES, **(start_canary(100) | PROMOTE))
    stable_after = one(after, "InferenceService", STABLE)

    assert storage_uri(one(during, "InferenceService", STABLE)) == STABLE_URI
    assert storage_uri(stable_after) == CANDIDATE_URI
    assert [i["metadata"]["name"] for i in by_kind(after, "InferenceService")] == [STABLE]
    assert backend_weights(one(after, "HTTPRoute", ROUTE)) == {f"{STABLE}-predictor": 100}
    # The candidate's HPA and budget go with it.
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert not [o for o in by_kind(after, kind) if CANDIDATE in o["metadata"]["name"]]


def test_rolling_back_renders_exactly_the_pre_canary_release(render: Render) -> None:
    before = render(BASE_VALUES)
    during = render(BASE_VALUES, **start_canary(30))
    after_rollback = render(BASE_VALUES, canary__weight=30, canary__bundleUri=CANDIDATE_URI)

    assert during != before
    assert after_rollback == before


def test_canary_needs_a_candidate_bundle(render: Render) -> None:
    with pytest.raises(RenderError, match="canary"):
        render(BASE_VALUES, canary__enabled=True)


def test_standard_canary_without_the_route_is_refused(render: Render) -> None:
    with pytest.raises(RenderError, match=r"needs route\.enabled"):
        render(BASE_VALUES, route__enabled=False, **start_canary(10))
