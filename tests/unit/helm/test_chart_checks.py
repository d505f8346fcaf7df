"""helm lint, values.schema.json, and the generated chart README."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from helm_chart import BASE_VALUES, CHART, CI_VALUES, REPO, Render, RenderError, run_helm

SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def test_there_are_scenarios_for_a_stable_arm_and_a_canary() -> None:
    names = {p.name for p in CI_VALUES}
    assert {"standard-values.yaml", "canary-values.yaml"} <= names


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_helm_lint_strict_passes_for_every_scenario(helm: str, values: Path) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), "--values", str(values))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Helm's values merge: maps merge key by key, everything else is replaced."""
    result = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            result[key] = merged(base[key], value)
        else:
            result[key] = value
    return result


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_default_values_with_each_scenario_match_the_schema(values: Path) -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    scenario = yaml.safe_load(values.read_text())

    jsonschema.Draft7Validator(SCHEMA).validate(merged(defaults, scenario))


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"canary__weight": 101}, "/canary/weight"),
        ({"canary__weight": -1}, "/canary/weight"),
        ({"stable__bundleUri": "models/churn/1"}, "/stable/bundleUri"),
        ({"canary__enabled": True}, "/canary/bundleUri"),
        ({"predictor__autoscaling__maxReplica": 3}, "/predictor/autoscaling"),
        # Keys of the removed Knative mode are unknown now, not silently ignored.
        ({"autoscaling__knative__metric": "concurrency"}, "/autoscaling"),
        ({"networkPolicy__knativeNamespaceSelector": {}}, "/networkPolicy"),
        ({"s3__endpoint": "http://minio:9000"}, "/s3/endpoint"),
        ({"auth__tokens__short": "abc"}, "/auth/tokens/short"),
        ({"fullnameOverride": "x" * 36}, "/fullnameOverride"),
        ({"route__requestTimeout": "30"}, "/route/requestTimeout"),
        ({"unknownTopLevelKey": "x"}, "unknownTopLevelKey"),
    ],
)
def test_schema_rejects_bad_values_naming_the_field(
    render: Render, override: dict[str, object], field: str
) -> None:
    with pytest.raises(RenderError) as error:
        render(BASE_VALUES, **override)

    assert field in str(error.value)


@pytest.mark.parametrize(
    ("override", "field", "key"),
    [
        # The transformer is a container in each arm's pod now: pod and scaling keys are the
        # predictor's (predictor.replicas, predictor.autoscaling, predictor.podLabels, ...).
        ({"transformer__replicas": 2}, "/transformer", "replicas"),
        ({"transformer__autoscaling__maxReplicas": 6}, "/transformer", "autoscaling"),
        ({"transformer__podLabels__team": "ml"}, "/transformer", "podLabels"),
        ({"transformer__nodeSelector__pool": "cpu"}, "/transformer", "nodeSelector"),
        # The runtime's /metrics stays inside the pod; the protocol is always v2.
        ({"predictor__metricsPort": 8082}, "/predictor", "metricsPort"),
        ({"predictor__protocolVersion": "v2"}, "/predictor", "protocolVersion"),
        # Probes are timing only: the chart sets each container's own HTTP check.
        (
            {"predictor__readinessProbe__httpGet__port": 8080},
            "/predictor/readinessProbe",
            "httpGet",
        ),
        (
            {"transformer__livenessProbe__httpGet__path": "/"},
            "/transformer/livenessProbe",
            "httpGet",
        ),
    ],
)
def test_schema_refuses_the_two_pod_layouts_keys_naming_them(
    render: Render, override: dict[str, object], field: str, key: str
) -> None:
    with pytest.raises(RenderError) as error:
        render(BASE_VALUES, **override)

    assert f"at '{field}': additional properties '{key}' not allowed" in str(error.value)


def test_schema_accepts_the_runbook_values(render: Render) -> None:
    render(
        BASE_VALUES,
        canary__enabled=True,
        canary__bundleUri="s3://models/churn/2",
        canary__weight=0,
        fullnameOverride="churn",
        podDisruptionBudget__maxUnavailable="50%",
    )


def test_generated_readme_is_up_to_date(tmp_path: Path) -> None:
    """make chart-docs regenerates README.md from values.yaml's `# --` comments."""
    copy = tmp_path / "churn-predictor"
    subprocess.run(["cp", "-r", str(CHART), str(copy)], check=True)
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "chart" / "docs.sh"), str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    generated = (copy / "README.md").read_text()
    assert generated == (CHART / "README.md").read_text(), "run `make chart-docs` and commit"
    for key in (
        "stable.bundleUri",
        "canary.weight",
        "predictor.port",
        "serviceMonitor.relabelings",
    ):
        assert f"| {key} |" in generated
