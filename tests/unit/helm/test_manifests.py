"""The plain manifests/ kustomizations: they build, pin the images the image builds produce, and
run every container under the restricted Pod Security profile."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from helm_chart import CHART, REPO, Manifest, find_tool

MANIFESTS = REPO / "manifests"
KUSTOMIZATIONS = [MANIFESTS, MANIFESTS / "training"]


def pinned(key: str) -> str:
    match = re.search(rf"^{key}=(.+)$", (REPO / "hack" / "versions.env").read_text(), re.M)
    assert match, f"{key} missing from hack/versions.env"
    return match.group(1).strip()


def project_version() -> str:
    match = re.search(r'^version = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    assert match
    return match.group(1)


def kustomize(directory: Path) -> list[Manifest]:
    result = subprocess.run(
        [find_tool("kubectl"), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def pod_specs(manifests: list[Manifest]) -> list[tuple[str, Manifest]]:
    return [
        (m["metadata"]["name"], m["spec"]["template"]["spec"])
        for m in manifests
        if m["kind"] in {"Deployment", "Job"}
    ]


def test_platform_has_namespaces_minio_mlflow_and_the_gateway() -> None:
    manifests = kustomize(MANIFESTS)
    names = {(m["kind"], m["metadata"]["name"]) for m in manifests}

    assert {
        ("Namespace", "churn-system"),
        ("Namespace", "churn"),
        ("Deployment", "minio"),
        ("Job", "minio-buckets"),
        ("Deployment", "mlflow"),
        ("PersistentVolumeClaim", "mlflow-backend"),
        ("Gateway", "churn-gateway"),
    } <= names
    for manifest in manifests:
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == "churn-system"


def test_images_are_the_ones_hack_images_builds() -> None:
    images = {
        container["image"]
        for directory in KUSTOMIZATIONS
        for _, spec in pod_specs(kustomize(directory))
        for container in spec.get("initContainers", []) + spec["containers"]
    }

    assert images == {
        f"churn/minio:{pinned('MINIO_VERSION')}",
        f"churn/mlflow:{pinned('MLFLOW_VERSION')}",
        f"churn/training:{project_version()}",
    }


def test_chart_app_version_is_the_project_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == project_version()


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_every_workload_runs_restricted(directory: Path) -> None:
    for name, spec in pod_specs(kustomize(directory)):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert container["resources"]["limits"], name


def test_mlflow_keeps_its_backend_on_a_persistent_volume() -> None:
    mlflow = next(
        m
        for m in kustomize(MANIFESTS)
        if m["kind"] == "Deployment" and m["metadata"]["name"] == "mlflow"
    )
    spec = mlflow["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    backend = next(a for a in container["args"] if a.startswith("--backend-store-uri="))
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}

    db_dir = backend.removeprefix("--backend-store-uri=sqlite:///").rsplit("/", 1)[0]
    assert volumes[mounts[db_dir]]["persistentVolumeClaim"]["claimName"] == "mlflow-backend"
    assert mlflow["spec"]["strategy"]["type"] == "Recreate"


def test_gateway_admits_routes_from_the_chart_namespace() -> None:
    manifests = kustomize(MANIFESTS)
    gateway = next(m for m in manifests if m["kind"] == "Gateway")
    chart_namespace = next(
        m for m in manifests if m["kind"] == "Namespace" and m["metadata"]["name"] == "churn"
    )
    chart_defaults = yaml.safe_load((CHART / "values.yaml").read_text())["route"]["parentRefs"][0]
    (listener,) = gateway["spec"]["listeners"]
    selector = listener["allowedRoutes"]["namespaces"]["selector"]["matchLabels"]

    assert (gateway["metadata"]["name"], gateway["metadata"]["namespace"]) == (
        chart_defaults["name"],
        chart_defaults["namespace"],
    )
    assert listener["name"] == chart_defaults["sectionName"]
    assert selector.items() <= chart_namespace["metadata"]["labels"].items()
