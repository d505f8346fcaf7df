"""HPAs, PodDisruptionBudgets and NetworkPolicies select what KServe actually creates."""

from __future__ import annotations

import pytest
from helm_chart import (
    BASE_VALUES,
    CANDIDATE,
    CANDIDATE_URI,
    CI_VALUES,
    STABLE,
    Manifest,
    Render,
    by_kind,
    kserve_pod_labels,
    one,
    selector_matches,
)

CANARY = {"canary__enabled": True, "canary__bundleUri": CANDIDATE_URI}
COMPONENTS = ("predictor", "transformer")
GATEWAY_PEER = "networkPolicy__transformerIngressFrom[0]"


def test_chart_owns_one_hpa_per_component_and_arm_with_scale_down_behaviour(
    render: Render,
) -> None:
    manifests = render(BASE_VALUES, **CANARY)
    hpas = {h["metadata"]["name"]: h for h in by_kind(manifests, "HorizontalPodAutoscaler")}

    # Not KServe's own HPA name (<isvc>-<component>): KServe v0.20 takes such an HPA over and
    # deletes it when the autoscaler class is external.
    assert set(hpas) == {f"{isvc}-{c}-hpa" for isvc in (STABLE, CANDIDATE) for c in COMPONENTS}
    for isvc in by_kind(manifests, "InferenceService"):
        # KServe must not create a second HPA fighting over the same Deployment.
        assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"
        for component in COMPONENTS:
            assert "minReplicas" not in isvc["spec"][component]
            hpa = hpas[f"{isvc['metadata']['name']}-{component}-hpa"]["spec"]
            # KServe's Deployment for a component is named <isvc>-<component>.
            assert hpa["scaleTargetRef"] == {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": f"{isvc['metadata']['name']}-{component}",
            }
            assert hpa["minReplicas"] == 1
            assert hpa["metrics"][0]["resource"]["target"] == {
                "type": "Utilization",
                "averageUtilization": 70,
            }
            assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert hpas[f"{STABLE}-predictor-hpa"]["spec"]["maxReplicas"] == 4
    assert hpas[f"{STABLE}-transformer-hpa"]["spec"]["maxReplicas"] == 6


def test_hpa_bounds_and_target_come_from_values(render: Render) -> None:
    manifests = render(
        BASE_VALUES,
        transformer__autoscaling__minReplicas=2,
        transformer__autoscaling__maxReplicas=9,
        transformer__autoscaling__targetCPUUtilizationPercentage=55,
    )
    hpa = one(manifests, "HorizontalPodAutoscaler", f"{STABLE}-transformer-hpa")["spec"]

    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 9)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 55


def test_without_autoscaling_kserve_pins_the_replicas(render: Render) -> None:
    manifests = render(
        BASE_VALUES, autoscaling__enabled=False, predictor__replicas=3, transformer__replicas=2
    )
    isvc = one(manifests, "InferenceService", STABLE)

    assert by_kind(manifests, "HorizontalPodAutoscaler") == []
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "none"
    assert isvc["spec"]["predictor"]["minReplicas"] == 3
    assert isvc["spec"]["transformer"]["minReplicas"] == 2


def test_pod_disruption_budgets_select_exactly_one_component_of_one_arm(render: Render) -> None:
    manifests = render(BASE_VALUES, **CANARY)
    pods = {
        (i["metadata"]["name"], c): kserve_pod_labels(i, c)
        for i in by_kind(manifests, "InferenceService")
        for c in COMPONENTS
    }
    budgets = by_kind(manifests, "PodDisruptionBudget")

    assert len(budgets) == 4
    for budget in budgets:
        selected = [
            k for k, labels in pods.items() if selector_matches(budget["spec"]["selector"], labels)
        ]
        assert selected == [
            (
                budget["metadata"]["name"].rsplit("-", 1)[0],
                budget["metadata"]["labels"]["component"],
            )
        ]
        assert budget["spec"]["maxUnavailable"] == 1


def network_policy(manifests: list[Manifest], component: str) -> Manifest:
    return one(manifests, "NetworkPolicy", f"{STABLE}-{component}")


@pytest.mark.parametrize("with_canary", [False, True])
def test_network_policy_selects_every_predictor_and_admits_only_transformers(
    render: Render, with_canary: bool
) -> None:
    manifests = render(BASE_VALUES, **(CANARY if with_canary else {}))
    isvcs = by_kind(manifests, "InferenceService")
    predictors = [kserve_pod_labels(i, "predictor") for i in isvcs]
    transformers = [kserve_pod_labels(i, "transformer") for i in isvcs]
    policy = network_policy(manifests, "predictor")["spec"]

    assert policy["policyTypes"] == ["Ingress"]
    assert all(selector_matches(policy["podSelector"], p) for p in predictors)
    assert not any(selector_matches(policy["podSelector"], t) for t in transformers)

    peer_rules = [
        r
        for r in policy["ingress"]
        if "podSelector" in r["from"][0] and "namespaceSelector" not in r["from"][0]
    ]
    assert len(peer_rules) == 1
    (transformer_rule,) = peer_rules
    peer = transformer_rule["from"][0]["podSelector"]
    assert all(selector_matches(peer, t) for t in transformers)
    assert not any(selector_matches(peer, p) for p in predictors)
    assert transformer_rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    # The only other door is Prometheus, from the monitoring namespace, to the metrics port.
    (monitoring_rule,) = [r for r in policy["ingress"] if r is not transformer_rule]
    assert monitoring_rule["from"][0]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
    }
    assert monitoring_rule["ports"] == [{"protocol": "TCP", "port": 8080}]


def test_network_policy_does_not_select_another_release(render: Render) -> None:
    ours = render(BASE_VALUES)
    theirs = one(render(BASE_VALUES, release="other"), "InferenceService", "other-churn-predictor")
    policy = network_policy(ours, "predictor")["spec"]

    assert not selector_matches(policy["podSelector"], kserve_pod_labels(theirs, "predictor"))


def test_transformer_policy_opens_only_the_serving_port(render: Render) -> None:
    open_policy = network_policy(render(BASE_VALUES), "transformer")["spec"]
    restricted = network_policy(
        render(
            BASE_VALUES,
            **{f"{GATEWAY_PEER}__namespaceSelector__matchLabels__gateway": "yes"},
        ),
        "transformer",
    )["spec"]

    assert open_policy["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    assert restricted["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"gateway": "yes"}}}
    ]
    # With a restricted source list, Prometheus still reaches /metrics.
    assert restricted["ingress"][1]["ports"] == [{"protocol": "TCP", "port": 8080}]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_scenario_keeps_policies_consistent_with_its_arms(
    render: Render, values: object
) -> None:
    manifests = render(values)
    isvcs = by_kind(manifests, "InferenceService")
    for hpa in by_kind(manifests, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]["name"]
        assert target in {f"{i['metadata']['name']}-{c}" for i in isvcs for c in COMPONENTS}
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
