"""ServiceMonitors, PrometheusRule and the Grafana dashboard."""

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
    kserve_pod_labels,
    one,
    selector_matches,
)

ALERTS = {
    "ChurnHighErrorRate",
    "ChurnTransformerHighLatency",
    "ChurnPredictorHighLatency",
    "ChurnAuthFailureSpike",
    "ChurnNoTraffic",
}


def test_service_monitors_select_kserve_services_of_both_arms(render: Render) -> None:
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
    monitors = {m["metadata"]["name"]: m for m in by_kind(manifests, "ServiceMonitor")}

    assert set(monitors) == {f"{STABLE}-transformer", f"{STABLE}-predictor"}
    for component in ("transformer", "predictor"):
        monitor = monitors[f"{STABLE}-{component}"]
        spec = monitor["spec"]
        assert monitor["metadata"]["labels"]["release"] == "prom"
        assert spec["namespaceSelector"] == {"matchNames": ["churn"]}
        # KServe gives a component's Service the same labels as its pods.
        for isvc in isvcs:
            assert selector_matches(spec["selector"], kserve_pod_labels(isvc, component))
            other = "predictor" if component == "transformer" else "transformer"
            assert not selector_matches(spec["selector"], kserve_pod_labels(isvc, other))
        (endpoint,) = spec["endpoints"]
        # KServe names the Service port after the container's first port.
        container_port = (
            isvcs[0]["spec"]["predictor"]["model"]["ports"][0]
            if component == "predictor"
            else isvcs[0]["spec"]["transformer"]["containers"][0]["ports"][0]
        )
        assert endpoint["port"] == container_port["name"]
        assert (endpoint["path"], endpoint["interval"]) == ("/metrics", "15s")
        targets = [r["targetLabel"] for r in endpoint["relabelings"]]
        assert targets == ["arm", "isvc", "component", "team"]


def test_a_separate_predictor_metrics_port_is_declared_scraped_and_opened(render: Render) -> None:
    """MLServer (kserve-mlserver) serves /metrics on 8082, not on its inference port."""
    manifests = render(
        BASE_VALUES, predictor__runtime="kserve-mlserver", predictor__metricsPort=8082
    )
    ports = one(manifests, "InferenceService", STABLE)["spec"]["predictor"]["model"]["ports"]
    monitors = {m["metadata"]["name"]: m for m in by_kind(manifests, "ServiceMonitor")}
    policy = one(manifests, "NetworkPolicy", f"{STABLE}-predictor")
    monitoring_ports = [rule["ports"] for rule in policy["spec"]["ingress"]][-1]

    # The inference port stays first: KServe maps the Service's port 80 to the first one.
    assert [(p["name"], p["containerPort"]) for p in ports] == [("http1", 8080), ("metrics", 8082)]
    assert monitors[f"{STABLE}-predictor"]["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitors[f"{STABLE}-transformer"]["spec"]["endpoints"][0]["port"] == "http1"
    assert monitoring_ports == [{"protocol": "TCP", "port": 8082}]


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

    assert alerts["ChurnHighErrorRate"].endswith("> 0.1")
    assert "auth_rejections_total{" in alerts["ChurnAuthFailureSpike"]
    assert alerts["ChurnAuthFailureSpike"].endswith("> 3")
    # Every series is scoped to this release's namespace and InferenceServices.
    for expr in [r["expr"] for r in rule_groups(rule)["recording"]]:
        assert f'namespace="churn", isvc=~"{STABLE}(-candidate)?"' in expr


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
        "request_predict_seconds_bucket",
    ):
        assert metric in expressions
    # Panels are split by arm, so a canary can be compared with the stable model.
    assert re.search(r"sum by \(arm", expressions)
