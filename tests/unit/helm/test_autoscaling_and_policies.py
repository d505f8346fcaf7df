"""HPAs, PodDisruptionBudgets and the NetworkPolicy select what KServe actually creates: one
predictor Deployment per arm, whose pods run the runtime and the transformer."""

from __future__ import annotations

from pathlib import Path

import pytest
from helm_chart import (
    BASE_VALUES,
    CANDIDATE,
    CANDIDATE_URI,
    SCENARIOS,
    STABLE,
    Manifest,
    Render,
    by_kind,
    kserve_pod_labels,
    one,
    render_scenario,
    scenario_id,
    selector_matches,
)

CANARY = {"canary__enabled": True, "canary__bundleUri": CANDIDATE_URI}
GATEWAY_PEER = "networkPolicy__transformerIngressFrom[0]"


def test_chart_owns_one_hpa_per_arm_with_scale_down_behaviour(render: Render) -> None:
    manifests = render(BASE_VALUES, **CANARY)
    hpas = {h["metadata"]["name"]: h for h in by_kind(manifests, "HorizontalPodAutoscaler")}

    # Not KServe's own HPA name (<isvc>-predictor): KServe v0.20 takes such an HPA over and
    # deletes it when the autoscaler class is external.
    assert set(hpas) == {f"{STABLE}-predictor-hpa", f"{CANDIDATE}-predictor-hpa"}
    for isvc in by_kind(manifests, "InferenceService"):
        name = isvc["metadata"]["name"]
        # KServe must not create a second HPA fighting over the same Deployment.
        assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"
        assert "minReplicas" not in isvc["spec"]["predictor"]
        hpa = hpas[f"{name}-predictor-hpa"]["spec"]
        # KServe's Deployment of an arm's pods is named <isvc>-predictor.
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": f"{name}-predictor",
        }
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 4)
        assert hpa["metrics"][0]["resource"]["target"] == {
            "type": "Utilization",
            "averageUtilization": 70,
        }
        assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_hpa_bounds_and_target_come_from_values(render: Render) -> None:
    manifests = render(
        BASE_VALUES,
        predictor__autoscaling__minReplicas=2,
        predictor__autoscaling__maxReplicas=9,
        predictor__autoscaling__targetCPUUtilizationPercentage=55,
    )
    hpa = one(manifests, "HorizontalPodAutoscaler", f"{STABLE}-predictor-hpa")["spec"]

    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 9)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 55


def test_without_autoscaling_kserve_pins_the_replicas(render: Render) -> None:
    manifests = render(BASE_VALUES, autoscaling__enabled=False, predictor__replicas=3)
    isvc = one(manifests, "InferenceService", STABLE)

    assert by_kind(manifests, "HorizontalPodAutoscaler") == []
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "none"
    assert isvc["spec"]["predictor"]["minReplicas"] == 3


def test_pod_disruption_budgets_select_exactly_one_arms_pods(render: Render) -> None:
    manifests = render(BASE_VALUES, **CANARY)
    pods = {
        i["metadata"]["name"]: kserve_pod_labels(i) for i in by_kind(manifests, "InferenceService")
    }
    budgets = {b["metadata"]["name"]: b for b in by_kind(manifests, "PodDisruptionBudget")}

    assert set(budgets) == {f"{isvc}-predictor" for isvc in pods}
    for isvc in pods:
        spec = budgets[f"{isvc}-predictor"]["spec"]
        selected = [
            name for name, labels in pods.items() if selector_matches(spec["selector"], labels)
        ]
        assert selected == [isvc]
        assert spec["maxUnavailable"] == 1


def open_ports(policy: Manifest) -> set[int]:
    return {port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]}


@pytest.mark.parametrize("with_canary", [False, True])
def test_network_policy_selects_every_arm_and_opens_only_the_transformer_port(
    render: Render, with_canary: bool
) -> None:
    manifests = render(
        BASE_VALUES,
        predictor__port=9000,
        predictor__grpcPort=9001,
        **(CANARY if with_canary else {}),
    )
    (policy,) = by_kind(manifests, "NetworkPolicy")

    assert policy["metadata"]["name"] == STABLE
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    for isvc in by_kind(manifests, "InferenceService"):
        assert selector_matches(policy["spec"]["podSelector"], kserve_pod_labels(isvc))
    # Every rule names a port, and none is the runtime's: it is reachable on localhost only.
    assert all(rule["ports"] for rule in policy["spec"]["ingress"])
    assert open_ports(policy) == {8080}
    # Without a source list the transformer port is open to any peer (the gateway, Prometheus).
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]


def test_network_policy_does_not_select_another_release(render: Render) -> None:
    (policy,) = by_kind(render(BASE_VALUES), "NetworkPolicy")
    theirs = one(render(BASE_VALUES, release="other"), "InferenceService", "other-churn-predictor")

    assert not selector_matches(policy["spec"]["podSelector"], kserve_pod_labels(theirs))


def test_restricted_sources_still_let_prometheus_reach_the_transformer_port(
    render: Render,
) -> None:
    (policy,) = by_kind(
        render(BASE_VALUES, **{f"{GATEWAY_PEER}__namespaceSelector__matchLabels__gateway": "yes"}),
        "NetworkPolicy",
    )
    gateway_rule, monitoring_rule = policy["spec"]["ingress"]

    assert gateway_rule == {
        "from": [{"namespaceSelector": {"matchLabels": {"gateway": "yes"}}}],
        "ports": [{"protocol": "TCP", "port": 8080}],
    }
    assert monitoring_rule == {
        "from": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 8080}],
    }


@pytest.mark.parametrize("scenario", SCENARIOS, ids=scenario_id)
def test_every_scenario_has_one_hpa_one_budget_and_one_open_port_per_arm(
    render: Render, scenario: Path | None
) -> None:
    manifests = render_scenario(render, scenario)
    isvcs = by_kind(manifests, "InferenceService")
    deployments = sorted(f"{i['metadata']['name']}-predictor" for i in isvcs)
    autoscaled = {i["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] for i in isvcs}
    hpas = by_kind(manifests, "HorizontalPodAutoscaler")
    budgets = sorted(b["metadata"]["name"] for b in by_kind(manifests, "PodDisruptionBudget"))

    assert sorted(h["spec"]["scaleTargetRef"]["name"] for h in hpas) == (
        deployments if autoscaled == {"external"} else []
    )
    for hpa in hpas:
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert budgets in (deployments, [])
    if scenario is None:  # the defaults turn on every HPA, budget and policy
        assert hpas
        assert budgets
        assert len(by_kind(manifests, "NetworkPolicy")) == 1
    for policy in by_kind(manifests, "NetworkPolicy"):
        assert open_ports(policy) == {8080}
