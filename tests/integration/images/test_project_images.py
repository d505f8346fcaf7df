"""Dockerfile.train and Dockerfile.transformer build from a clean clone, and their containers work.

The training container generates data and trains a real bundle; the transformer container loads
that bundle, becomes healthy through its Docker HEALTHCHECK and refuses a request without a token.
Needs a Docker engine: hack/docker.sh starts one when run as root (CI does). Only where no engine
can be started (not root, none running) is the module skipped, and never when CHURN_REQUIRE_DOCKER
or CI is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from transformer.codec import decode_predictor_response, encode_predictor_request

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[3]
MODEL = "churn"
TOKEN = "image-test-token-0123456789abcdef"
# The transformer only needs a predictor per request; nothing listens on this port.
UNUSED_PREDICTOR = "127.0.0.1:9"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], check=False, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def versions() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (REPO / "hack" / "versions.env").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture(scope="module")
def docker_engine() -> None:
    if docker("info", check=False).returncode == 0:
        return
    required = bool(os.environ.get("CHURN_REQUIRE_DOCKER") or os.environ.get("CI"))
    if os.geteuid() != 0 and not required:
        pytest.skip("no Docker engine running and not root, so hack/docker.sh cannot start one")
    started = subprocess.run(
        ["bash", str(REPO / "hack" / "docker.sh")], check=False, capture_output=True, text=True
    )
    assert started.returncode == 0, f"hack/docker.sh failed:\n{started.stderr}"


@dataclass(frozen=True)
class Images:
    training: str
    transformer: str


@pytest.fixture(scope="module")
def images(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    """Both images, built from a fresh clone of HEAD on the local base image."""
    workdir = tmp_path_factory.mktemp("images")
    clone = workdir / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", "--depth", "1", f"file://{REPO}", str(clone)], check=True
    )
    base = subprocess.run(
        ["bash", str(clone / "hack" / "base-image.sh")], check=False, capture_output=True, text=True
    )
    assert base.returncode == 0, f"hack/base-image.sh failed:\n{base.stderr}"
    base_image = versions()["CHURN_PYTHON_BASE_IMAGE"]
    suffix = uuid.uuid4().hex[:8]
    built = Images(f"churn-test/training:{suffix}", f"churn-test/transformer:{suffix}")
    try:
        for dockerfile, tag in (("Dockerfile.train", built.training),
                                ("Dockerfile.transformer", built.transformer)):  # fmt: skip
            log = workdir / f"{dockerfile}.log"
            with log.open("w") as sink:
                result = subprocess.run(
                    ["docker", "build", "--network", "host", "--build-arg",
                     f"BASE_IMAGE={base_image}", "-f", dockerfile, "-t", tag, "."],
                    check=False, cwd=clone, stdout=sink, stderr=subprocess.STDOUT,
                )  # fmt: skip
            assert result.returncode == 0, f"{dockerfile} did not build:\n{log.read_text()[-4000:]}"
        yield built
    finally:
        docker("rmi", "--force", built.training, built.transformer, check=False)


def run_training(image: str, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # No network: the training image must not need anything beyond what it was built with.
    return docker(
        "run", "--rm", "--network", "none", "-v", f"{workdir}:/work", image, *args, check=False
    )


@pytest.fixture(scope="module")
def trained_bundle(images: Images, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle the training container wrote: generate, then train with a local sqlite registry."""
    workdir = tmp_path_factory.mktemp("training-out")
    workdir.chmod(0o777)  # the container runs as a non-root user
    generated = run_training(
        images.training, workdir, "generate", "--rows", "1500", "--seed", "11",
        "--output", "/work/customers.csv",
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    trained = run_training(
        images.training, workdir, "train", "--data", "/work/customers.csv",
        "--output", "/work/bundles", "--model-name", MODEL, "--cv-folds", "3",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    (metadata,) = (workdir / "bundles" / MODEL).glob("*/metadata.json")
    return metadata.parent


def test_training_image_runs_as_non_root_and_trains_a_bundle(
    images: Images, trained_bundle: Path
) -> None:
    assert_numeric_non_root(images.training)
    metadata = json.loads((trained_bundle / "metadata.json").read_text())
    assert metadata["model_name"] == MODEL
    assert (trained_bundle / "model" / "model.joblib").is_file()


@pytest.fixture
def transformer(images: Images, trained_bundle: Path, tmp_path: Path) -> Iterator[str]:
    """A running transformer container serving the trained bundle; yields its container id."""
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"image-test": TOKEN}))
    tokens.chmod(0o644)
    container = docker(
        "run", "--detach", "--publish", "127.0.0.1::8080",
        "-v", f"{trained_bundle}:/bundle:ro", "-v", f"{tokens}:/etc/churn/tokens/tokens.json:ro",
        "-e", "CHURN_TRANSFORMER_BUNDLE_URI=/bundle",
        images.transformer,
        "--model_name", MODEL, "--predictor_host", UNUSED_PREDICTOR,
        "--predictor_protocol", "v2", "--http_port", "8080",
    ).stdout.strip()  # fmt: skip
    try:
        yield container
    finally:
        docker("rm", "--force", container, check=False)


def wait_for_health(container: str, deadline_seconds: float = 180) -> str:
    """The container's final Docker health status: healthy, unhealthy, or its exit state."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        state = json.loads(docker("inspect", "--format", "{{json .State}}", container).stdout)
        if not state["Running"]:
            return f"exited {state['ExitCode']}"
        status = state.get("Health", {}).get("Status", "none")
        if status in {"healthy", "unhealthy"}:
            return str(status)
        time.sleep(1)
    return "still starting"


def test_transformer_container_passes_its_health_check_and_requires_a_token(
    transformer: str,
) -> None:
    status = wait_for_health(transformer)
    logs = docker("logs", transformer, check=False)
    assert status == "healthy", f"{status}\n{logs.stdout[-3000:]}\n{logs.stderr[-3000:]}"

    address = docker("port", transformer, "8080").stdout.splitlines()[0]
    with urllib.request.urlopen(f"http://{address}/v2/health/live", timeout=5) as response:
        assert json.loads(response.read()) == {"live": True}

    request = urllib.request.Request(
        f"http://{address}/v2/models/{MODEL}/infer",
        data=json.dumps({"inputs": []}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")


def image_config(image: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(
        docker("image", "inspect", "--format", "{{json .Config}}", image).stdout
    )
    return config


def assert_numeric_non_root(image: str) -> None:
    """Kubernetes' runAsNonRoot can only verify a numeric USER."""
    uid = image_config(image)["User"].split(":")[0]
    assert uid.isdigit(), f"{image} USER {uid!r} is not numeric"
    assert int(uid) != 0


def test_transformer_image_runs_as_non_root_with_a_health_check(images: Images) -> None:
    assert_numeric_non_root(images.transformer)
    config = image_config(images.transformer)
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert config["Labels"]["org.opencontainers.image.title"] == "churn-transformer"


@pytest.fixture(scope="module")
def sklearnserver_image(docker_engine: None) -> str:
    """KServe's kserve-sklearnserver, built by hack/images/build.sh from the pinned upstream
    sources (skipped there when its build key matches)."""
    built = subprocess.run(
        ["bash", str(REPO / "hack" / "images" / "build.sh"), "kserve-sklearnserver"],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, f"build.sh kserve-sklearnserver failed:\n{built.stderr[-4000:]}"
    return f"kserve/sklearnserver:{versions()['KSERVE_VERSION']}"


@pytest.fixture
def sklearnserver(sklearnserver_image: str, trained_bundle: Path) -> Iterator[str]:
    """The runtime serving the bundle's model as the chart runs it: the bundle root mounted
    read-only, --model_dir on its model/ directory, probabilities on, a read-only root file
    system, every capability dropped, uid 1000. Yields host:port."""
    container = docker(
        "run", "--detach", "--publish", "127.0.0.1::8080", "--read-only", "--tmpfs", "/tmp",  # noqa: S108
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", "1000:1000",
        "-v", f"{trained_bundle}:/mnt/models:ro", "-e", "PREDICT_PROBA=true",
        sklearnserver_image,
        "--model_dir=/mnt/models/model", f"--model_name={MODEL}", "--http_port=8080",
    ).stdout.strip()  # fmt: skip
    try:
        address = docker("port", container, "8080").stdout.splitlines()[0]
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://{address}/v2/models/{MODEL}/ready", timeout=2
                ) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            logs = docker("logs", container, check=False)
            assert time.monotonic() < deadline, f"not ready:\n{logs.stdout}\n{logs.stderr}"
            time.sleep(1)
        yield address
    finally:
        docker("rm", "--force", container, check=False)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary-tensors"])
def test_kserve_sklearnserver_serves_the_bundle_as_predict_proba_offline(
    sklearnserver: str, trained_bundle: Path, binary: bool
) -> None:
    spec = json.loads((trained_bundle / "feature_spec.json").read_text())
    matrix = np.random.default_rng(5).normal(size=(7, len(spec["feature_names"])))
    body, headers = encode_predictor_request(matrix, "image-test", binary)
    request = urllib.request.Request(
        f"http://{sklearnserver}/v2/models/{MODEL}/infer", data=body, headers=headers
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer_headers = {k.lower(): v for k, v in response.headers.items()}
        answer = response.read()
    probabilities = decode_predictor_response(answer, answer_headers, matrix.shape[0])

    offline = joblib.load(trained_bundle / "model" / "model.joblib").predict_proba(matrix)[:, 1]
    np.testing.assert_allclose(probabilities, offline, rtol=0, atol=1e-9)


def test_kserve_sklearnserver_image_runs_as_uid_1000(sklearnserver_image: str) -> None:
    assert_numeric_non_root(sklearnserver_image)
    assert image_config(sklearnserver_image)["User"] == "1000"
