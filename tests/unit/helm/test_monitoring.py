"""The ServiceMonitor, PrometheusRule and the Grafana dashboard."""

from __future__ import annotations

import json
import re

from helm_chart import (
    BASE_VALUES,
    CANDIDATE_URI,
    STABLE,
    Manifest,
    Render,
    by_kind,
    container_port,
    kserve_pod_labels,
    one,
    runtime_container,
    selector_matches,
    transformer_container,
)

ALERTS = {
    "ChurnHighErrorRate",
    "ChurnTransformerHighLatency",
    "ChurnPredictorHighLatency",
    "ChurnAuthFailureSpike",
    "ChurnNoTraffic",
}


def test_one_service_monitor_scrapes_every_arms_transformer(render: Render) -> None:
    manifests = render(
        BASE_VALUES,
        canary__enabled=True,
        canary__bundleUri=CANDIDATE_URI,
        serviceMonitor__interval="15s",
        serviceMonitor__labels__release="prom",
        **{
            "serviceMonitor__relabelings[0]__targetLabel": "team",
            "serviceMonitor__relabelings[0]__replacement": "ml",
        },
    )
    isvcs = by_kind(manifests, "InferenceService")
    (monitor,) = by_kind(manifests, "ServiceMonitor")
    spec = monitor["spec"]
    other_release = one(
        render(BASE_VALUES, release="other"), "InferenceService", "other-churn-predictor"
    )

    assert monitor["metadata"]["name"] == STABLE
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert spec["namespaceSelector"] == {"matchNames": ["churn"]}
    # KServe gives an arm's predictor Service the same labels as its pods.
    for isvc in isvcs:
        assert selector_matches(spec["selector"], kserve_pod_labels(isvc))
    assert not selector_matches(spec["selector"], kserve_pod_labels(other_release))
    (endpoint,) = spec["endpoints"]
    # KServe's Service has one port, named after the transformer-container's first port; the
    # runtime's port (its /metrics too) is never on the Service.
    transformer = transformer_container(isvcs[0])
    assert endpoint["port"] == transformer["ports"][0]["name"]
    assert container_port(transformer, endpoint["port"]) == 8080
    assert endpoint["port"] not in [p["name"] for p in runtime_container(isvcs[0])["ports"]]
    assert (endpoint["path"], endpoint["interval"]) == ("/metrics", "15s")
    targets = [r["targetLabel"] for r in endpoint["relabelings"]]
    assert targets == ["arm", "isvc", "team"]


def rule_groups(rule: Manifest) -> dict[str, list[Manifest]]:
    return {g["name"].rsplit(".", 1)[1]: g["rules"] for g in rule["spec"]["groups"]}


def test_prometheus_rule_has_the_alerts_and_only_a_canary_adds_the_comparison(
    render: Render,
) -> None:
    plain = one(render(BASE_VALUES), "PrometheusRule", STABLE)
    canary = one(
        render(BASE_VALUES, canary__enabled=True, canary__bundleUri=CANDIDATE_URI),
        "PrometheusRule",
        STABLE,
    )

    assert {r["alert"] for r in rule_groups(plain)["alerts"]} == ALERTS
    assert {r["alert"] for r in rule_groups(canary)["alerts"]} == ALERTS | {
        "ChurnCanaryWorseThanStable"
    }
    for alert in rule_groups(canary)["alerts"]:
        assert alert["labels"]["severity"] in {"critical", "warning"}
        assert alert["annotations"]["summary"]
        assert alert["annotations"]["description"]
        assert alert["for"] == "5m"


def test_alert_expressions_use_thresholds_and_metric_names_from_values(render: Render) -> None:
    rule = one(
        render(
            BASE_VALUES,
            prometheusRule__errorRatioThreshold=0.1,
            prometheusRule__authFailuresPerSecond=3,
            metrics__transformerAuthFailures="auth_rejections_total",
        ),
        "PrometheusRule",
        STABLE,
    )
    alerts = {r["alert"]: r["expr"] for r in rule_groups(rule)["alerts"]}
    recording = {r["record"]: r["expr"] for r in rule_groups(rule)["recording"]}

    assert alerts["ChurnHighErrorRate"].endswith("> 0.1")
    assert "auth_rejections_total{" in alerts["ChurnAuthFailureSpike"]
    assert alerts["ChurnAuthFailureSpike"].endswith("> 3")
    # Every series is scoped to this release's namespace and InferenceServices, and all come
    # from the transformer: no component label tells scrape targets apart any more.
    for expr in [*recording.values(), *alerts.values()]:
        assert "component" not in expr
    for expr in recording.values():
        assert f'namespace="churn", isvc=~"{STABLE}(-candidate)?"' in expr
    # The runtime's latency is the transformer's timing of its calls to it.
    assert (
        'churn_transformer_stage_duration_seconds_bucket{namespace="churn", '
        f'isvc=~"{STABLE}(-candidate)?", stage="predict"}}'
    ) in recording["churn:predictor_latency_seconds:p99_5m"]


def test_no_traffic_alert_can_be_switched_off(render: Render) -> None:
    rule = one(render(BASE_VALUES, prometheusRule__noTrafficWindow="0s"), "PrometheusRule", STABLE)

    assert "ChurnNoTraffic" not in {r["alert"] for r in rule_groups(rule)["alerts"]}


def test_alert_templates_reach_prometheus_unrendered(render: Render) -> None:
    rule = one(render(BASE_VALUES), "PrometheusRule", STABLE)
    summary = next(r for r in rule_groups(rule)["alerts"] if r["alert"] == "ChurnHighErrorRate")[
        "annotations"
    ]["summary"]

    assert "{{ $labels.isvc }}" in summary


def test_dashboard_configmap_is_labelled_for_the_grafana_sidecar(render: Render) -> None:
    manifests = render(BASE_VALUES)
    config_map = one(manifests, "ConfigMap", f"{STABLE}-dashboard")
    dashboard = json.loads(config_map["data"]["churn-predictor.json"])

    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Serving"}
    titles = [p["title"] for p in dashboard["panels"]]
    assert len(titles) == len(set(titles)) >= 5
    expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "churn_transformer_requests_total",
        "churn_transformer_request_duration_seconds_bucket",
        "churn_transformer_auth_failures_total",
        "churn_transformer_stage_duration_seconds_bucket",
    ):
        assert metric in expressions
    # Every series the dashboard reads is the transformer's (or kube-state-metrics').
    assert "component" not in expressions
    assert "request_predict_seconds" not in expressions
    for stage_query in re.findall(
        r"churn_transformer_stage_duration_seconds_bucket\{[^}]*\}", expressions
    ):
        assert 'stage="predict"' in stage_query
    # Panels are split by arm, so a canary can be compared with the stable model.
    assert re.search(r"sum by \(arm", expressions)
