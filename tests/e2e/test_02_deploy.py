"""Step 2: `helm upgrade --install` brings each arm up as one pod: KServe's sklearn runtime and
the transformer side by side, Ready only while both are, never with a model its bundle does not
name."""

from __future__ import annotations

import json
from typing import Any

import yaml

from model import storage
from model.bundle import MODEL_PATH
from tests.e2e.journey import (
    CHART,
    NAMESPACE,
    PREDICTOR_RUNTIME,
    RELEASE,
    Release,
    TrainedModel,
)
from tests.e2e.kube import Kube, say, wait_until

# The chart runs the transformer image tagged with its appVersion (hack/images builds that tag).
TRANSFORMER_IMAGE = "docker.io/churn/transformer:{}".format(
    yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
)
# KServe's runtime image, built here from the pinned upstream sources or pulled from its registry.
RUNTIME_IMAGE = "docker.io/kserve/sklearnserver:v0.20.0"
RUNTIME, TRANSFORMER = "kserve-container", "transformer-container"
GUARD_RELEASE = "churn-guard"


def arm_pods(kube: Kube, isvc: str) -> list[dict[str, Any]]:
    selector = f"serving.kserve.io/inferenceservice={isvc}"
    pods: list[dict[str, Any]] = kube.get("-n", NAMESPACE, "pods", "-l", selector)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in pod["status"].get("containerStatuses", [])}


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    return conditions.get("Ready") == "True"


def test_helm_install_brings_the_inference_service_to_ready(
    kube: Kube, release: Release, first_model: TrainedModel
) -> None:
    isvc = kube.get("-n", NAMESPACE, "inferenceservice", RELEASE)
    conditions = {c["type"]: c["status"] for c in isvc["status"]["conditions"]}
    predictor = isvc["spec"]["predictor"]
    (status,) = json.loads(kube.helm("list", "-n", NAMESPACE, "-o", "json"))

    assert conditions["Ready"] == "True", conditions
    assert conditions["PredictorReady"] == "True"
    assert "transformer" not in isvc["spec"]
    assert [c["name"] for c in predictor["containers"]] == [TRANSFORMER]
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert predictor["model"]["runtime"] == PREDICTOR_RUNTIME
    assert predictor["model"]["storageUri"] == first_model.bundle_uri
    assert status["name"] == RELEASE
    assert status["status"] == "deployed"
    # One Deployment and one Service per arm: nothing of a separate transformer component.
    assert kube.exists("-n", NAMESPACE, "deployment", f"{RELEASE}-predictor")
    assert not kube.exists("-n", NAMESPACE, "deployment", f"{RELEASE}-transformer")
    assert not kube.exists("-n", NAMESPACE, "service", f"{RELEASE}-transformer")


def test_each_arm_pod_runs_the_runtime_and_the_transformer(kube: Kube, release: Release) -> None:
    (pod,) = arm_pods(kube, RELEASE)
    running = containers(pod)

    assert set(running) == {RUNTIME, TRANSFORMER}
    assert running[TRANSFORMER]["image"] == TRANSFORMER_IMAGE
    assert running[RUNTIME]["image"] == RUNTIME_IMAGE
    assert all(c["ready"] and c["imageID"] for c in running.values())
    assert pod["metadata"]["labels"]["component"] == "predictor"


def _endpoint_ready(kube: Kube, pod_ip: str) -> bool | None:
    """The pod's endpoint in the arm's Service: ready, not ready, or absent (None)."""
    slices = kube.get(
        "-n", NAMESPACE, "endpointslices", "-l", f"kubernetes.io/service-name={RELEASE}-predictor"
    )["items"]
    for endpoint in (e for s in slices for e in s.get("endpoints") or []):
        if pod_ip in endpoint["addresses"]:
            return bool(endpoint["conditions"].get("ready"))
    return None


def test_a_killed_runtime_takes_the_pod_out_of_the_service(kube: Kube, release: Release) -> None:
    (pod,) = arm_pods(kube, RELEASE)
    name, pod_ip = pod["metadata"]["name"], pod["status"]["podIP"]
    restarts = {c: s["restartCount"] for c, s in containers(pod).items()}
    assert _endpoint_ready(kube, pod_ip) is True

    # The runtime is PID 1 of its container: SIGTERM stops its server, and the process exits.
    kube.kubectl(
        "-n", NAMESPACE, "exec", name, "-c", RUNTIME, "--",
        "python", "-c", "import os, signal; os.kill(1, signal.SIGTERM)",
    )  # fmt: skip
    wait_until(
        "the Service to stop routing to the pod without its runtime",
        lambda: _endpoint_ready(kube, pod_ip) is not True,
        timeout=60,
        interval=0.2,
    )
    wait_until(
        "the restarted runtime to bring the pod back into the Service",
        lambda: _endpoint_ready(kube, pod_ip) is True,
        timeout=300,
    )
    after = containers(kube.get("-n", NAMESPACE, "pod", name))
    assert after[RUNTIME]["restartCount"] == restarts[RUNTIME] + 1
    assert after[TRANSFORMER]["restartCount"] == restarts[TRANSFORMER]


def test_a_model_file_its_bundle_does_not_name_never_becomes_ready(
    kube: Kube, release: Release, first_model: TrainedModel, second_model: TrainedModel
) -> None:
    """The first bundle with the second bundle's model file: same widths, so without the guard it
    would serve wrong scores. The transformer refuses it and says why; the pod never turns Ready."""
    tampered = f"{first_model.bundle_uri}-tampered"
    bucket, prefix = storage.split_s3(first_model.bundle_uri)
    listed = storage.s3_client().list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    for key in (o["Key"] for o in listed["Contents"]):
        relative = key.removeprefix(f"{prefix}/")
        source = second_model.bundle_uri if relative == MODEL_PATH else first_model.bundle_uri
        storage.write_bytes(
            storage.join(tampered, relative), storage.read_bytes(storage.join(source, relative))
        )
    release.install_standalone(GUARD_RELEASE, tampered)
    try:

        def refused() -> str | None:
            """The reason the transformer gave for exiting, as the pod's status keeps it
            (terminationMessagePolicy FallbackToLogsOnError): `kubectl describe pod` shows it."""
            pods = arm_pods(kube, GUARD_RELEASE)
            transformer = containers(pods[0]).get(TRANSFORMER, {}) if pods else {}
            terminated = transformer.get("lastState", {}).get("terminated") or {}
            message: str | None = terminated.get("message")
            return message

        log = wait_until("the transformer to refuse the tampered bundle", refused, timeout=600)
        say(f"guard: {log.strip().splitlines()[-1]}")
        (pod,) = arm_pods(kube, GUARD_RELEASE)
        isvc = kube.get("-n", NAMESPACE, "inferenceservice", GUARD_RELEASE)
        conditions = {c["type"]: c["status"] for c in isvc["status"].get("conditions", [])}

        assert "cannot start" in log
        assert f"/mnt/models/{MODEL_PATH} has sha256" in log
        assert "another model than the one this feature spec was fitted with" in log
        assert not pod_ready(pod)
        assert conditions.get("Ready") != "True"
    finally:
        kube.helm("uninstall", GUARD_RELEASE, "-n", NAMESPACE, "--wait", timeout=300)
