"""Every rendered object against a real kube-apiserver: the Kubernetes OpenAPI schema of the pinned
version plus the real KServe, Gateway API and prometheus-operator CRD schemas (and their CEL rules),
with strict field validation, so an unknown field is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kube_apiserver import REPO, ApiServer, pinned_versions

pytestmark = pytest.mark.integration

CHART = REPO / "helm" / "churn-predictor"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
BASE = CHART / "ci" / "standard-values.yaml"
STABLE_URI = "s3://models/churn/20260101T000000Z-abc1234"
CANDIDATE_URI = "s3://models/churn/20260201T000000Z-def5678"
# The runbook's steps (docs/runbook-canary.md) as --set lists on top of the standard scenario.
CANARY_STEPS = {
    "start": [
        "canary.enabled=true",
        f"canary.bundleUri={CANDIDATE_URI}",
        "canary.weight=10",
    ],
    "shift": ["canary.enabled=true", f"canary.bundleUri={CANDIDATE_URI}", "canary.weight=50"],
    "promote-prepare": [
        "canary.enabled=true",
        f"canary.bundleUri={CANDIDATE_URI}",
        "canary.weight=100",
        f"stable.bundleUri={CANDIDATE_URI}",
    ],
    "promote": [f"stable.bundleUri={CANDIDATE_URI}", "canary.enabled=false"],
    "rollback": [f"stable.bundleUri={STABLE_URI}", "canary.enabled=false"],
}


def render(server: ApiServer, values: Path, sets: list[str] | None = None) -> str:
    args = [
        "helm",
        "template",
        "churn",
        str(CHART),
        "--namespace",
        "churn",
        "--values",
        str(values),
    ]
    for item in sets or []:
        args += ["--set", item]
    return server.must(*args)


def dry_run(server: ApiServer, manifests: str, namespace: str = "churn") -> tuple[str, str]:
    result = server.run(
        "kubectl", "apply", "--dry-run=server", "--validate=strict", "--namespace", namespace,
        "-f", "-", stdin=manifests,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


def kinds(manifests: str) -> list[str]:
    return [doc["kind"] for doc in yaml.safe_load_all(manifests) if doc]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_every_scenario_is_accepted_by_the_api_server(apiserver: ApiServer, values: Path) -> None:
    manifests = render(apiserver, values)
    stdout, stderr = dry_run(apiserver, manifests)

    assert stdout.count("(server dry run)") == len(kinds(manifests))
    assert "Warning" not in stderr


@pytest.mark.parametrize("step", list(CANARY_STEPS))
def test_every_canary_step_is_accepted_by_the_api_server(apiserver: ApiServer, step: str) -> None:
    manifests = render(apiserver, BASE, CANARY_STEPS[step])
    stdout, _ = dry_run(apiserver, manifests)

    assert stdout.count("(server dry run)") == len(kinds(manifests))
    assert "InferenceService" in kinds(manifests)


def standard_manifests(apiserver: ApiServer) -> list[dict[str, object]]:
    return [doc for doc in yaml.safe_load_all(render(apiserver, BASE)) if doc]


def rejection(apiserver: ApiServer, manifest: dict[str, object]) -> str:
    result = apiserver.run(
        "kubectl", "apply", "--dry-run=server", "--validate=strict", "--namespace", "churn",
        "-f", "-", stdin=json.dumps(manifest),
    )  # fmt: skip
    assert result.returncode != 0, f"the API server accepted a broken object:\n{result.stdout}"
    return result.stderr


def first(manifests: list[dict[str, object]], kind: str) -> dict[str, object]:
    return next(m for m in manifests if m["kind"] == kind)


def test_unknown_inference_service_field_is_an_error(apiserver: ApiServer) -> None:
    isvc = first(standard_manifests(apiserver), "InferenceService")
    isvc["spec"]["predictor"]["model"]["storageUrl"] = STABLE_URI  # type: ignore[index]

    assert 'unknown field "spec.predictor.model.storageUrl"' in rejection(apiserver, isvc)


def test_unknown_core_field_is_an_error(apiserver: ApiServer) -> None:
    policy = first(standard_manifests(apiserver), "NetworkPolicy")
    policy["spec"]["podSelectors"] = {}  # type: ignore[index]

    assert 'unknown field "spec.podSelectors"' in rejection(apiserver, policy)


def test_gateway_api_schema_rules_are_enforced(apiserver: ApiServer) -> None:
    route = first(
        [doc for doc in yaml.safe_load_all(render(apiserver, BASE, CANARY_STEPS["start"])) if doc],
        "HTTPRoute",
    )
    route["spec"]["rules"][-1]["backendRefs"][0]["weight"] = 1_000_001  # type: ignore[index]

    assert "weight" in rejection(apiserver, route)


def test_service_monitor_schema_is_enforced(apiserver: ApiServer) -> None:
    monitor = first(standard_manifests(apiserver), "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"  # type: ignore[index]

    assert "intervall" in rejection(apiserver, monitor)


def test_the_api_server_keeps_each_arms_collocated_pod_as_rendered(apiserver: ApiServer) -> None:
    """Strict validation refuses unknown fields; this shows nothing known is dropped or changed
    either: the transformer-container and the runtime's ports and probes are stored as rendered."""
    rendered = [
        doc
        for doc in yaml.safe_load_all(render(apiserver, BASE, CANARY_STEPS["start"]))
        if doc and doc["kind"] == "InferenceService"
    ]
    items = json.dumps({"kind": "List", "apiVersion": "v1", "items": rendered})
    output = apiserver.must(
        "kubectl", "apply", "--dry-run=server", "--validate=strict", "--namespace", "churn",
        "-o", "json", "-f", "-", stdin=items,
    )  # fmt: skip
    stored = json.loads(output)["items"]

    assert [s["metadata"]["name"] for s in stored] == [r["metadata"]["name"] for r in rendered]
    for ours, theirs in zip(rendered, stored, strict=True):
        assert theirs["spec"] == ours["spec"]
        assert [c["name"] for c in theirs["spec"]["predictor"]["containers"]] == [
            "transformer-container"
        ]


def test_chart_flags_win_over_the_real_sklearn_runtimes_args(apiserver: ApiServer) -> None:
    """KServe puts the ClusterServingRuntime's args first and the InferenceService's after; the
    runtime's argparse keeps the last of each flag."""
    version = pinned_versions()["KSERVE_VERSION"]
    runtimes = apiserver.upstream / f"kserve-{version}" / "config" / "runtimes"
    runtime = yaml.safe_load((runtimes / "kserve-sklearnserver.yaml").read_text())
    (upstream_container,) = runtime["spec"]["containers"]
    isvc = first(standard_manifests(apiserver), "InferenceService")
    model = isvc["spec"]["predictor"]["model"]  # type: ignore[index]
    args: list[str] = [*upstream_container["args"], *model["args"]]

    def last(flag: str) -> str:
        return [a.split("=", 1)[1] for a in args if a.startswith(f"{flag}=")][-1]

    assert upstream_container["name"] == "kserve-container"
    # Upstream serves on 8080, the transformer's port, and loads the whole of /mnt/models.
    assert "--http_port=8080" in upstream_container["args"]
    assert last("--http_port") == "8085"
    assert last("--model_dir") == "/mnt/models/model"
    assert last("--model_name") == "churn"
    # No transformer-container in the runtime: KServe takes the InferenceService's as it is.
    assert all(c["name"] != "transformer-container" for c in runtime["spec"]["containers"])
