"""The user's journey as code: train in cluster, deploy with helm, call through the Gateway."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import httpx
import joblib
import numpy as np
import yaml

from devstack.demo import SAMPLE_CUSTOMERS, v2_request
from model.bundle import MODEL_PATH, load_serving_bundle, read_verified
from model.schema import CUSTOMER_ID
from tests.e2e.kube import REPO, CommandFailed, Kube, say, wait_until
from tests.rows import spec_columns
from training.synthetic import generate

RELEASE = "churn"
NAMESPACE = "churn"
PLATFORM_NAMESPACE = "churn-system"
CHART = REPO / "helm" / "churn-predictor"
RELEASE_SCRIPT = REPO / "hack" / "chart" / "release.sh"
BUNDLE_ANNOTATION = "churn-predictor/bundle-uri"
TRAINING_TIMEOUT = 1200.0
ROLLOUT_TIMEOUT = 900.0


# The chart's default runtime, KServe's own sklearn server, on every cluster the suite runs on.
PREDICTOR_RUNTIME = "kserve-sklearnserver"


@dataclass(frozen=True)
class TrainedModel:
    """What one in-cluster training run produced, from its JSON summary."""

    bundle_uri: str
    storage_uri: str
    version: str
    registered_version: str
    summary: dict[str, Any]


def last_json_object(log: str) -> dict[str, Any]:
    """The CLI prints its JSON summary on stdout; `kubectl logs` interleaves stderr progress."""
    decoder = json.JSONDecoder()
    found: dict[str, Any] | None = None
    for start in (
        i for i, char in enumerate(log) if char == "{" and (i == 0 or log[i - 1] == "\n")
    ):
        try:
            value, _ = decoder.raw_decode(log, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found = value
    if found is None:
        raise ValueError(f"no JSON summary in the training log:\n{log[-2000:]}")
    return found


def run_training_job(kube: Kube, name: str, seed: int) -> TrainedModel:
    """The training Job of manifests/training, under its own name and data seed, to completion."""
    documents = list(
        yaml.safe_load_all(kube.kubectl("kustomize", str(REPO / "manifests" / "training")))
    )
    (job,) = (d for d in documents if d and d["kind"] == "Job")
    job["metadata"]["name"] = name
    (generate_container,) = job["spec"]["template"]["spec"]["initContainers"]
    args = generate_container["args"]
    args[args.index("--seed") + 1] = str(seed)
    kube.kubectl("-n", PLATFORM_NAMESPACE, "delete", "job", name, "--ignore-not-found", "--wait")
    kube.apply(yaml.safe_dump(job))
    say(f"training Job {name} (seed {seed}) started")

    def finished() -> str | None:
        status = kube.get("-n", PLATFORM_NAMESPACE, "job", name).get("status", {})
        if status.get("succeeded"):
            return "succeeded"
        if status.get("failed", 0) > job["spec"]["backoffLimit"]:
            return "failed"
        return None

    outcome = wait_until(f"training Job {name}", finished, TRAINING_TIMEOUT, interval=5)
    log = kube.kubectl("-n", PLATFORM_NAMESPACE, "logs", f"job/{name}", "-c", "train")
    if outcome != "succeeded":
        raise CommandFailed(f"training Job {name} failed:\n{log[-3000:]}")
    summary = last_json_object(log)
    return TrainedModel(
        bundle_uri=summary["bundle_uri"],
        storage_uri=summary["storage_uri"],
        version=summary["version"],
        registered_version=str(summary["model_version"]),
        summary=summary,
    )


def customers(rows: int, seed: int) -> list[dict[str, Any]]:
    """Rows as a client sends them: the demo's hand-written customers plus synthetic ones."""
    frame = generate(rows, seed=seed).drop(columns=["Churn"])
    synthetic: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return [*SAMPLE_CUSTOMERS, *synthetic]


class OfflineModel:
    """The bundle's model applied in this process: its feature spec, then its scikit-learn model."""

    def __init__(self, bundle_uri: str) -> None:
        self.bundle = load_serving_bundle(bundle_uri)
        self.classifier = joblib.load(
            io.BytesIO(read_verified(bundle_uri, MODEL_PATH, self.bundle.metadata))
        )

    def probabilities(self, rows: list[dict[str, Any]]) -> np.ndarray:
        matrix = self.bundle.spec.transform(spec_columns(rows)).matrix
        return np.asarray(self.classifier.predict_proba(matrix)[:, 1])


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def model_version(self) -> str:
        return str(self.body["parameters"]["model_version"])

    def output(self, name: str) -> list[Any]:
        (values,) = (o["data"] for o in self.body["outputs"] if o["name"] == name)
        return list(values)


class Gateway:
    """v2 calls to the churn model through the cluster's Gateway."""

    def __init__(self, base_url: str, token: str) -> None:
        self.infer_url = f"{base_url}/v2/models/churn/infer"
        self.token = token
        self.client = httpx.Client(timeout=30)

    def post(self, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.client.post(
            self.infer_url,
            content=content,
            headers={"content-type": "application/json", **(headers or {})},
        )

    def infer(self, rows: list[dict[str, Any]], arm: str | None = None) -> Answer:
        headers = {"authorization": f"Bearer {self.token}"}
        if arm:
            headers["x-churn-arm"] = arm
        response = self.post(json.dumps(v2_request(rows)).encode(), headers)
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {"text": response.text}
        )
        return Answer(response.status_code, body)

    def answer_from(
        self, version: str, rows: list[dict[str, Any]], arm: str | None = None
    ) -> Answer | None:
        """The answer to one call if `version` gave it (for waits on route changes)."""
        answer = self.infer(rows, arm)
        return answer if answer.status == 200 and answer.model_version == version else None

    def settle_on(
        self, version: str, rows: list[dict[str, Any]], never: str, consecutive: int = 10
    ) -> None:
        """Waits until `consecutive` calls in a row are answered by `version`: the Gateway learns
        about new endpoints asynchronously, a few seconds after a rollout finished, and may fail a
        call meanwhile. An answer from version `never` fails at once: that arm must be gone."""
        streak = 0

        def probe() -> bool:
            nonlocal streak
            answer = self.infer(rows)
            assert answer.status != 200 or answer.model_version != never, (
                f"answered by {never} after it was replaced"
            )
            ok = answer.status == 200 and answer.model_version == version
            streak = streak + 1 if ok else 0
            return streak >= consecutive

        wait_until(f"{consecutive} answers in a row from {version}", probe, 300, interval=0.2)

    def versions(self, rows: list[dict[str, Any]], requests: int) -> list[str]:
        """The bundle version that answered each of `requests` calls (every call must succeed)."""
        answered = []
        for _ in range(requests):
            answer = self.infer(rows)
            assert answer.status == 200, f"HTTP {answer.status}: {answer.body}"
            answered.append(answer.model_version)
        return answered


class Release:
    """The churn-predictor release, operated as documented (helm, hack/chart/release.sh)."""

    def __init__(self, kube: Kube, values_files: list[str]) -> None:
        self.kube = kube
        self.values_files = values_files

    def install(self, bundle_uri: str) -> None:
        values = [arg for path in self.values_files for arg in ("-f", path)]
        say(f"helm upgrade --install {RELEASE} with {bundle_uri}")
        self.kube.helm(
            "upgrade", "--install", RELEASE, str(CHART), "--namespace", NAMESPACE, *values,
            "--set-string", f"stable.bundleUri={bundle_uri}", timeout=120,
        )  # fmt: skip

    def operate(self, *args: str) -> None:
        """`make canary|promote|rollback`: hack/chart/release.sh, which upgrades and waits."""
        say(f"release.sh {' '.join(args)}")
        self.kube.run("bash", str(RELEASE_SCRIPT), *args, timeout=ROLLOUT_TIMEOUT + 120)

    def history(self) -> list[dict[str, Any]]:
        parsed: list[dict[str, Any]] = json.loads(
            self.kube.helm("history", RELEASE, "-n", NAMESPACE, "-o", "json")
        )
        return parsed

    def revision_values(self, revision: int) -> dict[str, Any]:
        revision_flag = f"--revision={revision}"
        parsed: dict[str, Any] = json.loads(
            self.kube.helm(
                "get", "values", RELEASE, "-n", NAMESPACE, "--all", revision_flag, "-o=json"
            )
        )
        return parsed

    def install_standalone(self, name: str, bundle_uri: str, *extra: str) -> None:
        """Another release of the chart beside this one: one arm, no route, fixed replicas."""
        values = [arg for path in self.values_files for arg in ("-f", path)]
        self.kube.helm(
            "upgrade", "--install", name, str(CHART), "--namespace", NAMESPACE, *values,
            "--set", f"fullnameOverride={name}", "--set", "route.enabled=false",
            "--set", "autoscaling.enabled=false", "--set", "serviceMonitor.enabled=false",
            "--set-string", f"stable.bundleUri={bundle_uri}", *extra, timeout=120,
        )  # fmt: skip

    def wait_serving(self, isvc: str, bundle_uri: str) -> None:
        """InferenceService Ready and its one Deployment fully rolled out on `bundle_uri`: no pod
        of an older spec left to answer."""
        deployment_name = f"{isvc}-predictor"

        def rolled_out() -> bool:
            status = self.kube.get("-n", NAMESPACE, "inferenceservice", isvc).get("status", {})
            conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
            if conditions.get("Ready") != "True":
                return False
            deployment = self.kube.get("-n", NAMESPACE, "deployment", deployment_name)
            # KServe copies the InferenceService's annotations (the chart's bundle URI among
            # them) onto the pod template it rolls out.
            on_bundle = (
                deployment["spec"]["template"]["metadata"]["annotations"].get(BUNDLE_ANNOTATION)
                == bundle_uri
            )
            return (
                on_bundle
                and deployment_rolled_out(deployment)
                and not self._pods_of_other_revisions(isvc, deployment)
            )

        wait_until(f"{isvc} serving {bundle_uri.rsplit('/', 1)[-1]}", rolled_out, ROLLOUT_TIMEOUT)

    def _pods_of_other_revisions(self, isvc: str, deployment: dict[str, Any]) -> list[str]:
        """Pods, terminating ones included, that belong to an older ReplicaSet of the arm."""
        selector = f"serving.kserve.io/inferenceservice={isvc}"
        revision = deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        current_hashes = {
            meta["labels"]["pod-template-hash"]
            for meta in (
                rs["metadata"]
                for rs in self.kube.get("-n", NAMESPACE, "replicasets", "-l", selector)["items"]
            )
            if deployment["metadata"]["name"]
            in {o["name"] for o in meta.get("ownerReferences", [])}
            and meta["annotations"].get("deployment.kubernetes.io/revision") == revision
        }
        pods = self.kube.get("-n", NAMESPACE, "pods", "-l", selector)["items"]
        return [
            p["metadata"]["name"]
            for p in pods
            if p["metadata"]["labels"].get("pod-template-hash") not in current_hashes
        ]


def deployment_rolled_out(deployment: dict[str, Any]) -> bool:
    spec, status = deployment["spec"], deployment.get("status", {})
    replicas = spec.get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
    )


def customer_ids(answer: Answer) -> list[str]:
    return [str(v) for v in answer.output(CUSTOMER_ID)]
