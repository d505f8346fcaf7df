"""The PrometheusRule's PromQL, checked and exercised by the real promtool (`promtool test rules`)
on synthetic series: each alert fires when it should and stays quiet when it should not."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_chart import BASE_VALUES, CANDIDATE, CANDIDATE_URI, REPO, STABLE, Render, one

# The ServiceMonitor's target labels: every series is the transformer's, with no component label.
SELECT = 'namespace="churn"'


@pytest.fixture(scope="module")
def promtool() -> str:
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "chart" / "promtool.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def rules_file(render: Render, tmp_path: Path) -> Path:
    rule = one(
        render(BASE_VALUES, canary__enabled=True, canary__bundleUri=CANDIDATE_URI),
        "PrometheusRule",
        STABLE,
    )
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


@pytest.fixture
def bare_rules_file(rules_file: Path) -> Path:
    """The same rules without annotations: promtool compares annotations whenever an alert fires,
    and the firing tests are about expressions and labels (one test below checks annotations)."""
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    path = rules_file.parent / "rules-bare.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    return path


def series(metric: str, isvc: str, arm: str, values: str, **labels: str) -> dict[str, str]:
    extra = "".join(f', {k}="{v}"' for k, v in labels.items())
    return {
        "series": f'{metric}{{{SELECT}, isvc="{isvc}", arm="{arm}"{extra}}}',
        "values": values,
    }


def requests(isvc: str, arm: str, status: str, per_minute: int) -> dict[str, str]:
    return series(
        "churn_transformer_requests_total", isvc, arm, f"0+{per_minute}x30", status=status
    )


def histogram(
    metric: str, isvc: str, arm: str, slow_per_minute: int, **labels: str
) -> list[dict[str, str]]:
    """Buckets where `slow_per_minute` of 600 observations a minute take more than 1 s."""
    name = f"{metric}_bucket"
    fast = 600 - slow_per_minute
    return [
        series(name, isvc, arm, f"0+{fast}x30", le="0.1", **labels),
        series(name, isvc, arm, f"0+{fast}x30", le="1", **labels),
        series(name, isvc, arm, "0+600x30", le="+Inf", **labels),
    ]


def latency(isvc: str, arm: str, slow_per_minute: int) -> list[dict[str, str]]:
    """End-to-end request latency, as the transformer measures it."""
    return histogram("churn_transformer_request_duration_seconds", isvc, arm, slow_per_minute)


def stage_latency(isvc: str, arm: str, stage: str, slow_per_minute: int) -> list[dict[str, str]]:
    """One stage's latency; stage="predict" times the transformer's calls to the runtime."""
    return histogram(
        "churn_transformer_stage_duration_seconds", isvc, arm, slow_per_minute, stage=stage
    )


def fired(alert: str, label_sets: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "eval_time": "20m",
        "alertname": alert,
        "exp_alerts": [
            {"exp_labels": {"severity": severity(alert), **labels}} for labels in label_sets
        ],
    }


def severity(alert: str) -> str:
    return "critical" if alert == "ChurnHighErrorRate" else "warning"


def run_promtool_test(promtool: str, rules: Path, tests: list[dict[str, Any]]) -> None:
    spec = rules.parent / "test.yaml"
    spec.write_text(
        yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m", "tests": tests})
    )
    result = subprocess.run(
        [promtool, "test", "rules", "--run", ".*", str(spec)],
        capture_output=True,
        text=True,
        check=False,
        cwd=rules.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_pass_promtool_check(promtool: str, rules_file: Path) -> None:
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_error_rate_and_canary_comparison_fire_on_a_failing_candidate(
    promtool: str, bare_rules_file: Path
) -> None:
    candidate = {"namespace": "churn", "isvc": CANDIDATE, "arm": "candidate"}
    inputs = [
        requests(STABLE, "stable", "200", 600),
        requests(STABLE, "stable", "500", 6),  # 1% errors: under the 5% threshold
        requests(CANDIDATE, "candidate", "200", 60),
        requests(CANDIDATE, "candidate", "500", 12),  # 17% errors
    ]
    tests = [
        {
            "interval": "1m",
            "input_series": inputs,
            "alert_rule_test": [
                fired("ChurnHighErrorRate", [candidate]),
                fired("ChurnCanaryWorseThanStable", [candidate]),
                fired("ChurnNoTraffic", []),
            ],
        }
    ]

    run_promtool_test(promtool, bare_rules_file, tests)


def test_a_healthy_canary_raises_nothing(promtool: str, bare_rules_file: Path) -> None:
    inputs = [
        requests(STABLE, "stable", "200", 600),
        requests(CANDIDATE, "candidate", "200", 60),
        *latency(STABLE, "stable", 0),
        *latency(CANDIDATE, "candidate", 0),
        *stage_latency(STABLE, "stable", "predict", 0),
        *stage_latency(CANDIDATE, "candidate", "predict", 0),
    ]
    tests = [
        {
            "interval": "1m",
            "input_series": inputs,
            "alert_rule_test": [
                fired(alert, [])
                for alert in (
                    "ChurnHighErrorRate",
                    "ChurnCanaryWorseThanStable",
                    "ChurnTransformerHighLatency",
                    "ChurnPredictorHighLatency",
                    "ChurnNoTraffic",
                )
            ],
        }
    ]

    run_promtool_test(promtool, bare_rules_file, tests)


def test_slow_candidate_fires_latency_and_comparison(promtool: str, bare_rules_file: Path) -> None:
    candidate = {"namespace": "churn", "isvc": CANDIDATE, "arm": "candidate"}
    inputs = [
        requests(STABLE, "stable", "200", 600),
        requests(CANDIDATE, "candidate", "200", 600),
        *latency(STABLE, "stable", 0),
        *latency(CANDIDATE, "candidate", 60),  # 10% of requests over 1 s: p99 far above 0.5 s
        # Only stage="predict" is the runtime's time: the stable arm's slow preprocessing is not.
        *stage_latency(STABLE, "stable", "predict", 0),
        *stage_latency(STABLE, "stable", "preprocess", 60),
        *stage_latency(CANDIDATE, "candidate", "predict", 60),
    ]
    tests = [
        {
            "interval": "1m",
            "input_series": inputs,
            "alert_rule_test": [
                fired("ChurnTransformerHighLatency", [candidate]),
                fired("ChurnPredictorHighLatency", [candidate]),
                fired("ChurnCanaryWorseThanStable", [candidate]),
            ],
        }
    ]

    run_promtool_test(promtool, bare_rules_file, tests)


def test_auth_failure_spike_and_no_traffic(promtool: str, bare_rules_file: Path) -> None:
    inputs = [
        series("churn_transformer_auth_failures_total", STABLE, "stable", "0+300x30"),  # 5/s
    ]
    tests = [
        {
            "interval": "1m",
            "input_series": inputs,
            "alert_rule_test": [
                fired("ChurnAuthFailureSpike", [{"namespace": "churn", "isvc": STABLE}]),
                # No request series at all: the "or vector(0)" branch keeps the alert alive.
                fired("ChurnNoTraffic", [{}]),
            ],
        }
    ]

    run_promtool_test(promtool, bare_rules_file, tests)


def test_alert_annotations_render_with_the_alert_labels(promtool: str, rules_file: Path) -> None:
    inputs = [series("churn_transformer_auth_failures_total", STABLE, "stable", "0+300x30")]
    case = fired("ChurnAuthFailureSpike", [{"namespace": "churn", "isvc": STABLE}])
    case["exp_alerts"][0]["exp_annotations"] = {
        "summary": f"Many requests to {STABLE} carry a bad or missing token.",
        "description": (
            "5 rejected requests per second; a client lost its token or someone is guessing."
        ),
    }
    run_promtool_test(
        promtool,
        rules_file,
        [{"interval": "1m", "input_series": inputs, "alert_rule_test": [case]}],
    )
