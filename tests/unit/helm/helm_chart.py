"""Rendering and label-selector helpers for the churn-predictor chart tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "helm" / "churn-predictor"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
NAMESPACE = "churn"
RELEASE = "churn"
# fullnameOverride-free name of the stable InferenceService for RELEASE.
STABLE = "churn-churn-predictor"
CANDIDATE = f"{STABLE}-candidate"
STABLE_URI = "s3://models/churn/20260101T000000Z-abc1234"
CANDIDATE_URI = "s3://models/churn/20260201T000000Z-def5678"
# The minimum a Standard-mode install needs besides the defaults.
BASE_VALUES = CHART / "ci" / "standard-values.yaml"
# The values every install must set; everything else keeps the chart's defaults.
REQUIRED_VALUES: dict[str, object] = {
    "stable__bundleUri": STABLE_URI,
    "s3__accessKeyId": "minio",
    "s3__secretAccessKey": "minio-secret",
}
# The chart's defaults (None: only REQUIRED_VALUES set) and every ci/ scenario.
SCENARIOS: list[Path | None] = [None, *CI_VALUES]
# KServe's fixed name of a transformer collocated in the predictor pod.
TRANSFORMER_CONTAINER = "transformer-container"
# Where KServe's storage initializer mounts the downloaded storageUri in both containers.
MODEL_MOUNT = "/mnt/models"

Manifest = dict[str, Any]
# render(values_file, ..., release=..., some__key=value) -> the parsed objects.
Render = Callable[..., list[Manifest]]


def find_tool(name: str) -> str:
    """The tool on PATH or in $CHURN_CACHE/bin (where `make tools` installs it)."""
    cache_bin = (
        Path(os.environ.get("CHURN_CACHE", Path.home() / ".cache" / "churn-serving")) / "bin"
    )
    found = shutil.which(name) or shutil.which(name, path=str(cache_bin))
    if found is None:
        pytest.fail(f"{name} not found on PATH or in {cache_bin}: run `make tools`")
    return found


def set_args(overrides: Mapping[str, object]) -> list[str]:
    args: list[str] = []
    for key, value in overrides.items():
        if isinstance(value, bool):
            args += ["--set", f"{key}={str(value).lower()}"]
        elif isinstance(value, str):
            args += ["--set-string", f"{key}={value}"]
        else:
            # --set would turn 0.1 into a string; JSON keeps numbers numbers.
            args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, check=False)


def render_chart(
    helm: str, *values_files: Path, release: str = RELEASE, **overrides: object
) -> list[Manifest]:
    """`helm template` the chart; keyword keys use "__" for "." (canary__weight=5)."""
    args = ["template", release, str(CHART), "--namespace", NAMESPACE]
    for values in values_files:
        args += ["--values", str(values)]
    args += set_args({key.replace("__", "."): value for key, value in overrides.items()})
    result = run_helm(helm, *args)
    if result.returncode != 0:
        raise RenderError(result.stderr)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


class RenderError(Exception):
    """helm refused to render; the message is helm's stderr."""


def scenario_id(scenario: Path | None) -> str:
    return "defaults" if scenario is None else scenario.name


def render_scenario(render: Render, scenario: Path | None) -> list[Manifest]:
    return render(**REQUIRED_VALUES) if scenario is None else render(scenario)


def by_kind(manifests: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: Iterable[Manifest], kind: str, name: str) -> Manifest:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def env_of(container: Manifest) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def runtime_container(isvc: Manifest) -> Manifest:
    """The model server: KServe builds `kserve-container` from spec.predictor.model."""
    model: Manifest = isvc["spec"]["predictor"]["model"]
    return model


def transformer_container(isvc: Manifest) -> Manifest:
    containers: list[Manifest] = isvc["spec"]["predictor"]["containers"]
    assert [c["name"] for c in containers] == [TRANSFORMER_CONTAINER]
    return containers[0]


def container_port(container: Manifest, port: int | str) -> int:
    """A probe's or Service's port, by number or by the container's port name."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    assert isinstance(number, int)
    return number


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics for matchLabels and matchExpressions."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def kserve_pod_labels(isvc: Manifest) -> dict[str, str]:
    """The labels KServe v0.20 puts on an arm's predictor pods and Service in Standard mode.

    Union of the InferenceService's labels, the predictor's own labels, and KServe's
    `serving.kserve.io/inferenceservice`, `component` and `app: isvc.<name>-predictor` labels
    (pkg/controller/v1beta1/inferenceservice/components/predictor.go and reconcilers/deployment).
    """
    name = isvc["metadata"]["name"]
    return {
        **isvc["metadata"].get("labels", {}),
        **isvc["spec"]["predictor"].get("labels", {}),
        "serving.kserve.io/inferenceservice": name,
        "component": "predictor",
        "app": f"isvc.{name}-predictor",
    }
