"""Step 2: `helm upgrade --install` brings the InferenceService to Ready on the project's images."""

from __future__ import annotations

import json

import yaml

from tests.e2e.journey import (
    CHART,
    NAMESPACE,
    PREDICTOR_RUNTIME,
    RELEASE,
    Release,
    TrainedModel,
)
from tests.e2e.kube import Kube

# The chart runs the transformer image tagged with its appVersion (hack/images builds that tag).
TRANSFORMER_IMAGE = "docker.io/churn/transformer:{}".format(
    yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
)
# KServe's runtime image, built here from the pinned upstream sources or pulled from its registry.
RUNTIME_IMAGE = "docker.io/kserve/sklearnserver:v0.20.0"


def test_helm_install_brings_the_inference_service_to_ready(
    kube: Kube, release: Release, first_model: TrainedModel
) -> None:
    isvc = kube.get("-n", NAMESPACE, "inferenceservice", RELEASE)
    conditions = {c["type"]: c["status"] for c in isvc["status"]["conditions"]}
    model = isvc["spec"]["predictor"]["model"]
    (status,) = json.loads(kube.helm("list", "-n", NAMESPACE, "-o", "json"))

    assert conditions["Ready"] == "True", conditions
    assert conditions["PredictorReady"] == "True"
    assert conditions["TransformerReady"] == "True"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert model["runtime"] == PREDICTOR_RUNTIME
    assert model["storageUri"] == first_model.storage_uri
    assert status["name"] == RELEASE
    assert status["status"] == "deployed"


def test_pods_run_the_project_and_runtime_images(kube: Kube, release: Release) -> None:
    pods = kube.get("-n", NAMESPACE, "pods", "-l", f"serving.kserve.io/inferenceservice={RELEASE}")
    running = {
        pod["metadata"]["labels"]["component"]: {
            status["name"]: status for status in pod["status"]["containerStatuses"]
        }
        for pod in pods["items"]
        if pod["status"]["phase"] == "Running"
    }

    transformer = running["transformer"]["kserve-container"]
    predictor = running["predictor"]["kserve-container"]
    assert transformer["image"] == TRANSFORMER_IMAGE
    assert transformer["ready"]
    assert predictor["image"] == RUNTIME_IMAGE
    assert predictor["ready"]
    assert transformer["imageID"]
    assert predictor["imageID"]
